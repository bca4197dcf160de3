//! What a statement's SQL says about where it runs: the databases it
//! touches, and whether it is one read-only query. Parsed once per
//! statement, into an [`Analysis`].
//!
//! sqlparser's DuckDB dialect finds the table references; a reference
//! qualified with the name of a known database (`db.schema.table`, or
//! `db.table`) touches that database, anything else the session's default.
//! SQL that sqlparser cannot parse (DuckDB has syntax it does not know, such
//! as `FROM t SELECT x` or `PIVOT`) is routed to the default database, where
//! DuckDB parses it for real.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use openduck_api::BUILT_IN_CATALOGS;

use crate::history::HISTORY_TABLE;
use sqlparser::ast::{ObjectName, Query, SetExpr, Statement, TableFactor, Visit, Visitor};
use sqlparser::dialect::DuckDbDialect;
use sqlparser::parser::Parser;

/// What the coordinator reads from a statement's SQL, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Analysis {
    /// The databases it reads or writes (a snapshot as `db@snapshot`).
    /// The default counts when a table name is not qualified with a
    /// database (CTE names and table functions such as `range(10)` are not
    /// tables), when no table is named, or when the SQL does not parse.
    pub(crate) touched: BTreeSet<String>,
    /// For a text that is one read-only query, or an `EXPLAIN` of one:
    /// whether it is an EXPLAIN, and the query. `None` for anything else.
    pub(crate) query: Option<(bool, String)>,
    /// How often it names `openduck.main.query_history`, which lives in
    /// the coordinator, not in a database.
    pub(crate) history: usize,
    /// Whether it names a table of a database too.
    pub(crate) names_tables: bool,
}

impl Analysis {
    /// The snapshots it names (`db@snapshot`).
    pub(crate) fn snapshots(&self) -> impl Iterator<Item = &str> {
        self.touched
            .iter()
            .map(String::as_str)
            .filter(|name| snapshot_of(name).is_some())
    }
}

/// Analyses `sql`, given the known database names and the default database.
pub(crate) fn analyse(sql: &str, known: &[String], default: &str) -> Analysis {
    let Ok(statements) = Parser::parse_sql(&DuckDbDialect {}, sql) else {
        return Analysis {
            touched: BTreeSet::from([default.to_string()]),
            query: None,
            history: 0,
            names_tables: true,
        };
    };
    let mut relations = Relations::default();
    for statement in &statements {
        let _ = statement.visit(&mut relations);
    }
    let history = relations.names.iter().filter(|name| is_history(name)).count();
    relations.names.retain(|name| !is_history(name));
    Analysis {
        names_tables: relations.names.iter().any(|name| !relations.is_cte(name)),
        touched: databases_touched(&relations, known, default),
        query: read_only_query(&statements, sql),
        history,
    }
}

/// Whether a table name is `openduck.main.query_history`.
fn is_history(name: &ObjectName) -> bool {
    name.0.len() == HISTORY_TABLE.len()
        && name.0.iter().zip(HISTORY_TABLE).all(|(part, wanted)| {
            part.as_ident()
                .is_some_and(|ident| ident.value.eq_ignore_ascii_case(wanted))
        })
}

fn databases_touched(relations: &Relations, known: &[String], default: &str) -> BTreeSet<String> {
    let mut touched = BTreeSet::new();
    for name in &relations.names {
        match database_of(name, known) {
            Some(database) => {
                touched.insert(database);
            }
            None if !relations.is_cte(name) && !relations.is_function(name) => {
                touched.insert(default.to_string());
            }
            None => {}
        }
    }
    if touched.is_empty() {
        touched.insert(default.to_string());
    }
    touched
}

/// Every table name, CTE name and table function of a statement.
#[derive(Default)]
struct Relations {
    names: Vec<ObjectName>,
    ctes: Vec<String>,
    functions: Vec<ObjectName>,
}

impl Relations {
    /// An unqualified table function (`range(10)`, `read_parquet(...)`): it
    /// runs wherever the statement runs.
    fn is_function(&self, name: &ObjectName) -> bool {
        name.0.len() == 1 && self.functions.contains(name)
    }

