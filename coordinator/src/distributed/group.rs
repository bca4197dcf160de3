//! Grouping the tables of a join by executor, before DataFusion orders it.
//!
//! DataFusion joins the tables of `FROM a, b, c WHERE ...` in the order
//! they are written, so two tables of one executor separated by a third
//! would be joined on the coordinator, each shipped whole. Before
//! optimization, the tables of every such join are regrouped: tables of one
//! executor that the WHERE clause joins by equality (so that no cross
//! product is pushed to an executor) are cross-joined among themselves
//! first, then the groups.
//! Each group sits under an identity projection, so that DataFusion's
//! cross-join elimination, which flattens nested cross joins, joins the
//! groups with each other but not their tables across groups; the WHERE
//! conditions of a group then sink into it and become its joins, which the
//! cut sends to its executor as one fragment. Inner cross joins commute and
//! associate, and every column is found by name, so the rows do not change.

use std::sync::Arc;

use datafusion::common::tree_node::Transformed;
use datafusion::common::Column;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{BinaryExpr, Expr, Filter, Join, JoinType, LogicalPlan, LogicalPlanBuilder, Operator};

use super::cut::table_site;

/// `plan` with the tables of every filtered cross join grouped by executor.
pub(crate) fn group_by_executor(plan: LogicalPlan) -> DfResult<LogicalPlan> {
    Ok(plan
        .transform_down_with_subqueries(|node| match node {
            LogicalPlan::Filter(filter) if is_cross_join(&filter.input) => {
                let mut leaves = Vec::new();
                collect_leaves(filter.input.as_ref().clone(), &mut leaves);
                let groups = groups(&leaves, &filter.predicate);
                if groups.len() == leaves.len() {
                    return Ok(Transformed::no(LogicalPlan::Filter(filter)));
                }
                let mut leaves: Vec<Option<LogicalPlan>> = leaves.into_iter().map(Some).collect();
                let mut grouped = groups
                    .into_iter()
                    .map(|members| cross_join_all(members.into_iter().filter_map(|i| leaves[i].take()).collect()));
                let mut builder = LogicalPlanBuilder::from(grouped.next().expect("a cross join has leaves")?);
                for group in grouped {
                    builder = builder.cross_join(group?)?;
                }
                let input = builder.build()?;
                Ok(Transformed::yes(LogicalPlan::Filter(Filter::try_new(
                    filter.predicate.clone(),
                    Arc::new(input),
                )?)))
            }
            other => Ok(Transformed::no(other)),
        })?
        .data)
}

/// Leaves (by index) grouped: tables of one executor that equality
/// conditions of `predicate` connect, directly or through each other, form
/// one group; everything else stands alone. Groups keep the order of their
/// first table.
fn groups(leaves: &[LogicalPlan], predicate: &Expr) -> Vec<Vec<usize>> {
    let sites: Vec<Option<String>> = leaves.iter().map(leaf_site).collect();
    let owner = |column: &Column| leaves.iter().position(|leaf| leaf.schema().has_column(column));
    let mut group: Vec<usize> = (0..leaves.len()).collect();
    fn root(group: &mut [usize], mut i: usize) -> usize {
        while group[i] != i {
            group[i] = group[group[i]];
            i = group[i];
        }
        i
    }
    for conjunct in split_conjunction(predicate) {
        let Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) = conjunct
        else {
            continue;
        };
        let (Expr::Column(a), Expr::Column(b)) = (left.as_ref(), right.as_ref()) else {
            continue;
        };
        let (Some(a), Some(b)) = (owner(a), owner(b)) else {
            continue;
        };
        if a != b && sites[a].is_some() && sites[a] == sites[b] {
            let (ra, rb) = (root(&mut group, a), root(&mut group, b));
            group[ra.max(rb)] = ra.min(rb);
        }
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut index_of_root: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    for leaf in 0..leaves.len() {
        let r = root(&mut group, leaf);
        match index_of_root.get(&r) {
            Some(&at) => groups[at].push(leaf),
            None => {
                index_of_root.insert(r, groups.len());
                groups.push(vec![leaf]);
            }
        }
    }
    groups
}

fn is_cross_join(plan: &LogicalPlan) -> bool {
    matches!(plan, LogicalPlan::Join(Join { join_type: JoinType::Inner, on, filter: None, .. }) if on.is_empty())
}

fn collect_leaves(plan: LogicalPlan, leaves: &mut Vec<LogicalPlan>) {
    match plan {
        LogicalPlan::Join(join) if is_cross_join(&LogicalPlan::Join(join.clone())) => {
            collect_leaves(join.left.as_ref().clone(), leaves);
            collect_leaves(join.right.as_ref().clone(), leaves);
        }
        other => leaves.push(other),
    }
}

/// The executor of a table, possibly aliased; `None` for anything else.
fn leaf_site(plan: &LogicalPlan) -> Option<String> {
    match plan {
        LogicalPlan::SubqueryAlias(alias) => leaf_site(&alias.input),
        LogicalPlan::TableScan(_) => table_site(plan),
        _ => None,
    }
}

fn cross_join_all(members: Vec<LogicalPlan>) -> DfResult<LogicalPlan> {
    let single = members.len() == 1;
    let mut members = members.into_iter();
    let mut builder = LogicalPlanBuilder::from(members.next().expect("a group has members"));
    if single {
        return builder.build();
    }
    for member in members {
        builder = builder.cross_join(member)?;
    }
    let joined = builder.build()?;
    let columns: Vec<Expr> = joined.schema().columns().into_iter().map(Expr::Column).collect();
    LogicalPlanBuilder::from(joined).project(columns)?.build()
}
