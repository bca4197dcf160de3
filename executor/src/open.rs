//! Opening an executor: its DuckDB instance, the databases it attaches, and
//! with differential storage, each database brought to its latest snapshot
//! before DuckDB opens it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use openduck_storage::{is_valid_database_name, DatabaseWriter, Storage};
use tracing::info;

use crate::durable::Durability;
use crate::engine::Database;
use crate::error::{Error, Result};
use crate::executor::{Executor, ExecutorConfig};
use crate::files::local_file;
use crate::pool::Pool;
use crate::replica::{Replica, Replication};
use crate::session::Sessions;
use crate::sql::{quote_identifier, quote_literal};

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
        let attach = writers
            .iter()
            .map(|name| (name.clone(), local_file(&data_dir, name), false))
            .collect();
        let instance = Instance::open(&config, &data_dir, attach)?;
        Ok(Executor::assemble(config, data_dir, instance, None))
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
            return Err(Error::Refused(format!(
                "database {both} cannot be both written and replicated here"
            )));
        }
        let mut database_writers = Vec::new();
        let mut attach = Vec::new();
        for name in &writers {
            let path = local_file(&data_dir, name);
            let (writer, _) = DatabaseWriter::open(&storage, name, &path).await?;
            database_writers.push(writer);
            attach.push((name.clone(), path, false));
        }
        let mut replicas = Vec::new();
        for name in &replica_names {
            let replica = Replica::prepare(&storage, &data_dir, name, config.replica_interval).await?;
            attach.push((replica.name().to_string(), replica.active_file().to_path_buf(), true));
            replicas.push(replica);
        }
        let (config, data_dir, instance) = tokio::task::spawn_blocking(move || {
            let instance = Instance::open(&config, &data_dir, attach)?;
            Ok::<_, Error>((config, data_dir, instance))
        })
        .await
        .map_err(|error| Error::TaskFailed(error.to_string()))??;
        let durability = Durability::new(instance.pool.database())?;
        for writer in database_writers {
            durability.add(writer);
        }
        durability.publish_all().await?;
        let replication = (!replicas.is_empty()).then(|| {
            let pool = Arc::clone(&instance.pool);
            Replication::start(storage.clone(), replicas, pool, config.replica_interval)
        });
        let durable = Durable {
            storage,
            durability: Arc::new(durability),
            replication,
        };
        Ok(Executor::assemble(config, data_dir, instance, Some(durable)))
    }

    /// The one constructor: an opened instance, and with differential
    /// storage what keeps it durable and its replicas current.
    fn assemble(config: ExecutorConfig, data_dir: PathBuf, instance: Instance, durable: Option<Durable>) -> Self {
        info!(executor = %config.id, databases = ?instance.databases, dir = %data_dir.display(), "executor open");
        let (storage, durability, replication) = match durable {
            Some(durable) => (Some(durable.storage), Some(durable.durability), durable.replication),
            None => (None, None, None),
        };
        let sessions = Arc::new(Sessions::new(config.max_sessions));
        if let (Some(durability), Some(timeout)) = (&durability, config.idle_transaction_timeout) {
            durability.roll_back_idle(Arc::clone(&sessions), timeout);
        }
        Executor {
            id: config.id,
            pool: instance.pool,
            sessions,
            running: Arc::default(),
            databases: parking_lot::RwLock::new(instance.databases),
            data_dir,
            storage,
            durability,
            replication,
            snapshots: parking_lot::Mutex::default(),
            listing: tokio::sync::Mutex::default(),
            statement_timeout: config.statement_timeout,
            ingest_idle_timeout: config.ingest_idle_timeout,
        }
    }
}

/// What differential storage adds to an executor.
struct Durable {
    storage: Storage,
    durability: Arc<Durability>,
    replication: Option<Replication>,
}

/// One DuckDB instance (in memory) with the hosted databases attached, and
/// the pool of connections to it.
struct Instance {
    pool: Arc<Pool>,
    databases: Vec<String>,
}

impl Instance {
    /// Opens the instance with each of `attach` (name, file, read-only)
    /// attached. Blocking.
    fn open(config: &ExecutorConfig, data_dir: &Path, attach: Vec<(String, PathBuf, bool)>) -> Result<Self> {
        let database = Arc::new(Database::open("memory", Path::new(":memory:"), &[])?);
        database.protect(data_dir);
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
        // Spill what does not fit in memory inside the data directory (an
        // in-memory DuckDB would spill to `.tmp` in the working directory).
        let spill = data_dir.join(SPILL_DIR);
        setup.execute_batch(&format!(
            "SET temp_directory = {}",
            quote_literal(&spill.to_string_lossy())
        ))?;
        if let Some(limit) = &config.memory_limit {
            setup
                .execute_batch(&format!("SET memory_limit = {}", quote_literal(limit)))
                .map_err(|error| Error::Refused(format!("invalid memory limit {limit:?}: {error}")))?;
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
        Ok(Instance {
            pool: Arc::new(Pool::new(database, config.max_connections)),
            databases,
        })
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

pub(crate) use openduck_api::SYSTEM_CATALOG;

/// Where DuckDB spills, inside the data directory.
pub(crate) const SPILL_DIR: &str = ".tmp";

/// The table of the in-memory system catalog that lists the snapshots in storage.
pub(crate) const SNAPSHOTS_TABLE: &str = "openduck.main.snapshots";

pub use openduck_api::BUILT_IN_CATALOGS;

/// Checks database names and drops repeats, keeping the first position.
fn hosted_names(names: &[String]) -> Result<Vec<String>> {
    let mut hosted: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        if !is_valid_database_name(name) {
            return Err(Error::InvalidDatabaseName(name.clone()));
        }
        if BUILT_IN_CATALOGS
            .iter()
            .any(|reserved| reserved.eq_ignore_ascii_case(name))
        {
            return Err(Error::Refused(format!(
                "{name} names a built-in catalog; choose another database name"
            )));
        }
        if !hosted.contains(name) {
            hosted.push(name.clone());
        }
    }
    Ok(hosted)
}

async fn run_open(open: impl FnOnce() -> Result<Executor> + Send + 'static) -> Result<Executor> {
    tokio::task::spawn_blocking(open)
        .await
        .map_err(|error| Error::TaskFailed(error.to_string()))?
}