    fn is_cte(&self, name: &ObjectName) -> bool {
        match name.0.as_slice() {
            [part] => part
                .as_ident()
                .is_some_and(|ident| self.ctes.iter().any(|cte| cte.eq_ignore_ascii_case(&ident.value))),
            _ => false,
        }
    }
}

impl Visitor for Relations {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            self.ctes
                .extend(with.cte_tables.iter().map(|cte| cte.alias.name.value.clone()));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            name, args: Some(_), ..
        } = factor
        {
            self.functions.push(name.clone());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        self.names.push(relation.clone());
        ControlFlow::Continue(())
    }
}

fn read_only_query(statements: &[Statement], sql: &str) -> Option<(bool, String)> {
    match statements {
        [Statement::Query(query)] if reads_only(query) => Some((false, sql.to_string())),
        [Statement::Explain {
            statement,
            analyze: false,
            ..
        }] if matches!(&**statement, Statement::Query(query) if reads_only(query)) => {
            Some((true, statement.to_string()))
        }
        _ => None,
    }
}

/// Whether a query only reads: sqlparser also parses `WITH ... INSERT`
/// (`UPDATE`, `DELETE`, `MERGE`) and `SELECT ... INTO` as queries.
fn reads_only(query: &Query) -> bool {
    let ctes = query.with.iter().flat_map(|with| &with.cte_tables);
    ctes.into_iter().all(|cte| reads_only(&cte.query)) && body_reads_only(&query.body)
}

fn body_reads_only(body: &SetExpr) -> bool {
    match body {
        SetExpr::Select(select) => select.into.is_none(),
        SetExpr::Query(query) => reads_only(query),
        SetExpr::SetOperation { left, right, .. } => body_reads_only(left) && body_reads_only(right),
        SetExpr::Values(_) | SetExpr::Table(_) => true,
        SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => false,
    }
}

/// The database a table name names: the first of three parts (a database
/// nobody serves included, so that the statement fails saying so), or the
/// first of two when it is a known database name.
fn database_of(name: &ObjectName, known: &[String]) -> Option<String> {
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|part| part.as_ident().map(|ident| ident.value.clone()))
        .collect();
    if parts.len() < 2 || BUILT_IN_CATALOGS.iter().any(|c| c.eq_ignore_ascii_case(&parts[0])) {
        return None;
    }
    match known.iter().find(|db| db.eq_ignore_ascii_case(&parts[0])) {
        Some(database) => Some(database.clone()),
        None if parts.len() >= 3 => Some(parts[0].clone()),
        // A snapshot of a known database (`"mydb@1a2b3c".t`).
        None => snapshot_of(&parts[0])
            .filter(|(base, _)| known.iter().any(|db| db.eq_ignore_ascii_case(base)))
            .map(|_| parts[0].clone()),
    }
}

