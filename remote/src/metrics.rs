//! What the wire layer measures: rows and bytes streamed, by receiver, and
//! the connections each server has open.

use std::sync::LazyLock;

use opentelemetry::metrics::Counter;
use opentelemetry::KeyValue;

use crate::results::Receiver;

struct Streamed {
    rows: Counter<u64>,
    bytes: Counter<u64>,
}

static STREAMED: LazyLock<Streamed> = LazyLock::new(|| {
    let meter = openduck_telemetry::meter();
    Streamed {
        rows: meter
            .u64_counter("openduck_rows_streamed")
            .with_description("Result rows sent, by receiver (client, or coordinator from an executor).")
            .build(),
        bytes: meter
            .u64_counter("openduck_bytes_streamed")
            .with_unit("By")
            .with_description("Arrow IPC bytes of results sent, by receiver.")
            .build(),
    }
});

fn receiver(receiver: Receiver) -> [KeyValue; 1] {
    [KeyValue::new(
        "receiver",
        match receiver {
            Receiver::Client => "client",
            Receiver::Coordinator => "coordinator",
        },
    )]
}

pub(crate) fn rows_streamed(to: Receiver, rows: usize) {
    STREAMED.rows.add(rows as u64, &receiver(to));
}

pub(crate) fn bytes_streamed(to: Receiver, bytes: usize) {
    STREAMED.bytes.add(bytes as u64, &receiver(to));
}
