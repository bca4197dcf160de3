//! Semi and anti joins moved below the inner joins they filter.
//!
//! DataFusion turns `EXISTS`/`IN` subqueries into semi and anti joins and
//! places them above the joins of the outer query. When such a join only
//! looks at columns of one input of an inner join below it, it can filter
//! that input first: `(A ⋈ B) ⋉ R = (A ⋉ R) ⋈ B` when the condition uses only
//! A's columns (an inner join keeps each A row once per match, with or
//! without the filter). Moved down, the semi join often lands on the same
//! executor as A and R, so the filter runs there and only matching rows
//! cross the network (TPC-H q18 and q21 send thousands of rows instead of
//! millions).
//!
//! And a semi or anti join whose sides live apart has its filtering side
//! reduced to its distinct keys on that side's executor
//! ([`distinct_semi_join_keys`]).

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, Join, JoinType, LogicalPlan, LogicalPlanBuilder, Projection};

use super::cut::sites_of;

/// `plan` with every movable semi and anti join moved down.
pub(crate) fn push_down_semi_joins(plan: LogicalPlan) -> DfResult<LogicalPlan> {
    Ok(plan.transform_down(|node| Ok(push_one(node)))?.data)
}

fn push_one(node: LogicalPlan) -> Transformed<LogicalPlan> {
    let LogicalPlan::Join(semi) = &node else {
        return Transformed::no(node);
    };
    if !matches!(semi.join_type, JoinType::LeftSemi | JoinType::LeftAnti) || semi.null_aware {
        return Transformed::no(node);
    }
    let used = left_columns(semi);
    // Through projections that only pass columns on, down to an inner join.
    let mut projections = Vec::new();
    let mut below = semi.left.as_ref();
    while let LogicalPlan::Projection(projection) = below {
        if !projection.expr.iter().all(|expr| matches!(expr, Expr::Column(_))) {
            return Transformed::no(node);
        }
        projections.push(projection);
        below = projection.input.as_ref();
    }
    let LogicalPlan::Join(inner) = below else {
        return Transformed::no(node);
    };
    if inner.join_type != JoinType::Inner {
        return Transformed::no(node);
    }
    let covers = |schema: &DFSchema| used.iter().all(|column| schema.has_column(column));
    let mut inner = inner.clone();
    if covers(inner.left.schema()) {
        inner.left = Arc::new(filtered(semi, Arc::clone(&inner.left)));
    } else if covers(inner.right.schema()) {
        inner.right = Arc::new(filtered(semi, Arc::clone(&inner.right)));
    } else {
        return Transformed::no(node);
    }
    // The inner join's schema is unchanged (a semi join keeps its left
    // side's columns), so the projections above it stay valid as they are.
    let mut plan = LogicalPlan::Join(inner);
    for projection in projections.into_iter().rev() {
        let mut projection: Projection = projection.clone();
        projection.input = Arc::new(plan);
        plan = LogicalPlan::Projection(projection);
    }
    Transformed::yes(plan)
}

/// `plan` with the filtering side of each semi and anti join whose sides
/// live apart (the filtering side on one executor, the other not there
/// alone) reduced to its distinct keys, on its own executor: whether a row
/// has a match depends on nothing else, and TPC-H q22's `NOT EXISTS (SELECT *
/// FROM orders WHERE o_custkey = c_custkey)` then brings 100,000 customer
/// keys across instead of 1.5 M orders. Not for NOT IN's null-aware anti
/// join, a condition beyond equalities of columns, or a side that is
/// already an aggregate.
pub(crate) fn distinct_semi_join_keys(plan: LogicalPlan) -> DfResult<LogicalPlan> {
    Ok(plan.transform_up(keys_only)?.data)
}

fn keys_only(node: LogicalPlan) -> DfResult<Transformed<LogicalPlan>> {
    let LogicalPlan::Join(join) = &node else {
        return Ok(Transformed::no(node));
    };
    let right_filters = match join.join_type {
        JoinType::LeftSemi | JoinType::LeftAnti => true,
        JoinType::RightSemi | JoinType::RightAnti => false,
        _ => return Ok(Transformed::no(node)),
    };
    if join.null_aware || join.filter.is_some() || join.on.is_empty() {
        return Ok(Transformed::no(node));
    }
    let (kept, filtering) = match right_filters {
        true => (&join.left, &join.right),
        false => (&join.right, &join.left),
    };
    if matches!(filtering.as_ref(), LogicalPlan::Aggregate(_) | LogicalPlan::Distinct(_)) {
        return Ok(Transformed::no(node));
    }
    match (sites_of(filtering), sites_of(kept)) {
        (Some(filtering), Some(kept)) if filtering.len() == 1 && kept != filtering => {}
        _ => return Ok(Transformed::no(node)),
    }
    let mut keys = Vec::new();
    for (left, right) in &join.on {
        match if right_filters { right } else { left } {
            Expr::Column(column) if !keys.contains(column) => keys.push(column.clone()),
            Expr::Column(_) => {}
            _ => return Ok(Transformed::no(node)),
        }
    }
    let distinct = LogicalPlanBuilder::from(filtering.as_ref().clone())
        .aggregate(keys.into_iter().map(Expr::Column), Vec::<Expr>::new())?
        .build()?;
    let mut join = join.clone();
    match right_filters {
        true => join.right = Arc::new(distinct),
        false => join.left = Arc::new(distinct),
    }
    Ok(Transformed::yes(LogicalPlan::Join(join).recompute_schema()?))
}

/// `semi` applied to `input` instead of its own left side.
fn filtered(semi: &Join, input: Arc<LogicalPlan>) -> LogicalPlan {
    let mut moved = semi.clone();
    moved.schema = Arc::clone(input.schema());
    moved.left = input;
    LogicalPlan::Join(moved)
}

/// The columns of the semi join's left side that its condition reads.
fn left_columns(semi: &Join) -> Vec<Column> {
    let right = semi.right.schema();
    let mut columns = Vec::new();
    let exprs = semi.on.iter().flat_map(|(l, r)| [l, r]).chain(semi.filter.iter());
    for expr in exprs {
        for column in expr.column_refs() {
            if !right.has_column(column) {
                columns.push(column.clone());
            }
        }
    }
    columns
}
