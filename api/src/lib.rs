//! The operations an openduck executor offers, declared once.
//!
//! [`ExecutorApi`] is what a coordinator asks of an executor: describe, query
//! and update statements, ingest rows, sessions and their transactions,
//! cancel, catalog listings, table statistics, snapshots. Two implementations
//! answer it, with no difference a caller can see: the DuckDB executor in
//! the coordinator's own process (`openduck-executor`), and the client of an
//! executor in another process, over Arrow Flight (`openduck-remote`), whose
//! server dispatches the wire's requests to any implementation.
//!
//! This crate holds the trait and the types the operations exchange
//! ([`Statement`], [`Description`], [`Rows`], [`IngestTarget`], catalog
//! entries) and [`Error`], classified by an [`ErrorKind`] that each service
//! boundary maps to a status code, and DuckDB's dialect as both sides write
//! it (quoting, type names, built-in catalogs). It does not depend on DuckDB.

mod catalog;
mod dialect;
mod error;
mod executor;
mod grants;
mod ingest;
mod statement;
mod statistics;

pub use catalog::{CatalogFilter, KeyColumn, TableEntry, TableKind};
pub use dialect::{duckdb_type_name, quote_identifier, quote_literal, BUILT_IN_CATALOGS, SYSTEM_CATALOG};
pub use error::{Error, ErrorKind, Result};
pub use executor::{Batches, ExecutorApi, Hosting, Rows};
pub use grants::Grants;
pub use ingest::{IngestMode, IngestTarget, Source, Transferred};
pub use statement::{result_bytes, Description, Statement};
pub use statistics::{ColumnStatistics, TableName, TableStatistics};
