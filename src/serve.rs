//! `openduck serve`: Flight SQL, the coordinator and one in-process executor.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use openduck_coordinator::Coordinator;
use openduck_executor::{confine_storage, prepare_default_storage, Executor, ExecutorConfig, SqlFileAccess};
use openduck_flight_sql::{serve, ServerConfig, ServerTls, UserAccounts};
use openduck_storage::{Heads, Location, Storage};

use crate::telemetry::TelemetryArgs;

/// How long a query ticket stays valid after the query is planned.
pub(crate) const TICKET_TTL: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    frontend: FrontendArgs,

    #[command(flatten)]
    executor: ExecutorArgs,

    #[command(flatten)]
    telemetry: TelemetryArgs,
}

/// How clients reach the Flight SQL front end (`serve` and `coordinator`).
#[derive(Debug, Args)]
pub(crate) struct FrontendArgs {
    /// Address to serve Flight SQL on (HOST:PORT; port 0 picks a free port).
    #[arg(long, env = "OPENDUCK_LISTEN", default_value = "127.0.0.1:7878")]
    listen: String,

    /// Token clients must present (Bearer, or as the Basic password). Required
    /// to listen on anything but a loopback address.
    #[arg(long, env = "OPENDUCK_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// Users file (`name:hash` lines, written by `openduck passwd`): users log
    /// in with Basic credentials and get a bearer token that expires.
    #[arg(long, env = "OPENDUCK_USERS")]
    users: Option<PathBuf>,

    /// How long a logged-in user's token stays valid (for example 30m, 12h, 7d).
    #[arg(long, env = "OPENDUCK_TOKEN_TTL", default_value = "12h", value_parser = parse_duration)]
    token_ttl: Duration,

    /// Statements kept in `openduck.main.query_history` (the newest; 0 keeps none).
    #[arg(long, env = "OPENDUCK_QUERY_HISTORY", default_value_t = openduck_coordinator::DEFAULT_HISTORY)]
    pub(crate) query_history: usize,

    /// Most bytes of rows a statement that changes data may return (an
    /// INSERT ... RETURNING): it runs when planned and its result is held
    /// for the client. One that returns more fails with RESOURCE_EXHAUSTED,
    /// and is undone. At least 65536; 0 for no limit.
    #[arg(long, env = "OPENDUCK_MAX_HELD_RESULT", default_value_t = openduck_coordinator::DEFAULT_HELD_RESULT,
          value_parser = parse_held_limit)]
    pub(crate) max_held_result: u64,

    /// Serve TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "OPENDUCK_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "OPENDUCK_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Require client certificates signed by this CA (PEM): mutual TLS.
    #[arg(long, env = "OPENDUCK_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,

    /// Largest gRPC message accepted or sent, in bytes; larger requests fail
    /// with ResourceExhausted.
    #[arg(long, env = "OPENDUCK_MAX_MESSAGE_SIZE", default_value_t = 64 << 20)]
    pub(crate) max_message_size: usize,

    /// Largest total size of a request's headers, in bytes.
    #[arg(long, env = "OPENDUCK_MAX_HEADER_SIZE", default_value_t = 256 << 10)]
    max_header_size: u32,

    /// Most calls one client connection may have running at once (a query's
    /// stream counts until its last row is sent); one more fails with
    /// RESOURCE_EXHAUSTED.
    #[arg(long, env = "OPENDUCK_MAX_STREAMS_PER_CONNECTION",
          default_value_t = openduck_flight_sql::DEFAULT_STREAMS_PER_CONNECTION as u32,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_streams_per_connection: u32,

    /// On SIGTERM or Ctrl-C, how long running statements may finish before
    /// they are interrupted; no new statement starts meanwhile (health
    /// checks answer NOT_SERVING). Keep Kubernetes'
    /// terminationGracePeriodSeconds above it.
    #[arg(long, env = "OPENDUCK_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration_ms)]
    shutdown_grace: Duration,

    /// On SIGTERM, how long to keep taking new calls while health checks
    /// already answer NOT_SERVING, before draining: the time a load
    /// balancer (a Kubernetes Service) needs to stop sending clients here.
    #[arg(long, env = "OPENDUCK_SHUTDOWN_DELAY", default_value = "0s", value_parser = parse_duration_ms)]
    shutdown_delay: Duration,
}

