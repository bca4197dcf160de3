//! Snapshots as SQL sees them: `database@snapshot` catalogs for time travel,
//! and the `openduck.main.snapshots` table that lists them.

use openduck_storage::hydrate;
use tracing::info;

use crate::error::{Error, Result};
use crate::executor::Executor;
use crate::open::{SNAPSHOTS_TABLE, SYSTEM_CATALOG};
use crate::pool::Lease;
use crate::sql::{quote_identifier, quote_literal};
use crate::stream::run_blocking;

impl Executor {
    /// Attaches a snapshot of a hosted database read-only under the name
    /// `database@snapshot` (an id, or a unique prefix of at least six hex
    /// digits), so SQL can name it as a catalog. Materializes it first,
    /// fetching it from storage. Attaching a name already attached does
    /// nothing.
    pub async fn attach_snapshot(&self, name: &str) -> Result<()> {
        let Some((database, snapshot)) = name.split_once('@') else {
            return Err(Error::UnknownDatabase(name.to_string()));
        };
        if !self.databases.read().iter().any(|hosted| hosted == database) {
            return Err(Error::UnknownDatabase(database.to_string()));
        }
        let Some(storage) = &self.storage else {
            return Err(Error::Refused(format!(
                "{name}: snapshots need differential storage, and this executor keeps {database} in a local file only"
            )));
        };
        if self.snapshots.lock().contains(name) {
            return Ok(());
        }
        if snapshot == "latest" {
            return Err(Error::Storage(openduck_storage::Error::InvalidSnapshotId(format!(
                "{name}: name a snapshot by its id (openduck snapshot list {database})"
            ))));
        }
        let (id, manifest) = storage.resolve(database, snapshot).await?;
        let dir = self.data_dir.join(".snapshots");
        let path = dir.join(format!("{database}@{id}.duckdb"));
        if !path.exists() {
            std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
                path: dir.clone(),
                source,
            })?;
            let partial = dir.join(format!(".{database}@{id}.partial"));
            hydrate(storage, &manifest, &partial).await?;
            std::fs::rename(&partial, &path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        }
        let sql = format!(
            "ATTACH IF NOT EXISTS {} AS {} (READ_ONLY)",
            quote_literal(&path.to_string_lossy()),
            quote_identifier(name)
        );
        let conn = self.pool.get().await?;
        run_blocking(Lease::pooled(conn), move |conn| {
            conn.conn().execute_batch(&sql)?;
            conn.catalog_changed();
            Ok(())
        })
        .await?;
        info!(database, snapshot = %id, name, "snapshot attached");
        self.snapshots.lock().insert(name.to_string());
        Ok(())
    }

    /// Fills `openduck.main.snapshots` with the history of every database in
    /// storage, when `sql` may read it. Only running a statement needs it:
    /// describing one needs the table's columns, which never change.
    pub(crate) async fn refresh_snapshots_table(&self, sql: &str) -> Result<()> {
        let Some(storage) = &self.storage else { return Ok(()) };
        let named = sql
            .as_bytes()
            .windows(SYSTEM_CATALOG.len())
            .any(|window| window.eq_ignore_ascii_case(SYSTEM_CATALOG.as_bytes()));
        if !named {
            return Ok(());
        }
        let _one_at_a_time = self.listing.lock().await;
        let mut rows = Vec::new();
        for (database, head) in storage.heads().list().await? {
            for (at_ms, id) in storage.history(&database).await? {
                rows.push(format!(
                    "({}, '{id}', to_timestamp({at_ms} / 1000.0), {})",
                    quote_literal(&database),
                    id == head
                ));
            }
        }
        let mut sql = format!("DELETE FROM {SNAPSHOTS_TABLE};");
        if !rows.is_empty() {
            sql += &format!(" INSERT INTO {SNAPSHOTS_TABLE} VALUES {};", rows.join(", "));
        }
        let conn = self.pool.get().await?;
        run_blocking(Lease::pooled(conn), move |conn| {
            let transaction = conn.conn().statement_transaction(false)?;
            conn.conn().execute_batch(&sql)?;
            transaction.commit()
        })
        .await
    }
}
