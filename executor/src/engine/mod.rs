//! Safe wrappers over the part of DuckDB's C API the executor uses.
//!
//! duckdb-rs is used only for its bindings (`duckdb::ffi`): its streaming
//! result API reports an error in the middle of a stream (an interrupt, a cast
//! failure in row five million) as the end of the stream, which would hand
//! clients a silently truncated result. Here every fetch that returns no chunk
//! checks the result's error.
//!
//! All `unsafe` code of the executor lives in this module. Invariants:
//! - every handle is destroyed exactly once, in `Drop`;
//! - a [`Connection`] is used by one thread at a time (it is `Send`, not `Sync`);
//!   only [`Interrupter`] touches it from elsewhere, and only under the slot's
//!   mutex while the connection is alive and running the query it was made for;
//! - statements and results borrow their connection, so they cannot outlive it.

#![allow(unsafe_code)]

mod bind;
mod chunks;
mod insert;
mod statement;
mod transaction;
mod uses;

use std::ffi::{c_char, CStr, CString};
use std::path::Path;
use std::ptr;
use std::sync::Arc;

use duckdb::ffi;
use parking_lot::Mutex;

use crate::error::{Error, Result};

pub(crate) use statement::{Prepared, QueryResult, StatementKind, Statements};

/// An open DuckDB database (one instance, possibly with attached databases).
pub(crate) struct Database {
    raw: ffi::duckdb_database,
    /// The directory of the executor's own files, which SQL may not write
    /// (see [`Database::protect`]).
    own_files: std::sync::OnceLock<std::path::PathBuf>,
}

// SAFETY: a duckdb_database is a handle to a thread-safe DatabaseInstance.
unsafe impl Send for Database {}
unsafe impl Sync for Database {}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").finish_non_exhaustive()
    }
}

impl Database {
    /// Opens (creating when missing) the database file at `path`; its catalog
    /// name is the file stem.
    pub(crate) fn open(name: &str, path: &Path, options: &[(&str, &str)]) -> Result<Self> {
        let open_error = |message: String| Error::Open {
            name: name.to_string(),
            path: path.to_path_buf(),
            message,
        };
        let c_path = CString::new(path.to_string_lossy().as_bytes())
            .map_err(|_| open_error("the path contains a NUL byte".into()))?;
        let mut config: ffi::duckdb_config = ptr::null_mut();
        // SAFETY: out-pointer to a fresh config, destroyed below on every path.
        unsafe {
            if ffi::duckdb_create_config(&mut config) != ffi::DuckDBSuccess {
                return Err(open_error("cannot allocate a configuration".into()));
            }
        }
        let result = (|| {
            for (key, value) in options {
                let (k, v) = (c_string(key)?, c_string(value)?);
                // SAFETY: config is valid; k and v outlive the call.
                if unsafe { ffi::duckdb_set_config(config, k.as_ptr(), v.as_ptr()) } != ffi::DuckDBSuccess {
                    return Err(open_error(format!("invalid setting {key}={value}")));
                }
            }
            let mut raw: ffi::duckdb_database = ptr::null_mut();
            let mut error: *mut c_char = ptr::null_mut();
            // SAFETY: all pointers valid; `error` is freed with duckdb_free.
            let state = unsafe { ffi::duckdb_open_ext(c_path.as_ptr(), &mut raw, config, &mut error) };
            if state != ffi::DuckDBSuccess {
                let message = unsafe { take_c_string(error) };
                return Err(open_error(message));
            }
            Ok(Database {
                raw,
                own_files: std::sync::OnceLock::new(),
            })
        })();
        // SAFETY: created above; DuckDB copies what it needs while opening.
        unsafe { ffi::duckdb_destroy_config(&mut config) };
        result
    }

    /// Keeps clients' SQL from writing the executor's own files under `dir`
    /// (databases, their logs, snapshots, spill): see `Connection::admit`.
    pub(crate) fn protect(&self, dir: &Path) {
        let _ = self.own_files.set(dir.to_path_buf());
    }

