//! The executor: databases in one DuckDB instance, a connection pool, and the
//! statements it runs on them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use futures::{Stream, StreamExt};
use openduck_storage::{hydrate, DatabaseWriter, Storage};
use tokio::sync::{mpsc, RwLock};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::durable::Durability;
use crate::engine::{Database, StatementKind};
use crate::error::{Error, Result};
use crate::ingest::IngestTarget;
use crate::pool::{Lease, Pool, PooledConnection};
use crate::replica::Replica;
use crate::running::RunningQueries;
use crate::session::{Session, Sessions};
use crate::sql::{quote_identifier, quote_literal};
use openduck_storage::is_valid_database_name;
use crate::stream::{run_blocking, BatchStream};

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
        }
    }
}

/// A statement to run: SQL in DuckDB's dialect, the database unqualified
/// names resolve in, and optional parameter rows (one execution per row).
#[derive(Debug, Clone)]
pub struct Statement {
    /// The default database of the statement.
    pub database: String,
    /// One or more SQL statements separated by `;`. Parameters are allowed
    /// only with a single statement.
    pub sql: String,
    /// Parameter values, one column per parameter, one row per execution.
    pub parameters: Option<RecordBatch>,
    /// The schema unqualified names resolve in; `None` for the database's default.
    pub schema: Option<String>,
    /// Run on the connection of this [`Session`] instead of a pooled one.
    pub session_id: Option<String>,
    /// An id under which [`Executor::cancel`] can stop the statement.
    pub query_id: Option<String>,
}

impl Statement {
    /// A statement without parameters.
    pub fn new(database: impl Into<String>, sql: impl Into<String>) -> Self {
        Statement {
            database: database.into(),
            sql: sql.into(),
            parameters: None,
            schema: None,
            session_id: None,
            query_id: None,
        }
    }

    /// The same statement with parameter rows bound.
    pub fn with_parameters(mut self, parameters: RecordBatch) -> Self {
        self.parameters = Some(parameters);
        self
    }
}

/// What a statement would return, known without running it.
#[derive(Debug, Clone)]
pub struct Description {
    /// The schema of its rows (for DDL and DML, DuckDB's `Count` or `Success`
    /// column); `None` when it depends on parameters not bound yet
    /// (`SELECT ? + 1`), or on objects that earlier statements of the same
    /// text create.
    pub schema: Option<SchemaRef>,
    /// Its parameters, `$1`, `$2`, ...; `Null`-typed where DuckDB cannot infer a type.
    pub parameters: Schema,
    /// Whether the text is one statement that only reads (SELECT, EXPLAIN,
    /// PRAGMA, CALL, ...). Anything else changes something and must not wait
    /// for a client to fetch its result before it takes effect.
    pub is_query: bool,
}

/// A DuckDB executor hosting one or more databases.
#[derive(Debug)]
pub struct Executor {
    id: String,
    /// Every database hosted; writers first, then replicas (clones made
    /// with `CREATE DATABASE ... FROM` join at the end).
    databases: parking_lot::RwLock<Vec<String>>,
    replicas: Vec<String>,
    data_dir: PathBuf,
    pool: Arc<Pool>,
    sessions: Sessions,
    running: Arc<RunningQueries>,
    storage: Option<Storage>,
    durability: Option<Arc<Durability>>,
    /// Held for reading by every statement, for writing by a replica moving
    /// to a new snapshot; `None` without replicas.
    replica_swap: Option<Arc<RwLock<()>>>,
    follower: Option<JoinHandle<()>>,
    /// Snapshots attached for time travel (`db@snapshot`).
    snapshots: parking_lot::Mutex<BTreeSet<String>>,
    /// One refresh of `openduck.main.snapshots` at a time.
    listing: tokio::sync::Mutex<()>,
}

impl Drop for Executor {
    fn drop(&mut self) {
        if let Some(follower) = &self.follower {
            follower.abort();
        }
    }
}

