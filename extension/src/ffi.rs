//! The C interface the extension's C++ layer calls (declared in `cpp/openduck_core.h`).
//!
//! Every function is a leaf: it never calls back into DuckDB, never unwinds (a panic is
//! caught and returned as an error), and reports failure by returning an [`OdError`] that the
//! caller frees with [`od_error_free`]; success returns null. Strings are UTF-8 and
//! NUL-terminated; those returned by accessors live as long as the object they came from.
#![allow(unsafe_code)]

use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arrow::array::{RecordBatch, StructArray};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use arrow::ffi_stream::FFI_ArrowArrayStream;

use crate::{Client, Error, Ingest, IngestTarget, Interrupt, Target};

/// An error: its gRPC code and a message for the user.
#[repr(C)]
#[derive(Debug)]
pub struct OdError {
    pub code: i32,
    pub message: *mut c_char,
}

/// A connected client (opaque to C).
#[derive(Debug)]
pub struct OdClient {
    client: Client,
    database: CString,
    endpoint: CString,
    /// For a client attached to every database (`ATTACH 'openduck:'`): the databases the
    /// service hosted when it connected.
    hosted: Vec<CString>,
}

impl OdClient {
    /// `client`, made from this one's, as a C handle.
    fn with(&self, client: Client) -> *mut OdClient {
        Box::into_raw(Box::new(OdClient {
            client,
            database: self.database.clone(),
            endpoint: self.endpoint.clone(),
            hosted: self.hosted.clone(),
        }))
    }
}

/// A loaded catalog (opaque to C).
#[derive(Debug)]
pub struct OdCatalog {
    schemas: Vec<CString>,
    tables: Vec<OdTable>,
}

#[derive(Debug)]
struct OdTable {
    schema: CString,
    name: CString,
    kind: CString,
    arrow: SchemaRef,
    rows: Option<u64>,
}

fn text(value: &str) -> CString {
    CString::new(value.replace('\0', " ")).expect("NULs were replaced")
}

fn into_error(error: Error) -> *mut OdError {
    Box::into_raw(Box::new(OdError {
        code: error.code() as i32,
        message: text(&error.to_string()).into_raw(),
    }))
}

/// Runs `body`, turning an error or a panic into an [`OdError`].
fn guard(body: impl FnOnce() -> Result<(), Error>) -> *mut OdError {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => ptr::null_mut(),
        Ok(Err(error)) => into_error(error),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            into_error(Error::Panic(message))
        }
    }
}

/// # Safety
/// `text` is null or a valid NUL-terminated string.
unsafe fn optional_str<'a>(text: *const c_char) -> Result<Option<&'a str>, Error> {
    if text.is_null() {
        return Ok(None);
    }
    unsafe { CStr::from_ptr(text) }
        .to_str()
        .map(Some)
        .map_err(|_| Error::InvalidTarget("openduck: text is not UTF-8".into()))
}

/// The endpoint `path` (the text after `openduck:`) resolves to, with the
/// `OPENDUCK_ENDPOINT` default: what a DuckDB secret's scope is matched against. The caller
/// frees the string with [`od_string_free`].
///
/// # Safety
/// `path` is a valid string, `out` valid for writes.
#[no_mangle]
pub unsafe extern "C" fn od_endpoint(path: *const c_char, out: *mut *mut c_char) -> *mut OdError {
    guard(|| {
        let path = unsafe { optional_str(path) }?.unwrap_or_default();
        let env_endpoint = std::env::var("OPENDUCK_ENDPOINT").ok();
        let target = Target::parse(path, env_endpoint.as_deref(), None)?;
        unsafe { *out = text(&target.endpoint).into_raw() };
        Ok(())
    })
}

/// # Safety
/// `text` is null or came from this interface and is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn od_string_free(text: *mut c_char) {
    if !text.is_null() {
        drop(unsafe { CString::from_raw(text) });
    }
}

