//! What the Flight SQL front end measures and traces. Every call is one
//! span (the root of its statement's trace) and one count in
//! `openduck_calls` by method, kind and status code, with its duration in
//! `openduck_call_duration_seconds`; a streaming call ends when its
//! stream does.

use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Instant;

use arrow_flight::sql::{Any, Command};
use futures::Stream;
use opentelemetry::metrics::{Counter, Histogram};
use opentelemetry::KeyValue;
use parking_lot::Mutex;
use prost::Message;
use tonic::{Code, Status};
use tracing::Span;

struct Instruments {
    calls: Counter<u64>,
    duration: Histogram<f64>,
}

static INSTRUMENTS: LazyLock<Instruments> = LazyLock::new(|| {
    let meter = openduck_telemetry::meter();
    Instruments {
        calls: meter
            .u64_counter("openduck_calls")
            .with_description("Flight SQL calls, by method, kind of statement and gRPC status code.")
            .build(),
        duration: meter
            .f64_histogram("openduck_call_duration_seconds")
            .with_unit("s")
            .with_description("How long Flight SQL calls take, streams to their last row.")
            .with_boundaries(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ])
            .build(),
    }
});

/// One client call being measured.
#[derive(Debug)]
pub(crate) struct Call {
    method: &'static str,
    kind: &'static str,
    started: Instant,
    span: Span,
}

impl Call {
    /// Starts measuring a call of `method` doing `kind`, in a new span.
    pub(crate) fn start(method: &'static str, kind: &'static str) -> Call {
        let span = tracing::info_span!(
            "flight_sql",
            otel.name = method,
            otel.kind = "server",
            rpc.method = method,
            openduck.kind = kind,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        Call {
            method,
            kind,
            started: Instant::now(),
            span,
        }
    }

    /// The same call, counted as `kind` (known only once its handler ran).
    pub(crate) fn with_kind(mut self, kind: &'static str) -> Call {
        self.kind = kind;
        self.span.record("openduck.kind", kind);
        self
    }

    /// The call's span.
    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    /// Records the call as ended with `code`.
    pub(crate) fn finish(self, code: Code) {
        self.span.record("rpc.grpc.status_code", code as i32);
        let attributes = [
            KeyValue::new("method", self.method),
            KeyValue::new("kind", self.kind),
            KeyValue::new("code", code_name(code)),
        ];
        INSTRUMENTS.calls.add(1, &attributes);
        INSTRUMENTS
            .duration
            .record(self.started.elapsed().as_secs_f64(), &attributes);
    }

    /// Records a call that answered with `result` (a stream is measured to
    /// its end by [`Call::follow`] instead).
    pub(crate) fn finish_with<T>(self, result: &Result<T, Status>) {
        self.finish(result.as_ref().map_or_else(Status::code, |_| Code::Ok));
    }

    /// `stream`, measured: the call ends with the stream's first error, or
    /// OK at its end, or CANCELLED when the client drops it first.
    pub(crate) fn follow<T, S>(self, stream: S) -> Followed<S>
    where
        S: Stream<Item = Result<T, Status>> + Unpin,
    {
        Followed {
            inner: stream,
            call: Some(self),
            code: Code::Ok,
        }
    }
}

/// A response stream whose end ends its [`Call`].
pub(crate) struct Followed<S> {
    inner: S,
    call: Option<Call>,
    code: Code,
}

impl<T, S> Stream for Followed<S>
where
    S: Stream<Item = Result<T, Status>> + Unpin,
{
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let _entered = this.call.as_ref().map(|call| call.span.enter());
        let next = Pin::new(&mut this.inner).poll_next(cx);
        match &next {
            Poll::Ready(Some(Err(status))) if this.code == Code::Ok => this.code = status.code(),
            Poll::Ready(None) => {
                drop(_entered);
                if let Some(call) = this.call.take() {
                    call.finish(this.code);
                }
            }
            _ => {}
        }
        next
    }
}

impl<S> Drop for Followed<S> {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            let code = if self.code == Code::Ok {
                Code::Cancelled
            } else {
                self.code
            };
            call.finish(code);
        }
    }
}

tokio::task_local! {
    static PUT_KIND: PutKind;
}

/// The kind of a DoPut, named by the handler that decodes its command
/// ([`note_put_kind`]) and read once the call is over.
#[derive(Debug, Clone)]
pub(crate) struct PutKind(Arc<Mutex<&'static str>>);

impl Default for PutKind {
    fn default() -> Self {
        PutKind(Arc::new(Mutex::new("put")))
    }
}

impl PutKind {
    /// Runs `handler` where [`note_put_kind`] reaches this.
    pub(crate) async fn scope<F: std::future::Future>(self, handler: F) -> F::Output {
        PUT_KIND.scope(self, handler).await
    }

    /// The kind noted.
    pub(crate) fn get(&self) -> &'static str {
        *self.0.lock()
    }
}

/// Names the kind of the DoPut being handled (update, ingest, ...).
pub(crate) fn note_put_kind(kind: &'static str) {
    let _ = PUT_KIND.try_with(|noted| *noted.0.lock() = kind);
}

/// What a Flight SQL command in a descriptor asks for.
pub(crate) fn kind_of_command(cmd: &[u8]) -> &'static str {
    let Ok(any) = Any::decode(cmd) else {
        return "invalid";
    };
    match Command::try_from(any) {
        Ok(Command::CommandStatementQuery(_)) => "query",
        Ok(Command::CommandPreparedStatementQuery(_)) => "prepared_query",
        Ok(Command::CommandStatementUpdate(_)) => "update",
        Ok(Command::CommandPreparedStatementUpdate(_)) => "prepared_update",
        Ok(Command::CommandStatementIngest(_)) => "ingest",
        Ok(Command::CommandStatementSubstraitPlan(_)) => "substrait",
        Ok(Command::Unknown(_)) | Err(_) => "unknown",
        Ok(_) => "metadata",
    }
}

/// What a DoAction asks for.
pub(crate) fn kind_of_action(action: &str) -> &'static str {
    match action {
        "CreatePreparedStatement" | "CreatePreparedSubstraitPlan" => "prepare",
        "ClosePreparedStatement" => "close_prepared",
        "BeginTransaction" | "BeginSavepoint" => "begin",
        "EndTransaction" | "EndSavepoint" => "end_transaction",
        "CancelQuery" | "CancelFlightInfo" => "cancel",
        "SetSessionOptions" | "GetSessionOptions" | "CloseSession" => "session",
        _ => "other",
    }
}

fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
