//! An executor as the coordinator sees it: in this process (embedded mode)
//! or in another one, reached over Flight. Both answer the same calls, so the
//! coordinator has one code path for either.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::{Stream, StreamExt, TryStreamExt};
use openduck_executor::{
    CatalogFilter, Description, Executor, IngestTarget, KeyColumn, Session, Statement, TableEntry,
};
use openduck_proto::FragmentTicket;
use openduck_remote::{statement_of, RemoteExecutor};
use tracing::debug;

use crate::coordinator::ResultStream;
use crate::error::{Error, Result};

/// One executor: where it is, and which databases it serves.
#[derive(Debug, Clone)]
pub(crate) struct Site {
    id: String,
    /// The databases it writes.
    databases: Vec<String>,
    /// The databases it serves read-only, as a replica.
    replicas: Vec<String>,
    /// For a remote executor, the catalog version its record announced.
    catalog_version: u64,
    kind: SiteKind,
}

#[derive(Debug, Clone)]
enum SiteKind {
    Local(Arc<Executor>),
    Remote(Box<RemoteExecutor>),
}

/// A session held on a site.
#[derive(Debug, Clone)]
pub(crate) enum SiteSession {
    Local(Session),
    Remote(Arc<RemoteSession>),
}

impl SiteSession {
    pub(crate) fn id(&self) -> &str {
        match self {
            SiteSession::Local(session) => session.id(),
            SiteSession::Remote(session) => &session.id,
        }
    }
}

/// A session on a remote executor; closed there when the last clone goes.
#[derive(Debug)]
pub(crate) struct RemoteSession {
    id: String,
    executor: RemoteExecutor,
}

impl Drop for RemoteSession {
    fn drop(&mut self) {
        let (id, executor) = (std::mem::take(&mut self.id), self.executor.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = executor.close_session(&id).await {
                    debug!(session = %id, %error, "closing a remote session failed");
                }
            });
        }
    }
}

impl Site {
    /// An executor in this process.
    pub(crate) fn local(executor: Arc<Executor>) -> Self {
        let replicas = executor.replicas().to_vec();
        Site {
            id: executor.id().to_string(),
            databases: executor
                .databases()
                .iter()
                .filter(|db| !replicas.contains(db))
                .cloned()
                .collect(),
            replicas,
            catalog_version: 0,
            kind: SiteKind::Local(executor),
        }
    }

    /// An executor in another process, writing `databases` and serving
    /// `replicas` read-only.
    pub(crate) fn remote(
        executor: RemoteExecutor,
        databases: Vec<String>,
        replicas: Vec<String>,
        catalog_version: u64,
    ) -> Self {
        Site {
            id: executor.id().to_string(),
            databases,
            replicas,
            catalog_version,
            kind: SiteKind::Remote(Box::new(executor)),
        }
    }

    /// The same site with the databases it hosts now (an executor in this
    /// process may have cloned one).
    pub(crate) fn refreshed(&self) -> Self {
        match &self.kind {
            SiteKind::Local(executor) => Site::local(Arc::clone(executor)),
            SiteKind::Remote(_) => self.clone(),
        }
    }

    /// Goes up whenever a statement may have changed one of its catalogs.
    pub(crate) fn catalog_version(&self) -> u64 {
        match &self.kind {
            SiteKind::Local(executor) => *executor.catalog_changes().borrow(),
            SiteKind::Remote(_) => self.catalog_version,
        }
    }

