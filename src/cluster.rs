//! The distributed shape: `openduck coordinator` (Flight SQL front end and
//! planner, no data) and `openduck executor` (DuckDB databases behind a
//! Flight service), meeting in etcd.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use openduck_coordinator::{Coordinator, Registry, TicketSigner};
use openduck_proto::{ExecutorLoad, ExecutorRecord, HostedDatabase, Role};
use openduck_registry::RegistryConfig;
use openduck_remote::{serve_executor, ClientTls, Listening, ServerTls};
use openduck_storage::EtcdHeads;
use tracing::{info, warn};

use crate::serve::{
    parse_duration, parse_duration_ms, read, serve_frontend, shutdown_signal, ExecutorArgs, FrontendArgs, TICKET_TTL,
};
use crate::telemetry::TelemetryArgs;

/// How long a stopping executor keeps taking calls after it told the
/// registry it serves nothing, for queries routed to it just before.
const DEREGISTRATION_DELAY: Duration = Duration::from_secs(1);

/// Shortest cluster secret accepted, in bytes.
const MIN_SECRET_LEN: usize = 16;

/// How a process finds the cluster and proves it belongs to it.
#[derive(Debug, Args)]
pub(crate) struct ClusterArgs {
    /// etcd endpoints (comma separated), for example http://10.0.0.2:2379.
    #[arg(long, env = "OPENDUCK_ETCD", required = true, value_delimiter = ',')]
    etcd: Vec<String>,

    /// The secret every coordinator and executor of the cluster shares: it
    /// signs the tickets and requests executors accept. At least 16 bytes.
    #[arg(long, env = "OPENDUCK_CLUSTER_SECRET", hide_env_values = true)]
    cluster_secret: Option<String>,

    /// Key prefix of this cluster in etcd, so several can share one etcd.
    #[arg(long, env = "OPENDUCK_ETCD_PREFIX", default_value = "/openduck")]
    etcd_prefix: String,

    /// How long an executor stays registered after its last keep-alive.
    #[arg(long, env = "OPENDUCK_LEASE_TTL", default_value = "10s", value_parser = parse_duration)]
    lease_ttl: Duration,

    /// How long to wait at start for etcd to answer, trying again meanwhile
    /// (the pods of a new cluster start together); then give up and exit.
    #[arg(long, env = "OPENDUCK_ETCD_WAIT", default_value = "60s", value_parser = parse_duration)]
    etcd_wait: Duration,

    /// Certificate chain (PEM) for the cluster's own connections: an
    /// executor serves TLS with it, and refuses plain connections; a
    /// coordinator (which also needs --cluster-tls-ca) presents it to
    /// executors that require one. Needs --cluster-tls-key.
    #[arg(long, env = "OPENDUCK_CLUSTER_TLS_CERT", requires = "cluster_tls_key")]
    cluster_tls_cert: Option<PathBuf>,

    /// The private key of --cluster-tls-cert (PEM).
    #[arg(long, env = "OPENDUCK_CLUSTER_TLS_KEY", requires = "cluster_tls_cert")]
    cluster_tls_key: Option<PathBuf>,

    /// The CA the cluster's certificates chain to (PEM). A coordinator given
    /// it reaches executors over TLS only, checking their certificates
    /// against it; an executor given it also requires every coordinator to
    /// present a certificate it signed (mutual TLS).
    #[arg(long, env = "OPENDUCK_CLUSTER_TLS_CA")]
    cluster_tls_ca: Option<PathBuf>,
}

impl ClusterArgs {
    fn signer(&self) -> Result<TicketSigner, Box<dyn std::error::Error>> {
        match &self.cluster_secret {
            Some(secret) if secret.len() >= MIN_SECRET_LEN => Ok(TicketSigner::new(secret.as_bytes(), TICKET_TTL)),
            Some(_) => Err(format!("--cluster-secret must be at least {MIN_SECRET_LEN} bytes").into()),
            None => Err(
                "a cluster needs a shared secret: set --cluster-secret or OPENDUCK_CLUSTER_SECRET \
                         (the same on every coordinator and executor)"
                    .into(),
            ),
        }
    }

    /// Waits (up to `--etcd-wait`) until etcd answers.
    async fn wait_for_etcd(&self) -> Result<(), Box<dyn std::error::Error>> {
        Ok(openduck_registry::wait_for_etcd(&self.registry(), self.etcd_wait).await?)
    }

