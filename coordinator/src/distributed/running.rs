//! Queries across executors that are running, by query id, so that
//! CancelFlightInfo and CancelQuery can stop them. A cancelled query's
//! stream ends with `Cancelled` (never as if complete); dropping it drops
//! its Bridges, whose executors then interrupt their fragments. An id
//! cancelled before its query starts is remembered, and the query refused.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::{stream, StreamExt};
use openduck_api::ErrorKind;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::error::Error;
use crate::results::ResultStream;

/// How many ids cancelled before they started are remembered.
const REMEMBERED: usize = 10_000;

#[derive(Debug, Default)]
pub(crate) struct RunningQueries {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    running: HashMap<String, Arc<Notify>>,
    cancelled_early: VecDeque<String>,
}

fn cancelled(query_id: &str) -> Error {
    Error::Distributed {
        kind: ErrorKind::Cancelled,
        message: format!("query {query_id} was cancelled"),
    }
}

/// Takes a query off the running list when its stream goes.
struct Registration {
    queries: Arc<RunningQueries>,
    query_id: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.queries.state.lock().running.remove(&self.query_id);
    }
}

impl RunningQueries {
    /// Stops the query if it runs (true), or refuses it when it starts.
    pub(crate) fn cancel(&self, query_id: &str) -> bool {
        let mut state = self.state.lock();
        if let Some(notify) = state.running.get(query_id) {
            notify.notify_one();
            return true;
        }
        if state.cancelled_early.len() == REMEMBERED {
            state.cancelled_early.pop_front();
        }
        state.cancelled_early.push_back(query_id.to_string());
        false
    }

    /// `rows` of query `query_id`, stoppable by [`RunningQueries::cancel`].
    pub(crate) fn track(self: &Arc<Self>, query_id: &str, rows: ResultStream) -> Result<ResultStream, Error> {
        let notify = Arc::new(Notify::new());
        {
            let mut state = self.state.lock();
            if let Some(at) = state.cancelled_early.iter().position(|id| id == query_id) {
                state.cancelled_early.remove(at);
                return Err(cancelled(query_id));
            }
            state.running.insert(query_id.to_string(), Arc::clone(&notify));
        }
        let registration = Registration {
            queries: Arc::clone(self),
            query_id: query_id.to_string(),
        };
        let fired = Arc::new(AtomicBool::new(false));
        let stop = {
            let fired = Arc::clone(&fired);
            async move {
                notify.notified().await;
                fired.store(true, Ordering::SeqCst);
            }
        };
        let schema = rows.schema();
        // After the rows (all of them, or those before the cancel): an
        // error if they were cut short.
        let end = stream::once(async move {
            let registration = registration;
            fired
                .load(Ordering::SeqCst)
                .then(|| Err(cancelled(&registration.query_id)))
        })
        .filter_map(std::future::ready);
        Ok(ResultStream::new(schema, rows.take_until(stop).chain(end).boxed()))
    }
}