    /// The same executor, announcing another catalog version.
    pub(crate) fn with_catalog_version(&self, catalog_version: u64) -> Self {
        Site {
            catalog_version,
            ..self.clone()
        }
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn databases(&self) -> &[String] {
        &self.databases
    }

    /// The databases it serves read-only.
    pub(crate) fn replicas(&self) -> &[String] {
        &self.replicas
    }

    /// Whether it writes `database` (or the database of a snapshot,
    /// `db@snapshot`).
    pub(crate) fn hosts(&self, database: &str) -> bool {
        let database = crate::route::snapshot_of(database).map_or(database, |(base, _)| base);
        self.databases.iter().any(|db| db == database)
    }

    /// Whether it can answer queries on `database`: it writes it or serves
    /// it as a replica.
    pub(crate) fn serves(&self, database: &str) -> bool {
        let base = crate::route::snapshot_of(database).map_or(database, |(base, _)| base);
        self.hosts(database) || self.replicas.iter().any(|db| db == base)
    }

    /// Where clients reach it directly; `None` in this process.
    pub(crate) fn endpoint(&self) -> Option<&str> {
        match &self.kind {
            SiteKind::Local(_) => None,
            SiteKind::Remote(remote) => Some(remote.endpoint()),
        }
    }

    /// Whether both are the same process at the same address.
    pub(crate) fn same_as(&self, other: &Site) -> bool {
        self.id == other.id
            && self.endpoint() == other.endpoint()
            && self.databases == other.databases
            && self.replicas == other.replicas
    }

    pub(crate) async fn describe(&self, statement: &Statement) -> Result<Description> {
        match &self.kind {
            SiteKind::Local(executor) => Ok(executor.describe(statement).await?),
            SiteKind::Remote(remote) => Ok(remote.describe(statement).await?),
        }
    }

    pub(crate) async fn query(&self, statement: Statement) -> Result<ResultStream> {
        match &self.kind {
            SiteKind::Local(executor) => Ok(executor.query(statement).await?.into()),
            SiteKind::Remote(remote) => {
                let (schema, rows) = remote.query(&statement).await?;
                Ok(ResultStream::new(schema, rows.map_err(Error::from).boxed()))
            }
        }
    }

    /// Streams the rows of a signed ticket for `fragment`: an executor in
    /// another process gets the ticket as it is, one in this process runs
    /// the fragment.
    pub(crate) async fn redeem(&self, ticket: &[u8], fragment: FragmentTicket) -> Result<ResultStream> {
        match &self.kind {
            SiteKind::Local(executor) => {
                let statement = statement_of(fragment).map_err(Error::Parameters)?;
                Ok(executor.query(statement).await?.into())
            }
            SiteKind::Remote(remote) => {
                let (schema, rows) = remote.redeem(ticket.to_vec()).await?;
                Ok(ResultStream::new(schema, rows.map_err(Error::from).boxed()))
            }
        }
    }

    pub(crate) async fn update(&self, statement: Statement) -> Result<Option<u64>> {
        match &self.kind {
            SiteKind::Local(executor) => Ok(executor.update(statement).await?),
            SiteKind::Remote(remote) => Ok(remote.update(&statement).await?),
        }
    }

    pub(crate) async fn cancel(&self, query_id: &str) -> Result<bool> {
        match &self.kind {
            SiteKind::Local(executor) => Ok(executor.cancel(query_id)),
            SiteKind::Remote(remote) => Ok(remote.cancel(query_id).await?),
        }
    }

    pub(crate) async fn open_session(&self) -> Result<SiteSession> {
        match &self.kind {
            SiteKind::Local(executor) => Ok(SiteSession::Local(executor.open_session()?)),
            SiteKind::Remote(remote) => Ok(SiteSession::Remote(Arc::new(RemoteSession {
                id: remote.open_session().await?,
                executor: RemoteExecutor::clone(remote),
            }))),
        }
    }

    pub(crate) async fn begin(&self, session_id: &str) -> Result<()> {
        match &self.kind {
            SiteKind::Local(executor) => Ok(executor.begin(session_id).await?),
            SiteKind::Remote(remote) => Ok(remote.begin(session_id).await?),
        }
    }

    pub(crate) async fn commit(&self, session_id: &str) -> Result<()> {
        match &self.kind {
            SiteKind::Local(executor) => Ok(executor.commit(session_id).await?),
            SiteKind::Remote(remote) => Ok(remote.commit(session_id).await?),
        }
    }

    /// Attaches a snapshot of a database this site serves, as catalog
    /// `database@snapshot`.
    pub(crate) async fn attach_snapshot(&self, name: &str) -> Result<()> {
        match &self.kind {
            SiteKind::Local(executor) => Ok(executor.attach_snapshot(name).await?),
            SiteKind::Remote(remote) => Ok(remote.attach_snapshot(name).await?),
        }
    }

    pub(crate) async fn rollback(&self, session_id: &str) -> Result<()> {
        match &self.kind {
            SiteKind::Local(executor) => Ok(executor.rollback(session_id).await?),
            SiteKind::Remote(remote) => Ok(remote.rollback(session_id).await?),
        }
    }

    pub(crate) async fn ingest<S, E>(&self, target: IngestTarget, schema: SchemaRef, batches: S) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<RecordBatch, E>> + Unpin + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        match &self.kind {
            SiteKind::Local(executor) => Ok(executor.ingest(target, schema, batches).await?),
            SiteKind::Remote(remote) => Ok(remote.ingest(&target, schema, batches).await?),
        }
    }

    pub(crate) async fn schemas(&self, filter: &CatalogFilter) -> Result<Vec<(String, String)>> {
        match &self.kind {
            SiteKind::Local(executor) => Ok(executor.schemas(filter).await?),
            SiteKind::Remote(remote) => Ok(remote.schemas(filter).await?),
        }
    }

    pub(crate) async fn tables(&self, filter: &CatalogFilter, with_schemas: bool) -> Result<Vec<TableEntry>> {
        match &self.kind {
            SiteKind::Local(executor) => Ok(executor.tables(filter, with_schemas).await?),
            SiteKind::Remote(remote) => Ok(remote.tables(filter, with_schemas).await?),
        }
    }

    pub(crate) async fn keys(&self) -> Result<Vec<KeyColumn>> {
        match &self.kind {
            SiteKind::Local(executor) => Ok(executor.keys().await?),
            SiteKind::Remote(remote) => Ok(remote.keys().await?),
        }
    }

    /// Interrupts running statements and checkpoints, for an executor in
    /// this process; a remote one shuts down on its own.
    pub(crate) async fn shutdown(&self, grace: std::time::Duration) -> Result<()> {
        match &self.kind {
            SiteKind::Local(executor) => Ok(executor.shutdown(grace).await?),
            SiteKind::Remote(_) => Ok(()),
        }
    }
}