    /// A new connection to this database.
    pub(crate) fn connect(self: &Arc<Self>) -> Result<Connection> {
        let mut raw: ffi::duckdb_connection = ptr::null_mut();
        // SAFETY: self.raw is open until Drop; raw is an out-pointer.
        if unsafe { ffi::duckdb_connect(self.raw, &mut raw) } != ffi::DuckDBSuccess {
            return Err(Error::from_duckdb_message(
                "Connection Error: cannot open a connection".into(),
            ));
        }
        let policy = match uses::Policy::guard(raw, self.own_files.get().cloned()) {
            Ok(policy) => policy,
            Err(error) => {
                // SAFETY: connected above, not handed out.
                unsafe { ffi::duckdb_disconnect(&mut raw) };
                return Err(error);
            }
        };
        let conn = Connection {
            raw,
            policy,
            slot: Arc::new(Mutex::new(InterruptSlot {
                raw: RawConnection(raw),
                generation: 0,
                running: false,
                cancelled: false,
                timed_out: None,
                shielded: false,
            })),
            in_transaction: std::cell::Cell::new(false),
            read_only_transaction: std::cell::Cell::new(false),
            broken: std::cell::Cell::new(false),
            failed: std::cell::Cell::new(false),
            _database: Arc::clone(self),
        };
        conn.execute_batch(&format!("SET streaming_buffer_size = '{STREAMING_BUFFER}'"))?;
        Ok(conn)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // SAFETY: opened in `open`, closed once. Connections keep the instance
        // alive on DuckDB's side, so the order of drops does not matter.
        unsafe { ffi::duckdb_close(&mut self.raw) };
    }
}

/// How much of a streaming result DuckDB computes ahead of its reader, per
/// query. DuckDB counts the chunks it holds at their allocated size, so its
/// default (976 KiB) holds only a few dozen of the small chunks a selective
/// filter produces, and its threads then wait on the reader for every few
/// hundred rows: a one-month range of lineitem (76,000 rows of 6 M) streamed
/// in 38 ms where materializing it takes 18 ms; with 16 MB, 27 ms.
const STREAMING_BUFFER: &str = "16MB";

/// A raw connection pointer that may sit in a mutex shared across threads.
struct RawConnection(ffi::duckdb_connection);
// SAFETY: only used to call duckdb_interrupt, which is thread-safe, under the
// slot mutex and only while the connection is alive (see Connection::drop).
unsafe impl Send for RawConnection {}

struct InterruptSlot {
    raw: RawConnection,
    generation: u64,
    running: bool,
    /// Set by an interrupt of the current query and kept until the next one
    /// begins: DuckDB forgets an interrupt that arrives before its query
    /// starts, this flag does not (see `Prepared::run`).
    cancelled: bool,
    /// Set with `cancelled` when the interrupt was the statement timeout.
    timed_out: Option<std::time::Duration>,
    /// While set, an interrupt is only noted (`cancelled`), not passed to
    /// DuckDB nor seen by the statements run: see `Connection::shielded`.
    shielded: bool,
}

/// One DuckDB connection: the unit of a running statement.
pub(crate) struct Connection {
    raw: ffi::duckdb_connection,
    slot: Arc<Mutex<InterruptSlot>>,
    /// Whether a transaction begun with [`Connection::begin`] is open (SQL
    /// that begins or ends one is refused before it reaches DuckDB).
    in_transaction: std::cell::Cell<bool>,
    /// Whether that transaction is read-only (a read-only user's).
    read_only_transaction: std::cell::Cell<bool>,
    /// Set when a rollback failed (see [`Connection::is_broken`]).
    broken: std::cell::Cell<bool>,
    /// Set when openduck failed a statement of the open transaction after
    /// it ran (see `Connection::fail_transaction`): it must not commit.
    failed: std::cell::Cell<bool>,
    _database: Arc<Database>,
    /// What its client statements may touch; DuckDB holds its address, so
    /// it is dropped after the connection is closed (in `Drop`, before the fields).
    policy: Box<uses::Policy>,
}

// SAFETY: a connection may move between threads; it is never shared (not Sync).
unsafe impl Send for Connection {}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