impl FrontendArgs {
    /// Whether clients must present credentials or use TLS.
    pub(crate) fn protects_clients(&self) -> bool {
        self.token.is_some() || self.users.is_some() || self.tls_cert.is_some()
    }
}

/// The databases an executor hosts and how it runs statements (`serve` and
/// `executor`).
#[derive(Debug, Args)]
pub(crate) struct ExecutorArgs {
    #[command(flatten)]
    pub(crate) storage: StorageArgs,

    /// Database to host and write, created when missing; repeat (or separate
    /// with commas) for several. The first is the default for statements that
    /// name none. Default: mydb, unless the executor only serves replicas.
    #[arg(long = "database", env = "OPENDUCK_DATABASE", value_delimiter = ',')]
    databases: Vec<String>,

    /// Database to serve read-only from storage, following the snapshots its
    /// writer publishes; repeat for several. Needs the writer's --storage.
    #[arg(long = "replica", env = "OPENDUCK_REPLICA", value_delimiter = ',')]
    replicas: Vec<String>,

    /// How often a replica looks for a newer snapshot: the most it lags
    /// behind its writer, plus the time to fetch the changed blocks.
    #[arg(long, env = "OPENDUCK_REPLICA_INTERVAL", default_value = "1s", value_parser = parse_duration_ms)]
    replica_interval: Duration,

    /// Most sessions open at once (clients with a transaction or temporary tables).
    #[arg(long, env = "OPENDUCK_MAX_SESSIONS", default_value_t = 256)]
    max_sessions: usize,

    /// Most statements that run at once; more wait for a free connection.
    #[arg(long, env = "OPENDUCK_MAX_CONNECTIONS", default_value_t = 16)]
    pub(crate) max_connections: usize,

    /// DuckDB's memory limit for this executor, in DuckDB's syntax (4GB,
    /// 512MiB). What does not fit spills to <data-dir>/.tmp; a statement that
    /// cannot spill fails with RESOURCE_EXHAUSTED. Default: DuckDB's, 80% of
    /// the machine's memory.
    #[arg(long, env = "OPENDUCK_MEMORY_LIMIT")]
    memory_limit: Option<String>,

    /// Longest a SQL statement may run (500ms, 30s, 10m); one that runs
    /// longer is stopped and fails with DEADLINE_EXCEEDED. 0 or unset: no
    /// limit. Bulk ingests are not limited (see --ingest-idle-timeout).
    #[arg(long, env = "OPENDUCK_STATEMENT_TIMEOUT", value_parser = parse_duration_ms)]
    statement_timeout: Option<Duration>,

    /// A bulk ingest whose client sends no batch for this long is cut off,
    /// keeps none of its rows, and fails with DEADLINE_EXCEEDED: while it
    /// waits it holds DuckDB's worker threads and, with --storage, the
    /// acknowledgement of every other write. 0: never.
    #[arg(long, env = "OPENDUCK_INGEST_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration_ms)]
    ingest_idle_timeout: Duration,

    /// With --storage, a transaction that wrote holds back every other
    /// write's acknowledgement until it ends: one that then runs no
    /// statement for this long while other writes wait is rolled back, and
    /// its next statement fails with ABORTED. 0: never.
    #[arg(long, env = "OPENDUCK_IDLE_TRANSACTION_TIMEOUT", default_value = "60s", value_parser = parse_duration_ms)]
    idle_transaction_timeout: Duration,

    /// Let SQL read and write files outside the data directory (read_csv,
    /// COPY TO, ATTACH). Off by default: clients must not reach the server's files.
    #[arg(long, env = "OPENDUCK_ALLOW_EXTERNAL_ACCESS")]
    allow_external_access: bool,

    /// Start even though SQL could read and write local storage (storage in
    /// or around the data directory, a symbolic link into it, or any local
    /// storage with --allow-external-access). Off by default: any client
    /// could then read every database and rewrite their history.
    #[arg(long, env = "OPENDUCK_ALLOW_STORAGE_IN_SQL_REACH")]
    allow_storage_in_sql_reach: bool,
}

/// Where data lives: the local data directory and differential storage
/// (`serve`, `executor` and the storage commands).
#[derive(Debug, Args)]
pub(crate) struct StorageArgs {
    /// Directory holding the local database files.
    #[arg(long, env = "OPENDUCK_DATA_DIR", default_value = "./openduck-data")]
    pub(crate) data_dir: PathBuf,

