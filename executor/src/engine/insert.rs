//! Bulk inserts of a stream of Arrow record batches into a table, through DuckDB's own
//! parallel Arrow scan (`cpp/insert_arrow.cpp`): every thread of DuckDB converts batches
//! and writes row groups, and the rows keep the stream's order.

use std::ffi::c_char;
use std::ptr;

use arrow::array::RecordBatchReader;
use arrow::datatypes::{DataType, Field};
use arrow::ffi_stream::FFI_ArrowArrayStream;
use duckdb::ffi;
use openduck_api::quote_identifier;

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
        let fields = batches.schema();
        // DuckDB asks the stream for its schema in C++: a name arrow-rs cannot hand over
        // there (one with a NUL byte) must be refused here, before that.
        if let Some(field) = fields.fields().iter().find(|field| !nameable(field)) {
            return Err(Error::Refused(format!(
                "cannot insert column {:?}: a name holds a NUL byte",
                field.name().replace('\0', "\\0")
            )));
        }
        let columns = self.column_names(catalog, schema, table)?;
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
            return Err(self.failure(Some(message)));
        }
        Ok(rows)
    }

    /// The columns of a table, resolved as DuckDB resolves names, in the connection's
    /// open transaction; none when it does not exist.
    fn column_names(&self, catalog: &str, schema: &str, table: &str) -> Result<Vec<String>> {
        let (catalog, schema, table) = (c_string(catalog)?, c_string(schema)?, c_string(table)?);
        let mut description: ffi::duckdb_table_description = ptr::null_mut();
        // SAFETY: a live connection and NUL-terminated names; the description is
        // destroyed below, also when creating it failed.
        let state = unsafe {
            ffi::duckdb_table_description_create_ext(
                self.raw(),
                catalog.as_ptr(),
                schema.as_ptr(),
                table.as_ptr(),
                &mut description,
            )
        };
        let mut names = Vec::new();
        if state == ffi::DuckDBSuccess {
            // SAFETY: a valid description; each name is DuckDB's, freed by take_c_string.
            let count = unsafe { ffi::duckdb_table_description_get_column_count(description) };
            for index in 0..count {
                names.push(unsafe { take_c_string(ffi::duckdb_table_description_get_column_name(description, index)) });
            }
        }
        // SAFETY: created above, destroyed once.
        unsafe { ffi::duckdb_table_description_destroy(&mut description) };
        Ok(names)
    }
}

/// Whether `field` and every field nested in it have names a C string can hold.
fn nameable(field: &Field) -> bool {
    !field.name().contains('\0') && names_nameable(field.data_type())
}

/// Whether the fields nested in `data_type` have names a C string can hold.
fn names_nameable(data_type: &DataType) -> bool {
    match data_type {
        DataType::Struct(fields) => fields.iter().all(|field| nameable(field)),
        DataType::Union(fields, _) => fields.iter().all(|(_, field)| nameable(field)),
        DataType::List(child)
        | DataType::LargeList(child)
        | DataType::ListView(child)
        | DataType::LargeListView(child)
        | DataType::FixedSizeList(child, _)
        | DataType::Map(child, _) => nameable(child),
        DataType::RunEndEncoded(ends, values) => nameable(ends) && nameable(values),
        DataType::Dictionary(_, values) => names_nameable(values),
        _ => true,
    }
}