/// Connects to the database `path` names (the text after `openduck:`) and checks the
/// credentials and the database. Each credential may be null, then taken from the
/// environment: `token` (`OPENDUCK_TOKEN`), `user` and `password` (`OPENDUCK_USER`,
/// `OPENDUCK_PASSWORD`: logged in with, for a service with user accounts), `ca` (`OPENDUCK_CA`:
/// the CA certificate of a `grpc+tls://` endpoint), `cert` and `key` (`OPENDUCK_CERT`,
/// `OPENDUCK_KEY`: a client certificate and its key, for mutual TLS); certificates and keys
/// as PEM text or a file's path.
///
/// # Safety
/// `path` is a valid string; the others null or valid strings; `out` valid for writes.
#[no_mangle]
pub unsafe extern "C" fn od_connect(
    path: *const c_char,
    token: *const c_char,
    user: *const c_char,
    password: *const c_char,
    ca: *const c_char,
    cert: *const c_char,
    key: *const c_char,
    out: *mut *mut OdClient,
) -> *mut OdError {
    guard(|| {
        let given = |text: *const c_char, variable: &str| -> Result<Option<String>, Error> {
            let given = unsafe { optional_str(text) }?.filter(|text| !text.is_empty());
            Ok(given
                .map(str::to_owned)
                .or_else(|| std::env::var(variable).ok().filter(|text| !text.is_empty())))
        };
        let path = unsafe { optional_str(path) }?.unwrap_or_default();
        let token = given(token, "OPENDUCK_TOKEN")?;
        let env_endpoint = std::env::var("OPENDUCK_ENDPOINT").ok();
        let mut target = Target::parse(path, env_endpoint.as_deref(), token.as_deref())?;
        if let (Some(user), Some(password)) = (given(user, "OPENDUCK_USER")?, given(password, "OPENDUCK_PASSWORD")?) {
            target.login = Some((user, password));
        }
        target.ca = given(ca, "OPENDUCK_CA")?
            .map(|ca| read_pem(ca, "the CA certificate"))
            .transpose()?;
        if let (Some(cert), Some(key)) = (given(cert, "OPENDUCK_CERT")?, given(key, "OPENDUCK_KEY")?) {
            target.identity = Some((
                read_pem(cert, "the client certificate")?,
                read_pem(key, "the client key")?,
            ));
        }
        let database = text(&target.catalog());
        let endpoint = text(&target.endpoint);
        let client = Client::connect(target)?;
        let hosted = if client.target().database.is_empty() {
            client.databases()?.iter().map(|name| text(name)).collect()
        } else {
            Vec::new()
        };
        unsafe {
            *out = Box::into_raw(Box::new(OdClient {
                client,
                database,
                endpoint,
                hosted,
            }))
        };
        Ok(())
    })
}

/// A certificate or key given as PEM text, or as the path of a PEM file. An error names
/// the path, never the text.
fn read_pem(given: String, what: &str) -> Result<String, Error> {
    if given.trim_start().starts_with("-----BEGIN") {
        return Ok(given);
    }
    std::fs::read_to_string(&given)
        .map_err(|error| Error::InvalidTarget(format!("openduck: cannot read {what} {given:?}: {error}")))
}

/// # Safety
/// `client` is null or came from [`od_connect`] and is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn od_client_free(client: *mut OdClient) {
    if !client.is_null() {
        drop(unsafe { Box::from_raw(client) });
    }
}

/// Begins a transaction on the service: `out` is a client whose statements (queries,
/// DDL, ingests) all run in it, on a connection of its own. End it with [`od_end`], then
/// free it with [`od_client_free`].
///
/// # Safety
/// `client` came from [`od_connect`], [`od_begin`] or [`od_session`]; `out` is valid
/// for writes.
#[no_mangle]
pub unsafe extern "C" fn od_begin(client: *const OdClient, out: *mut *mut OdClient) -> *mut OdError {
    guard(|| {
        let parent = unsafe { &*client };
        unsafe { *out = parent.with(parent.client.begin()?) };
        Ok(())
    })
}

