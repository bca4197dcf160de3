//! DuckDB's data chunks as a streaming result hands them out, gathered into
//! full ones before they are converted to Arrow.
//!
//! A streaming result returns what each pipeline task produced: behind a
//! selective filter that is a few rows per chunk (a one-month range of
//! lineitem comes as 2,967 chunks of 25 rows), and converting each chunk
//! to Arrow on its own costs more than the query. Chunks smaller than
//! [`SMALL`] rows are copied into one chunk of DuckDB's vector size first,
//! inside DuckDB, and that chunk is converted once.

use std::ptr;

use duckdb::ffi;

/// Chunks with fewer rows than this are gathered before conversion.
const SMALL: usize = 1024;

/// A data chunk owned here, destroyed when dropped.
pub(super) struct Chunk(ffi::duckdb_data_chunk);

impl Chunk {
    /// Takes ownership of `raw`; `None` when it is null.
    fn owned(raw: ffi::duckdb_data_chunk) -> Option<Self> {
        (!raw.is_null()).then_some(Chunk(raw))
    }

    pub(super) fn raw(&self) -> ffi::duckdb_data_chunk {
        self.0
    }

    pub(super) fn rows(&self) -> usize {
        // SAFETY: a valid chunk.
        unsafe { ffi::duckdb_data_chunk_get_size(self.0) as usize }
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        // SAFETY: owned here, destroyed once.
        unsafe { ffi::duckdb_destroy_data_chunk(&mut self.0) };
    }
}

/// Gathers the small chunks of one result.
pub(super) struct Gatherer {
    /// The result's column types, owned here.
    types: Vec<ffi::duckdb_logical_type>,
    /// 0, 1, 2, ... up to DuckDB's vector size: copies take rows in order.
    identity: ffi::duckdb_selection_vector,
    capacity: usize,
    /// A chunk fetched that did not fit in the last gathered one.
    held: Option<Chunk>,
    /// The result gave its last chunk (or failed): it is never asked again,
    /// since a closed streaming result would overwrite its error.
    done: bool,
}

impl Gatherer {
    /// A gatherer for chunks of columns of `types` (taken over: destroyed
    /// with the gatherer).
    pub(super) fn new(types: Vec<ffi::duckdb_logical_type>) -> Self {
        // SAFETY: plain allocation; filled below within its size.
        let capacity = unsafe { ffi::duckdb_vector_size() } as usize;
        let identity = unsafe { ffi::duckdb_create_selection_vector(capacity as u64) };
        let data = unsafe { ffi::duckdb_selection_vector_get_data_ptr(identity) };
        for index in 0..capacity {
            // SAFETY: `data` holds `capacity` entries.
            unsafe { *data.add(index) = index as _ };
        }
        Gatherer {
            types,
            identity,
            capacity,
            held: None,
            done: false,
        }
    }

    /// The next chunk to convert: one `fetch` gave, or several small ones
    /// gathered; `None` at the end of the rows or when `fetch` failed (it
    /// returns null then too, and the caller asks the result why).
    pub(super) fn next(&mut self, mut fetch: impl FnMut() -> ffi::duckdb_data_chunk) -> Option<Chunk> {
        let first = match self.held.take() {
            Some(held) => held,
            None => self.pull(&mut fetch)?,
        };
        if first.rows() >= SMALL {
            return Some(first);
        }
        // Should DuckDB not give a chunk to gather into, the rows go as they are.
        let Some(gathered) = self.empty_chunk() else {
            return Some(first);
        };
        let mut rows = self.append(&gathered, &first, 0);
        while rows < SMALL {
            let Some(next) = self.pull(&mut fetch) else {
                break;
            };
            if rows + next.rows() > self.capacity {
                self.held = Some(next);
                break;
            }
            rows = self.append(&gathered, &next, rows);
        }
        Some(gathered)
    }

    fn pull(&mut self, fetch: &mut impl FnMut() -> ffi::duckdb_data_chunk) -> Option<Chunk> {
        if self.done {
            return None;
        }
        let chunk = Chunk::owned(fetch());
        self.done = chunk.is_none();
        chunk
    }

    fn empty_chunk(&mut self) -> Option<Chunk> {
        // SAFETY: `types` are valid logical types, as many as the columns.
        Chunk::owned(unsafe { ffi::duckdb_create_data_chunk(self.types.as_mut_ptr(), self.types.len() as u64) })
    }

