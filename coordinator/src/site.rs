//! An executor as the coordinator sees it: in this process (embedded mode)
//! or in another one, reached over Flight. Both answer the same calls, so the
//! coordinator has one code path for either.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::{FutureExt, Stream, StreamExt, TryStreamExt};
use openduck_api::{ExecutorApi, Hosting, IngestTarget, Statement};
use openduck_proto::FragmentTicket;
use openduck_remote::statement_of;
use tracing::debug;

use crate::error::{Error, Result};
use crate::results::ResultStream;

/// One executor: where it is, and which databases it serves.
#[derive(Debug, Clone)]
pub(crate) struct Site {
    /// The databases it writes, the ones it serves as a replica, and (for
    /// one in another process) the catalog version its record announced.
    hosting: Hosting,
    executor: Arc<dyn ExecutorApi>,
}

/// A session held on a site; closed there when the last clone goes.
#[derive(Debug, Clone)]
pub(crate) struct SiteSession(Arc<HeldSession>);

impl SiteSession {
    pub(crate) fn id(&self) -> &str {
        &self.0.id
    }
}

#[derive(Debug)]
struct HeldSession {
    id: String,
    executor: Arc<dyn ExecutorApi>,
}

impl Drop for HeldSession {
    fn drop(&mut self) {
        let (id, executor) = (std::mem::take(&mut self.id), Arc::clone(&self.executor));
        let mut close = async move {
            if let Err(error) = executor.close_session(&id).await {
                debug!(session = %id, %error, "closing a session failed");
            }
        }
        .boxed();
        // In this process the session closes at once; another process is
        // told in the background.
        if close.as_mut().now_or_never().is_none() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(close);
            }
        }
    }
}

impl Site {
    /// An executor in this process, hosting what it says it hosts.
    pub(crate) fn local(executor: Arc<dyn ExecutorApi>) -> Self {
        let hosting = executor.hosting().unwrap_or_else(|| Hosting {
            databases: Vec::new(),
            replicas: Vec::new(),
            catalog_version: 0,
        });
        Site { hosting, executor }
    }

    /// An executor in another process, hosting what its record announced.
    pub(crate) fn remote(executor: Arc<dyn ExecutorApi>, hosting: Hosting) -> Self {
        Site { hosting, executor }
    }

    /// The same site with the databases it hosts now (an executor in this
    /// process may have cloned one).
    pub(crate) fn refreshed(&self) -> Self {
        match self.executor.hosting() {
            Some(hosting) => Site {
                hosting,
                executor: Arc::clone(&self.executor),
            },
            None => self.clone(),
        }
    }

    /// Goes up whenever a statement may have changed one of its catalogs.
    pub(crate) fn catalog_version(&self) -> u64 {
        self.executor
            .hosting()
            .map_or(self.hosting.catalog_version, |hosting| hosting.catalog_version)
    }

    /// The same executor, announcing another catalog version.
    pub(crate) fn with_catalog_version(&self, catalog_version: u64) -> Self {
        let mut site = self.clone();
        site.hosting.catalog_version = catalog_version;
        site
    }

    pub(crate) fn id(&self) -> &str {
        self.executor.id()
    }

    pub(crate) fn databases(&self) -> &[String] {
        &self.hosting.databases
    }

    /// The databases it serves read-only.
    pub(crate) fn replicas(&self) -> &[String] {
        &self.hosting.replicas
    }

    /// Whether it writes `database` (or the database of a snapshot,
    /// `db@snapshot`).
    pub(crate) fn hosts(&self, database: &str) -> bool {
        let database = crate::route::snapshot_of(database).map_or(database, |(base, _)| base);
        self.databases().iter().any(|db| db == database)
    }

    /// Whether it can answer queries on `database`: it writes it or serves
    /// it as a replica.
    pub(crate) fn serves(&self, database: &str) -> bool {
        let base = crate::route::snapshot_of(database).map_or(database, |(base, _)| base);
        self.hosts(database) || self.replicas().iter().any(|db| db == base)
    }

    /// Where clients reach it directly; `None` in this process.
    pub(crate) fn endpoint(&self) -> Option<&str> {
        self.executor.endpoint()
    }

    /// Whether this is executor `id` at `endpoint`, serving what `hosting`
    /// says (its catalog version aside).
    pub(crate) fn is(&self, id: &str, endpoint: &str, hosting: &Hosting) -> bool {
        self.id() == id
            && self.endpoint() == Some(endpoint)
            && self.databases() == hosting.databases
            && self.replicas() == hosting.replicas
    }

    /// The executor, for every operation the site does not adapt.
    pub(crate) fn executor(&self) -> &dyn ExecutorApi {
        self.executor.as_ref()
    }

    /// Runs `statement` and streams its rows.
    pub(crate) async fn query(&self, statement: Statement) -> Result<ResultStream> {
        Ok(self.executor.query(statement).await?.into())
    }

    /// Streams the rows of a signed ticket for `fragment`: an executor in
    /// another process gets the ticket as it is, one in this process runs
    /// the fragment.
    pub(crate) async fn redeem(&self, ticket: &[u8], fragment: FragmentTicket) -> Result<ResultStream> {
        let statement = statement_of(fragment).map_err(Error::Parameters)?;
        Ok(self.executor.redeem(ticket, statement).await?.into())
    }

    /// Opens a session, closed when the last clone of it goes.
    pub(crate) async fn open_session(&self) -> Result<SiteSession> {
        Ok(SiteSession(Arc::new(HeldSession {
            id: self.executor.open_session().await?,
            executor: Arc::clone(&self.executor),
        })))
    }

    /// Appends `batches` to a table; the rows appended.
    pub(crate) async fn ingest<S, E>(&self, target: IngestTarget, schema: SchemaRef, batches: S) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<RecordBatch, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let batches = batches
            .map_err(|error| openduck_api::Error::new(openduck_api::ErrorKind::InvalidArgument, error.to_string()))
            .boxed();
        Ok(self.executor.ingest(target, schema, batches).await?)
    }
}
