//! Durable writes: after a write commits, its database is checkpointed and
//! published as a snapshot in differential storage before the write is
//! acknowledged.
//!
//! DuckDB refuses to checkpoint while a transaction that updated, deleted or
//! changed the catalog is open (and, once it committed, while a transaction
//! older than it is open), so writes pass a gate:
//!
//! - a write that commits on its own (autocommit) holds the gate shared while
//!   it runs, and lets go once it committed;
//! - a session's transaction takes the gate shared at its first write and
//!   holds it until it commits or rolls back (its DuckDB transaction starts
//!   at that write, so a transaction that only reads holds no snapshot);
//! - publication closes the gate: it waits for the writes inside to commit,
//!   holds new ones back, checkpoints, takes the snapshot and opens the gate
//!   again. The checkpoint runs on a connection of its own, so reads, which
//!   never pass the gate, keep every pooled connection and never wait for it.
//!
//! Writes that finish while a snapshot is being taken share the next one
//! (group commit): every write takes a ticket from one counter once it
//! committed, and a snapshot that started after a ticket was taken covers it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openduck_storage::{DatabaseWriter, Error as StorageError};
use tokio::sync::{Mutex, OwnedRwLockReadGuard, RwLock};
use tracing::{debug, error, info, warn};

use crate::engine::{Connection, Database};
use crate::error::{Error, Result};
use crate::session::Sessions;
use crate::sql::quote_identifier;

/// Permission to write until a publication: while any is held, no
/// checkpoint starts.
pub(crate) type WriteAccess = OwnedRwLockReadGuard<()>;

/// How long a checkpoint that DuckDB refuses waits before it tries again, at
/// first and at most.
const RETRY_FIRST: Duration = Duration::from_millis(1);
const RETRY_MAX: Duration = Duration::from_millis(50);
/// A publication that has waited this long for writers to commit says so.
const SLOW_QUIET_POINT: Duration = Duration::from_secs(10);

/// The writers of an executor's databases.
#[derive(Debug)]
pub(crate) struct Durability {
    writers: parking_lot::RwLock<BTreeMap<String, Arc<Mutex<DatabaseWriter>>>>,
    /// Writes hold it shared; publication holds it exclusively.
    gate: Arc<RwLock<()>>,
    /// One publication at a time, on a connection no statement waits for.
    checkpointer: Mutex<Arc<parking_lot::Mutex<Connection>>>,
    /// Tickets taken by writes that committed.
    tickets: AtomicU64,
    /// Every ticket up to this one is in a published snapshot.
    published: AtomicU64,
    /// Why this executor may no longer write: a database's writer lost its
    /// claim, and its local file may hold a write that was never published.
    fenced: parking_lot::Mutex<Option<String>>,
    /// The sessions whose transactions a waiting publication rolls back
    /// once idle for this long.
    idle: std::sync::OnceLock<(Arc<Sessions>, Duration)>,
}

impl Durability {
    /// Durability for the databases of `database`, checkpointed through a
    /// connection of its own.
    pub(crate) fn new(database: &Arc<Database>) -> Result<Self> {
        Ok(Durability {
            writers: parking_lot::RwLock::default(),
            gate: Arc::default(),
            checkpointer: Mutex::new(Arc::new(parking_lot::Mutex::new(database.connect()?))),
            tickets: AtomicU64::new(0),
            published: AtomicU64::new(0),
            fenced: parking_lot::Mutex::default(),
            idle: std::sync::OnceLock::new(),
        })
    }

    /// From now on, a publication that waits rolls back the transactions of
    /// `sessions` that held the gate without running a statement for
    /// `timeout` (see [`Sessions::roll_back_idle`]).
    pub(crate) fn roll_back_idle(&self, sessions: Arc<Sessions>, timeout: Duration) {
        let _ = self.idle.set((sessions, timeout));
    }

    /// Adds the writer of one database.
    pub(crate) fn add(&self, writer: DatabaseWriter) {
        let name = writer.database().to_string();
        self.writers.write().insert(name, Arc::new(Mutex::new(writer)));
    }

    fn writers(&self) -> Vec<(String, Arc<Mutex<DatabaseWriter>>)> {
        self.writers
            .read()
            .iter()
            .map(|(name, writer)| (name.clone(), Arc::clone(writer)))
            .collect()
    }

