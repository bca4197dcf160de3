//! Sessions: a connection set aside for one client, so that what a statement
//! leaves behind on its connection (an open transaction, temporary tables,
//! settings) is there for the client's next statement.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{Mutex as AsyncMutex, Semaphore};
use tracing::warn;

use crate::durable::WriteAccess;
use crate::error::{Error, ErrorKind, Result};
use crate::pool::{Lease, Pool, PooledConnection};

/// A session runs one statement at a time. A statement that waits longer
/// than this for the one before (a result the client never reads to the
/// end, say) fails instead of waiting forever.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// A client's own DuckDB connection on one executor. Cloning shares it; when
/// the last clone is dropped the connection closes, which rolls back an open
/// transaction and drops temporary tables.
#[derive(Clone)]
pub struct Session {
    inner: Arc<SessionInner>,
}

pub(crate) struct SessionInner {
    id: String,
    conn: Arc<AsyncMutex<PooledConnection>>,
    transaction: Mutex<Transaction>,
    /// Since when it has run no statement, as [`Sessions::roll_back_idle`]
    /// last saw it (`None`: busy, or used since).
    idle_since: Mutex<Option<Instant>>,
}

/// Where a session's transaction stands.
#[derive(Debug, Default)]
enum Transaction {
    /// None: each statement commits on its own.
    #[default]
    None,
    /// Begun by the client, but DuckDB's transaction starts only at the
    /// first write (with differential storage): until then statements read
    /// the latest committed data, and hold no snapshot that would keep a
    /// checkpoint from running.
    Pending,
    /// DuckDB's transaction is open; with storage it holds the write gate
    /// until it ends.
    Open(Option<WriteAccess>),
    /// Rolled back by the executor (it held back every other write while
    /// idle), for the reason given; every statement fails with it until the
    /// client ends the transaction.
    RolledBack(String),
}

impl SessionInner {
    /// Whether the client began a transaction that has not ended.
    pub(crate) fn in_transaction(&self) -> bool {
        !matches!(*self.transaction.lock(), Transaction::None)
    }

    /// Whether the client began a transaction whose DuckDB transaction has
    /// not started yet.
    pub(crate) fn is_pending(&self) -> bool {
        matches!(*self.transaction.lock(), Transaction::Pending)
    }

    /// Notes that the client began a transaction: DuckDB's began with it
    /// (`started`), or starts at the first write.
    pub(crate) fn begin(&self, started: bool) {
        *self.transaction.lock() = if started {
            Transaction::Open(None)
        } else {
            Transaction::Pending
        };
    }

    /// If the client's transaction still waits for its first write, starts
    /// DuckDB's with `begin` and notes that it holds `access` until it ends.
    /// Atomic with [`SessionInner::end_if_pending`]: a rollback never ends a
    /// transaction whose DuckDB transaction is just beginning.
    pub(crate) fn start_if_pending(&self, access: WriteAccess, begin: impl FnOnce() -> Result<()>) -> Result<()> {
        let mut transaction = self.transaction.lock();
        if matches!(*transaction, Transaction::Pending) {
            begin()?;
            *transaction = Transaction::Open(Some(access));
        }
        Ok(())
    }

    /// Ends the transaction if DuckDB's has not started; whether it did.
    pub(crate) fn end_if_pending(&self) -> bool {
        let mut transaction = self.transaction.lock();
        let pending = matches!(*transaction, Transaction::Pending);
        if pending {
            *transaction = Transaction::None;
        }
        pending
    }

    /// Why the executor rolled the transaction back, if it did.
    pub(crate) fn rolled_back(&self) -> Option<String> {
        match &*self.transaction.lock() {
            Transaction::RolledBack(reason) => Some(reason.clone()),
            _ => None,
        }
    }

    /// Whether DuckDB's transaction is open and holds the write gate.
    fn holds_gate(&self) -> bool {
        matches!(*self.transaction.lock(), Transaction::Open(Some(_)))
    }

    /// Notes that the transaction ended and lets go of its write access;
    /// returns whether it held any (whether it wrote, with storage).
    pub(crate) fn end(&self) -> bool {
        matches!(
            std::mem::take(&mut *self.transaction.lock()),
            Transaction::Open(Some(_))
        )
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("id", &self.inner.id).finish()
    }
}

impl Session {
    /// The id statements name to run in this session.
    pub fn id(&self) -> &str {
        &self.inner.id
    }
}

/// The open sessions of one executor, by id. Holds them weakly: a session
/// lives as long as its client holds it.
#[derive(Debug)]
pub(crate) struct Sessions {
    open: Mutex<HashMap<String, Weak<SessionInner>>>,
    /// Sessions kept open for callers that name them only by id (through
    /// the executor interface), until they close them.
    held: Mutex<HashMap<String, Session>>,
    permits: Arc<Semaphore>,
    limit: usize,
}