/// A client on a connection of its own for which the service keeps a session: the
/// temporary tables its transactions ([`od_begin`] of it, committed) make stay there,
/// for its statements to read, until it is freed with [`od_client_free`].
///
/// # Safety
/// `client` came from [`od_connect`]; `out` is valid for writes.
#[no_mangle]
pub unsafe extern "C" fn od_session(client: *const OdClient, out: *mut *mut OdClient) -> *mut OdError {
    guard(|| {
        let parent = unsafe { &*client };
        unsafe { *out = parent.with(parent.client.session()?) };
        Ok(())
    })
}

/// Commits (`commit`) or rolls back the transaction of a client from [`od_begin`]. The
/// transaction is over either way: a commit that fails has rolled back.
///
/// # Safety
/// `client` came from [`od_begin`].
#[no_mangle]
pub unsafe extern "C" fn od_end(client: *const OdClient, commit: bool) -> *mut OdError {
    guard(|| unsafe { &(*client).client }.end(commit))
}

/// The catalog the client was attached to, as the service names it: a database, or a
/// snapshot `database@snapshot` (empty: all of the service's).
///
/// # Safety
/// `client` came from [`od_connect`].
#[no_mangle]
pub unsafe extern "C" fn od_client_database(client: *const OdClient) -> *const c_char {
    unsafe { (*client).database.as_ptr() }
}

/// What the client (and those made from it) measured of its link to the service: the
/// shortest round trip, in microseconds, and the rate at which its large results
/// arrived, in bytes per second; 0 for what was not measured yet.
///
/// # Safety
/// `client` came from this interface; both out-pointers are valid for writes.
#[no_mangle]
pub unsafe extern "C" fn od_client_link(client: *const OdClient, round_trip_us: *mut u64, bytes_per_second: *mut u64) {
    let link = unsafe { &(*client).client }.link();
    let round_trip = link
        .round_trip()
        .map_or(0, |trip| u64::try_from(trip.as_micros()).unwrap_or(u64::MAX));
    unsafe {
        *round_trip_us = round_trip;
        *bytes_per_second = link.bytes_per_second().unwrap_or(0);
    }
}

/// The endpoint (`grpc://host:port`) the client talks to.
///
/// # Safety
/// `client` came from [`od_connect`].
#[no_mangle]
pub unsafe extern "C" fn od_client_endpoint(client: *const OdClient) -> *const c_char {
    unsafe { (*client).endpoint.as_ptr() }
}

/// Whether two clients reach the same service as the same principal (see
/// [`Client::same_service`]).
///
/// # Safety
/// Both came from [`od_connect`].
#[no_mangle]
pub unsafe extern "C" fn od_client_same_service(client: *const OdClient, other: *const OdClient) -> bool {
    let (client, other) = unsafe { (&(*client).client, &(*other).client) };
    client.same_service(other)
}

/// Whether one executor of the service serves every one of the `count` databases
/// `names` holds (see [`Client::on_one_executor`]), into `out`.
///
/// # Safety
/// `client` came from [`od_connect`]; `names` points to `count` NUL-terminated strings;
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn od_client_on_one_executor(
    client: *const OdClient,
    names: *const *const c_char,
    count: usize,
    out: *mut bool,
) -> *mut OdError {
    guard(|| {
        let databases = (0..count)
            .map(|i| unsafe { optional_str(*names.add(i)) }.map(|name| name.unwrap_or_default().to_owned()))
            .collect::<Result<Vec<_>, _>>()?;
        let one = unsafe { &(*client).client }.on_one_executor(&databases)?;
        unsafe { *out = one };
        Ok(())
    })
}

/// A client like `client` whose queries must run on one executor, verbatim (see
/// [`Client::on_one_executor_only`]); free it with [`od_client_free`].
///
/// # Safety
/// `client` came from [`od_connect`].
#[no_mangle]
pub unsafe extern "C" fn od_client_on_one_executor_only(client: *const OdClient) -> *mut OdClient {
    let client = unsafe { &*client };
    client.with(client.client.on_one_executor_only())
}

/// How many databases the service hosted when a client attached to all of them
/// (`ATTACH 'openduck:'`) connected; 0 for a client of one database.
///
/// # Safety
/// `client` came from [`od_connect`].
#[no_mangle]
pub unsafe extern "C" fn od_client_hosted_count(client: *const OdClient) -> usize {
    unsafe { (*client).hosted.len() }
}

