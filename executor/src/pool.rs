//! A bounded pool of DuckDB connections to one database instance.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::engine::{Connection, Database, Interrupter};
use crate::error::{Error, Result};
use crate::sql::quote_identifier;

/// A connection as the pool keeps it: which database (and schema) it has
/// `USE`d, `None` once a statement may have changed that.
#[derive(Debug)]
struct Idle {
    conn: Connection,
    current: Option<(String, Option<String>)>,
    /// The pool's [`Pool::reattached`] count when `current` was set.
    generation: u64,
}

#[derive(Debug)]
pub(crate) struct Pool {
    database: Arc<Database>,
    idle: Mutex<Vec<Idle>>,
    permits: Arc<Semaphore>,
    size: usize,
    running: Mutex<Vec<Interrupter>>,
    /// Counts statements that may have changed a catalog (DDL, ATTACH, ...).
    catalog_version: tokio::sync::watch::Sender<u64>,
    /// Counts databases detached and attached again (a replica moving to a
    /// new snapshot): a connection that `USE`d one must `USE` it again.
    generation: std::sync::atomic::AtomicU64,
}

impl Pool {
    pub(crate) fn new(database: Arc<Database>, size: usize) -> Self {
        let size = size.max(1);
        let permits = Arc::new(Semaphore::new(size));
        openduck_telemetry::observe_gauge(
            "openduck_executor_connections_in_use",
            "Connections of an executor's pool running a statement (sessions hold connections of their own).",
            openduck_telemetry::GaugeUnit::Count,
            &permits,
            move |free| vec![(size.saturating_sub(free.available_permits()) as f64, Vec::new())],
        );
        Pool {
            database,
            generation: std::sync::atomic::AtomicU64::new(0),
            idle: Mutex::new(Vec::new()),
            permits,
            size,
            running: Mutex::new(Vec::new()),
            catalog_version: tokio::sync::watch::Sender::new(0),
        }
    }

    /// The DuckDB instance the connections belong to.
    pub(crate) fn database(&self) -> &Arc<Database> {
        &self.database
    }

