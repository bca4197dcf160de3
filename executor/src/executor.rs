//! The executor: databases in one DuckDB instance, a connection pool, and the
//! statements it runs on them.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use futures::{Stream, StreamExt};
use openduck_storage::{DatabaseWriter, Storage};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::durable::Durability;
use crate::engine::{Connection, StatementKind};
pub use openduck_api::{Description, Statement};

use crate::error::{Error, Result};
use crate::ingest::{Feed, IngestTarget};
use crate::pool::{Lease, Pool, PooledConnection};
use crate::replica::Replication;
use crate::running::RunningQueries;
use crate::session::{Session, SessionInner, Sessions};
use crate::sql::quote_identifier;
use crate::stream::{run_blocking, run_timed, start_query, BatchStream, Publisher, Started};

/// How to open an executor.
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// A name for this executor, unique in its cluster.
    pub id: String,
    /// The directory that holds the database files (`<name>.duckdb`).
    pub data_dir: PathBuf,
    /// The databases to host, created when missing; the first is the default
    /// for statements that name none.
    pub databases: Vec<String>,
    /// At most this many statements run at once; more wait for a connection.
    pub max_connections: usize,
    /// Let SQL read and write files outside the data directory (`read_csv`,
    /// `COPY ... TO`, `ATTACH`). Off by default: clients of a server must not
    /// reach the server's file system.
    pub allow_external_access: bool,
    /// At most this many sessions (clients with a transaction or temporary
    /// tables open) at once, each with a connection of its own.
    pub max_sessions: usize,
    /// Differential storage: every write is published there as a snapshot
    /// before it is acknowledged, and databases open from their latest
    /// snapshot. `None` keeps databases only in their local files.
    pub storage: Option<Storage>,
    /// Databases served read-only from `storage`, following the snapshots
    /// their writer publishes.
    pub replicas: Vec<String>,
    /// How often a replica looks for a newer snapshot.
    pub replica_interval: Duration,
    /// DuckDB's memory limit for the whole executor, in DuckDB's syntax
    /// (`4GB`, `512MiB`); `None` keeps DuckDB's default, 80% of the
    /// machine's memory. What does not fit spills to `<data_dir>/.tmp`.
    pub memory_limit: Option<String>,
    /// Longest a SQL statement may run (`None`: no limit); one that runs
    /// longer is stopped and fails with `DeadlineExceeded`. Ingests are not
    /// statements: they take as long as their rows take to arrive (but see
    /// [`ExecutorConfig::ingest_idle_timeout`]).
    pub statement_timeout: Option<Duration>,
    /// Longest an ingest may wait for its client's next batch (`None`: no
    /// limit). While it waits it holds DuckDB's worker threads and, with
    /// storage, the acknowledgement of every other write; one whose client sends
    /// nothing for this long is cut off, keeps none of its rows, and fails
    /// with `DeadlineExceeded`.
    pub ingest_idle_timeout: Option<Duration>,
    /// With storage, a transaction that wrote holds back the acknowledgement
    /// of every other write until it ends; one that then runs no statement
    /// for this long while others wait is rolled back, and its client's next
    /// statement in it fails with `Aborted` (`None`: never).
    pub idle_transaction_timeout: Option<Duration>,
}

impl ExecutorConfig {
    /// A configuration with defaults for everything but where data lives.
    pub fn new(data_dir: impl Into<PathBuf>, databases: Vec<String>) -> Self {
        ExecutorConfig {
            id: "executor-0".into(),
            data_dir: data_dir.into(),
            databases,
            max_connections: 16,
            allow_external_access: false,
            max_sessions: 256,
            storage: None,
            replicas: Vec::new(),
            replica_interval: Duration::from_secs(1),
            memory_limit: None,
            statement_timeout: None,
            ingest_idle_timeout: Some(Duration::from_secs(60)),
            idle_transaction_timeout: Some(Duration::from_secs(60)),
        }
    }
}