/// The `index`th of those databases' names.
///
/// # Safety
/// `client` came from [`od_connect`]; `index` is below [`od_client_hosted_count`].
#[no_mangle]
pub unsafe extern "C" fn od_client_hosted(client: *const OdClient, index: usize) -> *const c_char {
    unsafe { (&(*client).hosted)[index].as_ptr() }
}

/// Lists the schemas and tables of `database`.
///
/// # Safety
/// `client` came from [`od_connect`], `database` is a valid string, `out` valid for writes.
#[no_mangle]
pub unsafe extern "C" fn od_catalog_load(
    client: *const OdClient,
    database: *const c_char,
    out: *mut *mut OdCatalog,
) -> *mut OdError {
    guard(|| {
        let database = unsafe { optional_str(database) }?.unwrap_or_default();
        let catalog = unsafe { &(*client).client }.catalog(database)?;
        let loaded = OdCatalog {
            schemas: catalog.schemas.iter().map(|name| text(name)).collect(),
            tables: catalog
                .tables
                .into_iter()
                .map(|table| OdTable {
                    schema: text(&table.schema),
                    name: text(&table.name),
                    kind: text(&table.kind),
                    arrow: table.arrow,
                    rows: table.rows,
                })
                .collect(),
        };
        unsafe { *out = Box::into_raw(Box::new(loaded)) };
        Ok(())
    })
}

/// # Safety
/// `catalog` is null or came from [`od_catalog_load`] and is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn od_catalog_free(catalog: *mut OdCatalog) {
    if !catalog.is_null() {
        drop(unsafe { Box::from_raw(catalog) });
    }
}

/// # Safety
/// `catalog` came from [`od_catalog_load`].
#[no_mangle]
pub unsafe extern "C" fn od_catalog_schema_count(catalog: *const OdCatalog) -> usize {
    unsafe { (*catalog).schemas.len() }
}

/// # Safety
/// `catalog` came from [`od_catalog_load`]; `index` is below the schema count.
#[no_mangle]
pub unsafe extern "C" fn od_catalog_schema(catalog: *const OdCatalog, index: usize) -> *const c_char {
    unsafe { (&(*catalog).schemas)[index].as_ptr() }
}

/// # Safety
/// `catalog` came from [`od_catalog_load`].
#[no_mangle]
pub unsafe extern "C" fn od_catalog_table_count(catalog: *const OdCatalog) -> usize {
    unsafe { (*catalog).tables.len() }
}

/// The schema, name, kind (`BASE TABLE`, `VIEW`, …) and estimated rows (-1: unknown) of
/// one table.
///
/// # Safety
/// `catalog` came from [`od_catalog_load`]; `index` is below the table count; the out
/// pointers are valid for writes.
#[no_mangle]
pub unsafe extern "C" fn od_catalog_table(
    catalog: *const OdCatalog,
    index: usize,
    schema: *mut *const c_char,
    name: *mut *const c_char,
    kind: *mut *const c_char,
    rows: *mut i64,
) {
    let table = unsafe { &(&(*catalog).tables)[index] };
    unsafe {
        *schema = table.schema.as_ptr();
        *name = table.name.as_ptr();
        *kind = table.kind.as_ptr();
        *rows = table.rows.and_then(|rows| i64::try_from(rows).ok()).unwrap_or(-1);
    }
}

/// Exports one table's columns as an Arrow C schema (a struct of its columns); the caller
/// releases it.
///
/// # Safety
/// `catalog` came from [`od_catalog_load`]; `index` is below the table count; `out` is
/// valid for writes of an `ArrowSchema`.
#[no_mangle]
pub unsafe extern "C" fn od_catalog_table_arrow(
    catalog: *const OdCatalog,
    index: usize,
    out: *mut FFI_ArrowSchema,
) -> *mut OdError {
    guard(|| {
        let table = unsafe { &(&(*catalog).tables)[index] };
        let schema = FFI_ArrowSchema::try_from(table.arrow.as_ref())?;
        unsafe { ptr::write(out, schema) };
        Ok(())
    })
}