impl Connection {
    /// Holds the statements it prepares and runs, until the returned value
    /// is dropped, to a client's rules: none writes the executor's own files,
    /// and with `grants` none touches other databases (see `uses.rs`).
    /// Statements prepared outside are the executor's own.
    pub(crate) fn admit(&self, grants: Option<&openduck_api::Grants>) -> uses::Admitted<'_> {
        self.policy.admit(grants)
    }

    /// Splits `sql` into statements without preparing them yet: a later
    /// statement may depend on what an earlier one creates.
    pub(crate) fn statements(&self, sql: &str) -> Result<Statements<'_>> {
        Statements::extract(self, sql)
    }

    /// Runs one or more statements whose results are not needed.
    pub(crate) fn execute_batch(&self, sql: &str) -> Result<()> {
        let statements = self.statements(sql)?;
        for index in 0..statements.len() {
            statements.prepare(index)?.execute()?;
        }
        Ok(())
    }

    /// Marks the start of a query and returns a handle that can interrupt
    /// exactly that query from another thread.
    pub(crate) fn begin_query(&self) -> Interrupter {
        let mut slot = self.slot.lock();
        slot.generation += 1;
        slot.running = true;
        slot.cancelled = false;
        slot.timed_out = None;
        Interrupter {
            slot: Arc::clone(&self.slot),
            generation: slot.generation,
        }
    }

    /// Marks the end of the query started by the last `begin_query`; an
    /// interrupter of that query does nothing from now on.
    pub(crate) fn end_query(&self) {
        self.slot.lock().running = false;
    }

    /// Interrupts this connection's query from its own thread: before a
    /// statement is abandoned, so that DuckDB's worker threads stop its tasks
    /// instead of running them to completion.
    pub(crate) fn interrupt_own_query(&self) {
        // SAFETY: the connection is alive (&self) and duckdb_interrupt is safe
        // to call from any thread.
        unsafe { ffi::duckdb_interrupt(self.raw) };
    }

    /// The error of a statement that failed with DuckDB's `message`.
    ///
    /// DuckDB (1.5.2) may report an error raised on one of its worker threads
    /// as `INTERRUPT Error: Interrupted!`: the failing task flags the query as
    /// interrupted, and a streaming fetch that checks the flag before the
    /// executor's errors throws an interrupt instead, losing the real error.
    /// An interrupt nobody asked for is that case: it is reported as an
    /// internal failure, never as a cancellation the client did not make.
    fn failure(&self, message: Option<String>) -> Error {
        let error = Error::from_duckdb_message(message.unwrap_or_else(|| "the statement failed".into()));
        match error {
            Error::DuckDb {
                kind: crate::ErrorKind::Cancelled,
                ..
            } if self.cancelled() => self.interruption(),
            Error::DuckDb {
                kind: crate::ErrorKind::Cancelled,
                message,
            } => Error::DuckDb {
                kind: crate::ErrorKind::Internal,
                message: format!(
                    "the query failed on one of DuckDB's worker threads, and DuckDB reported only \"{message}\" (its own error was lost in a race inside DuckDB 1.5.2)"
                ),
            },
            other => other,
        }
    }

    /// Runs `work` out of reach of interrupts: one that arrives meanwhile
    /// is noted and stands for what runs after, but stops nothing inside.
    /// For the end of a transaction, which must run whoever left.
    fn shielded<T>(&self, work: impl FnOnce() -> T) -> T {
        self.slot.lock().shielded = true;
        let out = work();
        self.slot.lock().shielded = false;
        out
    }

    /// Why the running query was interrupted: its caller cancelled it, or
    /// it ran past the statement timeout.
    fn interruption(&self) -> Error {
        match self.slot.lock().timed_out {
            Some(limit) => Error::DuckDb {
                kind: crate::ErrorKind::DeadlineExceeded,
                message: format!(
                    "the statement ran longer than the statement timeout ({} s) and was stopped",
                    limit.as_secs_f64()
                ),
            },
            None => Error::DuckDb {
                kind: crate::ErrorKind::Cancelled,
                message: "INTERRUPT Error: the query was cancelled".into(),
            },
        }
    }

    /// Whether the running query was interrupted.
    fn cancelled(&self) -> bool {
        let slot = self.slot.lock();
        slot.running && slot.cancelled && !slot.shielded
    }

    fn raw(&self) -> ffi::duckdb_connection {
        self.raw
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let mut slot = self.slot.lock();
        slot.running = false;
        slot.raw = RawConnection(ptr::null_mut());
        // SAFETY: connected in Database::connect, disconnected once; no
        // interrupter can reach the pointer any more (cleared above, under the lock).
        unsafe { ffi::duckdb_disconnect(&mut self.raw) };
    }
}

