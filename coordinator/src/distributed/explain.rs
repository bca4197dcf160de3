//! EXPLAIN of a distributed query: the logical plan with every operator
//! marked `[LOCAL]` or, inside a Bridge, `[REMOTE <executor>]`, followed by
//! the physical plan the coordinator runs.

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{displayable, ExecutionPlan};

use super::fragment::Fragment;
use super::ship::Shipped;

/// One line per operator, indented by depth.
pub(crate) fn explain_lines(plan: &LogicalPlan, physical: &dyn ExecutionPlan) -> Vec<String> {
    let mut lines = vec!["logical plan:".to_string()];
    describe(plan, 1, &mut lines);
    lines.push("physical plan (coordinator):".to_string());
    for line in displayable(physical).indent(false).to_string().lines() {
        lines.push(format!("  {line}"));
    }
    lines
}

fn describe(plan: &LogicalPlan, depth: usize, lines: &mut Vec<String>) {
    let indent = "  ".repeat(depth);
    if let LogicalPlan::Extension(extension) = plan {
        if let Some(fragment) = extension.node.as_any().downcast_ref::<Fragment>() {
            describe_fragment("Bridge", fragment, None, depth, lines);
            return;
        }
    }
    lines.push(format!("{indent}[LOCAL] {}", plan.display()));
    let _ = plan.apply_children(|child| {
        describe(child, depth + 1, lines);
        Ok(TreeNodeRecursion::Continue)
    });
}

/// A fragment, its SQL, and the join sides shipped to it (each with its own
/// fragment), one level deeper.
fn describe_fragment(what: &str, fragment: &Fragment, to: Option<&Shipped>, depth: usize, lines: &mut Vec<String>) {
    let indent = "  ".repeat(depth);
    let into = to
        .map(|shipped| format!(" into {}", shipped.qualified_name()))
        .unwrap_or_default();
    lines.push(format!("{indent}{what} [REMOTE {}]{into}", fragment.site.id()));
    lines.push(format!("{indent}  {}", fragment.sql));
    for shipped in &fragment.shipped {
        describe_fragment("Shipped", &shipped.source, Some(shipped), depth + 1, lines);
    }
}
