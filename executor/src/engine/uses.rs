//! What a prepared statement touches, as DuckDB bound and planned it
//! (`cpp/statement_uses.cpp`), and what a client's statement may touch: no
//! statement writes the executor's own files, and one of a user granted some
//! databases only stays in them.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::ffi::{c_char, c_void, CString};
use std::path::{Path, PathBuf};

use duckdb::ffi;
use openduck_api::Grants;

use super::Prepared;
use crate::error::{Error, Result};

/// Table functions a statement of a user with grants may call: those that
/// read tables (as DuckDB's binder records), generate rows, or list the
/// catalog. Others may read files (`read_blob`, `glob`), storage statistics
/// (`pragma_storage_info`) or act on databases (`checkpoint`).
const GRANTED_TABLE_FUNCTIONS: [&str; 10] = [
    "seq_scan",
    "range",
    "generate_series",
    "unnest",
    "repeat",
    "repeat_row",
    "json_each",
    "json_tree",
    "pragma_table_info",
    "pragma_show",
];

/// What a prepared statement touches.
#[derive(Debug, Default)]
pub(crate) struct StatementUses {
    /// Databases (DuckDB catalogs) it reads.
    pub(crate) read: BTreeSet<String>,
    /// Databases it changes.
    pub(crate) changed: BTreeSet<String>,
    /// It acts on whole databases or on the instance (ATTACH, DETACH, COPY
    /// FROM DATABASE, EXPORT DATABASE, LOAD, UPDATE EXTENSIONS, PRAGMA),
    /// which the sets above do not tell.
    pub(crate) whole: bool,
    /// Table functions it calls (`seq_scan` for tables).
    pub(crate) functions: BTreeSet<String>,
    /// Files it writes or opens as databases (COPY TO, EXPORT, ATTACH).
    pub(crate) files: Vec<String>,
    /// Settings it changes for the whole instance.
    pub(crate) global_settings: BTreeSet<String>,
    /// Databases it detaches.
    pub(crate) detached: BTreeSet<String>,
    /// File name patterns of a COPY that name directories of their own.
    pub(crate) escaping_patterns: Vec<String>,
}

/// The values `cpp/statement_uses.cpp` tells `visit` with.
const READS_DATABASE: i32 = 0;
const CHANGES_DATABASE: i32 = 1;
const CALLS_TABLE_FUNCTION: i32 = 2;
const WRITES_FILE: i32 = 3;
const SETS_GLOBAL: i32 = 4;
const DETACHES: i32 = 5;
const NAMES_FILES_BY_PATTERN: i32 = 6;

extern "C" {
    /// `cpp/statement_uses.cpp`.
    fn openduck_guard_connection(
        connection: ffi::duckdb_connection,
        check: extern "C" fn(*mut c_void, *const c_void, *mut c_void) -> *const c_char,
        policy: *mut c_void,
    ) -> i32;
    fn openduck_transaction_changes_databases(connection: ffi::duckdb_connection) -> i32;
    #[cfg(test)]
    fn openduck_prepared_data(prepared: ffi::duckdb_prepared_statement) -> *const c_void;
    fn openduck_statement_uses(
        prepared: *const c_void,
        client: *mut c_void,
        visit: extern "C" fn(*mut c_void, *const c_char, usize, i32),
        context: *mut c_void,
        whole: *mut bool,
    ) -> i32;
}

