//! Which executors exist and which databases each serves.
//!
//! Embedded mode has one fixed executor in this process. In a cluster, the
//! etcd [`Membership`] says who is registered; the registry turns each
//! record into a [`Site`] with a Flight client, keeping the clients of
//! executors that did not change.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openduck_api::{ExecutorApi, Hosting};
use openduck_proto::{ExecutorRecord, Role};
use openduck_registry::Membership;
use openduck_remote::{ClientTls, RemoteExecutor, TicketSigner};
use parking_lot::{Mutex, RwLock};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::site::Site;

/// How long reads avoid an executor that a call could not reach: the
/// default registry lease, by when a dead one has left the registry. A
/// restarted one takes reads again after that (writes at once).
const UNREACHABLE_FOR: Duration = Duration::from_secs(10);

/// The executors a coordinator routes to.
#[derive(Debug)]
pub struct Registry {
    sites: Arc<RwLock<Arc<Vec<Site>>>>,
    /// Executors a call just failed to reach, and since when: reads go to
    /// the others for [`UNREACHABLE_FOR`], without waiting for the lease of
    /// a dead one to run out.
    unreachable: Mutex<HashMap<String, Instant>>,
    /// Every database any executor served since start: statements naming
    /// one that is gone fail with "no executor serves database X".
    seen: Arc<RwLock<BTreeSet<String>>>,
    follower: Option<JoinHandle<()>>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(task) = &self.follower {
            task.abort();
        }
    }
}

impl Registry {
    /// A fixed registry of executors in this process.
    pub fn embedded(executors: Vec<Arc<dyn ExecutorApi>>) -> Self {
        let sites: Vec<Site> = executors.into_iter().map(Site::local).collect();
        let seen = sites.iter().flat_map(served).collect();
        Registry {
            sites: Arc::new(RwLock::new(Arc::new(sites))),
            unreachable: Mutex::default(),
            seen: Arc::new(RwLock::new(seen)),
            follower: None,
        }
    }

    /// A registry that follows `membership`, reaching executors with
    /// requests signed by `signer`, over TLS only when given `tls`. Must be
    /// called inside a Tokio runtime.
    pub fn cluster(
        membership: Membership,
        signer: TicketSigner,
        max_message_size: usize,
        tls: Option<ClientTls>,
    ) -> Self {
        let sites = Arc::new(RwLock::new(Arc::new(Vec::new())));
        let seen = Arc::new(RwLock::new(BTreeSet::new()));
        let mut changes = membership.subscribe();
        let (follow, follow_seen) = (Arc::clone(&sites), Arc::clone(&seen));
        let update = move |records: &openduck_registry::Records| {
            let old = Arc::clone(&follow.read());
            let next = sites_of(records.values(), &old, &signer, max_message_size, tls.as_ref());
            follow_seen.write().extend(next.iter().flat_map(served));
            *follow.write() = Arc::new(next);
        };
        update(&membership.current());
        let follower = tokio::spawn(async move {
            let _membership = membership;
            while changes.changed().await.is_ok() {
                let records = openduck_registry::Records::clone(&changes.borrow_and_update());
                update(&records);
            }
        });
        Registry {
            sites,
            unreachable: Mutex::default(),
            seen,
            follower: Some(follower),
        }
    }

    /// Takes in the databases the executors of this process host now
    /// (after `CREATE DATABASE ... FROM`); a cluster learns of them from etcd.
    pub(crate) fn refresh_local(&self) {
        if self.follower.is_some() {
            return;
        }
        let next: Vec<Site> = self.sites.read().iter().map(Site::refreshed).collect();
        self.seen.write().extend(next.iter().flat_map(served));
        *self.sites.write() = Arc::new(next);
    }

    /// Every executor, now.
    pub(crate) fn sites(&self) -> Arc<Vec<Site>> {
        Arc::clone(&self.sites.read())
    }

    /// The executor with this id.
    pub(crate) fn site(&self, id: &str) -> Option<Site> {
        self.sites.read().iter().find(|site| site.id() == id).cloned()
    }

    /// The executor that serves `database`.
    pub(crate) fn site_for(&self, database: &str) -> Option<Site> {
        self.sites.read().iter().find(|site| site.hosts(database)).cloned()
    }

    /// Whether any executor serves a database as a replica.
    pub(crate) fn has_replicas(&self) -> bool {
        self.sites.read().iter().any(|site| !site.replicas().is_empty())
    }

