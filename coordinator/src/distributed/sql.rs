//! Writing a fragment as DuckDB SQL.
//!
//! Every operator becomes one SELECT over its input's SELECT as a derived
//! table, with its columns named by position (`c0`, `c1`, ...). Column
//! references are rewritten to those names before DataFusion's unparser
//! writes the expressions, so no qualifier, alias or duplicate name of the
//! original query can be misread: a fragment's rows come back in the plan's
//! column order by construction. DuckDB's optimizer flattens the nesting.

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::logical_plan::{FetchType, SkipType};
use datafusion::logical_expr::{Distinct, Expr, JoinType, Limit, LogicalPlan, SortExpr};
use datafusion::sql::unparser::Unparser;
use openduck_api::quote_identifier;

use super::catalog::RemoteTable;
use super::dialect::OpenDuckDialect;
use super::ship::shipped_of;

/// DuckDB SQL for `plan`, and a database it can run in.
pub(crate) fn fragment_sql(
    plan: &LogicalPlan,
    table_of: impl Fn(&LogicalPlan) -> Option<std::sync::Arc<RemoteTable>>,
) -> DfResult<(String, String)> {
    let mut writer = Writer {
        next_alias: 0,
        database: None,
        table_of: &table_of,
    };
    let sql = writer.select(plan)?;
    let database = writer
        .database
        .ok_or_else(|| DataFusionError::Plan("a fragment reads no table".into()))?;
    Ok((database, sql))
}

struct Writer<'a> {
    next_alias: usize,
    database: Option<String>,
    table_of: &'a dyn Fn(&LogicalPlan) -> Option<std::sync::Arc<RemoteTable>>,
}

fn unsupported(what: impl Into<String>) -> DataFusionError {
    DataFusionError::NotImplemented(what.into())
}

/// The one column of an operator whose parent needs none of its columns
/// (a `count(*)`, a scalar subquery's or EXISTS's input): DuckDB has no
/// empty SELECT list. The Bridge drops it.
const PLACEHOLDER: &str = "c";

/// `columns`, or the placeholder column when there are none.
fn or_placeholder(columns: String) -> String {
    if columns.is_empty() {
        format!("NULL AS {PLACEHOLDER}")
    } else {
        columns
    }
}

fn column_name(index: usize) -> String {
    format!("c{index}")
}