impl Executor {
    /// Opens (creating when missing) every database of `config`, kept in
    /// local files only. Blocking; a configuration with storage or replicas
    /// needs [`Executor::start`].
    pub fn open(config: ExecutorConfig) -> Result<Self> {
        if config.storage.is_some() || !config.replicas.is_empty() {
            return Err(Error::Refused(
                "an executor with differential storage opens with Executor::start".into(),
            ));
        }
        let data_dir = prepare_data_dir(&config.data_dir)?;
        let writers = hosted_names(&config.databases)?;
        let attach = writers.iter().map(|name| (name.clone(), local_file(&data_dir, name), false)).collect();
        Executor::open_instance(config, data_dir, attach)
    }

    /// Opens an executor, with differential storage when `config` has it:
    /// each database's local file is first brought to the database's latest
    /// snapshot (fetching only the blocks it lacks; a missing file is made
    /// whole), and every replica to its writer's latest snapshot.
    pub async fn start(config: ExecutorConfig) -> Result<Self> {
        let Some(storage) = config.storage.clone() else {
            if !config.replicas.is_empty() {
                return Err(Error::Refused("read replicas need differential storage".into()));
            }
            return run_open(move || Executor::open(config)).await;
        };
        let data_dir = prepare_data_dir(&config.data_dir)?;
        let writers = hosted_names(&config.databases)?;
        let replica_names = hosted_names(&config.replicas)?;
        if let Some(both) = writers.iter().find(|name| replica_names.contains(name)) {
            return Err(Error::Refused(format!("database {both} cannot be both written and replicated here")));
        }
        let durability = Durability::default();
        let mut attach = Vec::new();
        for name in &writers {
            let path = local_file(&data_dir, name);
            let (writer, _) = DatabaseWriter::open(&storage, name, &path).await?;
            durability.add(writer);
            attach.push((name.clone(), path, false));
        }
        let mut replicas = Vec::new();
        for name in &replica_names {
            let replica = Replica::prepare(&storage, &data_dir, name).await?;
            attach.push((replica.name().to_string(), replica.active_file().to_path_buf(), true));
            replicas.push(replica);
        }
        let interval = config.replica_interval;
        let mut executor = run_open(move || Executor::open_instance(config, data_dir, attach)).await?;
        executor.replicas = replica_names;
        executor.storage = Some(storage.clone());
        durability.publish_all(&executor.pool).await?;
        executor.durability = Some(Arc::new(durability));
        if !replicas.is_empty() {
            let swap = Arc::new(RwLock::new(()));
            executor.replica_swap = Some(Arc::clone(&swap));
            let pool = Arc::clone(&executor.pool);
            executor.follower = Some(tokio::spawn(crate::replica::follow(storage, replicas, pool, swap, interval)));
        }
        Ok(executor)
    }

    /// One DuckDB instance (in memory) with each of `attach` (name, file,
    /// read-only) attached.
    fn open_instance(config: ExecutorConfig, data_dir: PathBuf, attach: Vec<(String, PathBuf, bool)>) -> Result<Self> {
        let database = Arc::new(Database::open("memory", Path::new(":memory:"), &[])?);
        let setup = database.connect()?;
        setup.execute_batch(&format!(
            "ATTACH ':memory:' AS {SYSTEM_CATALOG}; CREATE TABLE {SNAPSHOTS_TABLE} \
             (database VARCHAR, snapshot VARCHAR, created_at TIMESTAMPTZ, is_head BOOLEAN)"
        ))?;
        for (name, path, read_only) in &attach {
            setup
                .execute_batch(&format!(
                    "ATTACH {} AS {}{}",
                    quote_literal(&path.to_string_lossy()),
                    quote_identifier(name),
                    if *read_only { " (READ_ONLY)" } else { "" }
                ))
                .map_err(|error| Error::Open {
                    name: name.clone(),
                    path: path.clone(),
                    message: error.to_string(),
                })?;
        }
        if !config.allow_external_access {
            // Confine file access to the data directory. DuckDB refuses to turn
            // external access back on once it is off, so SQL cannot undo this.
            let dir = format!("{}/", data_dir.to_string_lossy());
            setup.execute_batch(&format!(
                "SET allowed_directories = [{}]; SET enable_external_access = false;",
                quote_literal(&dir)
            ))?;
        }
        drop(setup);
        let databases: Vec<String> = attach.into_iter().map(|(name, _, _)| name).collect();
        if databases.is_empty() {
            return Err(Error::Refused("an executor needs at least one database".into()));
        }
        info!(executor = %config.id, databases = ?databases, dir = %data_dir.display(), "executor open");
        Ok(Executor {
            id: config.id,
            pool: Arc::new(Pool::new(database, config.max_connections)),
            sessions: Sessions::new(config.max_sessions),
            running: Arc::default(),
            databases: parking_lot::RwLock::new(databases),
            replicas: Vec::new(),
            data_dir,
            storage: None,
            durability: None,
            replica_swap: None,
            follower: None,
            snapshots: parking_lot::Mutex::default(),
            listing: tokio::sync::Mutex::default(),
        })
    }

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

