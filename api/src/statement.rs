//! Statements and what describing one tells.

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};

use crate::Grants;

/// A statement to run: SQL in DuckDB's dialect, the database unqualified
/// names resolve in, and optional parameter rows (one execution per row).
#[derive(Debug, Clone)]
pub struct Statement {
    /// The default database of the statement.
    pub database: String,
    /// One or more SQL statements separated by `;`. Parameters are allowed
    /// only with a single statement.
    pub sql: String,
    /// Parameter values, one column per parameter, one row per execution.
    pub parameters: Option<RecordBatch>,
    /// The schema unqualified names resolve in; `None` for the database's default.
    pub schema: Option<String>,
    /// Run in this session (see [`ExecutorApi::open_session`]) instead of
    /// on a pooled connection.
    ///
    /// [`ExecutorApi::open_session`]: crate::ExecutorApi::open_session
    pub session_id: Option<String>,
    /// An id under which [`ExecutorApi::cancel`] can stop the statement.
    ///
    /// [`ExecutorApi::cancel`]: crate::ExecutorApi::cancel
    pub query_id: Option<String>,
    /// A read-only user's statement: it must be one query, and runs in a
    /// read-only transaction (its own, or its client's read-only one), so
    /// that any write, a sequence's `nextval` included, fails with
    /// `PermissionDenied`.
    pub read_only: bool,
    /// The databases its user was granted, when not all: a statement that
    /// reads or changes any other fails with `PermissionDenied` before it
    /// runs (DuckDB's binder tells which it uses, through views too).
    pub grants: Option<Grants>,
    /// The most bytes (Arrow memory) of rows the statement may return. One
    /// that returns more fails with `ResourceExhausted` and nothing it did
    /// stands: its own transaction rolls back, and a client's transaction it
    /// ran in fails. The coordinator sets it for statements whose result it
    /// holds (an `INSERT ... RETURNING` runs when it is planned).
    pub result_limit: Option<u64>,
}

/// The bytes of data `batch` holds, as counted against
/// [`Statement::result_limit`]: the slices its columns take, not the
/// buffers they may share with others (rows decoded from one Flight
/// message share its whole body).
pub fn result_bytes(batch: &arrow::array::RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|column| {
            column
                .to_data()
                .get_slice_memory_size()
                .unwrap_or_else(|_| column.get_array_memory_size())
        })
        .sum()
}

impl Statement {
    /// A statement without parameters.
    pub fn new(database: impl Into<String>, sql: impl Into<String>) -> Self {
        Statement {
            database: database.into(),
            sql: sql.into(),
            parameters: None,
            schema: None,
            session_id: None,
            query_id: None,
            read_only: false,
            grants: None,
            result_limit: None,
        }
    }

    /// The same statement with parameter rows bound.
    pub fn with_parameters(mut self, parameters: RecordBatch) -> Self {
        self.parameters = Some(parameters);
        self
    }
}

/// What a statement would return, known without running it.
#[derive(Debug, Clone)]
pub struct Description {
    /// The schema of its rows (for DDL and DML, DuckDB's `Count` or `Success`
    /// column); `None` when it depends on parameters not bound yet
    /// (`SELECT ? + 1`), or on objects that earlier statements of the same
    /// text create.
    pub schema: Option<SchemaRef>,
    /// Its parameters, `$1`, `$2`, ...; `Null`-typed where DuckDB cannot infer a type.
    pub parameters: Schema,
    /// Whether the text is one statement that only reads (SELECT, EXPLAIN,
    /// PRAGMA, CALL, ...). Anything else changes something and must not wait
    /// for a client to fetch its result before it takes effect.
    pub is_query: bool,
}
