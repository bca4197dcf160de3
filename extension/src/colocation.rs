//! Whether one executor of the service serves a set of databases. A query the user's
//! DuckDB places on the service whole is DuckDB's text, written for DuckDB: over tables of
//! several databases it runs there verbatim only when one executor serves them all (a
//! coordinator would plan it across executors in DataFusion's dialect otherwise). The
//! extension asks before it places such a query (`openduck.on_one_executor`, answers kept
//! a few seconds), and sends the query with `x-openduck-one-executor: required`, so that a
//! database that moved in between fails the query clearly rather than changing its meaning.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_flight::Action;
use openduck_proto::ON_ONE_EXECUTOR;

use crate::client::{Client, METADATA_DEADLINE};
use crate::Error;

/// How long an answer is used before the service is asked again.
const FRESH_FOR: Duration = Duration::from_secs(10);

/// Answers of the service, by the set of databases asked about (sorted).
pub(crate) type Colocations = Arc<Mutex<HashMap<Vec<String>, (Instant, bool)>>>;

impl Client {
    /// Whether one executor of the service serves every one of `databases` (as this
    /// client's principal may know), asked at most every few seconds.
    pub fn on_one_executor(&self, databases: &[String]) -> Result<bool, Error> {
        let mut key = databases.to_vec();
        key.sort();
        key.dedup();
        if key.len() < 2 {
            return Ok(true);
        }
        let colocations = || self.colocations.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((asked, answer)) = colocations().get(&key) {
            if asked.elapsed() < FRESH_FOR {
                return Ok(*answer);
            }
        }
        let action = Action {
            r#type: ON_ONE_EXECUTOR.into(),
            body: key.join("\n").into_bytes().into(),
        };
        let answer = match self.action(action, Some(METADATA_DEADLINE)) {
            Ok(body) => body.as_ref() == b"true",
            // An older service, which knows no such action: as if not.
            Err(Error::Status(status)) if status.code() == tonic::Code::InvalidArgument => false,
            Err(error) => return Err(error),
        };
        colocations().insert(key, (Instant::now(), answer));
        Ok(answer)
    }

    /// A client like this one whose queries must run on one executor, verbatim in its
    /// DuckDB: the service refuses one whose databases live on several
    /// (`FAILED_PRECONDITION`).
    pub fn on_one_executor_only(&self) -> Client {
        Client {
            one_executor: true,
            ..self.clone()
        }
    }
}
