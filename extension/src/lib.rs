//! The Rust core of openduck's DuckDB extension.
//!
//! The extension (`openduck.duckdb_extension`) lets a user's own DuckDB
//! `ATTACH 'openduck:mydb'`. Everything DuckDB calls is C++ (`cpp/`); the C++ layer calls
//! this crate only through the leaf `extern "C"` functions of [`ffi`], declared for C in
//! `cpp/openduck_core.h`. Those functions never unwind: a panic becomes an error value, and
//! rows cross as the Arrow C stream interface, which DuckDB converts natively.
//!
//! Behind the C interface:
//! - [`Target`]: what `ATTACH 'openduck:…'` names (database, endpoint, token), with the
//!   `OPENDUCK_ENDPOINT` and `OPENDUCK_TOKEN` defaults;
//! - [`Client`]: a Flight SQL connection to the service (blocking calls on one shared Tokio
//!   runtime), its catalog listing ([`Catalog`]), streaming queries, bulk ingest
//!   ([`Ingest`]) and transactions ([`Client::begin`]). A user account's client logs in
//!   again before its token expires, and when the service refuses it;
//!   A result in several parts (endpoints) is read in parallel;
//! - [`Link`]: the round trip and throughput a client measured, for placement.

mod catalog;
mod client;
mod colocation;
mod credentials;
mod error;
pub mod ffi;
mod ingest;
mod link;
mod parts;
mod reader;
mod target;
mod transaction;

pub use catalog::{Catalog, TableEntry};
pub use client::{Client, Interrupt};
pub use error::Error;
pub use ingest::{Ingest, IngestTarget};
pub use link::Link;
pub use reader::QueryReader;
pub use target::{Target, DEFAULT_ENDPOINT};