    /// How an executor serves the cluster: TLS with its certificate (and
    /// client certificates required when the CA is given), or plain gRPC.
    fn server_tls(&self) -> Result<Option<ServerTls>, Box<dyn std::error::Error>> {
        match (&self.cluster_tls_cert, &self.cluster_tls_key) {
            (Some(cert), Some(key)) => {
                let tls = ServerTls {
                    cert: read(cert)?,
                    key: read(key)?,
                    client_ca: self.cluster_tls_ca.as_deref().map(read).transpose()?,
                };
                tls.check().map_err(|error| format!("--cluster-tls-*: {error}"))?;
                Ok(Some(tls))
            }
            _ if self.cluster_tls_ca.is_some() => Err("--cluster-tls-ca on an executor requires coordinators' \
                 certificates, which needs TLS: give the executor --cluster-tls-cert and --cluster-tls-key too"
                .into()),
            _ => Ok(None),
        }
    }

    /// How a coordinator reaches executors: over TLS checked against the
    /// CA (presenting its own certificate when it has one), or plain gRPC.
    fn client_tls(&self) -> Result<Option<ClientTls>, Box<dyn std::error::Error>> {
        let identity = match (&self.cluster_tls_cert, &self.cluster_tls_key) {
            (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
            _ => None,
        };
        match &self.cluster_tls_ca {
            Some(ca) => Ok(Some(ClientTls {
                ca: read(ca)?,
                identity,
            })),
            None if identity.is_some() => Err("--cluster-tls-cert on a coordinator is presented to executors over \
                 TLS, which needs the CA to check them: give --cluster-tls-ca too"
                .into()),
            None => Ok(None),
        }
    }

    /// How an executor reaches its peers to fetch a fragment from one: over
    /// TLS checked against the CA, presenting its own certificate, when it
    /// has the CA; otherwise plain gRPC (and, where peers serve TLS, not
    /// at all: coordinators move those rows themselves).
    fn peer_tls(&self) -> Result<Option<ClientTls>, Box<dyn std::error::Error>> {
        match self.cluster_tls_ca {
            Some(_) => self.client_tls(),
            None => Ok(None),
        }
    }

    fn registry(&self) -> RegistryConfig {
        RegistryConfig {
            prefix: self.etcd_prefix.clone(),
            lease_ttl: self.lease_ttl,
            ..RegistryConfig::new(self.etcd.clone())
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct CoordinatorArgs {
    #[command(flatten)]
    frontend: FrontendArgs,

    #[command(flatten)]
    cluster: ClusterArgs,

    /// Database for statements that name none (default: the first by name).
    #[arg(long, env = "OPENDUCK_DEFAULT_DATABASE")]
    default_database: Option<String>,

    /// Send clients straight to the executor that runs a single-executor
    /// query (FlightInfo endpoint locations), so its rows skip the
    /// coordinator; `false` passes every row through the coordinator.
    /// Default: on only when clients use neither TLS nor credentials and
    /// executors serve plain gRPC, since drivers send their headers (a
    /// token) to every location they follow, and would have to trust the
    /// cluster's CA.
    #[arg(long, env = "OPENDUCK_DIRECT_RESULTS", action = clap::ArgAction::Set)]
    direct_results: Option<bool>,

    /// A join whose inputs live on two executors runs on the executor of
    /// its larger input, with the smaller one shipped there into a
    /// temporary table, when pulling the larger one to the coordinator would
    /// move at least this many values (rows times columns, estimated from
    /// the tables' rows and the filters) and the smaller one is much smaller.
    /// Likewise a query whose tables all live on one executor but some much
    /// smaller ones runs there whole, those shipped there.
    /// `off`: never; both inputs are pulled to the coordinator.
    #[arg(long, env = "OPENDUCK_JOIN_SHIPPING_THRESHOLD", default_value_t = Threshold(Some(openduck_coordinator::DEFAULT_SHIPPING_THRESHOLD)), value_parser = parse_threshold)]
    join_shipping_threshold: Threshold,

    #[command(flatten)]
    telemetry: TelemetryArgs,
}

pub(crate) async fn run_coordinator(args: CoordinatorArgs) -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = args.telemetry.start("openduck-coordinator").await?;
    let signer = args.cluster.signer()?;
    let tls = args.cluster.client_tls()?;
    args.cluster.wait_for_etcd().await?;
    let membership = openduck_registry::watch(args.cluster.registry()).await?;
    let cluster_tls = tls.is_some();
    let registry = Registry::cluster(membership, signer.clone(), args.frontend.max_message_size, tls);
    let protected = args.frontend.protects_clients();
    let direct_results = args.direct_results.unwrap_or(!protected && !cluster_tls);
    if direct_results && protected {
        warn!("--direct-results with TLS or client credentials: drivers send their credentials to executors");
    }
    if direct_results && cluster_tls {
        warn!("--direct-results with cluster TLS: clients must trust the cluster's CA, and cannot reach executors that require client certificates");
    }
    let coordinator = Coordinator::new(registry, signer, args.default_database)
        .with_direct_results(direct_results)
        .with_query_history(args.frontend.query_history)
        .with_held_result_limit(args.frontend.max_held_result)
        .with_join_shipping(args.join_shipping_threshold.0);
    let served = serve_frontend(Arc::new(coordinator), args.frontend).await;
    telemetry.shutdown().await;
    served
}

#[derive(Debug, Args)]
pub(crate) struct ExecutorProcessArgs {
    #[command(flatten)]
    executor: ExecutorArgs,

    #[command(flatten)]
    cluster: ClusterArgs,

    /// Address the executor's Flight service listens on (port 0 picks one).
    #[arg(long, env = "OPENDUCK_LISTEN", default_value = "127.0.0.1:7879")]
    listen: SocketAddr,

    /// HOST:PORT where coordinators and clients reach this executor; must
    /// not be a wildcard address. Defaults to the listen address, when that
    /// is not a wildcard (port 0 becomes the port picked).
    #[arg(long, env = "OPENDUCK_ADVERTISE")]
    advertise: Option<String>,

    /// This executor's name in the cluster (default: the advertised address).
    #[arg(long, env = "OPENDUCK_EXECUTOR_ID")]
    id: Option<String>,

    /// Largest gRPC message accepted or sent, in bytes.
    #[arg(long, env = "OPENDUCK_MAX_MESSAGE_SIZE", default_value_t = 64 << 20)]
    max_message_size: usize,

    /// Also answer gRPC health checks, and nothing else, in plain gRPC on
    /// this address: for probes that cannot speak TLS (Kubernetes' own)
    /// when the executor serves --cluster-tls-cert.
    #[arg(long, env = "OPENDUCK_HEALTH_LISTEN")]
    health_listen: Option<SocketAddr>,

    /// On SIGTERM or Ctrl-C, how long running calls may finish after the
    /// executor has left the registry, before they are interrupted. Keep
    /// Kubernetes' terminationGracePeriodSeconds above it.
    #[arg(long, env = "OPENDUCK_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration_ms)]
    shutdown_grace: Duration,

    #[command(flatten)]
    telemetry: TelemetryArgs,
}

pub(crate) async fn run_executor(args: ExecutorProcessArgs) -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = args.telemetry.start("openduck-executor").await?;
    let signer = args.cluster.signer()?;
    let tls = args.cluster.server_tls()?;
    let peer_tls = args.cluster.peer_tls()?;
    let scheme = if tls.is_some() { "grpc+tls" } else { "grpc" };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|error| format!("cannot listen on {}: {error}", args.listen))?;
    let bound = listener.local_addr()?;
    let health_listener = match args.health_listen {
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .map_err(|error| format!("cannot listen on {address} (--health-listen): {error}"))?,
        ),
        None => None,
    };
    let advertise = advertised(args.advertise.as_deref(), bound)?;
    let id = args.id.clone().unwrap_or_else(|| advertise.clone());
    let capacity = u32::try_from(args.executor.max_connections).unwrap_or(u32::MAX);
    let role = |role: Role| {
        move |name: &String| HostedDatabase {
            name: name.clone(),
            role: role as i32,
        }
    };
    // Writers are claimed at once; replicas are announced once they serve
    // (a replica may first wait for its writer's first snapshot).
    let writers: Vec<HostedDatabase> = args.executor.writers().iter().map(role(Role::Writer)).collect();
    let replicas: Vec<HostedDatabase> = args.executor.replicas().iter().map(role(Role::Reader)).collect();

