//! Partial aggregation below a join across executors.
//!
//! `SELECT c.name, sum(l.price) FROM customer c JOIN lineitem l ON c.key =
//! l.custkey GROUP BY c.name`, with customer and lineitem on two executors,
//! would bring every lineitem row to the join. When every aggregate reads
//! one side of an inner join, and can be combined from partial results
//! (see `partial`), that side is aggregated first, on its own executor,
//! grouped by its join keys and the columns of it the query groups by:
//!
//! ```text
//! Aggregate(G; sum(x))                 Aggregate(G; sum(__a0))
//!   Join(L, R, L.k = R.k)      =>        Join(L, R', L.k = R.k)
//!                                          R' = Aggregate(R.k, G ∩ R; sum(x) AS __a0)(R)
//! ```
//!
//! Each row of L meets, for each key, one row of R' that holds what the
//! rows of R with that key would have added up to (an inner join keeps
//! nothing else of them), so the final aggregate combines the same values.
//! R' has at most as many rows as R and usually far fewer (TPC-H q10: a
//! quarter's orders and their returned lineitems, 115,000 rows, become
//! 38,000 customers), and a small R' is shipped to L's executor like any
//! join's small side. Where L is the side small enough to move to R's
//! executor, nothing is rewritten: the whole aggregate runs there then.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::common::Column;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Aggregate, Expr, Join, JoinType, LogicalPlan, LogicalPlanBuilder};

use super::cut::sites_of;
use super::partial::{combined, combines_of, rewrite_aggregates};
use super::ship::moves_to;

/// `plan` with aggregates over joins across executors partly pushed below
/// them, except where the other side of the join is small enough to move
/// to the aggregated side's executor (see `ship`; `shipping` as there):
/// the whole aggregate runs there then.
pub(crate) fn aggregate_below_joins(plan: LogicalPlan, shipping: Option<u64>) -> DfResult<LogicalPlan> {
    rewrite_aggregates(plan, |aggregate| below_join(aggregate, shipping))
}

fn below_join(aggregate: &Aggregate, shipping: Option<u64>) -> DfResult<Option<LogicalPlan>> {
    let Some(combines) = combines_of(aggregate) else {
        return Ok(None);
    };
    // Without groups an aggregate gives one row even over no rows, where a
    // count is 0; a sum of partial counts over no rows would be NULL.
    if aggregate.group_expr.is_empty() && aggregate.aggr_expr.iter().any(counts) {
        return Ok(None);
    }
    let Some(join) = join_below(&aggregate.input) else {
        return Ok(None);
    };
    if join.join_type != JoinType::Inner || join.filter.is_some() || join.on.is_empty() {
        return Ok(None);
    }
    // The side every aggregate reads (a count(*) reads none and goes along).
    let read: Vec<Column> = aggregate
        .aggr_expr
        .iter()
        .flat_map(|expr| expr.column_refs())
        .cloned()
        .collect();
    if read.is_empty() {
        return Ok(None);
    }
    let covers = |side: &LogicalPlan| read.iter().all(|column| side.schema().has_column(column));
    let aggregated_left = if covers(&join.right) {
        false
    } else if covers(&join.left) {
        true
    } else {
        return Ok(None);
    };
    let (side, other) = match aggregated_left {
        true => (&join.left, &join.right),
        false => (&join.right, &join.left),
    };
    if !across_executors(side, other) || shipping.is_some_and(|least| moves_to(other, side, least)) {
        return Ok(None);
    }
    // Grouped by its join keys and the columns of it the query groups by.
    let mut keys: Vec<Column> = Vec::new();
    for (left, right) in &join.on {
        let Expr::Column(key) = (if aggregated_left { left } else { right }) else {
            return Ok(None);
        };
        keys.push(key.clone());
    }
    for expr in &aggregate.group_expr {
        for column in expr.column_refs() {
            if side.schema().has_column(column) {
                keys.push(column.clone());
            }
        }
    }
    let mut seen = BTreeSet::new();
    keys.retain(|column| seen.insert(column.flat_name()));
    let partial_aggregates = aggregate
        .aggr_expr
        .iter()
        .enumerate()
        .map(|(i, expr)| expr.clone().unalias_nested().data.alias(format!("__a{i}")))
        .collect::<Vec<_>>();
    let partial = LogicalPlanBuilder::from(side.as_ref().clone())
        .aggregate(keys.into_iter().map(Expr::Column), partial_aggregates)?
        .build()?;
    let mut join = join.clone();
    match aggregated_left {
        true => join.left = Arc::new(partial),
        false => join.right = Arc::new(partial),
    }
    let join = LogicalPlan::Join(join).recompute_schema()?;
    combined(
        LogicalPlanBuilder::from(join),
        aggregate,
        aggregate.group_expr.clone(),
        &combines,
    )
    .map(Some)
}

/// Whether `expr` is a count.
fn counts(expr: &Expr) -> bool {
    matches!(
        expr.clone().unalias_nested().data,
        Expr::AggregateFunction(function) if function.func.name() == "count"
    )
}

/// The join `plan` is, or is below projections that only pass columns on.
fn join_below(plan: &LogicalPlan) -> Option<&Join> {
    match plan {
        LogicalPlan::Join(join) => Some(join),
        LogicalPlan::Projection(projection) if projection.expr.iter().all(|e| matches!(e, Expr::Column(_))) => {
            join_below(&projection.input)
        }
        _ => None,
    }
}

/// Whether `side` reads tables of one executor only, and `other` reads
/// tables elsewhere too: the join cannot run where `side` lives as it is.
fn across_executors(side: &LogicalPlan, other: &LogicalPlan) -> bool {
    match (sites_of(side), sites_of(other)) {
        (Some(side), Some(other)) => side.len() == 1 && other != side,
        _ => false,
    }
}