    /// The databases served read-only as replicas (also in [`Executor::databases`]).
    pub fn replicas(&self) -> &[String] {
        &self.replicas
    }

    /// The differential storage of this executor, if it has one.
    pub fn storage(&self) -> Option<&Storage> {
        self.storage.as_ref()
    }

    /// Attaches a snapshot of a hosted database read-only under the name
    /// `database@snapshot` (an id, or a unique prefix of at least six hex
    /// digits), so SQL can name it as a catalog. Materializes it first,
    /// fetching it from storage. Attaching a name already attached does
    /// nothing.
    pub async fn attach_snapshot(&self, name: &str) -> Result<()> {
        let Some((database, snapshot)) = name.split_once('@') else {
            return Err(Error::UnknownDatabase(name.to_string()));
        };
        if !self.databases.read().iter().any(|hosted| hosted == database) {
            return Err(Error::UnknownDatabase(database.to_string()));
        }
        let Some(storage) = &self.storage else {
            return Err(Error::Refused(format!(
                "{name}: snapshots need differential storage, and this executor keeps {database} in a local file only"
            )));
        };
        if self.snapshots.lock().contains(name) {
            return Ok(());
        }
        if snapshot == "latest" {
            return Err(Error::Storage(openduck_storage::Error::InvalidSnapshotId(format!(
                "{name}: name a snapshot by its id (openduck snapshot list {database})"
            ))));
        }
        let (id, manifest) = storage.resolve(database, snapshot).await?;
        let dir = self.data_dir.join(".snapshots");
        let path = dir.join(format!("{database}@{id}.duckdb"));
        if !path.exists() {
            std::fs::create_dir_all(&dir).map_err(|source| Error::Io { path: dir.clone(), source })?;
            let partial = dir.join(format!(".{database}@{id}.partial"));
            hydrate(storage, &manifest, &partial).await?;
            std::fs::rename(&partial, &path).map_err(|source| Error::Io { path: path.clone(), source })?;
        }
        let sql = format!(
            "ATTACH IF NOT EXISTS {} AS {} (READ_ONLY)",
            quote_literal(&path.to_string_lossy()),
            quote_identifier(name)
        );
        let conn = self.pool.get().await?;
        run_blocking(Lease::pooled(conn), move |conn| {
            conn.conn().execute_batch(&sql)?;
            conn.catalog_changed();
            Ok(())
        })
        .await?;
        info!(database, snapshot = %id, name, "snapshot attached");
        self.snapshots.lock().insert(name.to_string());
        Ok(())
    }

    /// Fills `openduck.main.snapshots` with the history of every database in
    /// storage, when `sql` may read it.
    async fn refresh_snapshots_table(&self, sql: &str) -> Result<()> {
        let Some(storage) = &self.storage else { return Ok(()) };
        if !sql.to_ascii_lowercase().contains(SYSTEM_CATALOG) {
            return Ok(());
        }
        let _one_at_a_time = self.listing.lock().await;
        let mut rows = Vec::new();
        for (database, head) in storage.heads().list().await? {
            for (at_ms, id) in storage.history(&database).await? {
                rows.push(format!(
                    "({}, '{id}', to_timestamp({at_ms} / 1000.0), {})",
                    quote_literal(&database),
                    id == head
                ));
            }
        }
        let mut sql = format!("BEGIN; DELETE FROM {SNAPSHOTS_TABLE};");
        if !rows.is_empty() {
            sql += &format!(" INSERT INTO {SNAPSHOTS_TABLE} VALUES {};", rows.join(", "));
        }
        sql += " COMMIT;";
        let conn = self.pool.get().await?;
        run_blocking(Lease::pooled(conn), move |conn| conn.conn().execute_batch(&sql)).await
    }

