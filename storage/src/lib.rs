//! Differential storage: every DuckDB checkpoint becomes an immutable layer
//! in object storage.
//!
//! DuckDB keeps writing an ordinary local file. After a checkpoint, a
//! [`DatabaseWriter`] compares each block's DuckDB checksum with the previous
//! snapshot's, uploads the changed blocks (each distinct block once) as a new
//! layer, writes a [`Manifest`] (block → layer and offset, file length,
//! parent, time, DuckDB storage version) and moves the database's head to it
//! by compare-and-swap ([`Heads`]: a local file in embedded mode, etcd in a
//! cluster). A write is durable once the head moved.
//!
//! From there:
//! - [`hydrate`] brings a local file to any snapshot, fetching only the
//!   blocks whose checksums differ: a restart on an empty disk, a read
//!   replica following the head, time travel to an old snapshot;
//! - [`Storage::snapshots`] lists a database's history and
//!   [`Storage::resolve`] finds one snapshot by id;
//! - [`Storage::clone_database`] makes a new database share a snapshot, in
//!   constant time;
//! - [`Storage::gc`] deletes what no retained snapshot reaches.
//!
//! The format is described in `docs/storage.md`.

mod crash;
mod error;
mod format;
mod gc;
mod heads;
mod history;
mod hydrate;
mod manifest;
mod store;
mod writer;

pub use error::{is_valid_database_name, Error, Result};
pub use gc::{GcOptions, GcReport};
pub use heads::{Claim, EtcdHeads, FileHeads, Heads};
pub use history::SnapshotInfo;
pub use hydrate::{hydrate, wal_path, HydrateStats};
pub use manifest::{BlockRef, Extent, Manifest, SnapshotId, FORMAT_VERSION};
pub use store::{Location, Storage};
pub use writer::{DatabaseWriter, SnapshotStats};
