//! Durable writes: after a write commits, its database is checkpointed and
//! published as a snapshot in differential storage before the write is
//! acknowledged.
//!
//! Writes that finish while a snapshot is being taken share the next one
//! (group commit): every write takes a ticket from one counter, and a
//! snapshot that started after a ticket was taken covers it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openduck_storage::{DatabaseWriter, Error as StorageError};
use tokio::sync::Mutex;
use tracing::{error, info};

use crate::error::{Error, Result};
use crate::pool::{Lease, Pool};
use crate::sql::quote_identifier;
use crate::stream::run_blocking;

/// The writers of an executor's databases.
#[derive(Debug, Default)]
pub(crate) struct Durability {
    writers: parking_lot::RwLock<BTreeMap<String, Arc<Mutex<WriterState>>>>,
    /// Tickets taken by writes that finished.
    tickets: AtomicU64,
    /// Why this executor may no longer write: a database's writer lost its
    /// claim, and its local file may hold a write that was never published.
    fenced: parking_lot::Mutex<Option<String>>,
}

#[derive(Debug)]
struct WriterState {
    writer: DatabaseWriter,
    /// Every ticket up to this one is in a published snapshot.
    published: u64,
}

impl Durability {
    /// Adds the writer of one database.
    pub(crate) fn add(&self, writer: DatabaseWriter) {
        let name = writer.database().to_string();
        let state = WriterState { writer, published: 0 };
        self.writers.write().insert(name, Arc::new(Mutex::new(state)));
    }

    fn writers(&self) -> Vec<(String, Arc<Mutex<WriterState>>)> {
        self.writers
            .read()
            .iter()
            .map(|(name, state)| (name.clone(), Arc::clone(state)))
            .collect()
    }

    /// Refuses writes once any database of this executor was fenced: its
    /// local file may hold a write that was never published, and nothing
    /// more may follow it.
    pub(crate) fn check_writable(&self) -> Result<()> {
        match self.fenced_because() {
            Some(reason) => Err(Error::Fenced(reason)),
            None => Ok(()),
        }
    }

    /// Why this executor may no longer write, if it may not.
    pub(crate) fn fenced_because(&self) -> Option<String> {
        self.fenced.lock().clone()
    }

    /// Makes every write that finished before this call durable: checkpoints
    /// each database and publishes a snapshot when its file changed.
    pub(crate) async fn publish(&self, pool: &Arc<Pool>) -> Result<()> {
        let ticket = self.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        for (name, state) in self.writers() {
            let mut state = state.lock().await;
            self.check_writable()?;
            if state.published >= ticket {
                continue;
            }
            let covered = self.tickets.load(Ordering::SeqCst);
            checkpoint(pool, &name).await?;
            match state.writer.snapshot().await {
                Ok(_) => state.published = covered,
                Err(error @ (StorageError::Fenced { .. } | StorageError::Busy { .. })) => {
                    error!(database = %name, %error, "writer fenced: refusing writes from now on");
                    let reason = error.to_string();
                    *self.fenced.lock() = Some(reason.clone());
                    return Err(Error::Fenced(reason));
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }

    /// Publishes whatever changed, at start (a file made or changed before
    /// storage knew it) and at shutdown.
    pub(crate) async fn publish_all(&self, pool: &Arc<Pool>) -> Result<()> {
        self.publish(pool).await?;
        for (name, state) in self.writers() {
            if let Some(head) = state.lock().await.writer.head() {
                info!(database = %name, snapshot = %head, "database durable");
            }
        }
        Ok(())
    }
}

async fn checkpoint(pool: &Arc<Pool>, database: &str) -> Result<()> {
    let conn = pool.get().await?;
    let sql = format!("CHECKPOINT {}", quote_identifier(database));
    run_blocking(Lease::pooled(conn), move |conn| conn.conn().execute_batch(&sql)).await
}
