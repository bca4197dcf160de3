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
    entries: Mutex<Entries<T>>,
    ttl: Duration,
    /// Most values held at once; beyond it the oldest go.
    limit: usize,
    /// Most bytes held at once (as the values were weighed); beyond it the
    /// oldest go.
    budget: usize,
}

#[derive(Debug)]
struct Entries<T> {
    by_id: HashMap<String, Entry<T>>,
    bytes: usize,
}

#[derive(Debug)]
struct Entry<T> {
    since: Instant,
    bytes: usize,
    value: T,
}

impl<T> Held<T> {
    /// At most `limit` values, and `budget` bytes, for up to `ttl` each.
    pub(crate) fn new(ttl: Duration, limit: usize, budget: usize) -> Self {
        Held {
            entries: Mutex::new(Entries {
                by_id: HashMap::new(),
                bytes: 0,
            }),
            ttl,
            limit,
            budget,
        }
    }

    /// Holds `value`, which takes `bytes`, dropping expired values and then
    /// the oldest until it fits.
    pub(crate) fn put(&self, query_id: &str, value: T, bytes: usize) {
        let mut entries = self.entries.lock();
        let ttl = self.ttl;
        let mut freed = 0;
        entries.by_id.retain(|_, entry| {
            let keep = entry.since.elapsed() < ttl;
            if !keep {
                freed += entry.bytes;
            }
            keep
        });
        entries.bytes -= freed;
        while !entries.by_id.is_empty() && (entries.by_id.len() >= self.limit || entries.bytes + bytes > self.budget) {
            let oldest = entries
                .by_id
                .iter()
                .min_by_key(|(_, entry)| entry.since)
                .map(|(id, _)| id.clone());
            if let Some(gone) = oldest.and_then(|id| entries.by_id.remove(&id)) {
                entries.bytes -= gone.bytes;
            }
        }
        entries.bytes += bytes;
        let entry = Entry {
            since: Instant::now(),
            bytes,
            value,
        };
        if let Some(replaced) = entries.by_id.insert(query_id.to_string(), entry) {
            entries.bytes -= replaced.bytes;
        }
    }

    /// The value, once: a second take finds nothing.
    pub(crate) fn take(&self, query_id: &str) -> Option<T> {
        let mut entries = self.entries.lock();
        let entry = entries.by_id.remove(query_id)?;
        entries.bytes -= entry.bytes;
        (entry.since.elapsed() < self.ttl).then_some(entry.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_taken_once_and_expire() {
        let held = Held::new(Duration::from_secs(60), 10, 100);
        held.put("q1", 1, 10);
        assert_eq!(held.take("q1"), Some(1));
        assert_eq!(held.take("q1"), None, "a value is taken once");

        let expired = Held::new(Duration::ZERO, 10, 100);
        expired.put("q2", 2, 10);
        assert_eq!(expired.take("q2"), None);
    }

    #[test]
    fn beyond_the_limit_the_oldest_goes() {
        let held = Held::new(Duration::from_secs(60), 2, 100);
        for (id, value) in [("q1", 1), ("q2", 2), ("q3", 3)] {
            held.put(id, value, 1);
        }
        assert_eq!(held.take("q1"), None);
        assert_eq!((held.take("q2"), held.take("q3")), (Some(2), Some(3)));
    }

    #[test]
    fn beyond_the_budget_the_oldest_go_and_taking_frees_bytes() {
        let held = Held::new(Duration::from_secs(60), 100, 100);
        held.put("q1", 1, 40);
        held.put("q2", 2, 40);
        // 40 + 40 + 30 > 100: the oldest goes, the newer stays.
        held.put("q3", 3, 30);
        assert_eq!(held.take("q1"), None);
        assert_eq!(held.take("q2"), Some(2));
        // Taking q2 gave its 40 bytes back: 30 + 70 fits.
        held.put("q4", 4, 70);
        assert_eq!((held.take("q3"), held.take("q4")), (Some(3), Some(4)));
        // A value larger than the budget is still held, alone.
        held.put("q5", 5, 10);
        held.put("q6", 6, 500);
        assert_eq!((held.take("q5"), held.take("q6")), (None, Some(6)));
    }
}
