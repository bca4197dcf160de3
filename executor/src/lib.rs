//! A DuckDB executor: hosts databases and runs SQL on them, streaming results
//! as Arrow record batches.
//!
//! An [`Executor`] opens one DuckDB instance. The first database of its
//! configuration is the main database and the others are attached, so a
//! database name is a DuckDB catalog name and one statement may join across
//! the databases of one executor. Statements run on a bounded pool of
//! connections:
//!
//! - [`Executor::query`] streams rows as DuckDB produces them, with
//!   backpressure; dropping the stream interrupts the query;
//! - [`Executor::update`] runs statements whose rows are not wanted and counts
//!   the rows they changed;
//! - [`Executor::describe`] tells a statement's result and parameter schemas
//!   without running it;
//! - [`Executor::ingest`] appends a stream of record batches to a table;
//! - [`Executor::open_session`] sets a connection aside for one client, for
//!   transactions ([`Executor::begin`], [`Executor::commit`],
//!   [`Executor::rollback`]) and temporary tables; statements name it by id;
//! - [`Executor::cancel`] stops a statement by its query id;
//! - [`Executor::catalogs`], [`Executor::schemas`] and [`Executor::tables`]
//!   list what the hosted databases hold, [`Executor::table_statistics`]
//!   measures a table.
//!
//! File access from SQL is confined to the data directory unless the
//! configuration allows more; local differential storage lives beside it,
//! out of SQL's reach ([`default_storage_dir`], [`confine_storage`]).
//! Errors carry an [`ErrorKind`] that service boundaries map to protocol
//! status codes.
//!
//! The executor also answers [`openduck_api::ExecutorApi`], the interface a
//! coordinator uses for an executor in its own process or in another one;
//! the types that interface exchanges ([`Statement`], [`CatalogFilter`],
//! [`IngestTarget`], ...) are re-exported here.

mod api;
mod catalog;
mod clone;
mod durable;
mod engine;
mod error;
mod executor;
mod files;
mod ingest;
mod load;
mod open;
mod placement;
mod pool;
mod replica;
mod running;
mod session;
mod snapshots;
mod sql;
mod statistics;
mod stream;

pub use catalog::{CatalogFilter, KeyColumn, TableEntry, TableKind};
pub use error::{Error, ErrorKind, Result};
pub use executor::{Description, Executor, ExecutorConfig, Statement};
pub use ingest::{duckdb_type_name, IngestMode, IngestTarget};
pub use load::{Load, ReplicaProgress};
pub use open::BUILT_IN_CATALOGS;
pub use openduck_storage::is_valid_database_name;
pub use placement::{confine_storage, default_storage_dir, prepare_default_storage, Reach, SqlFileAccess};
pub use session::Session;
pub use sql::{quote_identifier, quote_literal};
pub use stream::BatchStream;