/// Interrupts one query of one connection, from any thread.
#[derive(Clone)]
pub(crate) struct Interrupter {
    slot: Arc<Mutex<InterruptSlot>>,
    generation: u64,
}

impl std::fmt::Debug for Interrupter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interrupter")
            .field("generation", &self.generation)
            .finish()
    }
}

impl Interrupter {
    /// Whether the query is still running.
    pub(crate) fn is_live(&self) -> bool {
        let slot = self.slot.lock();
        slot.running && slot.generation == self.generation
    }

    /// Interrupts the query if it is still running; otherwise does nothing.
    pub(crate) fn interrupt(&self) {
        self.stop(None);
    }

    /// Interrupts the query because it ran longer than `limit`: it fails
    /// with `DeadlineExceeded` rather than as cancelled.
    pub(crate) fn time_out(&self, limit: std::time::Duration) {
        self.stop(Some(limit));
    }

    fn stop(&self, timed_out: Option<std::time::Duration>) {
        let mut slot = self.slot.lock();
        if slot.running && slot.generation == self.generation && !slot.raw.0.is_null() {
            slot.cancelled = true;
            slot.timed_out = slot.timed_out.or(timed_out);
            if !slot.shielded {
                // SAFETY: the connection is alive (its Drop clears `raw` under this
                // lock) and duckdb_interrupt is safe to call concurrently with a query.
                unsafe { ffi::duckdb_interrupt(slot.raw.0) };
            }
        }
    }
}

fn c_string(text: &str) -> Result<CString> {
    CString::new(text).map_err(|_| Error::DuckDb {
        kind: crate::ErrorKind::InvalidArgument,
        message: "text contains a NUL byte".into(),
    })
}

/// Copies and frees a C string that DuckDB allocated.
///
/// # Safety
/// `text` is null or a NUL-terminated string allocated by DuckDB.
unsafe fn take_c_string(text: *mut c_char) -> String {
    if text.is_null() {
        return "unknown error".into();
    }
    let owned = unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned();
    unsafe { ffi::duckdb_free(text.cast()) };
    owned
}

