//! Results of statements that ran when they were planned.
//!
//! A statement that changes something (DDL, DML, COPY, SET) runs as soon as a
//! client asks for its FlightInfo: clients such as the ADBC driver may fetch
//! the result lazily, or never, and the change must take effect regardless.
//! Its result (a row count, or rows from `RETURNING`) waits here until the
//! ticket is redeemed, at most for the ticket's lifetime.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parking_lot::Mutex;

/// Most results held at once; beyond it the oldest is dropped.
const LIMIT: usize = 10_000;

#[derive(Debug)]
struct Held {
    since: Instant,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

#[derive(Debug)]
pub(crate) struct HeldResults {
    entries: Mutex<HashMap<String, Held>>,
    ttl: Duration,
}

impl HeldResults {
    pub(crate) fn new(ttl: Duration) -> Self {
        HeldResults {
            entries: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    pub(crate) fn put(&self, query_id: &str, schema: SchemaRef, batches: Vec<RecordBatch>) {
        let mut entries = self.entries.lock();
        entries.retain(|_, held| held.since.elapsed() < self.ttl);
        if entries.len() >= LIMIT {
            let oldest = entries
                .iter()
                .min_by_key(|(_, held)| held.since)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            query_id.to_string(),
            Held {
                since: Instant::now(),
                schema,
                batches,
            },
        );
    }

    /// The held result, once: a second fetch finds nothing.
    pub(crate) fn take(&self, query_id: &str) -> Option<(SchemaRef, Vec<RecordBatch>)> {
        let held = self.entries.lock().remove(query_id)?;
        (held.since.elapsed() < self.ttl).then_some((held.schema, held.batches))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::Schema;

    use super::*;

    #[test]
    fn results_are_taken_once_and_expire() {
        let held = HeldResults::new(Duration::from_secs(60));
        held.put("q1", Arc::new(Schema::empty()), vec![]);
        assert!(held.take("q1").is_some());
        assert!(held.take("q1").is_none(), "a result is fetched once");

        let expired = HeldResults::new(Duration::ZERO);
        expired.put("q2", Arc::new(Schema::empty()), vec![]);
        assert!(expired.take("q2").is_none());
    }
}
