//! The executor registry of a distributed openduck, kept in etcd.
//!
//! Every executor [`announce`]s itself: it takes a lease (about 10 s), claims
//! each database it writes (one writer per database: the claim is a key
//! created only if absent, under the lease), and puts its
//! [`ExecutorRecord`](openduck_proto::ExecutorRecord) under the lease. A task
//! keeps the lease alive (every third of its TTL, with jitter) and, when the
//! lease is lost (etcd restarted, a long pause), announces again; the executor
//! keeps serving meanwhile.
//!
//! Coordinators [`watch`] the records: a [`Membership`] lists them at first,
//! then follows changes from the revision it listed at, and lists again
//! when that revision was compacted or the connection broke. Nothing about
//! queries lives in etcd.
//!
//! Each executor also reports its load (statements running, sessions open,
//! how far its replicas are behind) at each renewal, when it changed; the
//! [`loads`] are for operators (`openduck status`), not for routing.
//!
//! Keys, under a cluster prefix (default `/openduck`):
//! `<prefix>/executors/<id>` holds a record; `<prefix>/load/<id>` its load;
//! `<prefix>/writers/<database>` holds the id of the database's writer.

mod announce;
mod error;
mod load;
mod membership;

use std::time::Duration;

pub use announce::{announce, Announcement};
pub use error::{Error, Result};
pub use load::loads;
pub use membership::{watch, Membership, Records};

/// Where the registry lives and how executors keep their place in it.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// etcd endpoints, for example `http://127.0.0.1:2379`.
    pub endpoints: Vec<String>,
    /// The key prefix of this cluster, so several clusters can share an etcd.
    pub prefix: String,
    /// How long an executor's registration outlives its last keep-alive.
    pub lease_ttl: Duration,
}

impl RegistryConfig {
    /// A configuration with the default prefix and a 10 s lease.
    pub fn new(endpoints: Vec<String>) -> Self {
        RegistryConfig {
            endpoints,
            prefix: "/openduck".into(),
            lease_ttl: Duration::from_secs(10),
        }
    }

    fn executors_prefix(&self) -> String {
        openduck_proto::etcd_keys::executors(&self.prefix)
    }

    fn executor_key(&self, id: &str) -> String {
        openduck_proto::etcd_keys::executor(&self.prefix, id)
    }

    /// Maps an etcd client error to this crate's, naming the endpoints.
    fn etcd_error(&self) -> impl Fn(etcd_client::Error) -> Error + '_ {
        |source| Error::Etcd {
            endpoints: self.endpoints.join(","),
            source,
        }
    }

    fn loads_prefix(&self) -> String {
        openduck_proto::etcd_keys::loads(&self.prefix)
    }

    fn load_key(&self, id: &str) -> String {
        openduck_proto::etcd_keys::load(&self.prefix, id)
    }

    fn writer_key(&self, database: &str) -> String {
        openduck_proto::etcd_keys::writer(&self.prefix, database)
    }
}

/// Waits until etcd answers, trying again with backoff for at most
/// `patience`: the pods of a new cluster start together, and etcd may take a
/// few seconds to elect a leader. Fails with the last error after that.
pub async fn wait_for_etcd(config: &RegistryConfig, patience: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut backoff = Duration::from_millis(200);
    let mut waiting = false;
    loop {
        let answered = match connect(config).await {
            Ok(mut client) => client.status().await.map(drop).map_err(config.etcd_error()),
            Err(error) => Err(error),
        };
        match answered {
            Ok(()) => {
                if waiting {
                    tracing::info!(endpoints = %config.endpoints.join(","), "etcd answers");
                }
                return Ok(());
            }
            Err(error) if tokio::time::Instant::now() + backoff < deadline => {
                if !waiting {
                    tracing::info!(%error, patience_s = patience.as_secs(), "waiting for etcd");
                    waiting = true;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(error) => return Err(error),
        }
    }
}

/// A client for etcd. No request timeout: it would cut the long-lived watch
/// and keep-alive streams; HTTP/2 keep-alive pings find a dead etcd instead.
async fn connect(config: &RegistryConfig) -> Result<etcd_client::Client> {
    let options = etcd_client::ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(3))
        .with_keep_alive(Duration::from_secs(3), Duration::from_secs(3))
        .with_keep_alive_while_idle(true);
    etcd_client::Client::connect(&config.endpoints, Some(options))
        .await
        .map_err(config.etcd_error())
}

/// Every key under `prefix`, with the revision read at.
async fn get_prefix(
    client: &mut etcd_client::Client,
    config: &RegistryConfig,
    prefix: &str,
) -> Result<etcd_client::GetResponse> {
    client
        .get(prefix, Some(etcd_client::GetOptions::new().with_prefix()))
        .await
        .map_err(config.etcd_error())
}