    /// Follows the count of statements that may have changed a catalog.
    pub(crate) fn catalog_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.catalog_version.subscribe()
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
                current: None,
                generation: 0,
            },
        };
        Ok(PooledConnection {
            idle: Some(idle),
            pool: Arc::clone(self),
            discard: Cell::new(false),
            _permit: permit,
        })
    }

    /// A new connection outside the pool's bound, for one session; `permit`
    /// comes from the caller's own limit. It is closed, never pooled, when
    /// dropped: it may hold temporary tables, settings or a transaction.
    pub(crate) fn dedicated(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Result<PooledConnection> {
        if self.permits.is_closed() {
            return Err(Error::ShuttingDown);
        }
        Ok(PooledConnection {
            idle: Some(Idle {
                conn: self.database.connect()?,
                current: None,
                generation: 0,
            }),
            pool: Arc::clone(self),
            discard: Cell::new(true),
            _permit: permit,
        })
    }

    /// Notes that a catalog may have changed (a replica moved to a new snapshot).
    pub(crate) fn catalog_changed(&self) {
        self.catalog_version.send_modify(|version| *version += 1);
    }

    /// Says that a database was detached and attached again, so connections
    /// that `USE`d it must do so again.
    pub(crate) fn reattached(&self) {
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
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

    /// Statements running now on this pool's connections (sessions' too).
    pub(crate) fn running_count(&self) -> usize {
        let mut running = self.running.lock();
        running.retain(|known| known.is_live());
        running.len()
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

    /// Makes `database` (and `schema`, or the database's default schema) the
    /// default for unqualified names. A connection marked for disposal may
    /// have run a `USE` of its own, so it is told every time.
    pub(crate) fn use_database(&mut self, database: &str, schema: Option<&str>) -> Result<()> {
        let unsure = self.discard.get();
        let generation = self.pool.generation.load(std::sync::atomic::Ordering::SeqCst);
        let idle = self.idle.as_mut().expect("present until drop");
        let wanted = (database.to_string(), schema.map(str::to_string));
        if unsure || idle.current.as_ref() != Some(&wanted) || idle.generation != generation {
            idle.current = None;
            let target = match schema {
                Some(schema) => format!("{}.{}", quote_identifier(database), quote_identifier(schema)),
                None => quote_identifier(database),
            };
            idle.conn.execute_batch(&format!("USE {target}"))?;
            idle.current = Some(wanted);
            idle.generation = generation;
        }
        Ok(())
    }

    /// Starts a query that the pool can interrupt at shutdown.
    pub(crate) fn begin_query(&self) -> Interrupter {
        let interrupter = self.conn().begin_query();
        self.pool.track(interrupter.clone());
        interrupter
    }

    /// Whether the connection will be closed instead of pooled.
    pub(crate) fn is_discarded(&self) -> bool {
        self.discard.get()
    }

    /// Whether the connection holds temporary tables or views.
    pub(crate) fn has_temporary_objects(&self) -> Result<bool> {
        let statements = self.conn().statements(
            "SELECT 1 FROM duckdb_tables() WHERE temporary \
             UNION ALL SELECT 1 FROM duckdb_views() WHERE temporary AND NOT internal LIMIT 1",
        )?;
        let prepared = statements.prepare(0)?;
        let mut result = prepared.execute()?;
        let mut found = false;
        while let Some(batch) = result.next_batch()? {
            found |= batch.num_rows() > 0;
        }
        Ok(found)
    }

    /// The connection's state no longer matches what the pool assumes (a
    /// `SET` or `USE` ran on it): close it instead of reusing it.
    pub(crate) fn discard(&self) {
        self.discard.set(true);
    }

    /// Notes that a statement on this connection may have changed a catalog.
    pub(crate) fn catalog_changed(&self) {
        self.pool.catalog_changed();
    }
}

/// A connection for one statement: from the pool, or the one a session holds
/// (locked while the statement runs, so a session's statements run in turn).
/// On an executor with read replicas it also holds the replicas' swap lock
/// for reading, so no replica moves to a new snapshot under a statement.
#[derive(Debug)]
pub(crate) struct Lease {
    conn: LeasedConnection,
    _replicas: Option<tokio::sync::OwnedRwLockReadGuard<()>>,
}

#[derive(Debug)]
enum LeasedConnection {
    Pooled(PooledConnection),
    Pinned(tokio::sync::OwnedMutexGuard<PooledConnection>),
}

impl Lease {
    pub(crate) fn pooled(conn: PooledConnection) -> Self {
        Lease {
            conn: LeasedConnection::Pooled(conn),
            _replicas: None,
        }
    }

    pub(crate) fn pinned(conn: tokio::sync::OwnedMutexGuard<PooledConnection>) -> Self {
        Lease {
            conn: LeasedConnection::Pinned(conn),
            _replicas: None,
        }
    }

    /// The same lease, holding `guard` until it is dropped.
    pub(crate) fn holding(mut self, guard: Option<tokio::sync::OwnedRwLockReadGuard<()>>) -> Self {
        self._replicas = guard;
        self
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // A pooled connection ends its query when it goes back to the pool; a
        // session's connection stays, so its query ends here, and an
        // interrupter of that query can no longer reach the next one.
        if let LeasedConnection::Pinned(conn) = &self.conn {
            conn.conn().end_query();
        }
    }
}

impl std::ops::Deref for Lease {
    type Target = PooledConnection;

    fn deref(&self) -> &PooledConnection {
        match &self.conn {
            LeasedConnection::Pooled(conn) => conn,
            LeasedConnection::Pinned(conn) => conn,
        }
    }
}

impl std::ops::DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut PooledConnection {
        match &mut self.conn {
            LeasedConnection::Pooled(conn) => conn,
            LeasedConnection::Pinned(conn) => conn,
        }
    }
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        if let Some(idle) = self.idle.take() {
            idle.conn.end_query();
            // A connection left inside a transaction (a panic mid-ingest, say)
            // would run the next client's statements in it: closed instead.
            let reusable = !idle.conn.is_broken() && !idle.conn.in_transaction();
            if !self.discard.get() && reusable && !self.pool.permits.is_closed() {
                self.pool.idle.lock().push(idle);
            }
        }
    }
}