    pub(crate) fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// The local file of a database this executor writes.
    pub(crate) fn local_file(&self, name: &str) -> PathBuf {
        local_file(&self.data_dir, name)
    }

    /// Starts hosting a database attached as `writer`'s.
    pub(crate) fn add_database(&self, name: &str, writer: DatabaseWriter) {
        if let Some(durability) = &self.durability {
            durability.add(writer);
        }
        self.databases.write().push(name.to_string());
    }

    /// Makes every write that finished so far durable in storage (a no-op
    /// without storage).
    pub(crate) async fn publish(&self) -> Result<()> {
        match &self.durability {
            Some(durability) => durability.publish(&self.pool).await,
            None => Ok(()),
        }
    }

    fn check_writable(&self) -> Result<()> {
        match &self.durability {
            Some(durability) => durability.check_writable(),
            None => Ok(()),
        }
    }

    /// The schema and parameters of a statement, without running it.
    ///
    /// For a text of several statements this describes the last one; when it
    /// depends on objects the earlier ones create, its schema is unknown until
    /// the rows stream.
    pub async fn describe(&self, statement: &Statement) -> Result<Description> {
        if let Some(clone) = crate::clone::parse(&statement.sql) {
            clone?;
            return Ok(Description {
                schema: Some(Arc::new(clone_result_schema())),
                parameters: Schema::empty(),
                is_query: false,
            });
        }
        self.refresh_snapshots_table(&statement.sql).await?;
        let conn = self.lease(statement).await?;
        let sql = statement.sql.clone();
        run_blocking(conn, move |conn| {
            let statements = conn.conn().statements(&sql)?;
            let last = statements.len() - 1;
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
            self.check_writable()?;
            self.create_database_from(&clone?).await?;
            return Ok(BatchStream::empty(Arc::new(clone_result_schema())));
        }
        self.refresh_snapshots_table(&statement.sql).await?;
        let conn = self.lease(&statement).await?;
        let publisher = self
            .durability
            .as_ref()
            .map(|durability| crate::stream::Publisher::new(Arc::clone(durability), Arc::clone(&self.pool)));
        crate::stream::start_query(conn, statement, Arc::clone(&self.running), publisher).await
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
        self.check_writable()?;
        if let Some(clone) = crate::clone::parse(&statement.sql) {
            self.create_database_from(&clone?).await?;
            return Ok(None);
        }
        let conn = self.lease(&statement).await?;
        let changed = run_blocking(conn, move |conn| {
            let statements = conn.conn().statements(&statement.sql)?;
            check_parameters_fit(&statement, statements.len())?;
            let mut changed: Option<u64> = None;
            for index in 0..statements.len() {
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
                after_statement(conn, kind)?;
            }
            Ok(changed)
        })
        .await?;
        self.publish().await?;
        Ok(changed)
    }

    /// Interrupts running statements, checkpoints every database and closes
    /// the pool, waiting up to `grace` for connections on loan.
    pub async fn shutdown(&self, grace: Duration) -> Result<()> {
        self.pool.interrupt_running();
        let conn = self.pool.get().await?;
        let databases = self.databases();
        let writers: Vec<String> = databases.iter().filter(|db| !self.replicas.contains(db)).cloned().collect();
        let checkpointed = run_blocking(Lease::pooled(conn), move |conn| {
            for name in &writers {
                conn.conn().execute_batch(&format!("CHECKPOINT {}", quote_identifier(name)))?;
            }
            Ok(())
        })
        .await;
        let checkpointed = match (checkpointed, &self.durability) {
            (Ok(()), Some(durability)) => durability.publish_all(&self.pool).await,
            (result, _) => result,
        };
        self.pool.close(grace).await;
        match &checkpointed {
            Ok(()) => info!(executor = %self.id, "databases checkpointed"),
            Err(error) => warn!(executor = %self.id, %error, "checkpoint at shutdown failed"),
        }
        checkpointed
    }

    /// Opens a session: a connection of its own for one client, kept until
    /// the last clone of the returned handle is dropped.
    pub fn open_session(&self) -> Result<Session> {
        self.sessions.open(&self.pool)
    }

    /// Starts a transaction in a session; its statements (and ingests) run
    /// in it until [`Executor::commit`] or [`Executor::rollback`].
    pub async fn begin(&self, session_id: &str) -> Result<()> {
        self.transaction_statement(session_id, "BEGIN TRANSACTION").await
    }

    /// Commits the session's transaction.
    pub async fn commit(&self, session_id: &str) -> Result<()> {
        self.transaction_statement(session_id, "COMMIT").await?;
        self.publish().await
    }

    /// Rolls the session's transaction back.
    pub async fn rollback(&self, session_id: &str) -> Result<()> {
        self.transaction_statement(session_id, "ROLLBACK").await
    }

    async fn transaction_statement(&self, session_id: &str, sql: &'static str) -> Result<()> {
        let conn = self.sessions.lease(session_id).await?;
        run_blocking(conn, move |conn| conn.conn().execute_batch(sql)).await
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
        self.check_writable()?;
        let mut statement = Statement::new(target.database.clone(), "");
        statement.schema.clone_from(&target.schema);
        statement.session_id.clone_from(&target.session_id);
        let conn = self.lease(&statement).await?;
        let (sender, receiver) = mpsc::channel(2);
        let work = run_blocking(conn, move |conn| crate::ingest::append_all(conn, &target, &schema, receiver));
        let feed = async move {
            while let Some(batch) = batches.next().await {
                if sender.send(batch.map_err(|error| error.to_string())).await.is_err() {
                    break;
                }
            }
        };
        tokio::pin!(work);
        let rows = tokio::select! {
            biased;
            rows = &mut work => rows,
            () = feed => work.await,
        }?;
        self.publish().await?;
        Ok(rows)
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
        let swap = match &self.replica_swap {
            Some(lock) => Some(Arc::clone(lock).read_owned().await),
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

/// After a statement ran on a connection that goes back to the pool: a
/// temporary table or view it created must not be seen by the next client,
/// so such a connection is closed instead.
pub(crate) fn after_statement(conn: &PooledConnection, kind: StatementKind) -> Result<()> {
    if kind == StatementKind::Other {
        conn.catalog_changed();
    }
    if kind == StatementKind::Other && !conn.is_discarded() && conn.has_temporary_objects()? {
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

/// Creates the data directory when missing and returns its canonical path.
fn prepare_data_dir(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    dir.canonicalize().map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// What `CREATE DATABASE ... FROM` returns, as DuckDB's DDL does: no rows.
fn clone_result_schema() -> Schema {
    Schema::new(vec![arrow::datatypes::Field::new("Count", arrow::datatypes::DataType::Int64, true)])
}

/// The in-memory catalog of every executor, and its table that lists the
/// snapshots in storage.
const SYSTEM_CATALOG: &str = "openduck";
const SNAPSHOTS_TABLE: &str = "openduck.main.snapshots";

/// Names DuckDB or openduck use for catalogs of their own.
const RESERVED_NAMES: [&str; 4] = ["memory", "system", "temp", SYSTEM_CATALOG];

/// Checks database names and drops repeats, keeping the first position.
fn hosted_names(names: &[String]) -> Result<Vec<String>> {
    let mut hosted: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        if !is_valid_database_name(name) {
            return Err(Error::InvalidDatabaseName(name.clone()));
        }
        if RESERVED_NAMES.iter().any(|reserved| reserved.eq_ignore_ascii_case(name)) {
            return Err(Error::Refused(format!("{name} names a built-in catalog; choose another database name")));
        }
        if !hosted.contains(name) {
            hosted.push(name.clone());
        }
    }
    Ok(hosted)
}

/// The local file of a database an executor writes.
fn local_file(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join(format!("{name}.duckdb"))
}

async fn run_open(open: impl FnOnce() -> Result<Executor> + Send + 'static) -> Result<Executor> {
    tokio::task::spawn_blocking(open)
        .await
        .map_err(|error| Error::TaskFailed(error.to_string()))?
}
