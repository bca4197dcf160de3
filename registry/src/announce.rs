//! An executor's place in the registry: claimed, kept alive, reclaimed.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp, TxnOpResponse};
use openduck_proto::{ExecutorLoad, ExecutorRecord, Message, Role};
use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::error::{Error, Result};
use crate::load::LoadReport;
use crate::{connect, RegistryConfig};

/// An executor's registration. Dropping it stops the keep-alive (the lease
/// then expires); [`Announcement::withdraw`] removes the registration at once.
#[derive(Debug)]
pub struct Announcement {
    stop: watch::Sender<bool>,
    record: watch::Sender<ExecutorRecord>,
    load: Arc<LoadReport>,
    task: JoinHandle<()>,
}

impl Announcement {
    /// Changes the registered record (its catalog version, say); it is put
    /// again under the same lease.
    pub fn update(&self, change: impl FnOnce(&mut ExecutorRecord)) {
        self.record.send_modify(change);
    }

    /// Reports what `source` says at every lease renewal (every third of
    /// the lease's TTL), when it changed since the last report.
    pub fn report_load(&self, source: impl Fn() -> ExecutorLoad + Send + Sync + 'static) {
        self.load.set_source(Arc::new(source));
    }

    /// Leaves the registry now: the lease is revoked, so the record and the
    /// writer claims go with it and coordinators stop routing here.
    pub async fn withdraw(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(3), &mut { self }.task).await;
    }
}

impl Drop for Announcement {
    fn drop(&mut self) {
        if !self.task.is_finished() {
            let _ = self.stop.send(true);
        }
    }
}

/// Registers `record` and keeps it registered until the returned
/// [`Announcement`] is dropped or withdrawn. Fails when etcd cannot be
/// reached, or when another executor writes a database `record` claims to
/// write ([`Error::WriterTaken`]).
pub async fn announce(config: RegistryConfig, record: ExecutorRecord) -> Result<Announcement> {
    let mut client = connect(&config).await?;
    let lease = register(&mut client, &config, &record).await?;
    info!(executor = %record.id, endpoint = %record.endpoint, lease, "registered in etcd");
    let (stop, stopped) = watch::channel(false);
    let (record, records) = watch::channel(record);
    let load = Arc::new(LoadReport::default());
    let task = tokio::spawn(keep(client, config, records, Arc::clone(&load), lease, stopped));
    Ok(Announcement {
        stop,
        record,
        load,
        task,
    })
}

/// Takes a lease, claims every database `record` writes, and puts the record.
async fn register(client: &mut Client, config: &RegistryConfig, record: &ExecutorRecord) -> Result<i64> {
    let etcd = config.etcd_error();
    let ttl = config.lease_ttl.as_secs().max(2) as i64;
    let lease = client.lease_grant(ttl, None).await.map_err(&etcd)?.id();
    let under_lease = || Some(PutOptions::new().with_lease(lease));
    for database in record.databases.iter().filter(|db| db.role() == Role::Writer) {
        let key = config.writer_key(&database.name);
        let claim = Txn::new()
            .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key.as_str(), record.id.as_str(), under_lease())])
            .or_else([TxnOp::get(key.as_str(), None)]);
        let response = client.txn(claim).await.map_err(&etcd)?;
        if response.succeeded() {
            continue;
        }
        let owner = current_owner(&response.op_responses());
        if owner == record.id {
            // Our own claim from before a restart, not expired yet: take it
            // over under the new lease, unless someone else got it meanwhile.
            let retake = Txn::new()
                .when([Compare::value(key.as_str(), CompareOp::Equal, record.id.as_str())])
                .and_then([TxnOp::put(key.as_str(), record.id.as_str(), under_lease())]);
            if client.txn(retake).await.map_err(&etcd)?.succeeded() {
                continue;
            }
        }
        let _ = client.lease_revoke(lease).await;
        return Err(Error::WriterTaken {
            database: database.name.clone(),
            owner,
        });
    }
    client
        .put(config.executor_key(&record.id), record.encode_to_vec(), under_lease())
        .await
        .map_err(&etcd)?;
    Ok(lease)
}

