//! A bounded pool of DuckDB connections to one database instance.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::engine::{Connection, Database, Interrupter};
use crate::error::{Error, Result};
use crate::sql::quote_identifier;

/// A connection as the pool keeps it: which database it has `USE`d.
#[derive(Debug)]
struct Idle {
    conn: Connection,
    current_database: String,
}

#[derive(Debug)]
pub(crate) struct Pool {
    database: Arc<Database>,
    default_database: String,
    idle: Mutex<Vec<Idle>>,
    permits: Arc<Semaphore>,
    size: usize,
    running: Mutex<Vec<Interrupter>>,
}

impl Pool {
    pub(crate) fn new(database: Arc<Database>, default_database: String, size: usize) -> Self {
        let size = size.max(1);
        Pool {
            database,
            default_database,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(size)),
            size,
            running: Mutex::new(Vec::new()),
        }
    }

    /// Waits for a free connection (creating one when the pool is not full).
    pub(crate) async fn get(self: &Arc<Self>) -> Result<PooledConnection> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| Error::ShuttingDown)?;
        let idle = self.idle.lock().pop();
        let idle = match idle {
            Some(idle) => idle,
            None => Idle {
                conn: self.database.connect()?,
                current_database: self.default_database.clone(),
            },
        };
        Ok(PooledConnection {
            idle: Some(idle),
            pool: Arc::clone(self),
            discard: Cell::new(false),
            _permit: permit,
        })
    }

    /// Interrupts every statement running now.
    pub(crate) fn interrupt_running(&self) {
        for interrupter in self.running.lock().drain(..) {
            interrupter.interrupt();
        }
    }

    /// Waits (up to `grace`) for connections on loan to come back, then stops
    /// handing out connections and closes the idle ones.
    pub(crate) async fn close(&self, grace: Duration) {
        let all = u32::try_from(self.size).unwrap_or(u32::MAX);
        if let Ok(Ok(permits)) = tokio::time::timeout(grace, self.permits.acquire_many(all)).await {
            permits.forget();
        }
        self.permits.close();
        self.idle.lock().clear();
    }

    fn track(&self, interrupter: Interrupter) {
        let mut running = self.running.lock();
        running.retain(|known| known.is_live());
        running.push(interrupter);
    }
}

/// A connection on loan from the pool; returned when dropped.
#[derive(Debug)]
pub(crate) struct PooledConnection {
    idle: Option<Idle>,
    pool: Arc<Pool>,
    discard: Cell<bool>,
    _permit: OwnedSemaphorePermit,
}

impl PooledConnection {
    pub(crate) fn conn(&self) -> &Connection {
        &self.idle.as_ref().expect("present until drop").conn
    }

    /// Makes `database` the default catalog for unqualified names.
    pub(crate) fn use_database(&mut self, database: &str) -> Result<()> {
        let idle = self.idle.as_mut().expect("present until drop");
        if idle.current_database != database {
            idle.conn.execute_batch(&format!("USE {}", quote_identifier(database)))?;
            idle.current_database = database.to_string();
        }
        Ok(())
    }

    /// Starts a query that the pool can interrupt at shutdown.
    pub(crate) fn begin_query(&self) -> Interrupter {
        let interrupter = self.conn().begin_query();
        self.pool.track(interrupter.clone());
        interrupter
    }

    /// The connection's state no longer matches what the pool assumes (a
    /// `SET` or `USE` ran on it): close it instead of reusing it.
    pub(crate) fn discard(&self) {
        self.discard.set(true);
    }
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        if let Some(idle) = self.idle.take() {
            idle.conn.end_query();
            if !self.discard.get() && !self.pool.permits.is_closed() {
                self.pool.idle.lock().push(idle);
            }
        }
    }
}
