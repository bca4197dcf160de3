//! Partial aggregation under a union: each input aggregates on its own
//! executor, the coordinator combines.
//!
//! `SELECT k, sum(v) FROM (SELECT .. FROM a.t UNION ALL SELECT .. FROM b.t)
//! GROUP BY k` would ship every row of both tables. When every aggregate
//! can be combined from partial results (`sum`, `count`, `min`, `max`,
//! without DISTINCT, FILTER or ORDER BY), the aggregate is split: a partial
//! aggregate over each union input, which the cut sends to that input's
//! executor, and a final aggregate over their union (a sum of sums or of
//! counts, a min of mins, a max of maxes), cast back to the types the query
//! was planned with.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{plan_err, Column};
use datafusion::error::Result as DfResult;
use datafusion::functions_aggregate::expr_fn::{max, min, sum};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{cast, col, Aggregate, Expr, LogicalPlan, LogicalPlanBuilder};

/// `plan` with every splittable aggregate over a union split.
pub(crate) fn split_aggregates_over_unions(plan: LogicalPlan) -> DfResult<LogicalPlan> {
    rewrite_aggregates(plan, split)
}

/// `plan` with each aggregate `rewrite` gives a new plan for replaced by it,
/// and the schemas above recomputed (a count's column is nullable once it
/// is a sum of counts).
pub(super) fn rewrite_aggregates(
    plan: LogicalPlan,
    rewrite: impl Fn(&Aggregate) -> DfResult<Option<LogicalPlan>>,
) -> DfResult<LogicalPlan> {
    let rewritten = plan.transform_up(|node| match &node {
        LogicalPlan::Aggregate(aggregate) => match rewrite(aggregate)? {
            Some(rewritten) => Ok(Transformed::yes(rewritten)),
            None => Ok(Transformed::no(node)),
        },
        _ => Ok(Transformed::no(node)),
    })?;
    match rewritten.transformed {
        true => Ok(rewritten
            .data
            .transform_up(|node| Ok(Transformed::yes(node.recompute_schema()?)))?
            .data),
        false => Ok(rewritten.data),
    }
}

/// How a partial aggregate's results combine.
#[derive(Clone, Copy)]
pub(super) enum Combine {
    Sum,
    Min,
    Max,
}

/// How `expr` (an aggregate) combines from partial results, if it can:
/// `sum`, `count`, `min` and `max`, without DISTINCT, FILTER or ORDER BY.
fn combine_of(expr: &Expr) -> Option<Combine> {
    let Expr::AggregateFunction(AggregateFunction { func, params }) = expr.clone().unalias_nested().data else {
        return None;
    };
    if params.distinct || params.filter.is_some() || !params.order_by.is_empty() {
        return None;
    }
    match func.name() {
        "sum" | "count" => Some(Combine::Sum),
        "min" => Some(Combine::Min),
        "max" => Some(Combine::Max),
        _ => None,
    }
}

/// How each aggregate of `aggregate` combines from partial results, when
/// all of them can and it has no grouping sets.
pub(super) fn combines_of(aggregate: &Aggregate) -> Option<Vec<Combine>> {
    if aggregate
        .group_expr
        .iter()
        .any(|expr| matches!(expr, Expr::GroupingSet(_)))
    {
        return None;
    }
    aggregate.aggr_expr.iter().map(combine_of).collect()
}

fn split(aggregate: &Aggregate) -> DfResult<Option<LogicalPlan>> {
    let Some(combines) = combines_of(aggregate) else {
        return Ok(None);
    };
    let Some((union_inputs, to_union)) = union_below(&aggregate.input) else {
        return Ok(None);
    };
    let groups = aggregate.group_expr.len();

    // One partial aggregate per union input, its columns named by position.
    let mut partials = Vec::new();
    for input in &union_inputs {
        let remap = |expr: &Expr| -> DfResult<Expr> {
            Ok(expr
                .clone()
                .unalias_nested()
                .data
                .transform(|expr| match expr {
                    Expr::Column(column) => {
                        let index = to_union(&column)?;
                        let (qualifier, field) = input.schema().qualified_field(index);
                        Ok(Transformed::yes(Expr::Column(Column::new(
                            qualifier.cloned(),
                            field.name(),
                        ))))
                    }
                    other => Ok(Transformed::no(other)),
                })?
                .data)
        };
        let group = aggregate
            .group_expr
            .iter()
            .enumerate()
            .map(|(i, expr)| Ok(remap(expr)?.alias(format!("__g{i}"))))
            .collect::<DfResult<Vec<_>>>()?;
        let aggr = aggregate
            .aggr_expr
            .iter()
            .enumerate()
            .map(|(i, expr)| Ok(remap(expr)?.alias(format!("__a{i}"))))
            .collect::<DfResult<Vec<_>>>()?;
        partials.push(
            LogicalPlanBuilder::from(input.as_ref().clone())
                .aggregate(group, aggr)?
                .build()?,
        );
    }
    let mut partials = partials.into_iter();
    let mut union = LogicalPlanBuilder::from(partials.next().expect("a union has inputs"));
    for partial in partials {
        union = union.union(partial)?;
    }

    let final_group: Vec<Expr> = (0..groups).map(|i| col(format!("__g{i}"))).collect();
    combined(union, aggregate, final_group, &combines).map(Some)
}