impl Writer<'_> {
    fn alias(&mut self) -> String {
        self.next_alias += 1;
        format!("s{}", self.next_alias)
    }

    /// A derived table for `plan`: `(SELECT ...) AS "sN"`, and its alias.
    fn derived(&mut self, plan: &LogicalPlan) -> DfResult<(String, String)> {
        let sql = self.select(plan)?;
        let alias = self.alias();
        Ok((format!("({sql}) AS {}", quote_identifier(&alias)), alias))
    }

    fn select(&mut self, plan: &LogicalPlan) -> DfResult<String> {
        match plan {
            LogicalPlan::TableScan(scan) => {
                let table = (self.table_of)(plan)
                    .ok_or_else(|| unsupported(format!("{} is not a table of an executor", scan.table_name)))?;
                if !scan.filters.is_empty() {
                    return Err(unsupported("filters inside a table scan"));
                }
                self.database.get_or_insert_with(|| table.catalog.clone());
                let columns: Vec<String> = scan
                    .projected_schema
                    .fields()
                    .iter()
                    .enumerate()
                    .map(|(index, field)| format!("{} AS {}", quote_identifier(field.name()), column_name(index)))
                    .collect();
                let columns = or_placeholder(columns.join(", "));
                let mut sql = format!("SELECT {columns} FROM {}", table.qualified_name());
                if let Some(fetch) = scan.fetch {
                    sql.push_str(&format!(" LIMIT {fetch}"));
                }
                Ok(sql)
            }
            LogicalPlan::SubqueryAlias(alias) => self.select(&alias.input),
            LogicalPlan::Projection(projection) => {
                let (from, alias) = self.derived(&projection.input)?;
                let columns = self.select_list(&projection.expr, projection.input.schema(), &alias, 0)?;
                Ok(format!("SELECT {} FROM {from}", or_placeholder(columns)))
            }
            LogicalPlan::Filter(filter) => {
                let (from, alias) = self.derived(&filter.input)?;
                let predicate = self.expr(&filter.predicate, filter.input.schema(), &alias)?;
                Ok(format!("SELECT * FROM {from} WHERE {predicate}"))
            }
            LogicalPlan::Aggregate(aggregate) => {
                if aggregate
                    .group_expr
                    .iter()
                    .any(|expr| matches!(expr, Expr::GroupingSet(_)))
                {
                    return Err(unsupported("grouping sets"));
                }
                let (from, alias) = self.derived(&aggregate.input)?;
                let schema = aggregate.input.schema();
                let groups = self.select_list(&aggregate.group_expr, schema, &alias, 0)?;
                let aggregates = self.select_list(&aggregate.aggr_expr, schema, &alias, aggregate.group_expr.len())?;
                let columns = [groups.as_str(), aggregates.as_str()]
                    .into_iter()
                    .filter(|list| !list.is_empty())
                    .collect::<Vec<_>>()
                    .join(", ");
                // Without groups an aggregate has one row, also when it
                // computes nothing: its placeholder must be an aggregate too.
                let columns = if columns.is_empty() {
                    format!("count(*) AS {PLACEHOLDER}")
                } else {
                    columns
                };
                let mut sql = format!("SELECT {columns} FROM {from}");
                if !aggregate.group_expr.is_empty() {
                    let keys = aggregate
                        .group_expr
                        .iter()
                        .map(|expr| self.expr(expr, schema, &alias))
                        .collect::<DfResult<Vec<_>>>()?;
                    sql.push_str(&format!(" GROUP BY {}", keys.join(", ")));
                }
                Ok(sql)
            }
            LogicalPlan::Distinct(Distinct::All(input)) => {
                let (from, _) = self.derived(input)?;
                Ok(format!("SELECT DISTINCT * FROM {from}"))
            }
            LogicalPlan::Join(join) => {
                // Which side's rows come out, and the join DuckDB writes for it.
                let (kind, output) = match join.join_type {
                    JoinType::Inner => ("INNER", JoinOutput::Both),
                    JoinType::Left => ("LEFT", JoinOutput::Both),
                    JoinType::Right => ("RIGHT", JoinOutput::Both),
                    JoinType::Full => ("FULL", JoinOutput::Both),
                    JoinType::LeftSemi => ("SEMI", JoinOutput::Left),
                    JoinType::LeftAnti => ("ANTI", JoinOutput::Left),
                    JoinType::RightSemi => ("SEMI", JoinOutput::Right),
                    JoinType::RightAnti => ("ANTI", JoinOutput::Right),
                    other => return Err(unsupported(format!("{other} joins"))),
                };
                let (left, l) = self.derived(&join.left)?;
                let (right, r) = self.derived(&join.right)?;
                let (left_schema, right_schema) = (join.left.schema(), join.right.schema());
                let mut conditions = Vec::new();
                for (a, b) in &join.on {
                    let a = self.join_expr(a, left_schema, &l, right_schema, &r)?;
                    let b = self.join_expr(b, left_schema, &l, right_schema, &r)?;
                    conditions.push(format!("({a}) = ({b})"));
                }
                if let Some(filter) = &join.filter {
                    conditions.push(format!(
                        "({})",
                        self.join_expr(filter, left_schema, &l, right_schema, &r)?
                    ));
                }
                let on = if conditions.is_empty() {
                    "TRUE".to_string()
                } else {
                    conditions.join(" AND ")
                };
                // The columns of `alias`'s `count` outputs, numbered from `first`.
                let keep = |alias: &str, count: usize, first: usize| {
                    (0..count)
                        .map(|i| {
                            format!(
                                "{}.{} AS {}",
                                quote_identifier(alias),
                                column_name(i),
                                column_name(first + i)
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let (left_count, right_count) = (left_schema.fields().len(), right_schema.fields().len());
                // DuckDB's SEMI and ANTI joins keep the rows of their left side.
                let (columns, from, to) = match output {
                    JoinOutput::Left => (keep(&l, left_count, 0), &left, &right),
                    JoinOutput::Right => (keep(&r, right_count, 0), &right, &left),
                    JoinOutput::Both => {
                        let both = [keep(&l, left_count, 0), keep(&r, right_count, left_count)];
                        (
                            both.into_iter()
                                .filter(|list| !list.is_empty())
                                .collect::<Vec<_>>()
                                .join(", "),
                            &left,
                            &right,
                        )
                    }
                };
                let columns = or_placeholder(columns);
                Ok(format!("SELECT {columns} FROM {from} {kind} JOIN {to} ON {on}"))
            }
            LogicalPlan::Sort(sort) => {
                let limit = sort.fetch.map(|fetch| format!(" LIMIT {fetch}")).unwrap_or_default();
                Ok(format!("{}{limit}", self.ordered(&sort.input, &sort.expr)?))
            }
            LogicalPlan::Limit(limit) => {
                let clause = limit_clause(limit)?;
                match limit.input.as_ref() {
                    // ORDER BY and LIMIT in one SELECT: a derived table's
                    // order is not kept by the query around it.
                    LogicalPlan::Sort(sort) if sort.fetch.is_none() => {
                        Ok(format!("{}{clause}", self.ordered(&sort.input, &sort.expr)?))
                    }
                    input => {
                        let (from, _) = self.derived(input)?;
                        Ok(format!("SELECT * FROM {from}{clause}"))
                    }
                }
            }
            LogicalPlan::Extension(_) => {
                let shipped =
                    shipped_of(plan).ok_or_else(|| unsupported(format!("{} in a fragment", plan.display())))?;
                // Its rows arrive as its fragment returned them: columns c0, c1, ...
                let columns = (0..plan.schema().fields().len())
                    .map(|index| format!("{0} AS {0}", column_name(index)))
                    .collect::<Vec<_>>()
                    .join(", ");
                Ok(format!("SELECT {columns} FROM {}", shipped.qualified_name()))
            }
            other => Err(unsupported(format!("{} in a fragment", other.display()))),
        }
    }

    fn ordered(&mut self, input: &LogicalPlan, order: &[SortExpr]) -> DfResult<String> {
        let (from, alias) = self.derived(input)?;
        let keys = order
            .iter()
            .map(|key| {
                let expr = self.expr(&key.expr, input.schema(), &alias)?;
                let direction = if key.asc { "ASC" } else { "DESC" };
                let nulls = if key.nulls_first { "NULLS FIRST" } else { "NULLS LAST" };
                Ok(format!("{expr} {direction} {nulls}"))
            })
            .collect::<DfResult<Vec<_>>>()?;
        Ok(format!("SELECT * FROM {from} ORDER BY {}", keys.join(", ")))
    }

    fn select_list(&self, exprs: &[Expr], schema: &DFSchema, alias: &str, first: usize) -> DfResult<String> {
        Ok(exprs
            .iter()
            .enumerate()
            .map(|(index, expr)| {
                Ok(format!(
                    "{} AS {}",
                    self.expr(expr, schema, alias)?,
                    column_name(first + index)
                ))
            })
            .collect::<DfResult<Vec<_>>>()?
            .join(", "))
    }

    /// `expr` over the columns of `schema`, read from derived table `alias`.
    fn expr(&self, expr: &Expr, schema: &DFSchema, alias: &str) -> DfResult<String> {
        positional_sql(expr, |column| Ok((alias, schema.index_of_column(column)?)))
    }

    /// A join condition: each column comes from the left or the right input.
    fn join_expr(&self, expr: &Expr, left: &DFSchema, l: &str, right: &DFSchema, r: &str) -> DfResult<String> {
        positional_sql(expr, |column| match left.index_of_column(column) {
            Ok(index) => Ok((l, index)),
            Err(_) => Ok((r, right.index_of_column(column)?)),
        })
    }
}

/// `expr` as DuckDB SQL, each column replaced by the positional column
/// (`"alias".cN`) that `locate` finds for it.
fn positional_sql<'a>(expr: &Expr, locate: impl Fn(&Column) -> DfResult<(&'a str, usize)>) -> DfResult<String> {
    let positional = expr
        .clone()
        .unalias_nested()
        .data
        .transform(|expr| match expr {
            Expr::Column(column) => {
                let (alias, index) = locate(&column)?;
                Ok(Transformed::yes(Expr::Column(Column::new(
                    Some(alias),
                    column_name(index),
                ))))
            }
            other => Ok(Transformed::no(other)),
        })?
        .data;
    Ok(Unparser::new(&OpenDuckDialect).expr_to_sql(&positional)?.to_string())
}

/// Whose columns a join returns.
enum JoinOutput {
    Both,
    Left,
    Right,
}

fn limit_clause(limit: &Limit) -> DfResult<String> {
    let fetch = match limit.get_fetch_type()? {
        FetchType::Literal(fetch) => fetch,
        FetchType::UnsupportedExpr => return Err(unsupported("a LIMIT that is not a constant")),
    };
    let skip = match limit.get_skip_type()? {
        SkipType::Literal(skip) => skip,
        SkipType::UnsupportedExpr => return Err(unsupported("an OFFSET that is not a constant")),
    };
    let mut clause = String::new();
    if let Some(fetch) = fetch {
        clause.push_str(&format!(" LIMIT {fetch}"));
    }
    if skip > 0 {
        clause.push_str(&format!(" OFFSET {skip}"));
    }
    Ok(clause)
}