/// A DuckDB executor hosting one or more databases.
#[derive(Debug)]
pub struct Executor {
    pub(crate) id: String,
    /// Every database hosted; writers first, then replicas (clones made
    /// with `CREATE DATABASE ... FROM` join at the end).
    pub(crate) databases: parking_lot::RwLock<Vec<String>>,
    pub(crate) data_dir: PathBuf,
    pub(crate) pool: Arc<Pool>,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) running: Arc<RunningQueries>,
    pub(crate) storage: Option<Storage>,
    pub(crate) durability: Option<Arc<Durability>>,
    /// Read replicas and their follower; `None` without replicas.
    pub(crate) replication: Option<Replication>,
    /// Snapshots attached for time travel (`db@snapshot`).
    pub(crate) snapshots: parking_lot::Mutex<BTreeSet<String>>,
    /// One refresh of `openduck.main.snapshots` at a time.
    pub(crate) listing: tokio::sync::Mutex<()>,
    /// See [`ExecutorConfig::statement_timeout`].
    pub(crate) statement_timeout: Option<Duration>,
    /// See [`ExecutorConfig::ingest_idle_timeout`].
    pub(crate) ingest_idle_timeout: Option<Duration>,
}

impl Executor {
    /// This executor's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Follows a count that goes up after every statement that may have
    /// changed a catalog (DDL, ATTACH, ...), so that whoever mirrors the
    /// catalog knows to list it again.
    pub fn catalog_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.pool.catalog_changes()
    }

    /// The databases hosted here; the first is the default.
    pub fn databases(&self) -> Vec<String> {
        self.databases.read().clone()
    }

    /// Whether `database` is hosted here.
    pub fn hosts(&self, database: &str) -> bool {
        self.databases.read().iter().any(|name| name == database) || self.snapshots.lock().contains(database)
    }

    /// The databases this executor writes: every hosted one but the replicas.
    pub(crate) fn writers(&self) -> Vec<String> {
        let replicas = self.replicas();
        self.databases()
            .into_iter()
            .filter(|db| !replicas.contains(db))
            .collect()
    }

    /// The databases served read-only as replicas (also in [`Executor::databases`]).
    pub fn replicas(&self) -> &[String] {
        self.replication.as_ref().map_or(&[], Replication::names)
    }

    /// The differential storage of this executor, if it has one.
    pub fn storage(&self) -> Option<&Storage> {
        self.storage.as_ref()
    }

    pub(crate) fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// The local file of a database this executor writes.
    pub(crate) fn local_file(&self, name: &str) -> PathBuf {
        crate::files::local_file(&self.data_dir, name)
    }

    /// Starts hosting a database attached as `writer`'s.
    pub(crate) fn add_database(&self, name: &str, writer: DatabaseWriter) {
        if let Some(durability) = &self.durability {
            durability.add(writer);
        }
        self.databases.write().push(name.to_string());
    }

    /// Makes every write that committed so far durable in storage (a no-op
    /// without storage).
    ///
    /// The publish runs to its end even when the caller goes away (a client's
    /// request dropped when its coordinator dies): dropped after storage's head
    /// moved but before the writer noted the new head, it would leave the
    /// writer expecting the old one, and the next publish would fence it.
    pub(crate) async fn publish(&self) -> Result<()> {
        match &self.durability {
            Some(durability) => {
                let durability = Arc::clone(durability);
                tokio::spawn(async move { durability.publish().await })
                    .await
                    .map_err(|stopped| Error::TaskFailed(format!("publishing stopped: {stopped}")))?
            }
            None => Ok(()),
        }
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        match &self.durability {
            Some(durability) => durability.check_writable(),
            None => Ok(()),
        }
    }

    /// A connection for `statement`, and its permission to write.
    ///
    /// A write that commits on its own takes the write gate before it takes
    /// a pooled connection, so that writers held back by a publication (for
    /// as long as a transaction that wrote stays open) hold no connection a
    /// reader needs. In a session's transaction, the first write takes the
    /// gate and starts DuckDB's transaction, which keeps the gate until it
    /// ends.
    pub(crate) async fn lease_for_write(&self, statement: &Statement) -> Result<(Lease, Writing)> {
        let Some(durability) = &self.durability else {
            return Ok((self.lease(statement).await?, Writing::Untracked));
        };
        if let Some(id) = &statement.session_id {
            let session = self.sessions.get(id)?;
            if session.in_transaction() {
                if session.is_pending() {
                    let access = durability.enter().await?;
                    let conn = self.lease(statement).await?;
                    // Under the session's lease, so that of two statements
                    // only one starts the transaction.
                    run_blocking(conn, move |conn| {
                        session.start_if_pending(access, || conn.conn().begin())
                    })
                    .await?;
                }
                return Ok((self.lease(statement).await?, Writing::InTransaction));
            }
        }
        let access = durability.enter().await?;
        Ok((self.lease(statement).await?, Writing::Autocommit(access)))
    }

    /// Refuses `what` inside a session's transaction: it publishes, and a
    /// transaction that wrote holds publication back until it ends.
    fn refuse_in_transaction(&self, statement: &Statement, what: &str) -> Result<()> {
        match &statement.session_id {
            Some(id) if self.sessions.get(id)?.in_transaction() => {
                Err(Error::Refused(format!("{what} cannot run inside a transaction")))
            }
            _ => Ok(()),
        }
    }

    /// After a statement that held `writing` ran: lets go of the gate and,
    /// for a write that committed on its own, makes it durable before the
    /// caller acknowledges it.
    pub(crate) async fn finish_write(&self, writing: Writing) -> Result<()> {
        match writing {
            Writing::Autocommit(access) => {
                drop(access);
                self.publish().await
            }
            Writing::Untracked | Writing::InTransaction => Ok(()),
        }
    }

    /// The schema and parameters of a statement, without running it.
    ///
    /// For a text of several statements this describes the last one; when it
    /// depends on objects the earlier ones create, its schema is unknown until
    /// the rows stream.
    pub async fn describe(&self, statement: &Statement) -> Result<Description> {
        if let Some(clone) = crate::clone::parse(&statement.sql) {
            refuse_clone_with_grants(statement)?;
            clone?;
            return Ok(Description {
                schema: Some(Arc::new(clone_result_schema())),
                parameters: Schema::empty(),
                is_query: false,
            });
        }
        let conn = self.lease(statement).await?;
        let sql = statement.sql.clone();
        let grants = statement.grants.clone();
        run_blocking(conn, move |conn| {
            let statements = conn.conn().statements(&sql)?;
            let last = statements.len() - 1;
            // Not even the columns of a table it may not read.
            let _admitted = conn.conn().admit(grants.as_ref());
            match statements.prepare(last) {
                Ok(prepared) => Ok(Description {
                    schema: prepared.result_schema()?,
                    parameters: prepared.parameter_schema(),
                    is_query: last == 0 && prepared.kind() == StatementKind::Query,
                }),
                Err(_) if last > 0 => Ok(Description {
                    schema: None,
                    parameters: Schema::empty(),
                    is_query: false,
                }),
                Err(error) => Err(error),
            }
        })
        .await
    }

    /// Runs a statement and streams its rows as DuckDB produces them.
    ///
    /// The future resolves once the statement runs (with its error, if it
    /// fails to start); dropping the stream interrupts the query.
    pub async fn query(&self, statement: Statement) -> Result<BatchStream> {
        if let Some(clone) = crate::clone::parse(&statement.sql) {
            refuse_clone_with_grants(&statement)?;
            self.check_writable()?;
            self.refuse_in_transaction(&statement, "CREATE DATABASE ... FROM")?;
            self.create_database_from(&clone?).await?;
            return Ok(BatchStream::empty(Arc::new(clone_result_schema())));
        }
        self.refresh_snapshots_table(&statement.sql).await?;
        // Most statements only read: with storage they start without write
        // access, and one that turns out to write starts again with it.
        let publisher = match &self.durability {
            Some(_) => None,
            None => Some(Publisher::new(&None, Writing::Untracked)),
        };
        let start = |conn, statement, publisher| {
            start_query(
                conn,
                statement,
                Arc::clone(&self.running),
                publisher,
                self.statement_timeout,
            )
        };
        let conn = self.lease(&statement).await?;
        let statement = match start(conn, statement, publisher).await? {
            Started::Running(stream) => return Ok(stream),
            Started::NeedsWriteAccess(statement) => statement,
        };
        let (conn, writing) = self.lease_for_write(&statement).await?;
        let publisher = Some(Publisher::new(&self.durability, writing));
        match start(conn, statement, publisher).await? {
            Started::Running(stream) => Ok(stream),
            Started::NeedsWriteAccess(_) => Err(Error::TaskFailed("a write was refused the access it held".into())),
        }
    }

    /// Cancels the statement started with `query_id`: interrupts it if it
    /// runs and refuses to start it later. Returns whether it was running.
    pub fn cancel(&self, query_id: &str) -> bool {
        self.running.cancel(query_id)
    }

    /// Runs a statement whose rows are not wanted and returns how many rows it
    /// inserted, updated or deleted, or `None` when it is not DML (DDL, `SET`).
    /// With several parameter rows the statement runs once per row and the
    /// counts add up.
    pub async fn update(&self, statement: Statement) -> Result<Option<u64>> {
        if statement.read_only {
            return Err(Error::read_only());
        }
        self.check_writable()?;
        if let Some(clone) = crate::clone::parse(&statement.sql) {
            refuse_clone_with_grants(&statement)?;
            self.refuse_in_transaction(&statement, "CREATE DATABASE ... FROM")?;
            self.create_database_from(&clone?).await?;
            return Ok(None);
        }
        let (conn, writing) = self.lease_for_write(&statement).await?;
        let changed = run_timed(conn, self.statement_timeout, move |conn| {
            let statements = conn.conn().statements(&statement.sql)?;
            check_parameters_fit(&statement, statements.len())?;
            let mut changed: Option<u64> = None;
            for index in 0..statements.len() {
                let transaction = conn.conn().statement_transaction(statement.read_only)?;
                let admitted = conn.conn().admit(statement.grants.as_ref());
                let prepared = statements.prepare(index)?;
                let kind = guard_kind(conn, prepared.kind())?;
                let mut run = || -> Result<()> {
                    let mut result = prepared.execute()?;
                    if kind == StatementKind::Dml {
                        *changed.get_or_insert(0) += result.rows_changed();
                    }
                    Ok(())
                };
                match &statement.parameters {
                    Some(rows) => {
                        for row in 0..rows.num_rows() {
                            prepared.bind_row(rows, row)?;
                            run()?;
                        }
                    }
                    None => run()?,
                }
                drop(prepared);
                drop(admitted);
                transaction.commit()?;
                after_statement(conn, kind)?;
            }
            Ok(changed)
        })
        .await;
        // Publish even after an error: statements before the failing one
        // of a text committed.
        self.finish_write(writing).await?;
        changed
    }

    /// Interrupts running statements, checkpoints every database and closes
    /// the pool, waiting up to `grace` for connections on loan.
    pub async fn shutdown(&self, grace: Duration) -> Result<()> {
        self.pool.interrupt_running();
        let checkpointed = match &self.durability {
            // Publishing checkpoints every database it writes, once the
            // transactions that wrote end: they get `grace` to do so.
            Some(durability) => tokio::time::timeout(grace, durability.publish_all())
                .await
                .unwrap_or_else(|_| {
                    Err(Error::Refused(format!(
                        "transactions still open after {} s: their writes were never acknowledged",
                        grace.as_secs()
                    )))
                }),
            None => self.checkpoint_all().await,
        };
        self.pool.close(grace).await;
        match &checkpointed {
            Ok(()) => info!(executor = %self.id, "databases checkpointed"),
            Err(error) => warn!(executor = %self.id, %error, "checkpoint at shutdown failed"),
        }
        checkpointed
    }

    /// Checkpoints every database this executor writes.
    async fn checkpoint_all(&self) -> Result<()> {
        let conn = self.pool.get().await?;
        let writers = self.writers();
        run_blocking(Lease::pooled(conn), move |conn| {
            for name in &writers {
                conn.conn()
                    .execute_batch(&format!("CHECKPOINT {}", quote_identifier(name)))?;
            }
            Ok(())
        })
        .await
    }

    /// Opens a session: a connection of its own for one client, kept until
    /// the last clone of the returned handle is dropped.
    pub fn open_session(&self) -> Result<Session> {
        self.sessions.open(&self.pool)
    }

    /// Starts a transaction in a session; its statements (and ingests) run
    /// in it until [`Executor::commit`] or [`Executor::rollback`].
    ///
    /// With differential storage, DuckDB's transaction starts at the
    /// transaction's first write, and statements before it read the latest
    /// committed data: a transaction that only reads holds no snapshot, so it
    /// never keeps a checkpoint, and with it every other write, waiting.
    pub async fn begin(&self, session_id: &str, read_only: bool) -> Result<()> {
        let session = self.sessions.get(session_id)?;
        let start_now = self.durability.is_none();
        if start_now {
            let begin = if read_only {
                Connection::begin_read_only
            } else {
                Connection::begin
            };
            self.transaction_statement(session_id, begin).await?;
        } else if session.in_transaction() {
            return Err(Error::Refused("a transaction is already open in this session".into()));
        }
        session.begin(start_now);
        Ok(())
    }

    /// Commits the session's transaction; once it returns, what the
    /// transaction wrote is durable.
    pub async fn commit(&self, session_id: &str) -> Result<()> {
        let session = self.sessions.get(session_id)?;
        // Committed or not, the transaction is over (DuckDB rolls back a
        // commit that fails) and lets go of the write gate.
        let ended = if session.end_if_pending() {
            Ended {
                outcome: Ok(()),
                wrote: false,
                rolled_back_before: false,
            }
        } else {
            self.end_transaction(&session, session_id, Connection::commit_client_transaction)
                .await
        };
        ended.outcome?;
        if ended.wrote {
            self.publish().await?;
        }
        Ok(())
    }

    /// Rolls the session's transaction back (done already if the executor
    /// rolled it back while it was idle).
    pub async fn rollback(&self, session_id: &str) -> Result<()> {
        let session = self.sessions.get(session_id)?;
        if session.end_if_pending() {
            return Ok(());
        }
        if session.rolled_back().is_some() {
            session.end();
            return Ok(());
        }
        let ended = self.end_transaction(&session, session_id, Connection::rollback).await;
        if ended.rolled_back_before {
            return Ok(());
        }
        ended.outcome
    }

    /// Commits or rolls back (`action`) the session's open transaction, and
    /// notes that it ended while still holding the session's connection, so
    /// that a rollback of idle transactions never finds one committed but
    /// still open.
    async fn end_transaction(
        &self,
        session: &Arc<SessionInner>,
        session_id: &str,
        action: fn(&Connection) -> Result<()>,
    ) -> Ended {
        let conn = match self.sessions.lease(session_id).await {
            Ok(conn) => conn,
            Err(error) => {
                let rolled_back_before = session.rolled_back().is_some();
                return Ended {
                    outcome: Err(error),
                    wrote: session.end(),
                    rolled_back_before,
                };
            }
        };
        let ending = Arc::clone(session);
        match run_blocking(conn, move |conn| {
            // Asked before it ends. A transaction that changed temporary
            // objects only (an extension's copies of local tables) has
            // nothing to publish.
            let changes_databases = conn.conn().transaction_changes_databases();
            let outcome = action(conn.conn());
            Ok((outcome, ending.end() && changes_databases))
        })
        .await
        {
            Ok((outcome, wrote)) => Ended {
                outcome,
                wrote,
                rolled_back_before: false,
            },
            Err(error) => Ended {
                outcome: Err(error),
                wrote: session.end(),
                rolled_back_before: false,
            },
        }
    }

    /// Begins, commits or rolls back (`action`) the session's transaction.
    async fn transaction_statement(&self, session_id: &str, action: fn(&Connection) -> Result<()>) -> Result<()> {
        let conn = self.sessions.lease(session_id).await?;
        run_blocking(conn, move |conn| action(conn.conn())).await
    }

    /// Appends a stream of record batches of `schema` to a table, creating it
    /// as `target.mode` says, and returns the rows appended. Batches are
    /// appended as they arrive; the whole ingest is one transaction (or part
    /// of the session's open one).
    pub async fn ingest<S, E>(&self, target: IngestTarget, schema: SchemaRef, mut batches: S) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<RecordBatch, E>> + Unpin,
        E: std::fmt::Display,
    {
        if target.temporary && target.session_id.is_none() {
            return Err(Error::Refused("a temporary table needs a session".into()));
        }
        let mut statement = Statement::new(target.database.clone(), "");
        statement.schema.clone_from(&target.schema);
        statement.session_id.clone_from(&target.session_id);
        let in_transaction = match &target.session_id {
            Some(id) => self.sessions.get(id)?.in_transaction(),
            None => false,
        };
        let (conn, writing) = if target.temporary && !in_transaction {
            // No database's: it publishes nothing, and waits for no publication
            // (a coordinator ships a join's small side to its large side so).
            (self.lease(&statement).await?, Writing::Untracked)
        } else {
            self.check_writable()?;
            self.lease_for_write(&statement).await?
        };
        let (sender, receiver) = mpsc::channel(2);
        // A quiet client is cut off; another executor's query is waited for.
        let idle_limit = self.ingest_idle_timeout.filter(|_| !target.from_query);
        let work = run_blocking(conn, move |conn| {
            crate::ingest::append_all(conn, &target, &schema, receiver)
        });
        let feed = async move {
            loop {
                let next = match idle_limit {
                    Some(limit) => tokio::time::timeout(limit, batches.next()).await,
                    None => Ok(batches.next().await),
                };
                let item = match next {
                    Ok(Some(Ok(batch))) => Feed::Batch(batch),
                    Ok(Some(Err(error))) => Feed::Failed(error.to_string()),
                    Ok(None) => break,
                    Err(_) => Feed::Idle(idle_limit.unwrap_or_default()),
                };
                let stop = matches!(item, Feed::Idle(_));
                if sender.send(item).await.is_err() || stop {
                    return;
                }
            }
            // Dropped before this point (the request cancelled), the insert sees
            // the feed cut off and rolls back.
            let _ = sender.send(Feed::End).await;
        };
        tokio::pin!(work);
        let rows = tokio::select! {
            biased;
            rows = &mut work => rows,
            () = feed => work.await,
        };
        self.finish_write(writing).await?;
        rows
    }

    /// A connection for `statement`: its session's, or one from the pool,
    /// using the statement's database and schema.
    pub(crate) async fn lease(&self, statement: &Statement) -> Result<Lease> {
        let database = statement.database.as_str();
        if !self.hosts(database) {
            return Err(Error::UnknownDatabase(database.to_string()));
        }
        // The replicas' swap lock first, then a connection: a replica that
        // moves holds the lock and then needs a connection of its own.
        let swap = match &self.replication {
            Some(replication) => Some(Arc::clone(replication.swap()).read_owned().await),
            None => None,
        };
        let conn = match &statement.session_id {
            Some(id) => self.sessions.lease(id).await?,
            None => Lease::pooled(self.pool.get().await?),
        };
        let mut conn = conn.holding(swap);
        conn.use_database(database, statement.schema.as_deref())?;
        debug!(database, "connection ready");
        Ok(conn)
    }
}

