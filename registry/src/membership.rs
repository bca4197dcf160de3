//! A coordinator's view of the registry: who is registered, kept current.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, EventType, WatchOptions};
use openduck_proto::{ExecutorRecord, Message};
use tokio::sync::watch as channel;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::error::{Error, Result};
use crate::{connect, get_prefix, RegistryConfig};

/// The registered executors, by id.
pub type Records = Arc<BTreeMap<String, ExecutorRecord>>;

/// The executors registered now, followed as they come and go. Clones share
/// one watch; the watch stops when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Membership {
    records: channel::Receiver<Records>,
    _task: Arc<AbortOnDrop>,
}

#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Membership {
    /// The executors registered now, by id.
    pub fn current(&self) -> Records {
        Records::clone(&self.records.borrow())
    }

    /// A receiver that sees every change.
    pub fn subscribe(&self) -> channel::Receiver<Records> {
        self.records.clone()
    }
}

/// Lists the registered executors and follows changes from then on. Fails
/// only when etcd cannot be reached at first; later outages are retried, and
/// the last known membership stays meanwhile.
pub async fn watch(config: RegistryConfig) -> Result<Membership> {
    let mut client = connect(&config).await?;
    let (records, revision) = list(&mut client, &config).await?;
    info!(executors = records.len(), "registry listed");
    let (sender, receiver) = channel::channel(Arc::new(records));
    let task = tokio::spawn(follow(client, config, sender, revision));
    Ok(Membership {
        records: receiver,
        _task: Arc::new(AbortOnDrop(task)),
    })
}

async fn list(client: &mut Client, config: &RegistryConfig) -> Result<(BTreeMap<String, ExecutorRecord>, i64)> {
    let prefix = config.executors_prefix();
    let response = get_prefix(client, config, &prefix).await?;
    let revision = response.header().map_or(0, |header| header.revision());
    let mut records = BTreeMap::new();
    for kv in response.kvs() {
        if let Some(record) = decode(kv.key(), kv.value()) {
            records.insert(record.id.clone(), record);
        }
    }
    Ok((records, revision))
}

fn decode(key: &[u8], value: &[u8]) -> Option<ExecutorRecord> {
    match ExecutorRecord::decode(value) {
        Ok(record) => Some(record),
        Err(error) => {
            let error = Error::InvalidRecord {
                key: String::from_utf8_lossy(key).into_owned(),
                message: error.to_string(),
            };
            warn!(%error, "skipping a registry entry");
            None
        }
    }
}

/// Follows changes after `revision`; after a broken watch it resumes from
/// the last revision seen, and lists afresh when that was compacted.
async fn follow(mut client: Client, config: RegistryConfig, sender: channel::Sender<Records>, mut revision: i64) {
    let prefix = config.executors_prefix();
    let mut backoff = Duration::from_millis(200);
    loop {
        let options = WatchOptions::new().with_prefix().with_start_revision(revision + 1);
        let mut stream = match client.watch(prefix.as_str(), Some(options)).await {
            Ok(stream) => stream,
            Err(error) => {
                warn!(%error, "cannot watch the registry; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        loop {
            let response = match stream.message().await {
                Ok(Some(response)) => response,
                Ok(None) => break,
                Err(error) => {
                    warn!(%error, "registry watch broke; resuming");
                    break;
                }
            };
            backoff = Duration::from_millis(200);
            if response.compact_revision() > 0 || response.canceled() {
                info!(
                    compacted = response.compact_revision(),
                    "registry history compacted; listing again"
                );
                match list(&mut client, &config).await {
                    Ok((records, listed)) => {
                        revision = listed;
                        sender.send_replace(Arc::new(records));
                    }
                    Err(error) => warn!(%error, "listing the registry failed"),
                }
                break;
            }
            if response.events().is_empty() {
                continue;
            }
            let mut records = BTreeMap::clone(&sender.borrow());
            for event in response.events() {
                let Some(kv) = event.kv() else { continue };
                let id = String::from_utf8_lossy(kv.key())
                    .trim_start_matches(prefix.as_str())
                    .to_string();
                revision = revision.max(kv.mod_revision());
                match event.event_type() {
                    EventType::Put => {
                        if let Some(record) = decode(kv.key(), kv.value()) {
                            debug!(executor = %id, endpoint = %record.endpoint, "executor registered");
                            records.insert(id, record);
                        }
                    }
                    EventType::Delete => {
                        info!(executor = %id, "executor left the registry");
                        records.remove(&id);
                    }
                }
            }
            sender.send_replace(Arc::new(records));
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}