    /// Copies the rows of `from` into `into` after its first `at` rows;
    /// the rows `into` has then.
    fn append(&self, into: &Chunk, from: &Chunk, at: usize) -> usize {
        let rows = from.rows();
        for column in 0..self.types.len() {
            // SAFETY: both chunks have the result's columns; `into` has room
            // for `at + rows` rows (at most the vector size), and `identity`
            // selects the first `rows` rows of `from`.
            unsafe {
                ffi::duckdb_vector_copy_sel(
                    ffi::duckdb_data_chunk_get_vector(from.raw(), column as u64),
                    ffi::duckdb_data_chunk_get_vector(into.raw(), column as u64),
                    self.identity,
                    rows as u64,
                    0,
                    at as u64,
                );
            }
        }
        // SAFETY: the rows up to `at + rows` were just written.
        unsafe { ffi::duckdb_data_chunk_set_size(into.raw(), (at + rows) as u64) };
        at + rows
    }
}

impl Drop for Gatherer {
    fn drop(&mut self) {
        self.held = None;
        // SAFETY: owned here, destroyed once.
        unsafe { ffi::duckdb_destroy_selection_vector(self.identity) };
        for logical in &mut self.types {
            if !logical.is_null() {
                unsafe { ffi::duckdb_destroy_logical_type(logical) };
            }
        }
        self.identity = ptr::null_mut();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Int64Type;

    use crate::engine::{Connection, Database};

    fn connection() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let database = Arc::new(Database::open("t", &dir.path().join("t.duckdb"), &[]).unwrap());
        let conn = database.connect().unwrap();
        conn.execute_batch(
            "CREATE TABLE t AS SELECT i, CASE WHEN i % 5 = 0 THEN NULL ELSE 'row ' || i END AS s, [i, -i] AS l \
             FROM range(300000) r(i)",
        )
        .unwrap();
        (dir, conn)
    }

    #[test]
    fn a_selective_filters_small_chunks_arrive_gathered_and_intact() {
        let (_dir, conn) = connection();
        let statements = conn.statements("SELECT i, s, l FROM t WHERE i % 97 = 0").unwrap();
        let prepared = statements.prepare(0).unwrap();
        let mut result = prepared.execute_streaming().unwrap();
        let (mut batches, mut seen) = (0, Vec::new());
        while let Some(batch) = result.next_batch().unwrap() {
            batches += 1;
            let (i, s, l) = (
                batch.column(0).as_primitive::<Int64Type>(),
                batch.column(1).as_string::<i32>(),
                batch.column(2).as_list::<i32>(),
            );
            for row in 0..batch.num_rows() {
                let value = i.value(row);
                let text = (!s.is_null(row)).then(|| s.value(row).to_string());
                let list = l.value(row);
                let list = list.as_primitive::<Int64Type>().values().to_vec();
                seen.push((value, text, list));
            }
        }
        let expected: Vec<_> = (0..300_000_i64)
            .filter(|i| i % 97 == 0)
            .map(|i| (i, (i % 5 != 0).then(|| format!("row {i}")), vec![i, -i]))
            .collect();
        assert_eq!(seen, expected);
        // DuckDB hands out about 21 rows a chunk here (147 chunks); gathered,
        // 3,093 rows make a few batches.
        assert!(batches <= 6, "{batches} batches");
    }

    #[test]
    fn an_error_after_small_chunks_is_reported_not_taken_for_the_end() {
        let (_dir, conn) = connection();
        let sql = "SELECT CASE WHEN i = 299999 THEN error('boom') ELSE i END FROM t WHERE i % 97 = 0 OR i = 299999";
        let statements = conn.statements(sql).unwrap();
        let prepared = statements.prepare(0).unwrap();
        // DuckDB computes ahead of the reader (see STREAMING_BUFFER): the
        // error may come with the start of the result or with a later batch.
        let error = match prepared.execute_streaming() {
            Err(error) => error.to_string(),
            Ok(mut result) => loop {
                match result.next_batch() {
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("the failed query ended as if complete"),
                    Err(error) => break error.to_string(),
                }
            },
        };
        // DuckDB 1.5.2 may lose a worker thread's error (see `failure`).
        assert!(error.contains("boom") || error.contains("worker threads"), "{error}");
    }
}
