//! Bulk inserts of a stream of Arrow record batches into a table, through DuckDB's own
//! parallel Arrow scan (`cpp/insert_arrow.cpp`): every thread of DuckDB converts batches
//! and writes row groups, and the rows keep the stream's order.

use std::ffi::c_char;
use std::ptr;

use arrow::array::AsArray;
use arrow::array::RecordBatchReader;
use arrow::compute::cast;
use arrow::datatypes::DataType;
use arrow::ffi_stream::FFI_ArrowArrayStream;
use duckdb::ffi;
use openduck_api::{quote_identifier, quote_literal};

use super::{c_string, take_c_string, Connection};
use crate::error::{Error, Result};

extern "C" {
    fn openduck_insert_arrow(
        connection: ffi::duckdb_connection,
        insert: *const c_char,
        stream: *mut FFI_ArrowArrayStream,
        rows: *mut u64,
        error: *mut *mut c_char,
    ) -> i32;
}

/// The table function `cpp/insert_arrow.cpp` replaces with DuckDB's Arrow scan of the stream.
const STREAM: &str = "openduck_arrow_stream()";

impl Connection {
    /// Inserts every batch `batches` yields into `catalog.schema.table`, in the
    /// connection's current transaction, and returns how many rows it inserted.
    ///
    /// When every field of the batches names a column of the table (exactly as written),
    /// the rows fill those columns by name, in any order, and the columns left out take
    /// their defaults (an `INSERT INTO t (a, c)` sent as an ingest). Otherwise they fill
    /// the table's columns in order, whatever the fields are called.
    ///
    /// `batches` is read from DuckDB's threads, one batch at a time; each batch must have
    /// exactly the types of its schema (DuckDB reads its buffers as the schema says).
    pub(crate) fn insert_batches(
        &self,
        catalog: &str,
        schema: &str,
        table: &str,
        batches: Box<dyn RecordBatchReader + Send>,
    ) -> Result<u64> {
        let columns = self.column_names(catalog, schema, table)?;
        let fields = batches.schema();
        let by_name = fields.fields().iter().all(|field| columns.contains(field.name()));
        let column_list = if by_name && !fields.fields().is_empty() {
            let names: Vec<String> = fields
                .fields()
                .iter()
                .map(|field| quote_identifier(field.name()))
                .collect();
            format!(" ({})", names.join(", "))
        } else {
            String::new()
        };
        let insert = c_string(&format!(
            "INSERT INTO {}.{}.{}{column_list} SELECT * FROM {STREAM}",
            quote_identifier(catalog),
            quote_identifier(schema),
            quote_identifier(table)
        ))?;
        let mut stream = FFI_ArrowArrayStream::new(batches);
        let mut rows = 0u64;
        let mut error: *mut c_char = ptr::null_mut();
        // SAFETY: a live connection used by this thread only; the stream outlives the
        // call (DuckDB reads it only while the statement runs and never releases it),
        // and its reader is Send (DuckDB's threads pull from it, one at a time).
        let state = unsafe { openduck_insert_arrow(self.raw(), insert.as_ptr(), &mut stream, &mut rows, &mut error) };
        if state != 0 {
            // SAFETY: null or a message allocated with malloc, freed once here.
            let message = unsafe { take_c_string(error) };
            return Err(Error::from_duckdb_message(message));
        }
        Ok(rows)
    }

    /// The columns of a table, as the connection's transaction sees it; none when it
    /// does not exist.
    fn column_names(&self, catalog: &str, schema: &str, table: &str) -> Result<Vec<String>> {
        let sql = format!(
            "SELECT column_name FROM duckdb_columns() \
             WHERE database_name = {} AND schema_name = {} AND table_name = {} ORDER BY column_index",
            quote_literal(catalog),
            quote_literal(schema),
            quote_literal(table)
        );
        let statements = self.statements(&sql)?;
        let prepared = statements.prepare(0)?;
        let mut result = prepared.execute()?;
        let mut names = Vec::new();
        while let Some(batch) = result.next_batch()? {
            let column = cast(batch.column(0), &DataType::Utf8)?;
            names.extend(column.as_string::<i32>().iter().flatten().map(str::to_string));
        }
        Ok(names)
    }
}