    /// Differential storage, where every write is published as a snapshot
    /// before it is acknowledged: a directory outside the data directory, or
    /// an object store URL (s3://bucket/prefix, gs://bucket/prefix,
    /// az://container/prefix) with credentials from the usual AWS_*,
    /// GOOGLE_* or AZURE_* variables. Default: <data-dir>-storage, beside the
    /// data directory. `none` keeps databases in local files only.
    #[arg(long, env = "OPENDUCK_STORAGE")]
    storage: Option<String>,
}

impl StorageArgs {
    /// Where the storage these arguments name is; `None` when storage is
    /// off. Without --storage, the default beside the data directory; with
    /// `migrate`, storage is first moved there from where older versions
    /// kept it, inside the data directory.
    fn location(&self, migrate: bool) -> Result<Option<Location>, Box<dyn std::error::Error>> {
        Ok(match self.storage.as_deref() {
            Some("none") => None,
            Some(text) => Some(Location::parse(text)?),
            None => Some(Location::Local(prepare_default_storage(&self.data_dir, migrate)?)),
        })
    }

    /// Opens the storage these arguments name, where it is, with `heads`
    /// (etcd) in a cluster; `None` when storage is off. For the storage
    /// commands, which run no SQL.
    pub(crate) fn open(&self, heads: Option<Arc<dyn Heads>>) -> Result<Option<Storage>, Box<dyn std::error::Error>> {
        let location = self.location(false)?;
        Ok(location.map(|location| Storage::open(&location, heads)).transpose()?)
    }
}

impl ExecutorArgs {
    /// Opens the executor's storage, with `heads` (etcd) in a cluster:
    /// moved out of the data directory when an older version left it there,
    /// and refused when SQL could reach it.
    fn open_storage(&self, heads: Option<Arc<dyn Heads>>) -> Result<Option<Storage>, Box<dyn std::error::Error>> {
        let Some(location) = self.storage.location(true)? else {
            return Ok(None);
        };
        if let Location::Local(dir) = &location {
            let access = SqlFileAccess {
                external_access: self.allow_external_access,
                storage_in_reach: self.allow_storage_in_sql_reach,
            };
            confine_storage(&self.storage.data_dir, dir, access)?;
        }
        Ok(Some(Storage::open(&location, heads)?))
    }

    /// The databases this executor writes.
    pub(crate) fn writers(&self) -> Vec<String> {
        if self.databases.is_empty() && self.replicas.is_empty() {
            vec!["mydb".into()]
        } else {
            self.databases.clone()
        }
    }

    /// The databases it serves as a replica.
    pub(crate) fn replicas(&self) -> &[String] {
        &self.replicas
    }

    /// Opens the executor these arguments describe, its heads in `heads`
    /// (etcd) in a cluster. With `every_stored`, it also writes every
    /// database its storage holds (clones made since the last start, say).
    pub(crate) async fn open(
        self,
        id: String,
        heads: Option<Arc<dyn Heads>>,
        every_stored: bool,
    ) -> Result<Executor, Box<dyn std::error::Error>> {
        let storage = self.open_storage(heads)?;
        let mut writers = self.writers();
        if let (true, Some(storage)) = (every_stored, &storage) {
            for (name, _) in storage.heads().list().await? {
                if !writers.contains(&name) && !self.replicas.contains(&name) {
                    writers.push(name);
                }
            }
        }
        let config = ExecutorConfig {
            id,
            max_connections: self.max_connections,
            max_sessions: self.max_sessions,
            allow_external_access: self.allow_external_access,
            storage,
            replicas: self.replicas.clone(),
            replica_interval: self.replica_interval,
            memory_limit: self.memory_limit.clone(),
            statement_timeout: self.statement_timeout.filter(|limit| !limit.is_zero()),
            ingest_idle_timeout: Some(self.ingest_idle_timeout).filter(|limit| !limit.is_zero()),
            idle_transaction_timeout: Some(self.idle_transaction_timeout).filter(|limit| !limit.is_zero()),
            ..ExecutorConfig::new(&self.storage.data_dir, writers)
        };
        Ok(Executor::start(config).await?)
    }
}