/// How a session's transaction ended.
struct Ended {
    outcome: Result<()>,
    /// It held the write gate and changed a database (with storage): what
    /// it wrote must be published.
    wrote: bool,
    /// The executor had rolled it back already (it was idle too long).
    rolled_back_before: bool,
}

/// What a statement that may write holds while it runs.
#[derive(Debug)]
pub(crate) enum Writing {
    /// No differential storage: nothing to publish.
    Untracked,
    /// The statement commits on its own, and is published before it is
    /// acknowledged.
    Autocommit(crate::durable::WriteAccess),
    /// The statement is part of a session's transaction, which holds the
    /// gate and is published when it commits.
    InTransaction,
}

/// After a statement ran on a connection that goes back to the pool: a
/// temporary table or view it created must not be seen by the next client,
/// so such a connection is closed instead.
pub(crate) fn after_statement(conn: &PooledConnection, kind: StatementKind) -> Result<()> {
    if kind == StatementKind::Other {
        conn.catalog_changed();
    }
    // When it cannot be told (the statement was cancelled meanwhile), the
    // connection is closed all the same.
    if kind == StatementKind::Other && !conn.is_discarded() && !matches!(conn.has_temporary_objects(), Ok(false)) {
        conn.discard();
    }
    Ok(())
}

/// Parameters are bound to one statement; a text of several cannot take them.
pub(crate) fn check_parameters_fit(statement: &Statement, count: usize) -> Result<()> {
    if statement.parameters.is_some() && count > 1 {
        return Err(Error::Refused(
            "parameters can be bound only to a single statement".into(),
        ));
    }
    Ok(())
}

