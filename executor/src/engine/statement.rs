//! Prepared statements and their (streaming) results as Arrow.

use std::ffi::{c_char, CString};
use std::ptr;
use std::sync::Arc;

use arrow::array::{RecordBatch, RecordBatchOptions, StructArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ffi::{from_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use duckdb::ffi;

use super::chunks::Gatherer;
use super::{borrowed_c_string, c_string, take_c_string, Connection};
use crate::error::{Error, Result};

/// The statements of one SQL text, prepared one at a time.
pub(crate) struct Statements<'c> {
    conn: &'c Connection,
    raw: ffi::duckdb_extracted_statements,
    count: usize,
}

impl<'c> Statements<'c> {
    pub(super) fn extract(conn: &'c Connection, sql: &str) -> Result<Self> {
        let text = c_string(sql)?;
        let mut raw: ffi::duckdb_extracted_statements = ptr::null_mut();
        // SAFETY: the connection is alive; raw is destroyed in Drop (or below).
        let count = unsafe { ffi::duckdb_extract_statements(conn.raw(), text.as_ptr(), &mut raw) };
        let statements = Statements {
            conn,
            raw,
            count: count as usize,
        };
        if statements.count == 0 {
            // SAFETY: the message belongs to `raw`, copied before it is destroyed.
            let message = unsafe { borrowed_c_string(ffi::duckdb_extract_statements_error(raw)) };
            return Err(match message {
                Some(message) if !message.is_empty() => Error::from_duckdb_message(message),
                _ => Error::EmptyStatement,
            });
        }
        Ok(statements)
    }

    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Prepares statement `index` (binding names against the catalog as it is now).
    pub(crate) fn prepare(&self, index: usize) -> Result<Prepared<'c>> {
        let mut raw: ffi::duckdb_prepared_statement = ptr::null_mut();
        // SAFETY: index < count; the out statement is destroyed by Prepared.
        let state =
            unsafe { ffi::duckdb_prepare_extracted_statement(self.conn.raw(), self.raw, index as u64, &mut raw) };
        let prepared = Prepared { conn: self.conn, raw };
        if state != ffi::DuckDBSuccess {
            // SAFETY: the error text belongs to the statement, copied before its Drop.
            let message = unsafe { borrowed_c_string(ffi::duckdb_prepare_error(raw)) };
            return Err(self
                .conn
                .failure(Some(message.unwrap_or_else(|| "cannot prepare the statement".into()))));
        }
        Ok(prepared)
    }
}

impl Drop for Statements<'_> {
    fn drop(&mut self) {
        // SAFETY: created in extract, destroyed once.
        unsafe { ffi::duckdb_destroy_extracted(&mut self.raw) };
    }
}

/// What a statement does, as far as routing and result handling care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatementKind {
    /// Returns rows (SELECT, EXPLAIN, PRAGMA, CALL, ...).
    Query,
    /// Changes rows and reports how many (INSERT, UPDATE, DELETE).
    Dml,
    /// Changes a connection's settings (SET, USE, RESET).
    Session,
    /// BEGIN, COMMIT, ROLLBACK.
    Transaction,
    /// Everything else (DDL, COPY, ATTACH, ...).
    Other,
}

/// A prepared statement of a connection.
pub(crate) struct Prepared<'c> {
    conn: &'c Connection,
    pub(super) raw: ffi::duckdb_prepared_statement,
}

