//! Transactions of a connection: the ones clients begin, and the one each
//! statement runs in when no client began one.
//!
//! DuckDB 1.5.2 prunes filters with table statistics while it prepares a
//! statement (`WHERE id <> 3` is dropped when the statistics say every id is
//! 0), and through the C API an autocommit connection prepares in one
//! transaction and executes in the next. A row committed by another
//! connection in between then passes a filter the plan no longer has: a
//! query returns rows its `WHERE` excludes, an `UPDATE` or `DELETE` touches
//! rows it should not (duckdb/duckdb#23704, fixed after 1.5.2 by
//! duckdb/duckdb#24696). A [`StatementTransaction`] makes preparing and
//! executing one transaction, so the statistics a plan relied on cover every
//! row it sees.

use super::Connection;
use crate::error::{Error, ErrorKind, Result};

impl Connection {
    /// Begins a transaction. A BEGIN cancelled while it ran may have begun
    /// all the same: a failed BEGIN rolls back, so that it leaves no
    /// transaction open. Refused when one is open already: it is someone's.
    pub(crate) fn begin(&self) -> Result<()> {
        self.begin_as(false)
    }

    /// Begins a transaction in which DuckDB refuses every write.
    pub(crate) fn begin_read_only(&self) -> Result<()> {
        self.begin_as(true)
    }

    /// Begins a transaction, read-only when `read_only`: DuckDB then refuses
    /// every write in it.
    fn begin_as(&self, read_only: bool) -> Result<()> {
        if self.in_transaction() {
            return Err(Error::DuckDb {
                kind: ErrorKind::FailedPrecondition,
                message: "a transaction is open already on this connection".into(),
            });
        }
        let begin = if read_only {
            "BEGIN TRANSACTION READ ONLY"
        } else {
            "BEGIN TRANSACTION"
        };
        self.execute_batch(begin).inspect_err(|_| {
            let _ = self.rollback_quietly();
        })?;
        self.in_transaction.set(true);
        self.failed.set(false);
        self.read_only_transaction.set(read_only);
        Ok(())
    }

    /// Commits the open transaction. It is over either way: DuckDB rolls
    /// back a commit that fails (a rollback after it finds nothing to do).
    ///
    /// The work is done when this runs: a cancellation of the query that
    /// arrived since (its consumer left after the last row) does not stop
    /// the commit, and still stands for the statements after it.
    pub(crate) fn commit(&self) -> Result<()> {
        self.in_transaction.set(false);
        self.shielded(|| {
            self.execute_batch("COMMIT").inspect_err(|_| {
                if let Err(error) = self.execute_batch("ROLLBACK") {
                    // Nothing to roll back is what a failed COMMIT leaves;
                    // anything else may leave a transaction open.
                    if !error.to_string().contains("no transaction is active") {
                        self.broken.set(true);
                    }
                }
            })
        })
    }

    /// Commits a client's transaction, or refuses to when a statement in it
    /// failed (or timed out): DuckDB would roll it back and call that a
    /// commit. Every statement of a failed transaction fails, which is how
    /// it is found out.
    pub(crate) fn commit_client_transaction(&self) -> Result<()> {
        if self.failed.get() {
            let _ = self.rollback();
            return Err(Error::DuckDb {
                kind: ErrorKind::Aborted,
                message: "the transaction was rolled back, not committed: a statement in it was refused".into(),
            });
        }
        if let Err(error) = self.execute_batch("SELECT 1") {
            let _ = self.rollback();
            return Err(Error::DuckDb {
                kind: ErrorKind::Aborted,
                message: format!("the transaction was rolled back, not committed: a statement in it failed ({error})"),
            });
        }
        self.commit()
    }

    /// Rolls back the open transaction, also after its query was cancelled:
    /// the cancellation stopped the query's work, and its cleanup must still
    /// run, or the connection would go back to the pool inside a transaction.
    /// When even that fails, the connection is marked [`Connection::is_broken`].
    pub(crate) fn rollback(&self) -> Result<()> {
        self.in_transaction.set(false);
        self.shielded(|| self.execute_batch("ROLLBACK"))
            .inspect_err(|_| self.broken.set(true))
    }

    /// Rolls back whatever may be open, not minding that nothing is.
    fn rollback_quietly(&self) -> Result<()> {
        self.in_transaction.set(false);
        self.shielded(|| self.execute_batch("ROLLBACK"))
    }

