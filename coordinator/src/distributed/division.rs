//! `/` as DuckDB means it, in a plan DataFusion made.
//!
//! DuckDB divides numbers as floating point: integers and decimals give a
//! DOUBLE (`3 / 2` is 1.5), a FLOAT over a FLOAT or an integer gives a
//! FLOAT. DataFusion keeps the operands' kind (`3 / 2` is 1, a decimal's
//! quotient is a decimal of limited scale). Before anything else, every
//! division of two numbers is rewritten to divide their floating point
//! casts, so that a query across executors gives DuckDB's answer, and a
//! division can run in a fragment with the same meaning as on the
//! coordinator. Output names stay as the query wrote them.

use arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::DFSchema;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{cast, BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};

/// `plan`, with its subqueries, dividing numbers as DuckDB does.
pub(crate) fn as_duckdb_divides(plan: LogicalPlan) -> DfResult<LogicalPlan> {
    Ok(plan
        .transform_up_with_subqueries(|node| {
            let mut schema = DFSchema::empty();
            for input in node.inputs() {
                schema.merge(input.schema());
            }
            let names = NamePreserver::new(&node);
            let rewritten = node.map_expressions(|expr| {
                let name = names.save(&expr);
                let rewritten = expr.transform_up(|expr| float_division(expr, &schema))?;
                Ok(rewritten.update_data(|expr| name.restore(expr)))
            })?;
            if rewritten.transformed {
                // The types of its outputs may have changed.
                rewritten.map_data(LogicalPlan::recompute_schema)
            } else {
                Ok(Transformed::no(rewritten.data))
            }
        })?
        .data)
}

fn float_division(expr: Expr, schema: &DFSchema) -> DfResult<Transformed<Expr>> {
    let Expr::BinaryExpr(BinaryExpr {
        left,
        op: Operator::Divide,
        right,
    }) = &expr
    else {
        return Ok(Transformed::no(expr));
    };
    let (Ok(left_type), Ok(right_type)) = (left.get_type(schema), right.get_type(schema)) else {
        return Ok(Transformed::no(expr));
    };
    let Some(quotient) = duckdb_quotient(&left_type, &right_type) else {
        return Ok(Transformed::no(expr));
    };
    if left_type == quotient && right_type == quotient {
        return Ok(Transformed::no(expr));
    }
    Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
        Box::new(cast(left.as_ref().clone(), quotient.clone())),
        Operator::Divide,
        Box::new(cast(right.as_ref().clone(), quotient)),
    ))))
}

/// The type of DuckDB's quotient of two numbers; `None` when either is not one.
fn duckdb_quotient(left: &DataType, right: &DataType) -> Option<DataType> {
    if !(left.is_numeric() && right.is_numeric()) {
        return None;
    }
    let single = |t: &DataType| *t == DataType::Float32 || t.is_integer();
    if (*left == DataType::Float32 || *right == DataType::Float32) && single(left) && single(right) {
        Some(DataType::Float32)
    } else {
        Some(DataType::Float64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_divide_as_floats_as_in_duckdb() {
        let decimal = DataType::Decimal128(7, 2);
        for (left, right, quotient) in [
            (DataType::Int32, DataType::Int64, Some(DataType::Float64)),
            (decimal.clone(), decimal.clone(), Some(DataType::Float64)),
            (decimal.clone(), DataType::Int32, Some(DataType::Float64)),
            (DataType::Float32, DataType::Int32, Some(DataType::Float32)),
            (DataType::Float32, DataType::Float64, Some(DataType::Float64)),
            (DataType::Float32, decimal, Some(DataType::Float64)),
            (DataType::Utf8, DataType::Int32, None),
        ] {
            assert_eq!(duckdb_quotient(&left, &right), quotient, "{left} / {right}");
        }
    }
}
