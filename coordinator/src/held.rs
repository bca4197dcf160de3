//! What the coordinator keeps under a query id until the query's ticket is
//! redeemed, at most for the ticket's lifetime, and hands out once.
//!
//! - Results of statements that ran when they were planned. A statement that
//!   changes something (DDL, DML, COPY, SET) runs as soon as a client asks for
//!   its FlightInfo: clients such as the ADBC driver may fetch the result
//!   lazily, or never, and the change must take effect regardless.
//! - Plans of queries across executors, so that the coordinator that planned
//!   one runs the plan it described instead of planning again. Any other
//!   coordinator still can: the ticket carries the SQL.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Values of type `T` by query id, each taken at most once.
#[derive(Debug)]
pub(crate) struct Held<T> {
    entries: Mutex<HashMap<String, (Instant, T)>>,
    ttl: Duration,
    /// Most values held at once; beyond it the oldest is dropped.
    limit: usize,
}

impl<T> Held<T> {
    pub(crate) fn new(ttl: Duration, limit: usize) -> Self {
        Held {
            entries: Mutex::new(HashMap::new()),
            ttl,
            limit,
        }
    }

    pub(crate) fn put(&self, query_id: &str, value: T) {
        let mut entries = self.entries.lock();
        entries.retain(|_, (since, _)| since.elapsed() < self.ttl);
        if entries.len() >= self.limit {
            let oldest = entries
                .iter()
                .min_by_key(|(_, (since, _))| *since)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        entries.insert(query_id.to_string(), (Instant::now(), value));
    }

    /// The value, once: a second take finds nothing.
    pub(crate) fn take(&self, query_id: &str) -> Option<T> {
        let (since, value) = self.entries.lock().remove(query_id)?;
        (since.elapsed() < self.ttl).then_some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_taken_once_and_expire() {
        let held = Held::new(Duration::from_secs(60), 10);
        held.put("q1", 1);
        assert_eq!(held.take("q1"), Some(1));
        assert_eq!(held.take("q1"), None, "a value is taken once");

        let expired = Held::new(Duration::ZERO, 10);
        expired.put("q2", 2);
        assert_eq!(expired.take("q2"), None);
    }

    #[test]
    fn beyond_the_limit_the_oldest_goes() {
        let held = Held::new(Duration::from_secs(60), 2);
        for (id, value) in [("q1", 1), ("q2", 2), ("q3", 3)] {
            held.put(id, value);
        }
        assert_eq!(held.take("q1"), None);
        assert_eq!((held.take("q2"), held.take("q3")), (Some(2), Some(3)));
    }
}