/// Splits a snapshot's catalog name, `database@snapshot`.
pub(crate) fn snapshot_of(name: &str) -> Option<(&str, &str)> {
    name.split_once('@')
        .filter(|(base, snapshot)| !base.is_empty() && !snapshot.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        vec!["mydb".into(), "sales".into()]
    }

    fn touched(sql: &str) -> Vec<String> {
        analyse(sql, &known(), "mydb").touched.into_iter().collect()
    }

    fn read_only_query(sql: &str) -> Option<(bool, String)> {
        analyse(sql, &known(), "mydb").query
    }

    #[test]
    fn finds_qualified_databases() {
        assert_eq!(touched("SELECT * FROM t"), ["mydb"]);
        assert_eq!(touched("SELECT * FROM sales.main.orders"), ["sales"]);
        assert_eq!(touched("SELECT 1"), ["mydb"]);
        assert_eq!(
            touched("CREATE TABLE sales.main.t AS SELECT * FROM range(10)"),
            ["sales"]
        );
        assert_eq!(
            touched("SELECT * FROM sales.orders o JOIN t ON o.id = t.id"),
            ["mydb", "sales"]
        );
        assert_eq!(touched("INSERT INTO sales.main.o SELECT * FROM t"), ["mydb", "sales"]);
    }

    #[test]
    fn a_three_part_name_names_a_database_even_when_nobody_serves_it() {
        assert_eq!(touched("SELECT * FROM gone.main.t"), ["gone"]);
        // A snapshot of a known database, with two parts or three.
        assert_eq!(touched("SELECT * FROM \"sales@1a2b3c\".o"), ["sales@1a2b3c"]);
        assert_eq!(
            touched("SELECT * FROM \"sales@1a2b3c\".main.o JOIN sales.o USING (id)"),
            ["sales", "sales@1a2b3c"]
        );
        assert_eq!(touched("SELECT * FROM \"nobody@1a2b3c\".o"), ["mydb"]);
        assert_eq!(touched("SELECT * FROM openduck.main.snapshots"), ["mydb"]);
        assert_eq!(touched("SELECT * FROM gone.t"), ["mydb"]);
        assert_eq!(touched("SELECT * FROM system.main.duckdb_tables()"), ["mydb"]);
    }

    #[test]
    fn schemas_and_ctes_are_not_databases() {
        assert_eq!(touched("SELECT * FROM main.t"), ["mydb"]);
        assert_eq!(touched("WITH sales AS (SELECT 1) SELECT * FROM sales"), ["mydb"]);
        assert_eq!(
            touched("WITH r AS (SELECT * FROM sales.main.o) SELECT * FROM r"),
            ["sales"]
        );
    }

    #[test]
    fn tells_read_only_queries() {
        assert_eq!(read_only_query("SELECT 1"), Some((false, "SELECT 1".into())));
        assert_eq!(read_only_query("EXPLAIN SELECT 1"), Some((true, "SELECT 1".into())));
        assert_eq!(read_only_query("EXPLAIN ANALYZE SELECT 1"), None);
        assert_eq!(read_only_query("INSERT INTO t SELECT 1"), None);
        assert_eq!(read_only_query("SELECT 1; SELECT 2"), None);
        assert_eq!(read_only_query("CREATE TABLE t AS SELECT 1"), None);
        // Writes sqlparser parses as queries.
        assert_eq!(
            read_only_query("WITH c AS (SELECT 1 AS x) INSERT INTO t SELECT x FROM c"),
            None
        );
        assert_eq!(read_only_query("WITH c AS (SELECT 1) DELETE FROM t"), None);
        assert_eq!(read_only_query("EXPLAIN WITH c AS (SELECT 1) UPDATE t SET x = 1"), None);
        assert_eq!(read_only_query("SELECT 1 AS x INTO t"), None);
        let union = "SELECT 1 UNION ALL (WITH c AS (SELECT 2) SELECT * FROM c)";
        assert_eq!(read_only_query(union), Some((false, union.into())));
    }

    #[test]
    fn finds_the_query_history() {
        let history = analyse("SELECT * FROM openduck.main.QUERY_HISTORY", &known(), "mydb");
        assert!(history.history == 1 && !history.names_tables);
        let cte = analyse(
            "WITH h AS (SELECT * FROM openduck.main.query_history) SELECT * FROM h",
            &known(),
            "mydb",
        );
        assert!(cte.history == 1 && !cte.names_tables);
        let joined = analyse(
            "SELECT * FROM openduck.main.query_history JOIN sales.o USING (id)",
            &known(),
            "mydb",
        );
        assert!(joined.history == 1 && joined.names_tables);
        assert_eq!(joined.touched.into_iter().collect::<Vec<_>>(), ["sales"]);
        let other = analyse("SELECT * FROM query_history", &known(), "mydb");
        assert!(other.history == 0 && other.names_tables);
        let function = analyse("SELECT * FROM range(3)", &known(), "mydb");
        assert!(
            function.history == 0 && function.names_tables,
            "a table function is not the history"
        );
        let twice = analyse(
            "SELECT * FROM openduck.main.query_history a, openduck.main.query_history b",
            &known(),
            "mydb",
        );
        assert_eq!(twice.history, 2);
    }

    #[test]
    fn lists_the_snapshots_named() {
        let analysis = analyse(
            "SELECT * FROM \"sales@1a2b3c\".o JOIN sales.o USING (id)",
            &known(),
            "mydb",
        );
        assert_eq!(analysis.snapshots().collect::<Vec<_>>(), ["sales@1a2b3c"]);
    }

    #[test]
    fn unparsable_duckdb_syntax_goes_to_the_default() {
        assert_eq!(
            touched("FROM t SELECT x QUALIFY row_number() OVER () = 1 PIVOT ???"),
            ["mydb"]
        );
    }
}
