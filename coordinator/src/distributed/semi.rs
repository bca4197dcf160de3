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

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, Join, JoinType, LogicalPlan, Projection};

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
