//! The operations of an executor, as one trait.

use std::fmt::Debug;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::stream::BoxStream;

use crate::catalog::{CatalogFilter, KeyColumn, TableEntry};
use crate::error::{Error, ErrorKind, Result};
use crate::ingest::{IngestTarget, Source, Transferred};
use crate::statement::{Description, Statement};
use crate::statistics::{TableName, TableStatistics};

/// Record batches as they come: from an executor's result, or into an ingest.
pub type Batches = BoxStream<'static, Result<RecordBatch>>;

/// The rows of a statement: their schema first, then the batches as the
/// executor produces them. Dropping them stops the statement.
pub struct Rows {
    /// The schema of every batch.
    pub schema: SchemaRef,
    /// The batches.
    pub batches: Batches,
}

impl std::fmt::Debug for Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rows")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// What an executor in this process hosts right now; an executor in another
/// process announces the same in the cluster's registry instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hosting {
    /// The databases it writes.
    pub databases: Vec<String>,
    /// The databases it serves read-only, as a replica.
    pub replicas: Vec<String>,
    /// Goes up whenever a statement may have changed one of its catalogs.
    pub catalog_version: u64,
}

/// Everything an executor does for a coordinator, declared once.
///
/// The DuckDB executor implements it in the coordinator's process; the
/// remote client implements it over Arrow Flight; the executor's Flight
/// service answers the wire by calling an implementation. A new operation is
/// a method here, its two implementations and its message on the wire.
#[async_trait::async_trait]
pub trait ExecutorApi: Debug + Send + Sync {
    /// The executor's id, unique in its cluster.
    fn id(&self) -> &str;

    /// Where clients reach it directly with a ticket; `None` in this process.
    fn endpoint(&self) -> Option<&str> {
        None
    }

    /// What it hosts, for an executor in this process.
    fn hosting(&self) -> Option<Hosting> {
        None
    }

    /// Result and parameter schemas of `statement`, without running it.
    async fn describe(&self, statement: &Statement) -> Result<Description>;

    /// Runs `statement` and streams its rows, with backpressure.
    async fn query(&self, statement: Statement) -> Result<Rows>;

    /// Runs the fragment of a ticket a coordinator signed: `statement` is
    /// what `signed` says, verified already. An executor in another process
    /// gets the signed bytes as they are and checks them itself; one in this
    /// process runs the statement.
    async fn redeem(&self, signed: &[u8], statement: Statement) -> Result<Rows> {
        let _ = signed;
        self.query(statement).await
    }

    /// Runs a statement whose rows are not wanted; the rows it changed, when
    /// it says.
    async fn update(&self, statement: Statement) -> Result<Option<u64>>;

    /// Appends `batches`, of `schema`, to a table in one transaction; the rows
    /// appended. A failing stream appends nothing.
    async fn ingest(&self, target: IngestTarget, schema: SchemaRef, batches: Batches) -> Result<u64>;

    /// Where another executor fetches the rows of `statement` from this
    /// one directly: its endpoint and a ticket signed for it. `None` for an
    /// executor in this process, which has no endpoint.
    fn source(&self, statement: &Statement) -> Option<Result<Source>> {
        let _ = statement;
        None
    }

    /// Appends the rows of `source`, a fragment another executor runs, to a
    /// table, fetching them from that executor directly; what crossed. A
    /// failing source appends nothing. `Unimplemented` where this executor
    /// cannot reach the source (in this process, or without the cluster's
    /// CA): the caller moves the rows itself then.
    async fn ingest_from(&self, target: IngestTarget, source: Source) -> Result<Transferred> {
        let _ = target;
        Err(Error::new(
            ErrorKind::Unimplemented,
            format!(
                "this executor does not fetch from executor {:?} directly",
                source.executor
            ),
        ))
    }

    /// Stops the statement running under `query_id`; whether one was.
    async fn cancel(&self, query_id: &str) -> Result<bool>;

    /// Sets a connection aside for one client (its transaction, temporary
    /// tables and settings); the id statements name it by.
    async fn open_session(&self) -> Result<String>;

    /// Closes a session, rolling back what it left open.
    async fn close_session(&self, session_id: &str) -> Result<()>;

    /// Begins a transaction in a session; with `read_only`, one in which
    /// every write fails with `PermissionDenied` (a read-only user's).
    async fn begin(&self, session_id: &str, read_only: bool) -> Result<()>;

    /// Commits the transaction of a session.
    async fn commit(&self, session_id: &str) -> Result<()>;

    /// Rolls the transaction of a session back.
    async fn rollback(&self, session_id: &str) -> Result<()>;

    /// Attaches a snapshot of a database it serves, read-only, as catalog
    /// `database@snapshot`.
    async fn attach_snapshot(&self, name: &str) -> Result<()>;

    /// `(database, schema)` pairs matching `filter`.
    async fn schemas(&self, filter: &CatalogFilter) -> Result<Vec<(String, String)>>;

    /// Tables and views matching `filter`, with their Arrow schemas when
    /// `with_schemas`.
    async fn tables(&self, filter: &CatalogFilter, with_schemas: bool) -> Result<Vec<TableEntry>>;

    /// Every column of every primary and foreign key.
    async fn keys(&self) -> Result<Vec<KeyColumn>>;

    /// Statistics of a table or view: its rows and, per column, NULLs,
    /// distinct values (estimated) and bounds. Scans it once; `NotFound`
    /// when it does not exist.
    async fn table_statistics(&self, table: &TableName) -> Result<TableStatistics>;

    /// Interrupts running statements and checkpoints within `grace`, for an
    /// executor in this process; one in another process shuts down on its own.
    async fn shutdown(&self, grace: Duration) -> Result<()> {
        let _ = grace;
        Ok(())
    }
}