pub(crate) async fn run(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = args.telemetry.start("openduck").await?;
    // Half the pool may hold queries started at planning (see Coordinator::with_early_start).
    let early_start = args.executor.max_connections / 2;
    let executor = args.executor.open("executor-0".into(), None, true).await?;
    let coordinator = Coordinator::embedded(Arc::new(executor), TICKET_TTL)
        .with_early_start(early_start)
        .with_query_history(args.frontend.query_history)
        .with_held_result_limit(args.frontend.max_held_result);
    let coordinator = Arc::new(coordinator);
    let served = serve_frontend(coordinator, args.frontend).await;
    telemetry.shutdown().await;
    served
}

/// Serves Flight SQL over `coordinator` until SIGINT or SIGTERM, then shuts
/// down cleanly (the coordinator's in-process executors checkpoint).
pub(crate) async fn serve_frontend(
    coordinator: Arc<Coordinator>,
    args: FrontendArgs,
) -> Result<(), Box<dyn std::error::Error>> {
    let users = match &args.users {
        Some(path) => Some(Arc::new(UserAccounts::load(path)?)),
        None => None,
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(ServerTls {
            cert: read(cert)?,
            key: read(key)?,
            client_ca: args.tls_client_ca.as_deref().map(read).transpose()?,
        }),
        _ => None,
    };
    let scheme = if tls.is_some() { "grpc+tls" } else { "grpc" };
    let server = serve(
        Arc::clone(&coordinator),
        ServerConfig {
            listen: args.listen,
            token: args.token,
            users,
            token_ttl: args.token_ttl,
            tls,
            max_message_size: args.max_message_size,
            max_header_size: args.max_header_size,
            max_streams_per_connection: args.max_streams_per_connection as usize,
            shutdown_grace: args.shutdown_grace,
            shutdown_delay: args.shutdown_delay,
        },
    )
    .await;
    let server = match server {
        Ok(server) => server,
        Err(error) => {
            // Close the databases cleanly even when the server never started.
            let _ = coordinator.shutdown(Duration::from_secs(1)).await;
            return Err(error.into());
        }
    };
    let stop = shutdown_signal();
    // The one line scripts wait for: the real address, once connections are accepted.
    println!("openduck listening on {scheme}://{}", server.local_addr());

    stop.await;
    tracing::info!("shutting down");
    server.shutdown().await?;
    Ok(())
}

pub(crate) fn read(path: &std::path::Path) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()).into())
}

/// Smallest --max-held-result but 0: below it, even the row count of a
/// plain INSERT would not fit.
const MIN_HELD_RESULT: u64 = 64 << 10;

/// Parses --max-held-result: 0 (no limit), or at least [`MIN_HELD_RESULT`].
fn parse_held_limit(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(bytes) if bytes == 0 || bytes >= MIN_HELD_RESULT => Ok(bytes),
        Ok(_) => Err(format!("give at least {MIN_HELD_RESULT} bytes, or 0 for no limit")),
        Err(error) => Err(format!("not a number of bytes: {error}")),
    }
}

/// Parses `90`, `90s`, `30m`, `12h` or `7d`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30m, 12h or 7d"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?} in {text:?}: use s, m, h or d")),
    };
    Ok(Duration::from_secs(number.saturating_mul(seconds)))
}

/// Parses a duration as [`parse_duration`] does, or in milliseconds (`500ms`).
pub(crate) fn parse_duration_ms(text: &str) -> Result<Duration, String> {
    match text.trim().strip_suffix("ms") {
        Some(millis) => millis
            .parse()
            .map(Duration::from_millis)
            .map_err(|_| format!("{text:?} is not a duration like 500ms or 2s")),
        None => parse_duration(text),
    }
}

/// Registers for Ctrl-C and SIGTERM now, and resolves when one arrives.
/// Registering before the server announces itself matters: a supervisor may
/// send SIGTERM the moment it reads the `listening` line.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_result_limit_is_none_or_large_enough_for_a_row_count() {
        assert_eq!(parse_held_limit("0"), Ok(0));
        assert_eq!(parse_held_limit("65536"), Ok(65536));
        assert!(parse_held_limit("100").unwrap_err().contains("at least 65536"));
        assert!(parse_held_limit("64MiB").unwrap_err().contains("not a number"));
    }
}