/// A flag the caller sets when the user interrupts (DuckDB's `std::atomic<bool>`, which
/// has `AtomicBool`'s layout), valid while the query's stream lives.
struct InterruptFlag(*const AtomicBool);

// SAFETY: the flag is an atomic, read only with atomic loads, and the caller keeps it
// alive as long as the stream (DuckDB's client context outlives its queries).
unsafe impl Send for InterruptFlag {}
unsafe impl Sync for InterruptFlag {}

impl InterruptFlag {
    fn is_set(&self) -> bool {
        // SAFETY: see the type: the flag outlives every stream that holds it.
        unsafe { &*self.0 }.load(Ordering::Relaxed)
    }
}

/// # Safety
/// `interrupted` is null or an atomic boolean that outlives what the interrupt is given to.
unsafe fn interrupt_of(interrupted: *const AtomicBool) -> Interrupt {
    if interrupted.is_null() {
        return Interrupt::never();
    }
    let flag = InterruptFlag(interrupted);
    Interrupt::when(move || flag.is_set())
}

/// Runs `sql` on the service; its rows stream through `out` (an Arrow C stream the caller
/// releases), fetched as the caller pulls them. While it waits for the service it watches
/// `interrupted` (may be null): once set, the wait ends with an error and the service is
/// told to cancel the query.
///
/// # Safety
/// `client` came from [`od_connect`], `sql` is a valid string, `interrupted` null or an
/// atomic boolean that outlives the stream, `out` is valid for writes of an
/// `ArrowArrayStream`.
#[no_mangle]
pub unsafe extern "C" fn od_query(
    client: *const OdClient,
    sql: *const c_char,
    interrupted: *const AtomicBool,
    out: *mut FFI_ArrowArrayStream,
) -> *mut OdError {
    unsafe { query_into(client, sql, interrupted, out, false) }
}

/// As [`od_query`], and redeems the query's first ticket at once, in the background
/// (see `Client::query_started`): only for a query whose rows will be read, on a client
/// outside a transaction.
///
/// # Safety
/// As for [`od_query`].
#[no_mangle]
pub unsafe extern "C" fn od_query_started(
    client: *const OdClient,
    sql: *const c_char,
    interrupted: *const AtomicBool,
    out: *mut FFI_ArrowArrayStream,
) -> *mut OdError {
    unsafe { query_into(client, sql, interrupted, out, true) }
}

/// [`od_query`], or [`od_query_started`] when `started`.
///
/// # Safety
/// As for [`od_query`].
unsafe fn query_into(
    client: *const OdClient,
    sql: *const c_char,
    interrupted: *const AtomicBool,
    out: *mut FFI_ArrowArrayStream,
    started: bool,
) -> *mut OdError {
    guard(|| {
        let sql = unsafe { optional_str(sql) }?.unwrap_or_default();
        let client = unsafe { &(*client).client };
        let interrupt = unsafe { interrupt_of(interrupted) };
        let reader = if started {
            client.query_started(sql, interrupt)?
        } else {
            client.query(sql, interrupt)?
        };
        unsafe { ptr::write(out, FFI_ArrowArrayStream::new(Box::new(reader))) };
        Ok(())
    })
}

/// Runs a statement whose rows do not matter (DDL) to its end.
///
/// # Safety
/// As for [`od_query`].
#[no_mangle]
pub unsafe extern "C" fn od_execute(
    client: *const OdClient,
    sql: *const c_char,
    interrupted: *const AtomicBool,
) -> *mut OdError {
    guard(|| {
        let sql = unsafe { optional_str(sql) }?.unwrap_or_default();
        unsafe { &(*client).client }.execute(sql, unsafe { interrupt_of(interrupted) })
    })
}