/// Refuses `CREATE DATABASE ... FROM` to a user granted some databases only:
/// the new database would be none of them, and its source may not be either.
fn refuse_clone_with_grants(statement: &Statement) -> Result<()> {
    match &statement.grants {
        Some(grants) => Err(Error::permission_denied(format!(
            "this account may use only the databases it was granted ({grants}): not CREATE DATABASE ... FROM"
        ))),
        None => Ok(()),
    }
}

/// Refuses statements a pooled connection must not run and marks the
/// connection for disposal when a statement changes its session state.
pub(crate) fn guard_kind(conn: &PooledConnection, kind: StatementKind) -> Result<StatementKind> {
    match kind {
        StatementKind::Transaction => Err(Error::Refused(
            "BEGIN, COMMIT and ROLLBACK in SQL are not supported: use your driver's \
             transactions (Flight SQL BeginTransaction/EndTransaction, for example \
             autocommit off); each other statement commits on its own"
                .into(),
        )),
        StatementKind::Session => {
            conn.discard();
            Ok(kind)
        }
        _ => Ok(kind),
    }
}

/// What `CREATE DATABASE ... FROM` returns, as DuckDB's DDL does: no rows.
fn clone_result_schema() -> Schema {
    Schema::new(vec![arrow::datatypes::Field::new(
        "Count",
        arrow::datatypes::DataType::Int64,
        true,
    )])
}
