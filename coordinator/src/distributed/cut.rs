//! The cut: which parts of an optimized DataFusion plan run where.
//!
//! Every scan of a [`RemoteTable`] lives on the table's executor. Walking up
//! the plan, an operator joins its inputs' executor when all of them live
//! on the same one and the operator is one DuckDB runs with the same meaning
//! (projections, filters, joins, aggregates, sorts, limits); otherwise it is
//! LOCAL and each input that lives on an executor becomes a REMOTE
//! [`Fragment`]: the largest subtree on one executor, unparsed to DuckDB SQL.
//! A subtree the unparser cannot express is cut smaller, down to single
//! table scans. A join of two executors' inputs, one much smaller than the
//! other, ships the small one to the large one's executor (see `ship`).
//!
//! Some operators and expressions are kept LOCAL on purpose, because DuckDB
//! would give them another meaning: a division of integers, should one
//! remain (planning rewrites `/` to DuckDB's float division first, see
//! `division`), casts from fractional to integer types (DuckDB rounds,
//! DataFusion truncates), subquery expressions, mark joins and NOT IN's
//! null-aware anti joins, and sorts and limits anywhere but at the root of
//! the query.

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, NullEquality};
use datafusion::datasource::source_as_provider;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    BinaryExpr, Distinct, Expr, ExprSchemable, Extension, JoinType, LogicalPlan, Operator, TableScan,
};
use tracing::debug;

use super::catalog::RemoteTable;
use super::fragment::Fragment;
use super::ship::{ship_small_side, shipped_of, Shipped};
use super::sql::fragment_sql;
use crate::site::Site;

/// Replaces every single-executor subtree of `plan`, and of the subqueries
/// in its expressions, with a REMOTE fragment.
/// With `shipping`, a join's small side moves to its large side's executor
/// when pulling the large side would move at least that many values.
pub(crate) fn cut(plan: LogicalPlan, shipping: Option<u64>) -> DfResult<LogicalPlan> {
    let (plan, site) = place_root(plan, shipping)?;
    let plan = match site {
        Some(site) => wrap(plan, site, shipping)?,
        None => plan,
    };
    Ok(plan
        .transform_up(|node| {
            node.map_subqueries(|subquery| match subquery {
                LogicalPlan::Subquery(mut subquery) => {
                    let inner = Arc::unwrap_or_clone(subquery.subquery);
                    subquery.subquery = Arc::new(cut(inner, shipping)?);
                    Ok(Transformed::yes(LogicalPlan::Subquery(subquery)))
                }
                other => Ok(Transformed::no(other)),
            })
        })?
        .data)
}

/// Like [`place`], but a sort or limit may join its input's executor: at
/// the root of the query, the fragment's rows are the query's rows, in the
/// order they arrive. Anywhere else they stay LOCAL, since a derived table's
/// order is not kept by the query around it.
fn place_root(plan: LogicalPlan, shipping: Option<u64>) -> DfResult<(LogicalPlan, Option<Site>)> {
    if !matches!(plan, LogicalPlan::Sort(_) | LogicalPlan::Limit(_)) {
        return place(plan, shipping);
    }
    let mut site = None;
    let plan = plan
        .map_children(|child| {
            let (child, child_site) = place_root(child, shipping)?;
            site = child_site;
            Ok(Transformed::yes(child))
        })?
        .data;
    match site {
        Some(site) if expressions_ok(&plan) => Ok((plan, Some(site))),
        Some(site) => Ok((
            plan.map_children(|child| Ok(Transformed::yes(wrap(child, site.clone(), shipping)?)))?
                .data,
            None,
        )),
        None => Ok((plan, None)),
    }
}

/// `plan` with its LOCAL operators' remote inputs wrapped, and the executor
/// it lives on entirely, if one.
fn place(plan: LogicalPlan, shipping: Option<u64>) -> DfResult<(LogicalPlan, Option<Site>)> {
    if let LogicalPlan::TableScan(scan) = &plan {
        let site = remote_table(scan).map(|table| table.site.clone());
        return Ok((plan, site));
    }
    let mut sites = Vec::new();
    let plan = plan
        .map_children(|child| {
            let (child, site) = place(child, shipping)?;
            sites.push(site);
            Ok(Transformed::yes(child))
        })?
        .data;
    let common = match sites.as_slice() {
        [Some(first), rest @ ..] if rest.iter().all(|s| s.as_ref().is_some_and(|s| s.id() == first.id())) => {
            Some(first.clone())
        }
        _ => None,
    };
    if common.is_some() && pushable(&plan) {
        return Ok((plan, common));
    }
    if let (LogicalPlan::Join(join), [Some(left), Some(right)], Some(least)) = (&plan, sites.as_slice(), shipping) {
        if left.id() != right.id() && pushable(&plan) {
            if let Some((plan, site)) = ship_small_side(join, (left, right), least, |small, site| {
                Ok(match wrap(small, site, shipping)? {
                    LogicalPlan::Extension(extension) => extension.node.as_any().downcast_ref::<Fragment>().cloned(),
                    _ => None,
                })
            })? {
                return Ok((plan, Some(site)));
            }
        }
    }
    let mut sites = sites.into_iter();
    let plan = plan
        .map_children(|child| match sites.next().flatten() {
            Some(site) => Ok(Transformed::yes(wrap(child, site, shipping)?)),
            None => Ok(Transformed::no(child)),
        })?
        .data;
    Ok((plan, None))
}