/// The final aggregate over `input`, whose rows hold the partial results
/// of `aggregate` as `__a0`, `__a1`, ...: grouped by `group` (one
/// expression per group expression of `aggregate`), each partial combined,
/// then the names and types `aggregate` had.
pub(super) fn combined(
    input: LogicalPlanBuilder,
    aggregate: &Aggregate,
    group: Vec<Expr>,
    combines: &[Combine],
) -> DfResult<LogicalPlan> {
    let groups = aggregate.group_expr.len();
    let final_group: Vec<Expr> = group
        .into_iter()
        .enumerate()
        .map(|(i, expr)| expr.unalias_nested().data.alias(format!("__g{i}")))
        .collect();
    let final_aggr: Vec<Expr> = combines
        .iter()
        .enumerate()
        .map(|(i, combine)| {
            let partial = col(format!("__a{i}"));
            match combine {
                Combine::Sum => sum(partial),
                Combine::Min => min(partial),
                Combine::Max => max(partial),
            }
            .alias(format!("__f{i}"))
        })
        .collect();
    let combined = input.aggregate(final_group, final_aggr)?.build()?;
    // The same names and types as before. (A count's column becomes
    // nullable: a sum of counts says so; the plan above is recomputed.)
    let restored = aggregate
        .schema
        .iter()
        .enumerate()
        .map(|(i, (qualifier, field))| {
            let source = if i < groups {
                format!("__g{i}")
            } else {
                format!("__f{}", i - groups)
            };
            cast(col(source), field.data_type().clone()).alias_qualified(qualifier.cloned(), field.name())
        })
        .collect::<Vec<_>>();
    LogicalPlanBuilder::from(combined).project(restored)?.build()
}

type ToUnion = Box<dyn Fn(&Column) -> DfResult<usize>>;

/// The inputs of the union below `plan` (through aliases and projections
/// that only pass columns on), and where a column of `plan` comes from in
/// the union's output.
fn union_below(plan: &Arc<LogicalPlan>) -> Option<(Vec<Arc<LogicalPlan>>, ToUnion)> {
    let mut layers: Vec<Arc<LogicalPlan>> = Vec::new();
    let mut node = Arc::clone(plan);
    loop {
        let next = match node.as_ref() {
            LogicalPlan::Union(union) => {
                let inputs = union.inputs.clone();
                let union_plan = Arc::clone(&node);
                let to_union: ToUnion = Box::new(move |column: &Column| {
                    let Some(first) = layers.first() else {
                        return union_plan.schema().index_of_column(column);
                    };
                    let mut index = first.schema().index_of_column(column)?;
                    for layer in &layers {
                        if let LogicalPlan::Projection(projection) = layer.as_ref() {
                            let Expr::Column(inner) = &projection.expr[index] else {
                                return plan_err!("a projection below the aggregate computes a column");
                            };
                            index = projection.input.schema().index_of_column(inner)?;
                        }
                    }
                    Ok(index)
                });
                return (inputs.len() > 1).then_some((inputs, to_union));
            }
            LogicalPlan::SubqueryAlias(alias) => Arc::clone(&alias.input),
            LogicalPlan::Projection(projection) if projection.expr.iter().all(|e| matches!(e, Expr::Column(_))) => {
                Arc::clone(&projection.input)
            }
            _ => return None,
        };
        layers.push(node);
        node = next;
    }
}