    /// Whether the connection may be inside a transaction nobody will end:
    /// it must be closed, never pooled.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken.get()
    }

    /// Whether a transaction begun with [`Connection::begin`] is open.
    pub(crate) fn in_transaction(&self) -> bool {
        self.in_transaction.get()
    }

    /// The transaction one statement is prepared and executed in: a new one
    /// when none is open, committed by [`StatementTransaction::commit`] and
    /// rolled back when dropped before; the open one otherwise, left alone.
    /// A new one is read-only when `read_only` (see [`Statement::read_only`]).
    ///
    /// [`Statement::read_only`]: openduck_api::Statement::read_only
    /// A read-only statement is refused inside a transaction that may write
    /// (one begun by another user of the same client connection, say).
    pub(crate) fn statement_transaction(&self, read_only: bool) -> Result<StatementTransaction<'_>> {
        let own = !self.in_transaction();
        if own {
            self.begin_as(read_only)?;
        } else if read_only && !self.read_only_transaction.get() {
            return Err(Error::read_only());
        }
        Ok(StatementTransaction {
            conn: self,
            own,
            undo: false,
        })
    }

    /// Makes the open transaction fail, as DuckDB does when one of its
    /// statements fails: every later statement in it fails, and
    /// [`Connection::commit_client_transaction`] refuses to commit it (by
    /// the flag, even if a cancellation kept the statement below from
    /// running).
    fn fail_transaction(&self) {
        self.failed.set(true);
        // error() fails inside DuckDB, which marks the transaction aborted.
        let _ = self
            .shielded(|| self.execute_batch("SELECT error('openduck: a statement of this transaction was refused')"));
    }
}

/// See [`Connection::statement_transaction`]. Drop the statement's result
/// before committing: a result still open would be cut short.
#[must_use = "a statement transaction rolls back unless committed"]
pub(crate) struct StatementTransaction<'c> {
    conn: &'c Connection,
    own: bool,
    /// Fail a client's transaction it runs in when dropped.
    undo: bool,
}

impl StatementTransaction<'_> {
    /// The statement failed after it ran (its result was refused): what it
    /// did must not stand. When dropped uncommitted, its own transaction
    /// rolls back, as always; a client's transaction it ran in fails (see
    /// [`Connection::fail_transaction`]). Drop the statement first.
    pub(crate) fn undo_on_drop(&mut self) {
        self.undo = true;
    }

    /// Commits what the statement did, when this transaction is its own.
    pub(crate) fn commit(mut self) -> Result<()> {
        if std::mem::take(&mut self.own) {
            self.conn.commit()?;
        }
        Ok(())
    }
}