impl Prepared<'_> {
    pub(crate) fn kind(&self) -> StatementKind {
        // SAFETY: a successfully prepared statement.
        let kind = unsafe { ffi::duckdb_prepared_statement_type(self.raw) };
        match kind {
            ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SELECT
            | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXPLAIN
            | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_PRAGMA
            | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CALL
            | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_RELATION => StatementKind::Query,
            ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_INSERT
            | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_UPDATE
            | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DELETE => StatementKind::Dml,
            ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SET
            | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_VARIABLE_SET => StatementKind::Session,
            ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_TRANSACTION => StatementKind::Transaction,
            _ => StatementKind::Other,
        }
    }

    pub(crate) fn parameter_count(&self) -> usize {
        // SAFETY: a successfully prepared statement.
        unsafe { ffi::duckdb_nparams(self.raw) as usize }
    }

    /// The parameters' types as Arrow fields `$1`, `$2`, ...; a parameter whose
    /// type DuckDB cannot infer (`SELECT ?`) is typed `Null`.
    pub(crate) fn parameter_schema(&self) -> Schema {
        let options = ArrowOptions::of_connection(self.conn);
        let fields: Vec<Field> = (1..=self.parameter_count())
            .map(|index| {
                // SAFETY: 1 <= index <= nparams; null means "unresolved".
                let logical = unsafe { ffi::duckdb_param_logical_type(self.raw, index as u64) };
                let name = format!("${index}");
                let data_type = if logical.is_null() {
                    DataType::Null
                } else {
                    let mut types = LogicalTypes(vec![logical]);
                    arrow_schema(&options, &mut types.0, std::slice::from_ref(&name))
                        .map(|(schema, _)| schema.field(0).data_type().clone())
                        .unwrap_or(DataType::Null)
                };
                Field::new(name, data_type, true)
            })
            .collect();
        Schema::new(fields)
    }

    /// The schema of the rows the statement returns, known before it runs;
    /// `None` when it depends on parameters that are not bound yet
    /// (`SELECT ? + 1`): DuckDB resolves those types only when it executes.
    pub(crate) fn result_schema(&self) -> Result<Option<SchemaRef>> {
        // SAFETY: a successfully prepared statement; indexes below the count.
        let count = unsafe { ffi::duckdb_prepared_statement_column_count(self.raw) } as usize;
        let mut names = Vec::with_capacity(count);
        let mut types = LogicalTypes(Vec::with_capacity(count));
        for index in 0..count {
            let name = unsafe {
                take_c_string(ffi::duckdb_prepared_statement_column_name(self.raw, index as u64) as *mut c_char)
            };
            names.push(name);
            types
                .0
                .push(unsafe { ffi::duckdb_prepared_statement_column_logical_type(self.raw, index as u64) });
        }
        let resolved = types.0.iter().all(|&logical| {
            // SAFETY: each type is a valid handle owned by `types`.
            !logical.is_null() && unsafe { ffi::duckdb_get_type_id(logical) } != ffi::DUCKDB_TYPE_DUCKDB_TYPE_INVALID
        });
        if !resolved {
            return Ok(None);
        }
        let options = ArrowOptions::of_connection(self.conn);
        let (schema, _) = arrow_schema(&options, &mut types.0, &names)?;
        Ok(Some(Arc::new(schema)))
    }

    /// Checks that `params` has one column per parameter.
    pub(crate) fn check_parameters(&self, params: &RecordBatch) -> Result<()> {
        let expected = self.parameter_count();
        if params.num_columns() != expected {
            return Err(Error::ParameterCount {
                expected,
                given: params.num_columns(),
            });
        }
        Ok(())
    }

    /// Binds parameter row `row` of `params` (one column per parameter).
    pub(crate) fn bind_row(&self, params: &RecordBatch, row: usize) -> Result<()> {
        self.check_parameters(params)?;
        for (index, column) in params.columns().iter().enumerate() {
            super::bind::bind_value(self.raw, index + 1, column.as_ref(), row)?;
        }
        Ok(())
    }

    /// Runs the statement to completion (the result is materialized).
    pub(crate) fn execute(&self) -> Result<QueryResult<'_>> {
        self.run(false)
    }

    /// Starts the statement; rows are produced as the result is fetched.
    pub(crate) fn execute_streaming(&self) -> Result<QueryResult<'_>> {
        self.run(true)
    }

    /// Runs through DuckDB's pending-query API so that no interrupt is lost:
    /// DuckDB clears its interrupt flag when a query begins, that is while the
    /// pending result is created. An interrupt from before that point is seen
    /// in the connection's sticky flag right after it; one from after it
    /// reaches DuckDB, which now keeps it until the query ends.
    fn run(&self, streaming: bool) -> Result<QueryResult<'_>> {
        let mut pending: ffi::duckdb_pending_result = ptr::null_mut();
        // SAFETY: a prepared statement with its parameters bound; the pending
        // result is destroyed on every path below.
        let state = unsafe {
            if streaming {
                ffi::duckdb_pending_prepared_streaming(self.raw, &mut pending)
            } else {
                ffi::duckdb_pending_prepared(self.raw, &mut pending)
            }
        };
        if state != ffi::DuckDBSuccess {
            let message = unsafe { borrowed_c_string(ffi::duckdb_pending_error(pending)) };
            unsafe { ffi::duckdb_destroy_pending(&mut pending) };
            return Err(self.conn.failure(message));
        }
        if self.conn.cancelled() {
            // Creating the pending query already scheduled its tasks and
            // cleared DuckDB's flag: interrupt again so that they stop.
            self.conn.interrupt_own_query();
            unsafe { ffi::duckdb_destroy_pending(&mut pending) };
            return Err(self.conn.interruption());
        }
        let mut raw: ffi::duckdb_result = unsafe { std::mem::zeroed() };
        // SAFETY: a valid pending result; the result outlives it (it holds what it needs).
        let state = unsafe { ffi::duckdb_execute_pending(pending, &mut raw) };
        unsafe { ffi::duckdb_destroy_pending(&mut pending) };
        QueryResult::new(self.conn, raw, state)
    }
}