impl std::fmt::Debug for SessionInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionInner")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Sessions {
    pub(crate) fn new(limit: usize) -> Self {
        Sessions {
            open: Mutex::new(HashMap::new()),
            held: Mutex::new(HashMap::new()),
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }

    /// Opens a session on a new connection of `pool`.
    pub(crate) fn open(&self, pool: &Arc<Pool>) -> Result<Session> {
        let permit = Arc::clone(&self.permits)
            .try_acquire_owned()
            .map_err(|_| Error::DuckDb {
                kind: ErrorKind::ResourceExhausted,
                message: format!(
                    "too many open sessions ({}): close transactions or connections, or raise --max-sessions",
                    self.limit
                ),
            })?;
        let conn = pool.dedicated(permit)?;
        let inner = Arc::new(SessionInner {
            id: uuid::Uuid::new_v4().simple().to_string(),
            conn: Arc::new(AsyncMutex::new(conn)),
            transaction: Mutex::default(),
            idle_since: Mutex::default(),
        });
        let mut open = self.open.lock();
        open.retain(|_, session| session.strong_count() > 0);
        open.insert(inner.id.clone(), Arc::downgrade(&inner));
        Ok(Session { inner })
    }

    /// How many sessions are open.
    pub(crate) fn open_count(&self) -> usize {
        self.open
            .lock()
            .values()
            .filter(|session| session.strong_count() > 0)
            .count()
    }

    /// Keeps `session` open until [`Sessions::release`] names it.
    pub(crate) fn hold(&self, session: Session) {
        self.held.lock().insert(session.id().to_string(), session);
    }

    /// Lets go of a held session: it closes once no statement uses it,
    /// which rolls back what it left open.
    pub(crate) fn release(&self, id: &str) {
        let session = self.held.lock().remove(id);
        drop(session);
    }

    /// Session `id`, while it is open.
    pub(crate) fn get(&self, id: &str) -> Result<Arc<SessionInner>> {
        let session = self.open.lock().get(id).and_then(Weak::upgrade);
        session.ok_or_else(|| Error::DuckDb {
            kind: ErrorKind::FailedPrecondition,
            message: format!("session {id} has ended (its connection closed); its transaction was rolled back"),
        })
    }

    /// The connection of session `id`, locked for one statement. Fails
    /// while the executor has rolled its transaction back and the client
    /// has not ended it.
    pub(crate) async fn lease(&self, id: &str) -> Result<Lease> {
        let session = self.get(id)?;
        let conn = Arc::clone(&session.conn);
        let locked = tokio::time::timeout(BUSY_TIMEOUT, conn.lock_owned()).await;
        *session.idle_since.lock() = None;
        if let Some(reason) = session.rolled_back() {
            return Err(Error::DuckDb {
                kind: ErrorKind::Aborted,
                message: reason,
            });
        }
        match locked {
            Ok(guard) => Ok(Lease::pinned(guard)),
            Err(_) => Err(Error::DuckDb {
                kind: ErrorKind::FailedPrecondition,
                message: format!(
                    "session {id} is busy: its previous statement still runs or its result was not \
                     read to the end (waited {} s)",
                    BUSY_TIMEOUT.as_secs()
                ),
            }),
        }
    }
}

impl Sessions {
    /// Rolls back each transaction that holds the write gate and has run no
    /// statement for `timeout`, as far as calls of this (made while a
    /// publication waits for the gate, at least every `timeout` / 4) saw:
    /// while it is open no other write can be acknowledged. Its client's
    /// next statement in it fails with `Aborted`.
    pub(crate) async fn roll_back_idle(&self, timeout: Duration) {
        let sessions: Vec<Arc<SessionInner>> = self.open.lock().values().filter_map(Weak::upgrade).collect();
        for session in sessions.into_iter().filter(|session| session.holds_gate()) {
            let Ok(guard) = Arc::clone(&session.conn).try_lock_owned() else {
                // A statement runs in it: not idle.
                *session.idle_since.lock() = None;
                continue;
            };
            let since = *session.idle_since.lock().get_or_insert_with(Instant::now);
            if since.elapsed() < timeout || !session.holds_gate() {
                continue;
            }
            let reason = format!(
                "the transaction was rolled back: it wrote, then ran no statement for {} s while other \
                 writes waited for it to end (--idle-transaction-timeout); roll back, then start again",
                timeout.as_secs_f64()
            );
            let marked = Arc::clone(&session);
            // Marked before the connection is free again: no statement may
            // find it neither in its transaction nor told why. Run to the end
            // even when the publication waiting here is dropped.
            let rolled_back = tokio::task::spawn_blocking(move || {
                let outcome = guard.conn().rollback();
                if outcome.is_ok() {
                    // Lets go of the gate.
                    *marked.transaction.lock() = Transaction::RolledBack(reason);
                }
                drop(guard);
                outcome
            })
            .await;
            match rolled_back {
                Ok(Ok(())) => warn!(
                    session = %session.id,
                    idle_s = since.elapsed().as_secs(),
                    "rolled back an idle transaction that held back writes"
                ),
                // Still open in DuckDB: it keeps the gate, and the next poll tries again.
                Ok(Err(error)) => warn!(session = %session.id, %error, "rolling back an idle transaction failed"),
                Err(error) => warn!(session = %session.id, %error, "rolling back an idle transaction stopped"),
            }
        }
    }
}
