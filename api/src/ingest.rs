//! Bulk ingest: where a stream of rows goes.

/// What to do about the target table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestMode {
    /// Create the table; fail if it exists.
    Create,
    /// Append to the table; fail if it does not exist.
    Append,
    /// Drop the table if it exists, then create it.
    Replace,
    /// Create the table if it does not exist, then append.
    CreateOrAppend,
}

/// Where ingested rows go.
#[derive(Debug, Clone)]
pub struct IngestTarget {
    /// The database (DuckDB catalog).
    pub database: String,
    /// The schema; `None` for the database's default (`main`).
    pub schema: Option<String>,
    /// The table.
    pub table: String,
    /// What to do about the table.
    pub mode: IngestMode,
    /// A temporary table (visible only to the session that creates it).
    pub temporary: bool,
    /// The session to run in (required for temporary tables to outlive the call).
    pub session_id: Option<String>,
    /// The session has a transaction open: the ingest joins it instead of
    /// committing on its own.
    pub in_transaction: bool,
    /// The rows are another executor's query result (a join's small side,
    /// shipped): they are waited for however long they take between
    /// batches, where a client's are cut off after the executor's
    /// `--ingest-idle-timeout`. The query's own timeout bounds them.
    pub from_query: bool,
}

/// The rows of a fragment that an executor in another process runs, as a
/// second executor fetches them from it directly (a join's small side,
/// shipped to its large side): never through the coordinator.
#[derive(Clone)]
pub struct Source {
    /// The executor that runs the fragment.
    pub executor: String,
    /// Where it is reached (`grpc://host:port`, `grpc+tls://host:port`).
    pub endpoint: String,
    /// A ticket for the fragment, signed by a coordinator of the cluster.
    pub ticket: Vec<u8>,
}

/// Tickets stay out of logs.
impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("executor", &self.executor)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// What an ingest from a [`Source`] moved: rows appended, and the bytes of
/// their Arrow data as they crossed from one executor to the other.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transferred {
    /// Rows appended.
    pub rows: u64,
    /// Bytes of Arrow data received.
    pub bytes: u64,
}