fn current_owner(responses: &[TxnOpResponse]) -> String {
    responses
        .iter()
        .find_map(|response| match response {
            TxnOpResponse::Get(get) => get
                .kvs()
                .first()
                .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Keeps the lease alive; registers again whenever it is lost.
async fn keep(
    mut client: Client,
    config: RegistryConfig,
    mut records: watch::Receiver<ExecutorRecord>,
    load: Arc<LoadReport>,
    mut lease: i64,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let reason = match keep_alive(&mut client, &config, lease, &mut records, &load, &mut stopped).await {
            Ok(()) => {
                let _ = client.lease_revoke(lease).await;
                info!(executor = %records.borrow().id, "left the registry");
                return;
            }
            Err(reason) => reason,
        };
        let record = records.borrow_and_update().clone();
        warn!(executor = %record.id, %reason, "lost the registry lease; registering again");
        let mut backoff = Duration::from_millis(200);
        loop {
            tokio::select! {
                _ = stopped.changed() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            let record = records.borrow_and_update().clone();
            match register(&mut client, &config, &record).await {
                Ok(new_lease) => {
                    lease = new_lease;
                    info!(executor = %record.id, lease, "registered in etcd again");
                    break;
                }
                Err(error @ Error::WriterTaken { .. }) => {
                    error!(executor = %record.id, %error, "cannot take back the writer role");
                }
                Err(error) => warn!(executor = %record.id, %error, "registering again failed"),
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
}

/// Renews `lease` every third of its TTL (with jitter) until stopped
/// (`Ok`) or until the lease is gone or etcd unreachable for too long (`Err`).
async fn keep_alive(
    client: &mut Client,
    config: &RegistryConfig,
    lease: i64,
    records: &mut watch::Receiver<ExecutorRecord>,
    load: &LoadReport,
    stopped: &mut watch::Receiver<bool>,
) -> std::result::Result<(), String> {
    let (mut keeper, mut responses) = client
        .lease_keep_alive(lease)
        .await
        .map_err(|error| error.to_string())?;
    let period = config.lease_ttl / 3;
    let next_renewal = || {
        let jitter = rand::rng().random_range(Duration::ZERO..period / 5);
        tokio::time::Instant::now() + period - jitter
    };
    let mut renew_at = next_renewal();
    loop {
        // Record changes (a burst of DDL, say) must not push the renewal back.
        tokio::select! {
            _ = stopped.changed() => return Ok(()),
            Ok(()) = records.changed() => {
                let record = records.borrow_and_update().clone();
                let options = Some(PutOptions::new().with_lease(lease));
                client
                    .put(config.executor_key(&record.id), record.encode_to_vec(), options)
                    .await
                    .map_err(|error| error.to_string())?;
                continue;
            }
            () = tokio::time::sleep_until(renew_at) => {}
        }
        renew_at = next_renewal();
        let renewed = async {
            keeper.keep_alive().await.map_err(|error| error.to_string())?;
            match tokio::time::timeout(period, responses.message()).await {
                Ok(Ok(Some(response))) if response.ttl() > 0 => Ok(()),
                Ok(Ok(Some(_))) => Err("the lease expired".to_string()),
                Ok(Ok(None)) => Err("the keep-alive stream ended".into()),
                Ok(Err(error)) => Err(error.to_string()),
                Err(_) => Err("no keep-alive answer".into()),
            }
        }
        .await;
        let outcome = if renewed.is_ok() { "renewed" } else { "failed" };
        LEASE_RENEWALS.add(1, &[opentelemetry::KeyValue::new("outcome", outcome)]);
        renewed?;
        // Bounded: a slow etcd must not hold back the next renewal.
        let id = records.borrow().id.clone();
        match tokio::time::timeout(period / 2, load.put(client, config, &id, lease)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => debug!(executor = %id, %error, "cannot report the load"),
            Err(_) => debug!(executor = %id, "reporting the load timed out"),
        }
    }
}

/// Keep-alives of the registry lease, by outcome (renewed or failed).
static LEASE_RENEWALS: std::sync::LazyLock<opentelemetry::metrics::Counter<u64>> = std::sync::LazyLock::new(|| {
    opentelemetry::global::meter("openduck")
        .u64_counter("openduck_registry_lease_renewals")
        .with_description("Keep-alives of an executor's registry lease in etcd, by outcome.")
        .build()
});