extern "C" fn visit(context: *mut c_void, name: *const c_char, length: usize, use_: i32) {
    // SAFETY: `context` is the `StatementUses` of `StatementUses::of`, borrowed
    // for the call; `name` points at `length` bytes DuckDB owns meanwhile.
    let uses = unsafe { &mut *context.cast::<StatementUses>() };
    let bytes = unsafe { std::slice::from_raw_parts(name.cast::<u8>(), length) };
    let name = String::from_utf8_lossy(bytes).into_owned();
    match use_ {
        READS_DATABASE => uses.read.insert(name),
        CHANGES_DATABASE => uses.changed.insert(name),
        CALLS_TABLE_FUNCTION => uses.functions.insert(name),
        WRITES_FILE => {
            uses.files.push(name);
            true
        }
        SETS_GLOBAL => uses.global_settings.insert(name),
        DETACHES => uses.detached.insert(name),
        NAMES_FILES_BY_PATTERN => {
            uses.escaping_patterns.push(name);
            true
        }
        _ => false,
    };
}

impl StatementUses {
    /// What the statement `data` (DuckDB's `PreparedStatementData`) of
    /// `client` (its `ClientContext`, or null) touches.
    fn of(data: *const c_void, client: *mut c_void) -> Result<Self> {
        let mut uses = StatementUses::default();
        let mut whole = false;
        // SAFETY: `data` is null or a live PreparedStatementData; `visit`
        // neither unwinds nor keeps the pointers it is given.
        let state = unsafe {
            openduck_statement_uses(
                data,
                client,
                visit,
                (&mut uses as *mut StatementUses).cast(),
                &mut whole,
            )
        };
        if state != 0 {
            return Err(Error::TaskFailed("cannot tell what a statement uses".into()));
        }
        uses.whole = whole;
        Ok(uses)
    }
}

impl Prepared<'_> {
    /// What the statement touches, as DuckDB bound (and, once it could,
    /// planned) it.
    #[cfg(test)]
    pub(crate) fn uses(&self) -> Result<StatementUses> {
        // SAFETY: a prepared statement of this connection.
        StatementUses::of(unsafe { openduck_prepared_data(self.raw) }, std::ptr::null_mut())
    }
}

impl super::Connection {
    /// Whether the open transaction changed a database, not only temporary
    /// objects (which are the connection's and never published). True when
    /// DuckDB cannot tell, or no transaction is open.
    pub(crate) fn transaction_changes_databases(&self) -> bool {
        // SAFETY: a live connection, used by this thread alone.
        unsafe { openduck_transaction_changes_databases(self.raw()) != 0 }
    }
}

/// What a connection's client statements may touch. DuckDB asks it about
/// every statement the connection prepares, and again about one it binds
/// anew to run it (when its parameters' types were not known, or the
/// catalog changed meanwhile), so no statement runs unchecked.
#[derive(Debug)]
pub(crate) struct Policy {
    /// The executor's data directory, whose own files SQL may not write.
    own_files: Option<PathBuf>,
    /// While a client's statement is prepared and runs: its user's grants
    /// (`None`: every database). Unset, statements are the executor's own.
    admitted: RefCell<Option<Option<Grants>>>,
    /// Why the last statement was refused, for DuckDB to copy.
    refusal: RefCell<CString>,
}

impl Policy {
    /// Guards `connection` with a new policy; the box must outlive it.
    pub(super) fn guard(connection: ffi::duckdb_connection, own_files: Option<PathBuf>) -> Result<Box<Policy>> {
        let policy = Box::new(Policy {
            own_files,
            admitted: RefCell::new(None),
            refusal: RefCell::new(CString::default()),
        });
        // SAFETY: a live connection; the policy is boxed (its address stays)
        // and outlives the connection (see Connection's fields).
        let state =
            unsafe { openduck_guard_connection(connection, check, (&*policy as *const Policy).cast_mut().cast()) };
        if state != 0 {
            return Err(Error::TaskFailed("cannot guard a connection".into()));
        }
        Ok(policy)
    }

    /// Holds the statements prepared (and run) until the returned value is
    /// dropped to a client's rules, with `grants` when its user has them.
    pub(super) fn admit(&self, grants: Option<&Grants>) -> Admitted<'_> {
        *self.admitted.borrow_mut() = Some(grants.cloned());
        Admitted(self)
    }

    fn refuse(&self, data: *const c_void, client: *mut c_void) -> Option<String> {
        let admitted = self.admitted.borrow();
        let grants = admitted.as_ref()?;
        let checked =
            StatementUses::of(data, client).and_then(|uses| uses.check(grants.as_ref(), self.own_files.as_deref()));
        checked.err().map(|error| error.to_string())
    }
}

