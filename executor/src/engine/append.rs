//! Bulk appends of Arrow record batches into a table, through DuckDB's appender.

use std::ptr;

use arrow::array::{Array, RecordBatch, StructArray};
use arrow::datatypes::Schema;
use arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use duckdb::ffi;

use super::statement::check_error_data;
use super::{borrowed_c_string, c_string, Connection};
use crate::error::{Error, Result};

/// DuckDB's vector size: a data chunk holds at most this many rows.
const CHUNK_ROWS: usize = 2048;

/// Appends batches of one Arrow schema to one table, in the connection's
/// current transaction.
pub(crate) struct Appender<'c> {
    conn: &'c Connection,
    raw: ffi::duckdb_appender,
    converted: ffi::duckdb_arrow_converted_schema,
}

impl std::fmt::Debug for Appender<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appender").finish_non_exhaustive()
    }
}

impl<'c> Appender<'c> {
    pub(super) fn new(conn: &'c Connection, catalog: &str, schema: &str, table: &str, arrow: &Schema) -> Result<Self> {
        let (catalog, schema, table) = (c_string(catalog)?, c_string(schema)?, c_string(table)?);
        let mut appender = Appender {
            conn,
            raw: ptr::null_mut(),
            converted: ptr::null_mut(),
        };
        // SAFETY: the connection is alive; the appender is destroyed in Drop,
        // even when creating it fails.
        let state = unsafe {
            ffi::duckdb_appender_create_ext(
                conn.raw(),
                catalog.as_ptr(),
                schema.as_ptr(),
                table.as_ptr(),
                &mut appender.raw,
            )
        };
        if state != ffi::DuckDBSuccess {
            // The appender reports a missing table without DuckDB's usual
            // "Catalog Error:" prefix.
            return Err(match appender.error("cannot append to the table") {
                Error::DuckDb { message, .. } if message.contains("could not be found") => Error::DuckDb {
                    kind: crate::ErrorKind::NotFound,
                    message,
                },
                other => other,
            });
        }
        appender.choose_columns(arrow);
        let mut ffi_schema = FFI_ArrowSchema::try_from(arrow)?;
        // SAFETY: a valid schema that outlives the call; converted is destroyed in Drop.
        let error = unsafe {
            ffi::duckdb_schema_from_arrow(
                conn.raw(),
                (&mut ffi_schema as *mut FFI_ArrowSchema).cast::<ffi::ArrowSchema>(),
                &mut appender.converted,
            )
        };
        check_error_data(error)?;
        Ok(appender)
    }

    /// When every field of `arrow` names a column of the table (exactly: DuckDB's appender
    /// compares names as written), the rows fill those columns by name, in any order, and
    /// the columns left out take their defaults (an `INSERT INTO t (a, c)` sent as an
    /// ingest). Otherwise they fill the table's columns in order, whatever the fields are
    /// called.
    fn choose_columns(&mut self, arrow: &Schema) {
        for field in arrow.fields() {
            let named = c_string(field.name()).is_ok_and(|name| {
                // SAFETY: a valid appender and a NUL-terminated name.
                unsafe { ffi::duckdb_appender_add_column(self.raw, name.as_ptr()) == ffi::DuckDBSuccess }
            });
            if !named {
                // SAFETY: a valid appender; nothing was appended yet.
                unsafe { ffi::duckdb_appender_clear_columns(self.raw) };
                return;
            }
        }
    }

    /// Appends every row of `batch` (columns as `choose_columns` chose).
    pub(crate) fn append(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let rows = CHUNK_ROWS.min(batch.num_rows() - offset);
            self.append_chunk(&batch.slice(offset, rows))?;
            offset += rows;
        }
        Ok(())
    }

    fn append_chunk(&mut self, batch: &RecordBatch) -> Result<()> {
        let data = StructArray::from(batch.clone()).to_data();
        let mut array = FFI_ArrowArray::new(&data);
        let mut chunk: ffi::duckdb_data_chunk = ptr::null_mut();
        // SAFETY: `array` matches the converted schema (same Arrow schema);
        // DuckDB takes ownership of its buffers (clearing its release callback),
        // and the chunk is destroyed below.
        let error = unsafe {
            ffi::duckdb_data_chunk_from_arrow(
                self.conn.raw(),
                (&mut array as *mut FFI_ArrowArray).cast::<ffi::ArrowArray>(),
                self.converted,
                &mut chunk,
            )
        };
        let converted = check_error_data(error);
        let state = if converted.is_ok() && !chunk.is_null() {
            // SAFETY: a valid appender and chunk.
            unsafe { ffi::duckdb_append_data_chunk(self.raw, chunk) }
        } else {
            ffi::DuckDBSuccess
        };
        if !chunk.is_null() {
            // SAFETY: created above, destroyed once.
            unsafe { ffi::duckdb_destroy_data_chunk(&mut chunk) };
        }
        converted?;
        if state != ffi::DuckDBSuccess {
            return Err(self.error("appending rows failed"));
        }
        Ok(())
    }

    /// Flushes what is buffered into the table; constraint violations surface here.
    pub(crate) fn finish(self) -> Result<()> {
        // SAFETY: a valid appender.
        if unsafe { ffi::duckdb_appender_close(self.raw) } != ffi::DuckDBSuccess {
            return Err(self.error("appending rows failed"));
        }
        Ok(())
    }

    fn error(&self, fallback: &str) -> Error {
        if self.raw.is_null() {
            return Error::Refused(fallback.to_string());
        }
        // SAFETY: a valid appender; the error data is destroyed below.
        let mut data = unsafe { ffi::duckdb_appender_error_data(self.raw) };
        if data.is_null() {
            return Error::Refused(fallback.to_string());
        }
        let (message, error_type) = unsafe {
            (
                borrowed_c_string(ffi::duckdb_error_data_message(data)),
                ffi::duckdb_error_data_error_type(data),
            )
        };
        unsafe { ffi::duckdb_destroy_error_data(&mut data) };
        let message = message.unwrap_or_else(|| fallback.to_string());
        // The appender's messages ("Failed to append: NOT NULL constraint
        // failed: t.c") carry no "<Type> Error:" prefix; its error type does.
        let prefix = match error_type {
            ffi::duckdb_error_type_DUCKDB_ERROR_CONSTRAINT => "Constraint",
            ffi::duckdb_error_type_DUCKDB_ERROR_CONVERSION => "Conversion",
            ffi::duckdb_error_type_DUCKDB_ERROR_OUT_OF_RANGE => "Out of Range",
            ffi::duckdb_error_type_DUCKDB_ERROR_INVALID_INPUT => "Invalid Input",
            _ => return Error::from_duckdb_message(message),
        };
        if message.contains(" Error: ") {
            Error::from_duckdb_message(message)
        } else {
            Error::from_duckdb_message(format!("{prefix} Error: {message}"))
        }
    }
}

impl Drop for Appender<'_> {
    fn drop(&mut self) {
        // SAFETY: each handle is destroyed once; destroying an appender that
        // was not closed discards what it buffered.
        unsafe {
            if !self.converted.is_null() {
                ffi::duckdb_destroy_arrow_converted_schema(&mut self.converted);
            }
            if !self.raw.is_null() {
                ffi::duckdb_appender_clear(self.raw);
                ffi::duckdb_appender_destroy(&mut self.raw);
            }
        }
    }
}

impl Connection {
    /// An appender into `catalog.schema.table` for batches of `arrow` schema.
    pub(crate) fn appender(&self, catalog: &str, schema: &str, table: &str, arrow: &Schema) -> Result<Appender<'_>> {
        Appender::new(self, catalog, schema, table, arrow)
    }
}
