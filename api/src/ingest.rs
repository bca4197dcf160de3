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