impl Drop for StatementTransaction<'_> {
    fn drop(&mut self) {
        if self.own {
            let _ = self.conn.rollback();
        } else if self.undo {
            self.conn.fail_transaction();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::AsArray;
    use arrow::datatypes::Int64Type;

    use super::super::{Connection, Database, Prepared};

    /// A database in a fresh directory (kept as long as the directory).
    fn database() -> (tempfile::TempDir, Arc<Database>) {
        let dir = tempfile::tempdir().unwrap();
        let database = Arc::new(Database::open("t", &dir.path().join("t.duckdb"), &[]).unwrap());
        (dir, database)
    }

    /// The ids `sql` reads (one BIGINT column).
    fn ids(conn: &Connection, sql: &str) -> Vec<i64> {
        let statements = conn.statements(sql).unwrap();
        execute_ids(&statements.prepare(0).unwrap())
    }

    /// Executes `prepared` and reads its ids (one BIGINT column).
    fn execute_ids(prepared: &Prepared<'_>) -> Vec<i64> {
        let mut result = prepared.execute().unwrap();
        let mut ids = Vec::new();
        while let Some(batch) = result.next_batch().unwrap() {
            ids.extend(batch.column(0).as_primitive::<Int64Type>().values().iter().copied());
        }
        ids
    }

    /// The ids `sql` returns (one BIGINT column) when `insert` commits on
    /// another connection between preparing and executing it.
    fn ids_with_a_commit_in_between(own_transaction: bool) -> Vec<i64> {
        let (_dir, database) = database();
        let (reader, writer) = (database.connect().unwrap(), database.connect().unwrap());
        writer
            .execute_batch("CREATE TABLE t AS SELECT 0::BIGINT AS id")
            .unwrap();

        let transaction = own_transaction.then(|| reader.statement_transaction(false).unwrap());
        let statements = reader.statements("SELECT id FROM t WHERE id <> 3").unwrap();
        let prepared = statements.prepare(0).unwrap();
        writer.execute_batch("INSERT INTO t VALUES (3)").unwrap();
        let ids = execute_ids(&prepared);
        drop(prepared);
        if let Some(transaction) = transaction {
            transaction.commit().unwrap();
            assert!(!reader.in_transaction());
        }
        ids
    }

    #[test]
    fn a_statement_sees_only_rows_its_plan_was_made_for() {
        assert_eq!(ids_with_a_commit_in_between(true), vec![0]);
    }

    /// When this fails, the DuckDB in use prepares without relying on the
    /// table's statistics (duckdb/duckdb#24696): statement transactions may go.
    #[test]
    fn duckdb_prunes_filters_with_statistics_when_it_prepares() {
        assert_eq!(ids_with_a_commit_in_between(false), vec![0, 3]);
    }

    #[test]
    fn a_statement_inside_a_transaction_leaves_it_open() {
        let (_dir, database) = database();
        let conn = database.connect().unwrap();
        conn.execute_batch("CREATE TABLE t (id BIGINT)").unwrap();
        conn.begin().unwrap();
        let transaction = conn.statement_transaction(false).unwrap();
        conn.execute_batch("INSERT INTO t VALUES (1)").unwrap();
        transaction.commit().unwrap();
        assert!(conn.in_transaction());
        conn.rollback().unwrap();
        assert!(!conn.in_transaction());

        // Dropped uncommitted, a statement's own transaction rolls back.
        let transaction = conn.statement_transaction(false).unwrap();
        conn.execute_batch("INSERT INTO t VALUES (2)").unwrap();
        drop(transaction);
        assert!(!conn.in_transaction());
        assert_eq!(ids(&conn, "SELECT id FROM t"), Vec::<i64>::new());
    }

    #[test]
    fn a_read_only_statement_transaction_refuses_every_write() {
        let (_dir, database) = database();
        let conn = database.connect().unwrap();
        conn.execute_batch("CREATE TABLE t AS SELECT 1::BIGINT AS id; CREATE SEQUENCE s")
            .unwrap();
        for write in [
            "INSERT INTO t VALUES (2)",
            "SELECT nextval('s')",
            "CREATE TABLE u (x INT)",
        ] {
            let transaction = conn.statement_transaction(true).unwrap();
            let error = conn.execute_batch(write).unwrap_err();
            assert_eq!(
                error.kind(),
                crate::error::ErrorKind::PermissionDenied,
                "{write}: {error}"
            );
            drop(transaction);
        }
        let transaction = conn.statement_transaction(true).unwrap();
        assert_eq!(ids(&conn, "SELECT id FROM t"), vec![1]);
        transaction.commit().unwrap();
        // Not inside a transaction that may write, nor one it began.
        conn.begin().unwrap();
        let error = conn.statement_transaction(true).err().expect("refused");
        assert_eq!(error.kind(), crate::error::ErrorKind::PermissionDenied);
        conn.rollback().unwrap();
        conn.begin_read_only().unwrap();
        let inside = conn.statement_transaction(true).unwrap();
        assert!(conn.execute_batch("INSERT INTO t VALUES (3)").is_err());
        drop(inside);
        conn.rollback().unwrap();
        // A read-write one after it writes.
        let transaction = conn.statement_transaction(false).unwrap();
        conn.execute_batch("INSERT INTO t VALUES (2)").unwrap();
        transaction.commit().unwrap();
        assert_eq!(ids(&conn, "SELECT id FROM t ORDER BY id"), vec![1, 2]);
    }

    #[test]
    fn a_cancellation_after_the_statement_ran_does_not_stop_its_commit() {
        let (_dir, database) = database();
        let conn = database.connect().unwrap();
        conn.execute_batch("CREATE TABLE t (id BIGINT)").unwrap();
        let interrupter = conn.begin_query();
        let transaction = conn.statement_transaction(false).unwrap();
        conn.execute_batch("INSERT INTO t VALUES (1)").unwrap();
        // The consumer of the statement's rows went away after the last one.
        interrupter.interrupt();
        transaction.commit().unwrap();
        assert!(!conn.in_transaction());
        // The cancellation stands for what the query would run next.
        assert!(conn.execute_batch("SELECT 1").is_err());
        conn.end_query();
        assert_eq!(ids(&conn, "SELECT id FROM t"), vec![1]);
        // And a new transaction begins: none was left open.
        conn.begin().unwrap();
        conn.rollback().unwrap();
        assert!(!conn.is_broken());
    }

    #[test]
    fn a_client_transaction_whose_statement_failed_is_not_called_committed() {
        let (_dir, database) = database();
        let conn = database.connect().unwrap();
        conn.execute_batch("CREATE TABLE t (id BIGINT)").unwrap();
        conn.begin().unwrap();
        conn.execute_batch("INSERT INTO t VALUES (1)").unwrap();
        assert!(conn.execute_batch("SELECT CAST('x' AS INTEGER)").is_err());
        let error = conn.commit_client_transaction().unwrap_err();
        assert!(error.to_string().contains("rolled back, not committed"), "{error}");
        assert!(!conn.in_transaction() && !conn.is_broken());
        // Nothing was committed, and the connection begins afresh.
        conn.begin().unwrap();
        assert!(conn.begin().is_err(), "a second BEGIN must not roll back the first");
        conn.execute_batch("INSERT INTO t VALUES (2)").unwrap();
        conn.commit_client_transaction().unwrap();
        assert_eq!(ids(&conn, "SELECT id FROM t"), vec![2]);
    }
}
