//! Queries started as soon as they are planned, waiting for their ticket.
//!
//! On an executor in this process, a query without parameters, from a client
//! connection without a session, starts when its FlightInfo is asked for instead of
//! when its ticket is redeemed: DuckDB prepares it once instead of twice
//! (for the schema, then to run it), and works while the FlightInfo travels
//! to the client and its DoGet comes back. DuckDB's first rows wait in the
//! stream's small buffer.
//!
//! A waiting query whose rows do not fit the stream's buffer, or that still
//! computes, holds a pooled connection and an open transaction, so few wait
//! at once ([`Started::new`]'s slots; beyond them queries are described and
//! run when redeemed, as before), and each waits a short time: then it is
//! stopped, and a DoGet that comes later runs the query from its ticket as if
//! it had never started.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::debug;

use crate::results::ResultStream;

/// Started queries by query id, until their ticket takes them.
#[derive(Debug)]
pub(crate) struct Started {
    waiting: Arc<Mutex<HashMap<String, Waiting>>>,
    slots: Arc<Semaphore>,
    wait: Duration,
}

#[derive(Debug)]
struct Waiting {
    rows: ResultStream,
    _slot: OwnedSemaphorePermit,
}

impl Started {
    /// At most `slots` queries waiting at once, each for at most `wait`.
    pub(crate) fn new(slots: usize, wait: Duration) -> Self {
        Started {
            waiting: Arc::default(),
            slots: Arc::new(Semaphore::new(slots)),
            wait,
        }
    }

    /// A slot for one more waiting query, when one is free.
    pub(crate) fn reserve(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.slots).try_acquire_owned().ok()
    }

    /// Keeps `rows` of `query_id` in `slot` until [`Started::take`] takes
    /// them or the wait is over; then dropping them stops the query.
    pub(crate) fn keep(&self, query_id: &str, rows: ResultStream, slot: OwnedSemaphorePermit) {
        let waiting = Waiting { rows, _slot: slot };
        self.waiting.lock().insert(query_id.to_string(), waiting);
        let (waiting, query_id, wait) = (Arc::downgrade(&self.waiting), query_id.to_string(), self.wait);
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            if expire(&waiting, &query_id) {
                debug!(%query_id, "a started query's ticket was not redeemed in time; stopped it");
            }
        });
    }

    /// Stops every waiting query and starts no more (the server shuts down).
    pub(crate) fn clear(&self) {
        self.slots.close();
        let waiting = std::mem::take(&mut *self.waiting.lock());
        drop(waiting);
    }

    /// The rows of `query_id`, if it started and still waits.
    pub(crate) fn take(&self, query_id: &str) -> Option<ResultStream> {
        let waiting = self.waiting.lock().remove(query_id);
        waiting.map(|waiting| waiting.rows)
    }
}

/// Drops the waiting rows of `query_id`, outside the lock (dropping them
/// interrupts DuckDB); whether they were still there.
fn expire(waiting: &Weak<Mutex<HashMap<String, Waiting>>>, query_id: &str) -> bool {
    let Some(waiting) = waiting.upgrade() else {
        return false;
    };
    let gone = waiting.lock().remove(query_id);
    gone.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Schema;
    use futures::StreamExt;

    fn rows() -> ResultStream {
        ResultStream::new(Arc::new(Schema::empty()), futures::stream::empty().boxed())
    }

    #[tokio::test]
    async fn hands_out_each_query_once_and_frees_its_slot() {
        let started = Started::new(1, Duration::from_secs(60));
        let slot = started.reserve().expect("a free slot");
        assert!(started.reserve().is_none(), "one slot only");
        started.keep("q", rows(), slot);
        assert!(started.take("q").is_some());
        assert!(started.take("q").is_none(), "taken once");
        assert!(started.reserve().is_some(), "the slot is free again");
    }

    #[tokio::test]
    async fn clearing_stops_every_waiting_query_and_starts_no_more() {
        let started = Started::new(2, Duration::from_secs(60));
        started.keep("q", rows(), started.reserve().unwrap());
        started.clear();
        assert!(started.take("q").is_none());
        assert!(started.reserve().is_none(), "no slots after clearing");
    }

    #[tokio::test]
    async fn stops_a_query_whose_ticket_does_not_come() {
        let started = Started::new(1, Duration::from_millis(20));
        started.keep("q", rows(), started.reserve().unwrap());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        // The slot comes free only when the query is dropped.
        let slot = loop {
            if let Some(slot) = started.reserve() {
                break slot;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the started query never expired"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        drop(slot);
        assert!(started.take("q").is_none(), "expired");
    }
}