/// Client rules in force on a connection (see [`Policy::admit`]).
#[derive(Debug)]
pub(crate) struct Admitted<'p>(&'p Policy);

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        *self.0.admitted.borrow_mut() = None;
    }
}

extern "C" fn check(policy: *mut c_void, data: *const c_void, client: *mut c_void) -> *const c_char {
    // SAFETY: the policy `Policy::guard` registered, alive with its connection.
    let policy = unsafe { &*policy.cast::<Policy>() };
    match policy.refuse(data, client) {
        Some(why) => {
            let mut refusal = policy.refusal.borrow_mut();
            *refusal = CString::new(why.replace('\0', " ")).unwrap_or_default();
            refusal.as_ptr()
        }
        None => std::ptr::null(),
    }
}

impl StatementUses {
    /// Refuses what a client's statement may not touch: files of the
    /// executor's own under `own_files` (its data directory) and its
    /// attached databases (DETACH), and, with `grants`, anything beyond
    /// those databases.
    pub(crate) fn check(&self, grants: Option<&Grants>, own_files: Option<&Path>) -> Result<()> {
        if let Some(own) = own_files {
            if let Some(file) = self.files.iter().find(|file| is_own_file(own, file)) {
                return Err(Error::permission_denied(format!(
                    "{file:?} is a file of the executor's own (a database, its log, or one under the data \
                     directory's hidden folders), or holds them: SQL may not write or attach it"
                )));
            }
        }
        if let Some(pattern) = self.escaping_patterns.first() {
            return Err(Error::permission_denied(format!(
                "the files a COPY writes are named inside its directory: its FILENAME_PATTERN and \
                 FILE_EXTENSION may not name directories ({pattern:?})"
            )));
        }
        if let Some(database) = self.detached.first() {
            return Err(Error::permission_denied(format!(
                "the executor attaches and detaches its databases itself: SQL may not DETACH {database:?}"
            )));
        }
        let Some(grants) = grants else {
            return Ok(());
        };
        let refuse = |what: String| {
            Err(Error::permission_denied(format!(
                "this account may use only the databases it was granted ({grants}): {what}"
            )))
        };
        if let Some(database) = self.changed.iter().find(|database| !grants.may_change(database)) {
            return refuse(format!("database {database:?} was not granted to it"));
        }
        if let Some(database) = self.read.iter().find(|database| !grants.may_read(database)) {
            return refuse(format!("database {database:?} was not granted to it"));
        }
        if self.whole {
            return refuse("not ATTACH, DETACH, COPY FROM DATABASE, EXPORT DATABASE, LOAD or PRAGMA".into());
        }
        if let Some(function) = self.functions.iter().find(|name| !granted_function(name)) {
            return refuse(format!("not {function}(), which may read files or act on databases"));
        }
        if let Some(file) = self.files.first() {
            return refuse(format!("not writing files ({file:?})"));
        }
        if let Some(setting) = self.global_settings.first() {
            return refuse(format!("not setting {setting} for the whole server"));
        }
        Ok(())
    }
}

/// Whether a user with grants may call table function `name`.
fn granted_function(name: &str) -> bool {
    GRANTED_TABLE_FUNCTIONS.contains(&name) || name.starts_with("duckdb_")
}