    let record = ExecutorRecord {
        id: id.clone(),
        endpoint: format!("{scheme}://{advertise}"),
        databases: writers,
        version: env!("CARGO_PKG_VERSION").into(),
        capacity,
        catalog_version: 0,
    };
    let stop = shutdown_signal();
    tokio::pin!(stop);
    // Claim the databases first: only their claimed writer may move their
    // heads in storage, and opening publishes a first snapshot.
    tokio::select! {
        waited = args.cluster.wait_for_etcd() => waited?,
        () = &mut stop => {
            info!("stopped while waiting for etcd");
            return Ok(());
        }
    }
    let announcement = openduck_registry::announce(args.cluster.registry(), record).await?;
    let heads = EtcdHeads::connect(&args.cluster.etcd, &args.cluster.etcd_prefix, Some(id.clone())).await?;
    // Opening may take long (a replica waiting for its writer's first
    // snapshot, a large hydration): a stop meanwhile is honoured.
    let opened = tokio::select! {
        opened = args.executor.open(id.clone(), Some(Arc::new(heads)), false) => opened,
        () = &mut stop => {
            info!("stopped while opening the databases");
            announcement.withdraw().await;
            return Ok(());
        }
    };
    let executor = match opened {
        Ok(executor) => Arc::new(executor),
        Err(error) => {
            announcement.withdraw().await;
            return Err(error);
        }
    };