    /// Waits until a write may start: not while a checkpoint runs.
    pub(crate) async fn enter(&self) -> Result<WriteAccess> {
        self.check_writable()?;
        Ok(Arc::clone(&self.gate).read_owned().await)
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

    /// Makes every write that committed before this call durable: once no
    /// write is in flight, checkpoints each database and publishes a snapshot
    /// when its file changed. The caller must hold no [`WriteAccess`].
    ///
    /// While it waits for the transactions that wrote to end, it rolls back
    /// those idle for the time [`Durability::roll_back_idle`] set.
    pub(crate) async fn publish(&self) -> Result<()> {
        let ticket = self.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        let checkpointer = self.checkpointer.lock().await;
        self.check_writable()?;
        if self.published.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        let waiting = Instant::now();
        let quiet = Arc::clone(&self.gate).write_owned();
        tokio::pin!(quiet);
        let quiet = match self.idle.get() {
            None => quiet.await,
            Some((sessions, timeout)) => loop {
                tokio::select! {
                    quiet = &mut quiet => break quiet,
                    () = tokio::time::sleep(*timeout / 4) => sessions.roll_back_idle(*timeout).await,
                }
            },
        };
        let covered = self.tickets.load(Ordering::SeqCst);
        let quiet_after = waiting.elapsed();
        for (name, writer) in self.writers() {
            let started = Instant::now();
            checkpoint(&checkpointer, &name).await?;
            let checkpointed = started.elapsed();
            let mut writer = writer.lock().await;
            match writer.snapshot().await {
                Ok(stats) => debug!(
                    database = %name,
                    quiet_ms = quiet_after.as_millis() as u64,
                    checkpoint_ms = checkpointed.as_millis() as u64,
                    snapshot_ms = (started.elapsed() - checkpointed).as_millis() as u64,
                    writes = covered - self.published.load(Ordering::SeqCst),
                    changed_blocks = stats.as_ref().map_or(0, |stats| stats.changed_blocks),
                    "published"
                ),
                Err(error @ (StorageError::Fenced { .. } | StorageError::Busy { .. })) => {
                    error!(database = %name, %error, "writer fenced: refusing writes from now on");
                    let reason = error.to_string();
                    *self.fenced.lock() = Some(reason.clone());
                    return Err(Error::Fenced(reason));
                }
                Err(error) => return Err(error.into()),
            }
        }
        drop(quiet);
        self.published.fetch_max(covered, Ordering::SeqCst);
        Ok(())
    }

    /// Publishes whatever changed, at start (a file made or changed before
    /// storage knew it) and at shutdown.
    pub(crate) async fn publish_all(&self) -> Result<()> {
        self.publish().await?;
        for (name, writer) in self.writers() {
            if let Some(head) = writer.lock().await.head() {
                info!(database = %name, snapshot = %head, "database durable");
            }
        }
        Ok(())
    }
}

/// Checkpoints `database`, once DuckDB lets it. Every write that passes the
/// gate is outside it now, but DuckDB also refuses while a statement that
/// started before a committed update or DDL still runs (it may need the old
/// rows), and while a statement that writes as a side effect (`nextval`)
/// runs: then it tries again, backing off.
async fn checkpoint(conn: &Arc<parking_lot::Mutex<Connection>>, database: &str) -> Result<()> {
    let sql = format!("CHECKPOINT {}", quote_identifier(database));
    let started = Instant::now();
    let mut warned = false;
    let mut pause = RETRY_FIRST;
    loop {
        let conn = Arc::clone(conn);
        let sql = sql.clone();
        let outcome = tokio::task::spawn_blocking(move || conn.lock().execute_batch(&sql))
            .await
            .map_err(|error| Error::TaskFailed(error.to_string()))?;
        match outcome {
            Err(error) if is_busy(&error) => {
                if !warned && started.elapsed() > SLOW_QUIET_POINT {
                    warn!(
                        database,
                        waited_s = started.elapsed().as_secs(),
                        "publication waits for statements that started before an update to end"
                    );
                    warned = true;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RETRY_MAX);
            }
            other => return other,
        }
    }
}

/// DuckDB refused a checkpoint because a write transaction or another
/// checkpoint is running.
fn is_busy(error: &Error) -> bool {
    let message = error.to_string();
    message.contains("Cannot CHECKPOINT: there are other write transactions")
        || message.contains("Cannot CHECKPOINT: another checkpoint is running")
}