    /// An executor that can answer a read of every one of `databases` (their
    /// writer or a replica), one of them at random; `preferred` when it
    /// is one of them.
    pub(crate) fn reader_for<'a>(
        &self,
        databases: impl Iterator<Item = &'a String> + Clone,
        preferred: Option<&str>,
    ) -> Option<Site> {
        let sites = self.sites.read();
        let mut able: Vec<&Site> = sites
            .iter()
            .filter(|site| databases.clone().all(|db| site.serves(db)))
            .collect();
        // A session's reads stay on its executor, reachable or not.
        if let Some(site) = able.iter().find(|site| Some(site.id()) == preferred) {
            return Some((*site).clone());
        }
        {
            let mut unreachable = self.unreachable.lock();
            unreachable.retain(|_, since| since.elapsed() < UNREACHABLE_FOR);
            if able.iter().any(|site| !unreachable.contains_key(site.id())) {
                able.retain(|site| !unreachable.contains_key(site.id()));
            } else if let Some(longest) = able.iter().min_by_key(|site| unreachable.get(site.id())) {
                // None answered lately: the one that failed longest ago.
                able = vec![*longest];
            }
        }
        if able.is_empty() {
            return None;
        }
        // At random, not in turn: a client whose queries each ask twice (to
        // describe, then to plan) would otherwise always land on the same one.
        let pick = rand::Rng::random_range(&mut rand::rng(), 0..able.len());
        Some(able[pick].clone())
    }

    /// Notes that a call could not reach executor `id`: reads avoid it for
    /// a while when another executor can answer them.
    pub(crate) fn unreachable(&self, id: &str, error: &dyn std::fmt::Display) {
        warn!(executor = id, %error, "executor unreachable; reading from the others for now");
        self.unreachable.lock().insert(id.to_string(), Instant::now());
    }

    /// Changes whenever an executor joins or leaves, or says that its
    /// catalog may have changed: mirrors of the catalogs keyed by it stay true.
    pub(crate) fn catalog_epoch(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        for site in self.sites.read().iter() {
            (site.id(), site.databases(), site.replicas(), site.catalog_version()).hash(&mut hasher);
        }
        hasher.finish()
    }

    /// Every database served now or since start, sorted.
    pub(crate) fn known_databases(&self) -> Vec<String> {
        self.seen.read().iter().cloned().collect()
    }

    /// Every database served, sorted, each once.
    pub(crate) fn databases(&self) -> Vec<String> {
        let mut names: Vec<String> = self.sites.read().iter().flat_map(served).collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Every database a site writes or replicates.
fn served(site: &Site) -> impl Iterator<Item = String> + '_ {
    site.databases().iter().chain(site.replicas()).cloned()
}

/// Sites for `records`, reusing the clients of unchanged ones.
fn sites_of<'a>(
    records: impl Iterator<Item = &'a ExecutorRecord>,
    old: &[Site],
    signer: &TicketSigner,
    max_message_size: usize,
    tls: Option<&ClientTls>,
) -> Vec<Site> {
    let mut sites = Vec::new();
    for record in records {
        let with_role = |role: Role| -> Vec<String> {
            record
                .databases
                .iter()
                .filter(|db| db.role() == role)
                .map(|db| db.name.clone())
                .collect()
        };
        let (databases, replicas) = (with_role(Role::Writer), with_role(Role::Reader));
        let hosting = Hosting {
            databases,
            replicas,
            catalog_version: record.catalog_version,
        };
        // Unchanged: keep its client (and connection); take the new catalog version.
        if let Some(known) = old
            .iter()
            .find(|known| known.is(&record.id, &record.endpoint, &hosting))
        {
            sites.push(known.with_catalog_version(record.catalog_version));
            continue;
        }
        match RemoteExecutor::connect(&record.id, &record.endpoint, signer.clone(), max_message_size, tls) {
            Ok(remote) => {
                let site = Site::remote(Arc::new(remote), hosting);
                if old.iter().any(|known| known.id() == site.id()) {
                    info!(executor = %record.id, databases = ?site.databases(), replicas = ?site.replicas(), "executor changed");
                } else {
                    info!(executor = %record.id, endpoint = %record.endpoint, databases = ?site.databases(), replicas = ?site.replicas(), "executor joined");
                }
                sites.push(site);
            }
            Err(error) => warn!(executor = %record.id, %error, "ignoring an executor"),
        }
    }
    for gone in old.iter().filter(|site| !sites.iter().any(|s| s.id() == site.id())) {
        info!(executor = gone.id(), "executor left");
    }
    sites
}