/// Copies a C string owned by DuckDB (not freed here).
///
/// # Safety
/// `text` is null or a NUL-terminated string valid for this call.
unsafe fn borrowed_c_string(text: *const c_char) -> Option<String> {
    (!text.is_null()).then(|| unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn kind(error: &Error) -> ErrorKind {
        match error {
            Error::DuckDb { kind, .. } => *kind,
            other => panic!("not a DuckDB error: {other:?}"),
        }
    }

    #[test]
    fn an_interrupt_nobody_asked_for_is_not_a_cancellation() {
        let dir = tempfile::tempdir().unwrap();
        let database = Arc::new(Database::open("t", &dir.path().join("t.duckdb"), &[]).unwrap());
        let conn = database.connect().unwrap();
        let interrupt = Some("INTERRUPT Error: Interrupted!".to_string());

        let interrupter = conn.begin_query();
        let unasked = conn.failure(interrupt.clone());
        assert_eq!(kind(&unasked), ErrorKind::Internal, "{unasked}");
        assert!(unasked.to_string().contains("worker threads"), "{unasked}");

        interrupter.interrupt();
        assert_eq!(kind(&conn.failure(interrupt.clone())), ErrorKind::Cancelled);
        conn.end_query();

        let other = conn.failure(Some("Invalid Input Error: boom".into()));
        assert_eq!(kind(&other), ErrorKind::InvalidArgument);
    }

    #[test]
    fn a_statement_stopped_by_its_timeout_fails_as_deadline_exceeded() {
        let dir = tempfile::tempdir().unwrap();
        let database = Arc::new(Database::open("t", &dir.path().join("t.duckdb"), &[]).unwrap());
        let conn = database.connect().unwrap();
        let interrupter = conn.begin_query();
        interrupter.time_out(std::time::Duration::from_millis(1500));
        // A later cancellation does not turn the timeout into one.
        interrupter.interrupt();
        let error = conn.failure(Some("INTERRUPT Error: Interrupted!".into()));
        assert_eq!(kind(&error), ErrorKind::DeadlineExceeded, "{error}");
        assert!(error.to_string().contains("statement timeout (1.5 s)"), "{error}");
        // The next query starts afresh.
        conn.end_query();
        let _next = conn.begin_query();
        assert!(conn.execute_batch("SELECT 1").is_ok());
    }
    #[test]
    fn a_prepared_statement_tells_what_it_touches() {
        let dir = tempfile::tempdir().unwrap();
        let database = Arc::new(Database::open("memory", Path::new(":memory:"), &[]).unwrap());
        let conn = database.connect().unwrap();
        conn.execute_batch(&format!(
            "ATTACH '{}' AS sales; ATTACH '{}' AS hr; \
             CREATE TABLE sales.orders AS SELECT 1 AS id; CREATE TABLE hr.people AS SELECT 1 AS id; \
             CREATE SEQUENCE hr.ids; CREATE VIEW sales.everyone AS SELECT * FROM hr.people; USE sales",
            dir.path().join("sales.duckdb").display(),
            dir.path().join("hr.duckdb").display()
        ))
        .unwrap();
        let uses = |sql: &str| {
            let statements = conn.statements(sql).unwrap();
            let uses = statements.prepare(0).unwrap().uses().unwrap();
            let names = |set: &std::collections::BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>().join(",");
            (names(&uses.read), names(&uses.changed))
        };
        let both = |read: &str, changed: &str| (read.to_string(), changed.to_string());
        assert_eq!(uses("SELECT 1"), both("", ""));
        assert_eq!(uses("SELECT * FROM orders"), both("sales", ""));
        // Through a view, a table function and a subquery.
        assert_eq!(uses("SELECT * FROM everyone"), both("hr", ""));
        assert_eq!(uses("SELECT * FROM query_table('hr.people')"), both("hr", ""));
        assert_eq!(
            uses("SELECT * FROM orders WHERE id IN (SELECT id FROM hr.main.people)"),
            both("hr,sales", "")
        );
        assert_eq!(uses("INSERT INTO hr.people SELECT id FROM orders"), both("sales", "hr"));
        assert_eq!(uses("SELECT nextval('hr.ids')"), both("", "hr"));
        assert_eq!(uses("DROP TABLE hr.people"), both("hr", "hr"));
        assert_eq!(uses("CREATE TABLE hr.more (id INTEGER)"), both("", "hr"));
        for sql in [
            "SELECT 1",
            "CREATE VIEW sales.v AS SELECT * FROM hr.people",
            "USE hr",
            "SHOW TABLES",
            "DESCRIBE orders",
            "SELECT * FROM pragma_table_info('orders')",
            "PRAGMA table_info('orders')",
        ] {
            let statements = conn.statements(sql).unwrap();
            assert!(!statements.prepare(0).unwrap().uses().unwrap().whole, "{sql}");
        }
        for sql in [
            "DETACH hr",
            "ATTACH ':memory:' AS scratch",
            "COPY FROM DATABASE hr TO sales",
            "EXPORT DATABASE hr TO 'x'",
            "LOAD json",
            "PRAGMA force_checkpoint",
        ] {
            // COPY FROM DATABASE is BEGIN, two COPY_DATABASE statements, COMMIT.
            let statements = conn.statements(sql).unwrap();
            let whole = (0..statements.len())
                .filter_map(|index| statements.prepare(index).ok())
                .any(|prepared| prepared.uses().unwrap().whole);
            assert!(whole, "{sql}");
        }
        // Table functions, files written and settings of the whole instance.
        let uses = |sql: &str| conn.statements(sql).unwrap().prepare(0).unwrap().uses().unwrap();
        let functions = uses("SELECT * FROM range(3), orders, read_blob('x')").functions;
        assert_eq!(
            functions.into_iter().collect::<Vec<_>>(),
            ["range", "read_blob", "seq_scan"]
        );
        assert_eq!(uses("COPY orders TO 'out.csv'").files, ["out.csv"]);
        assert_eq!(uses("COPY (SELECT 1) TO 'out.parquet'").files, ["out.parquet"]);
        assert_eq!(uses("ATTACH 'other.duckdb' AS other").files, ["other.duckdb"]);
        assert_eq!(uses("SET GLOBAL threads = 1").global_settings.len(), 1);
        assert_eq!(uses("SET memory_limit = '1GB'").global_settings.len(), 1);
        assert!(uses("SET search_path = 'hr'").global_settings.is_empty());
    }
}
