//! `CREATE DATABASE dst FROM src[@snapshot]`: a zero-copy clone in SQL.
//!
//! DuckDB has no such statement, so the executor recognizes it before DuckDB
//! sees the text, clones the database in storage (the new head points at the
//! source's snapshot; no block is copied), and attaches the clone as a new
//! writable database.

use openduck_storage::{is_valid_database_name, DatabaseWriter};
use tracing::info;

use crate::error::{Error, Result};
use crate::executor::Executor;
use crate::pool::Lease;
use crate::sql::{quote_identifier, quote_literal};
use crate::stream::run_blocking;

/// A parsed `CREATE DATABASE target FROM source[@snapshot]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CloneStatement {
    pub(crate) target: String,
    pub(crate) source: String,
    pub(crate) snapshot: Option<String>,
}

/// Recognizes the statement (keywords in any case, names optionally in
/// double quotes, an optional trailing `;`); `None` for any other text.
pub(crate) fn parse(sql: &str) -> Option<Result<CloneStatement>> {
    let text = sql.trim().trim_end_matches(';').trim();
    let words: Vec<&str> = text.split_whitespace().collect();
    let [create, database, target, from, source] = words.as_slice() else {
        return None;
    };
    let keyword = |word: &str, expected: &str| word.eq_ignore_ascii_case(expected);
    if !(keyword(create, "CREATE") && keyword(database, "DATABASE") && keyword(from, "FROM")) {
        return None;
    }
    let unquote = |name: &str| name.trim_matches('"').to_string();
    let target = unquote(target);
    let (source, snapshot) = match unquote(source).split_once('@') {
        Some((source, snapshot)) => (source.to_string(), Some(snapshot.to_string())),
        None => (unquote(source), None),
    };
    for name in [&target, &source] {
        if !is_valid_database_name(name) {
            return Some(Err(Error::InvalidDatabaseName(name.clone())));
        }
    }
    Some(Ok(CloneStatement {
        target,
        source,
        snapshot,
    }))
}

impl Executor {
    /// Clones `statement.source` as `statement.target` and attaches it here.
    pub(crate) async fn create_database_from(&self, statement: &CloneStatement) -> Result<()> {
        let Some(storage) = self.storage() else {
            return Err(Error::Refused(
                "CREATE DATABASE ... FROM needs differential storage (--storage)".into(),
            ));
        };
        if !self.databases().contains(&statement.source) {
            return Err(Error::UnknownDatabase(statement.source.clone()));
        }
        if self.hosts(&statement.target) {
            return Err(Error::Storage(openduck_storage::Error::DatabaseExists(
                statement.target.clone(),
            )));
        }
        // The source's latest state first, so the clone sees every
        // acknowledged write.
        self.publish().await?;
        let not_here = |error| match error {
            openduck_storage::Error::Busy { .. } => Error::Refused(format!(
                "this executor may not write {target}: in a cluster, clone with `openduck clone` \
                 and start an executor with --database {target}",
                target = statement.target
            )),
            other => Error::Storage(other),
        };
        let id = storage
            .clone_database(&statement.source, statement.snapshot.as_deref(), &statement.target)
            .await
            .map_err(not_here)?;
        let path = self.local_file(&statement.target);
        if statement.snapshot.is_none() {
            // The source's local file holds the same blocks: start from a
            // local copy (a reflink where the file system has them), so that
            // nothing comes from object storage.
            crate::files::copy_file(self.local_file(&statement.source), path.clone()).await?;
        }
        let (writer, _) = DatabaseWriter::open(storage, &statement.target, &path)
            .await
            .map_err(not_here)?;
        let sql = format!(
            "ATTACH {} AS {}",
            quote_literal(&path.to_string_lossy()),
            quote_identifier(&statement.target)
        );
        let conn = self.pool().get().await?;
        run_blocking(Lease::pooled(conn), move |conn| {
            conn.conn().execute_batch(&sql)?;
            conn.catalog_changed();
            Ok(())
        })
        .await?;
        self.add_database(&statement.target, writer);
        info!(source = %statement.source, target = %statement.target, snapshot = %id, "database cloned");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_the_clone_statement_only() {
        let clone = |target: &str, source: &str, snapshot: Option<&str>| CloneStatement {
            target: target.into(),
            source: source.into(),
            snapshot: snapshot.map(Into::into),
        };
        assert_eq!(
            parse("CREATE DATABASE b FROM a").unwrap().unwrap(),
            clone("b", "a", None)
        );
        assert_eq!(
            parse(" create database \"b\"\n from \"a@1a2b3c\" ; ").unwrap().unwrap(),
            clone("b", "a", Some("1a2b3c"))
        );
        assert!(parse("CREATE TABLE b AS SELECT 1").is_none());
        assert!(parse("CREATE DATABASE b").is_none());
        assert!(matches!(
            parse("CREATE DATABASE ../x FROM a"),
            Some(Err(Error::InvalidDatabaseName(_)))
        ));
    }
}
