//! Which databases a statement touches, read from its SQL.
//!
//! sqlparser's DuckDB dialect finds the table references; a reference
//! qualified with the name of a known database (`db.schema.table`, or
//! `db.table`) touches that database, anything else the session's default.
//! SQL that sqlparser cannot parse (DuckDB has syntax it does not know, such
//! as `FROM t SELECT x` or `PIVOT`) is routed to the default database, where
//! DuckDB parses it for real.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{visit_relations, ObjectName};
use sqlparser::dialect::DuckDbDialect;
use sqlparser::parser::Parser;

/// The databases `sql` reads or writes, given the known database names and the
/// default database. Always contains at least the default.
pub(crate) fn databases_touched(sql: &str, known: &[String], default: &str) -> BTreeSet<String> {
    let mut touched = BTreeSet::from([default.to_string()]);
    let Ok(statements) = Parser::parse_sql(&DuckDbDialect {}, sql) else {
        return touched;
    };
    for statement in &statements {
        let _ = visit_relations(statement, |name: &ObjectName| {
            if let Some(database) = database_of(name, known) {
                touched.insert(database);
            }
            ControlFlow::<()>::Continue(())
        });
    }
    touched
}

fn database_of(name: &ObjectName, known: &[String]) -> Option<String> {
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|part| part.as_ident().map(|ident| ident.value.clone()))
        .collect();
    if parts.len() < 2 {
        return None;
    }
    known.iter().find(|db| db.eq_ignore_ascii_case(&parts[0])).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        vec!["mydb".into(), "sales".into()]
    }

    fn touched(sql: &str) -> Vec<String> {
        databases_touched(sql, &known(), "mydb").into_iter().collect()
    }

    #[test]
    fn finds_qualified_databases() {
        assert_eq!(touched("SELECT * FROM t"), ["mydb"]);
        assert_eq!(touched("SELECT * FROM sales.main.orders"), ["mydb", "sales"]);
        assert_eq!(touched("SELECT * FROM sales.orders o JOIN t ON o.id = t.id"), ["mydb", "sales"]);
        assert_eq!(touched("INSERT INTO sales.main.o SELECT * FROM t"), ["mydb", "sales"]);
    }

    #[test]
    fn schemas_and_ctes_are_not_databases() {
        assert_eq!(touched("SELECT * FROM main.t"), ["mydb"]);
        assert_eq!(touched("WITH sales AS (SELECT 1) SELECT * FROM sales"), ["mydb"]);
    }

    #[test]
    fn unparsable_duckdb_syntax_goes_to_the_default() {
        assert_eq!(touched("FROM t SELECT x QUALIFY row_number() OVER () = 1 PIVOT ???"), ["mydb"]);
    }
}