/// The executors whose tables `plan` scans (not those of subqueries in its
/// expressions, which are cut on their own); `None` when it scans
/// anything else.
pub(super) fn sites_of(plan: &LogicalPlan) -> Option<std::collections::BTreeSet<String>> {
    let mut sites = std::collections::BTreeSet::new();
    let mut other = false;
    let _ = plan.apply(|node| {
        if let LogicalPlan::TableScan(_) = node {
            match table_site(node) {
                Some(site) => {
                    sites.insert(site);
                }
                None => other = true,
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    (!other).then_some(sites)
}

/// The id of the executor a table scan reads from, if it reads an executor's table.
pub(crate) fn table_site(plan: &LogicalPlan) -> Option<String> {
    table_of(plan).map(|table| table.site.id().to_string())
}

/// The estimated rows of the executor table a scan reads, if known.
pub(super) fn table_rows(plan: &LogicalPlan) -> Option<u64> {
    table_of(plan)?.estimated_rows
}

/// The executor table a scan reads, if it is one.
fn table_of(plan: &LogicalPlan) -> Option<Arc<RemoteTable>> {
    match plan {
        LogicalPlan::TableScan(scan) => remote_table(scan),
        _ => None,
    }
}

pub(super) fn remote_table(scan: &TableScan) -> Option<Arc<RemoteTable>> {
    let provider = source_as_provider(&scan.source).ok()?;
    let any: Arc<dyn std::any::Any + Send + Sync> = provider;
    any.downcast::<RemoteTable>().ok()
}

/// A REMOTE fragment that runs `plan` on `site`; if the unparser cannot
/// express it, its inputs are cut instead.
fn wrap(plan: LogicalPlan, site: Site, shipping: Option<u64>) -> DfResult<LogicalPlan> {
    match fragment_sql(&plan, table_of) {
        Ok((database, sql)) => {
            debug!(executor = site.id(), %sql, "remote fragment");
            let mut shipped = Vec::new();
            plan.apply(|node| {
                if let Some(side) = shipped_of(node) {
                    // The same rows shipped twice fill one table.
                    if !shipped.iter().any(|known: &Shipped| known.table == side.table) {
                        shipped.push(side.clone());
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
            Ok(LogicalPlan::Extension(Extension {
                node: Arc::new(Fragment {
                    site,
                    database,
                    sql,
                    schema: Arc::clone(plan.schema()),
                    shipped,
                }),
            }))
        }
        Err(error) if !matches!(plan, LogicalPlan::TableScan(_)) => {
            debug!(%error, node = plan.display().to_string(), "cannot unparse; cutting smaller");
            Ok(plan
                .map_children(|child| {
                    let (child, site) = place(child, shipping)?;
                    Ok(Transformed::yes(match site {
                        Some(site) => wrap(child, site, shipping)?,
                        None => child,
                    }))
                })?
                .data)
        }
        Err(error) => Err(error),
    }
}

/// Whether DuckDB runs this operator with DataFusion's meaning.
fn pushable(plan: &LogicalPlan) -> bool {
    let operator_ok = match plan {
        LogicalPlan::Projection(_)
        | LogicalPlan::Filter(_)
        | LogicalPlan::Aggregate(_)
        | LogicalPlan::SubqueryAlias(_)
        | LogicalPlan::Distinct(Distinct::All(_)) => true,
        LogicalPlan::Join(join) => {
            matches!(
                join.join_type,
                JoinType::Inner
                    | JoinType::Left
                    | JoinType::Right
                    | JoinType::Full
                    | JoinType::LeftSemi
                    | JoinType::LeftAnti
                    | JoinType::RightSemi
                    | JoinType::RightAnti
            ) && join.null_equality == NullEquality::NullEqualsNothing
                && !join.null_aware
        }
        _ => false,
    };
    operator_ok && expressions_ok(plan)
}

fn expressions_ok(plan: &LogicalPlan) -> bool {
    let schema: &DFSchema = match plan {
        LogicalPlan::Join(_) => plan.schema(),
        _ => match plan.inputs().first() {
            Some(input) => input.schema(),
            None => return false,
        },
    };
    let mut ok = true;
    let _ = plan.apply_expressions(|expr| {
        expr.apply(|expr| {
            if !expression_ok(expr, schema) {
                ok = false;
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        })
    });
    ok
}

fn expression_ok(expr: &Expr, schema: &DFSchema) -> bool {
    match expr {
        Expr::ScalarSubquery(_)
        | Expr::Exists(_)
        | Expr::InSubquery(_)
        | Expr::OuterReferenceColumn(..)
        | Expr::Placeholder(_) => false,
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Divide,
            right,
        }) => !(is_integer(left, schema) && is_integer(right, schema)),
        Expr::Cast(cast) => !(cast.field.data_type().is_integer() && is_fractional(&cast.expr, schema)),
        Expr::TryCast(cast) => !(cast.field.data_type().is_integer() && is_fractional(&cast.expr, schema)),
        _ => true,
    }
}

/// Whether `expr` has an integer type (unknown counts as yes: stay LOCAL).
fn is_integer(expr: &Expr, schema: &DFSchema) -> bool {
    expr.get_type(schema)
        .map_or(true, |t| t.is_integer() || t == DataType::Null)
}

fn is_fractional(expr: &Expr, schema: &DFSchema) -> bool {
    expr.get_type(schema).map_or(true, |t| {
        t.is_floating()
            || matches!(
                t,
                DataType::Decimal32(..) | DataType::Decimal64(..) | DataType::Decimal128(..) | DataType::Decimal256(..)
            )
    })
}
