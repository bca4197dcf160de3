//! Queries running by id, so that a client can cancel one it no longer wants
//! (Flight SQL's CancelFlightInfo), even before it starts.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::engine::Interrupter;
use crate::error::{Error, ErrorKind, Result};

/// Cancellations of queries not running yet are remembered this long (a
/// ticket is redeemed within its lifetime, far shorter).
const REMEMBER_CANCELLED: Duration = Duration::from_secs(15 * 60);
/// At most this many such cancellations are remembered.
const MAX_REMEMBERED: usize = 10_000;

#[derive(Debug, Default)]
pub(crate) struct RunningQueries {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    running: HashMap<String, Interrupter>,
    cancelled: VecDeque<(String, Instant)>,
}

impl Inner {
    fn forget_old(&mut self) {
        let now = Instant::now();
        while let Some((_, at)) = self.cancelled.front() {
            if now.duration_since(*at) < REMEMBER_CANCELLED && self.cancelled.len() <= MAX_REMEMBERED {
                break;
            }
            self.cancelled.pop_front();
        }
    }
}

impl RunningQueries {
    /// Records that query `id` runs; refused when it was cancelled already.
    pub(crate) fn register(self: &Arc<Self>, id: &str, interrupter: Interrupter) -> Result<Registration> {
        let mut inner = self.inner.lock();
        inner.forget_old();
        if inner.cancelled.iter().any(|(known, _)| known == id) {
            return Err(Error::DuckDb {
                kind: ErrorKind::Cancelled,
                message: format!("query {id} was cancelled"),
            });
        }
        inner.running.insert(id.to_string(), interrupter);
        Ok(Registration {
            queries: Arc::clone(self),
            id: id.to_string(),
        })
    }

    /// Cancels query `id`: interrupts it if it runs, and refuses to start it
    /// later. Returns whether it was running.
    pub(crate) fn cancel(&self, id: &str) -> bool {
        let mut inner = self.inner.lock();
        inner.forget_old();
        if !inner.cancelled.iter().any(|(known, _)| known == id) {
            inner.cancelled.push_back((id.to_string(), Instant::now()));
        }
        match inner.running.remove(id) {
            Some(interrupter) => {
                let live = interrupter.is_live();
                interrupter.interrupt();
                live
            }
            None => false,
        }
    }
}

/// Removes a query from the running set when dropped.
#[derive(Debug)]
pub(crate) struct Registration {
    queries: Arc<RunningQueries>,
    id: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.queries.inner.lock().running.remove(&self.id);
    }
}