impl Drop for Prepared<'_> {
    fn drop(&mut self) {
        // SAFETY: destroyed once; valid even when preparing failed.
        unsafe { ffi::duckdb_destroy_prepare(&mut self.raw) };
    }
}

/// The result of an executed statement, read as Arrow record batches.
pub(crate) struct QueryResult<'p> {
    raw: ffi::duckdb_result,
    options: ArrowOptions,
    schema: SchemaRef,
    ffi_schema: FFI_ArrowSchema,
    chunks: Gatherer,
    conn: &'p Connection,
}

impl<'p> QueryResult<'p> {
    fn new(conn: &'p Connection, mut raw: ffi::duckdb_result, state: ffi::duckdb_state) -> Result<Self> {
        if state != ffi::DuckDBSuccess {
            // SAFETY: the message belongs to the result; copied before destroying it.
            let message = unsafe { borrowed_c_string(ffi::duckdb_result_error(&mut raw)) };
            unsafe { ffi::duckdb_destroy_result(&mut raw) };
            return Err(conn.failure(message));
        }
        // SAFETY: a successful result; column indexes below its column count.
        let options = ArrowOptions(unsafe { ffi::duckdb_result_get_arrow_options(&mut raw) });
        let count = unsafe { ffi::duckdb_column_count(&mut raw) } as usize;
        let mut names = Vec::with_capacity(count);
        let mut types = LogicalTypes(Vec::with_capacity(count));
        for index in 0..count {
            names.push(
                unsafe { borrowed_c_string(ffi::duckdb_column_name(&mut raw, index as u64)) }.unwrap_or_default(),
            );
            types
                .0
                .push(unsafe { ffi::duckdb_column_logical_type(&mut raw, index as u64) });
        }
        let (schema, ffi_schema) = match arrow_schema(&options, &mut types.0, &names) {
            Ok(converted) => converted,
            Err(error) => {
                unsafe { ffi::duckdb_destroy_result(&mut raw) };
                return Err(error);
            }
        };
        Ok(QueryResult {
            raw,
            options,
            schema: Arc::new(schema),
            ffi_schema,
            chunks: Gatherer::new(std::mem::take(&mut types.0)),
            conn,
        })
    }

    pub(crate) fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// Rows inserted, updated or deleted by a DML statement.
    pub(crate) fn rows_changed(&mut self) -> u64 {
        // SAFETY: a valid result.
        unsafe { ffi::duckdb_rows_changed(&mut self.raw) }
    }

    /// The next batch of rows (up to one DuckDB vector, 2048 rows; small
    /// chunks gathered, see `chunks`), `None` at the end, or the error that
    /// stopped the query.
    pub(crate) fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let raw = self.raw;
        // SAFETY: a valid result; each chunk is owned by the gatherer.
        let Some(chunk) = self.chunks.next(|| unsafe { ffi::duckdb_fetch_chunk(raw) }) else {
            let message = unsafe { borrowed_c_string(ffi::duckdb_result_error(&mut self.raw)) };
            return match message {
                Some(message) => Err(self.conn.failure(Some(message))),
                None => Ok(None),
            };
        };
        let rows = chunk.rows();
        let mut array = FFI_ArrowArray::empty();
        // SAFETY: a valid chunk of this result's columns, destroyed after.
        let error = unsafe {
            ffi::duckdb_data_chunk_to_arrow(
                self.options.0,
                chunk.raw(),
                (&mut array as *mut FFI_ArrowArray).cast::<ffi::ArrowArray>(),
            )
        };
        drop(chunk);
        check_error_data(error)?;
        // SAFETY: DuckDB filled `array` to match `ffi_schema` (both from the same
        // options and column types); from_ffi takes ownership of the array.
        let data = unsafe { from_ffi(array, &self.ffi_schema) }?;
        let columns = StructArray::from(data).columns().to_vec();
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(Some(RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            columns,
            &options,
        )?))
    }
}