    let listening = Listening {
        tls,
        health: health_listener,
        peer_tls,
        ..Listening::plain(listener, args.max_message_size)
    };
    let server = match serve_executor(Arc::clone(&executor) as _, signer, listening).await {
        Ok(server) => server,
        Err(error) => {
            announcement.withdraw().await;
            let _ = executor.shutdown(args.shutdown_grace).await;
            return Err(error.into());
        }
    };

    if !replicas.is_empty() {
        announcement.update(|record| record.databases.extend(replicas));
    }

    announcement.report_load({
        let executor = Arc::clone(&executor);
        move || load_record(&executor.load())
    });
    // Coordinators list a catalog again when its version in the registry moves.
    let announcement = Arc::new(announcement);
    let catalog_follower = tokio::spawn({
        let announcement = Arc::clone(&announcement);
        let mut changes = executor.catalog_changes();
        async move {
            while changes.changed().await.is_ok() {
                let version = *changes.borrow_and_update();
                announcement.update(|record| record.catalog_version = version);
            }
        }
    });
    println!("openduck executor {id} listening on {scheme}://{bound}, advertised as {scheme}://{advertise}");

    stop.await;
    info!("shutting down: no new statements, then finishing running ones, then leaving the registry");
    catalog_follower.abort();
    let _ = catalog_follower.await;
    // Coordinators stop routing here once the record names no database, but
    // the lease (and with it the writer claims) stays until the end: a
    // write committing while the executor drains must still publish.
    announcement.update(|record| record.databases.clear());
    // They see the change within milliseconds, but a query one of them
    // routed here just before may not have fetched yet: keep taking calls a
    // moment longer, then drain.
    tokio::time::sleep(DEREGISTRATION_DELAY.min(args.shutdown_grace)).await;
    let stopped = server.shutdown(args.shutdown_grace).await;
    if let Ok(announcement) = Arc::try_unwrap(announcement) {
        announcement.withdraw().await;
    }
    telemetry.shutdown().await;
    Ok(stopped?)
}

/// An executor's load as the registry keeps it.
fn load_record(load: &openduck_executor::Load) -> ExecutorLoad {
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    ExecutorLoad {
        statements_running: count(load.statements_running),
        sessions_open: count(load.sessions_open),
        replicas: load
            .replicas
            .iter()
            .map(|replica| openduck_proto::ReplicaProgress {
                database: replica.database.clone(),
                snapshot: replica.snapshot.clone(),
                behind_since_unix_ms: replica
                    .behind_since
                    .and_then(|since| since.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |since| since.as_millis() as u64),
            })
            .collect(),
    }
}

/// The address to advertise: the one given, or the bound one; never a
/// wildcard, which no one could connect to.
fn advertised(given: Option<&str>, bound: SocketAddr) -> Result<String, String> {
    match given {
        Some(address) => {
            let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_unspecified()) {
                return Err(format!(
                    "--advertise {address}: a wildcard address cannot be reached; give a host name or IP"
                ));
            }
            if !address.contains(':') {
                return Ok(format!("{address}:{}", bound.port()));
            }
            Ok(address.to_string())
        }
        None if bound.ip().is_unspecified() => Err(format!(
            "listening on {bound}: give --advertise HOST:PORT, the address others reach this executor at"
        )),
        None => Ok(bound.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_advertises_a_wildcard() {
        let bound: SocketAddr = "0.0.0.0:7879".parse().unwrap();
        assert!(advertised(None, bound).is_err());
        assert!(advertised(Some("0.0.0.0:7879"), bound).is_err());
        assert!(advertised(Some("[::]:7879"), bound).is_err());
        assert_eq!(advertised(Some("exec-1.svc"), bound).unwrap(), "exec-1.svc:7879");
        assert_eq!(advertised(Some("10.0.0.7:9000"), bound).unwrap(), "10.0.0.7:9000");
        let loopback: SocketAddr = "127.0.0.1:41234".parse().unwrap();
        assert_eq!(advertised(None, loopback).unwrap(), "127.0.0.1:41234");
    }
}

/// A count, or `off`.
#[derive(Debug, Clone, Copy)]
struct Threshold(Option<u64>);

impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(count) => write!(f, "{count}"),
            None => f.write_str("off"),
        }
    }
}

fn parse_threshold(text: &str) -> Result<Threshold, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(Threshold(None));
    }
    text.parse()
        .map(|count| Threshold(Some(count)))
        .map_err(|_| format!("{text:?} is neither a count of values nor `off`"))
}