/// Whether writing `file` (as SQL names it) would write the executor's own
/// files under `own` (its canonical data directory): the directory itself or
/// one above it, a database or its log at its top, or anything under a
/// hidden folder (snapshots, spill). The path is resolved as the operating
/// system will open it: a `file:` URL as its path, relative to the working
/// directory, through symbolic links.
fn is_own_file(own: &Path, file: &str) -> bool {
    let Some(path) = local_path(file) else {
        return false; // not a local file
    };
    let absolute = if path.is_absolute() {
        path
    } else {
        match std::env::current_dir() {
            Ok(dir) => dir.join(path),
            Err(_) => return true, // cannot tell where it is: refused
        }
    };
    let absolute = resolved(&absolute);
    if own.starts_with(&absolute) {
        return true;
    }
    let Ok(inside) = absolute.strip_prefix(own) else {
        return false;
    };
    let mut components = inside.components();
    let first = components
        .next()
        .map(|first| first.as_os_str().to_string_lossy().into_owned());
    let at_top = components.next().is_none();
    let name = first.unwrap_or_default();
    name.starts_with('.') || (at_top && (name.ends_with(".duckdb") || name.contains(".duckdb.")))
}

/// The local path a file name of SQL opens; `None` for another file system
/// (`s3://...`). `cpp/statement_uses.cpp` expands `~` and `file:` URLs with
/// DuckDB's own `FileSystem::ExpandPath` for the statement's connection; a
/// `file:` URL left (no connection to expand it for) is read here the same way.
fn local_path(file: &str) -> Option<PathBuf> {
    let path = if let Some(rest) = file.strip_prefix("file://localhost/") {
        format!("/{rest}")
    } else if let Some(rest) = file.strip_prefix("file://") {
        rest.to_string()
    } else if let Some(rest) = file.strip_prefix("file:") {
        rest.to_string()
    } else if file.contains("://") {
        return None;
    } else {
        file.to_string()
    };
    Some(PathBuf::from(path))
}

/// `path` with its longest existing ancestor's symbolic links followed, and
/// `.` and `..` resolved in the rest.
fn resolved(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(&existing) {
            let mut result = real;
            for part in rest.iter().rev() {
                if part == ".." {
                    result.pop();
                } else if part != "." {
                    result.push(part);
                }
            }
            return result;
        }
        let Some(last) = existing.components().next_back() else {
            return path.to_path_buf();
        };
        rest.push(last.as_os_str().to_os_string());
        if !existing.pop() {
            return path.to_path_buf();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_executors_own_files_are_told_apart_from_the_users() {
        let own = Path::new("/srv/data");
        for file in [
            "/srv/data",
            "/srv/data/",
            "/srv",
            "/",
            "/srv/data/mydb.duckdb",
            "/srv/data/mydb.duckdb.wal",
            "/srv/data/mydb.replica0.duckdb",
            "/srv/data/.snapshots/mydb@1a2b.duckdb",
            "/srv/data/.tmp/spill",
            "/srv/data/out/../mydb.duckdb",
            "/srv/data/./x/../../data/hr.duckdb",
            "file:///srv/data/hr.duckdb",
            "file:/srv/data/hr.duckdb",
            "file://localhost/srv/data/hr.duckdb",
        ] {
            assert!(is_own_file(own, file), "{file}");
        }
        for file in [
            "/srv/data/out.csv",
            "/srv/data/exports/mydb.parquet",
            "/srv/data/exports/scratch.duckdb",
            "/srv/data/exports/",
            "/srv/other/x.duckdb",
            "s3://bucket/mydb.duckdb",
        ] {
            assert!(!is_own_file(own, file), "{file}");
        }
    }

    #[test]
    fn a_link_to_the_data_directory_leads_to_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("data");
        std::fs::create_dir(&own).unwrap();
        let own = std::fs::canonicalize(&own).unwrap();
        std::os::unix::fs::symlink(&own, dir.path().join("link")).unwrap();
        let through = dir.path().join("link/hr.duckdb");
        assert!(is_own_file(&own, &through.to_string_lossy()));
        assert!(!is_own_file(&own, &dir.path().join("link/out.csv").to_string_lossy()));
    }
}