impl Drop for QueryResult<'_> {
    fn drop(&mut self) {
        // SAFETY: destroyed once.
        unsafe { ffi::duckdb_destroy_result(&mut self.raw) };
    }
}

/// DuckDB's Arrow conversion settings of one connection or result.
struct ArrowOptions(ffi::duckdb_arrow_options);

impl ArrowOptions {
    fn of_connection(conn: &Connection) -> Self {
        let mut raw: ffi::duckdb_arrow_options = ptr::null_mut();
        // SAFETY: the connection is alive; destroyed in Drop.
        unsafe { ffi::duckdb_connection_get_arrow_options(conn.raw(), &mut raw) };
        ArrowOptions(raw)
    }
}

impl Drop for ArrowOptions {
    fn drop(&mut self) {
        // SAFETY: destroyed once.
        unsafe { ffi::duckdb_destroy_arrow_options(&mut self.0) };
    }
}

/// Owned logical types, destroyed on drop.
struct LogicalTypes(Vec<ffi::duckdb_logical_type>);

impl Drop for LogicalTypes {
    fn drop(&mut self) {
        for logical in &mut self.0 {
            if !logical.is_null() {
                // SAFETY: each type is owned here and destroyed once.
                unsafe { ffi::duckdb_destroy_logical_type(logical) };
            }
        }
    }
}

/// Converts DuckDB column types to an Arrow schema (and its C form, which
/// `from_ffi` needs to import arrays).
fn arrow_schema(
    options: &ArrowOptions,
    types: &mut [ffi::duckdb_logical_type],
    names: &[String],
) -> Result<(Schema, FFI_ArrowSchema)> {
    let names: Vec<CString> = names.iter().map(|name| c_string(name)).collect::<Result<_>>()?;
    let mut name_ptrs: Vec<*const c_char> = names.iter().map(|name| name.as_ptr()).collect();
    let mut ffi_schema = FFI_ArrowSchema::empty();
    // SAFETY: `types` and `name_ptrs` have the same length and outlive the call.
    let error = unsafe {
        ffi::duckdb_to_arrow_schema(
            options.0,
            types.as_mut_ptr(),
            name_ptrs.as_mut_ptr(),
            types.len() as u64,
            (&mut ffi_schema as *mut FFI_ArrowSchema).cast::<ffi::ArrowSchema>(),
        )
    };
    check_error_data(error)?;
    let schema = Schema::try_from(&ffi_schema)?;
    Ok((schema, ffi_schema))
}

pub(super) fn check_error_data(mut error: ffi::duckdb_error_data) -> Result<()> {
    if error.is_null() {
        return Ok(());
    }
    // SAFETY: a valid error data object, destroyed once.
    let result = unsafe {
        if ffi::duckdb_error_data_has_error(error) {
            let message = borrowed_c_string(ffi::duckdb_error_data_message(error))
                .unwrap_or_else(|| "Arrow conversion failed".into());
            Err(Error::from_duckdb_message(readable_error(&message)))
        } else {
            Ok(())
        }
    };
    unsafe { ffi::duckdb_destroy_error_data(&mut error) };
    result
}

impl std::fmt::Debug for QueryResult<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryResult")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// DuckDB reports some errors as JSON (`{"exception_type":"Not implemented",
/// "exception_message":"..."}`); turns them into its usual `<Type> Error: <message>`.
fn readable_error(raw: &str) -> String {
    if !raw.starts_with('{') {
        return raw.to_string();
    }
    match (
        json_string_field(raw, "exception_type"),
        json_string_field(raw, "exception_message"),
    ) {
        (Some(kind), Some(message)) => format!("{kind} Error: {message}"),
        (None, Some(message)) => message,
        _ => raw.to_string(),
    }
}

/// The value of a top-level string field of a flat JSON object.
fn json_string_field(json: &str, key: &str) -> Option<String> {
    let start = json.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let mut value = String::new();
    let mut chars = json[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(value),
            '\\' => match chars.next()? {
                'n' => value.push('\n'),
                't' => value.push('\t'),
                other => value.push(other),
            },
            other => value.push(other),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::readable_error;

    #[test]
    fn unwraps_json_errors() {
        let raw = r#"{"exception_type":"Not implemented","exception_message":"Unsupported \"x\" type"}"#;
        assert_eq!(readable_error(raw), "Not implemented Error: Unsupported \"x\" type");
        assert_eq!(readable_error("Parser Error: boom"), "Parser Error: boom");
    }
}