/// Runs a statement that changes rows (UPDATE, DELETE) and tells how many it changed.
///
/// # Safety
/// As for [`od_query`]; `rows` is valid for writes.
#[no_mangle]
pub unsafe extern "C" fn od_update(
    client: *const OdClient,
    sql: *const c_char,
    interrupted: *const AtomicBool,
    rows: *mut i64,
) -> *mut OdError {
    guard(|| {
        let sql = unsafe { optional_str(sql) }?.unwrap_or_default();
        let changed = unsafe { &(*client).client }.update(sql, unsafe { interrupt_of(interrupted) })?;
        unsafe { *rows = changed };
        Ok(())
    })
}

/// An ingest in progress (opaque to C), with the schema its arrays are imported by.
#[derive(Debug)]
pub struct OdIngest {
    ingest: Ingest,
    schema: FFI_ArrowSchema,
}

/// Starts appending rows to an existing table; `schema` (taken over: released by this
/// interface) describes the struct arrays [`od_ingest_push`] receives.
///
/// # Safety
/// `client` came from [`od_connect`]; the names are valid strings; `schema` is a valid
/// Arrow C schema, moved out of by this call; `out` is valid for writes.
#[no_mangle]
pub unsafe extern "C" fn od_ingest_begin(
    client: *const OdClient,
    catalog: *const c_char,
    schema_name: *const c_char,
    table: *const c_char,
    temporary: bool,
    schema: *mut FFI_ArrowSchema,
    out: *mut *mut OdIngest,
) -> *mut OdError {
    // Take the schema over first, so that it is released whatever happens below.
    let schema = unsafe { ptr::replace(schema, FFI_ArrowSchema::empty()) };
    guard(move || {
        let target = IngestTarget {
            catalog: unsafe { optional_str(catalog) }?.unwrap_or_default().to_owned(),
            schema: unsafe { optional_str(schema_name) }?.unwrap_or_default().to_owned(),
            table: unsafe { optional_str(table) }?.unwrap_or_default().to_owned(),
            temporary,
        };
        let columns = Arc::new(Schema::try_from(&schema)?);
        let ingest = unsafe { &(*client).client }.ingest(target, columns)?;
        unsafe { *out = Box::into_raw(Box::new(OdIngest { ingest, schema })) };
        Ok(())
    })
}

/// Sends one struct array of rows (taken over: released by this interface).
///
/// # Safety
/// `ingest` came from [`od_ingest_begin`]; `array` is a valid Arrow C array of the
/// ingest's schema, moved out of by this call.
#[no_mangle]
pub unsafe extern "C" fn od_ingest_push(ingest: *mut OdIngest, array: *mut FFI_ArrowArray) -> *mut OdError {
    let array = unsafe { ptr::replace(array, FFI_ArrowArray::empty()) };
    guard(move || {
        let ingest = unsafe { &mut *ingest };
        let data = unsafe { arrow::ffi::from_ffi(array, &ingest.schema) }?;
        let rows = StructArray::from(data);
        let batch = RecordBatch::try_new(Arc::clone(ingest.ingest.schema()), rows.columns().to_vec())?;
        ingest.ingest.push(batch)
    })
}

/// Ends the upload, frees the ingest, and tells how many rows the service wrote.
///
/// # Safety
/// `ingest` came from [`od_ingest_begin`] and is not used afterwards; `rows` is valid
/// for writes.
#[no_mangle]
pub unsafe extern "C" fn od_ingest_finish(ingest: *mut OdIngest, rows: *mut i64) -> *mut OdError {
    let ingest = unsafe { Box::from_raw(ingest) };
    guard(move || {
        let written = ingest.ingest.finish()?;
        unsafe { *rows = written };
        Ok(())
    })
}

/// Abandons an ingest: the upload is cancelled and the service keeps none of its rows.
///
/// # Safety
/// `ingest` is null or came from [`od_ingest_begin`] and is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn od_ingest_free(ingest: *mut OdIngest) {
    if !ingest.is_null() {
        drop(unsafe { Box::from_raw(ingest) });
    }
}

/// # Safety
/// `error` is null or came from one of these functions and is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn od_error_free(error: *mut OdError) {
    if !error.is_null() {
        let error = unsafe { Box::from_raw(error) };
        if !error.message.is_null() {
            drop(unsafe { CString::from_raw(error.message) });
        }
    }
}
