#include "limits.hpp"

#include "pushdown.hpp"
#include "scan.hpp"

#include "duckdb/planner/expression/bound_columnref_expression.hpp"
#include "duckdb/planner/operator/logical_get.hpp"
#include "duckdb/planner/operator/logical_limit.hpp"
#include "duckdb/planner/operator/logical_projection.hpp"
#include "duckdb/planner/operator/logical_top_n.hpp"

namespace openduck {

using namespace duckdb;

namespace {

//! The scan a LIMIT's rows come from one for one: below `op` through projections only.
optional_ptr<LogicalGet> ScanBelow(LogicalOperator &op) {
	auto *current = &op;
	while (current->type == LogicalOperatorType::LOGICAL_PROJECTION && current->children.size() == 1) {
		current = current->children[0].get();
	}
	if (current->type != LogicalOperatorType::LOGICAL_GET) {
		return nullptr;
	}
	return &current->Cast<LogicalGet>();
}

//! The position among `get`'s column ids of the column `expression` reads, followed down
//! from `op` through projections (false: it computes something).
bool ColumnOf(LogicalOperator &op, LogicalGet &get, const Expression &expression, idx_t &position) {
	if (expression.GetExpressionClass() != ExpressionClass::BOUND_COLUMN_REF) {
		return false;
	}
	auto binding = expression.Cast<BoundColumnRefExpression>().binding;
	if (op.type == LogicalOperatorType::LOGICAL_PROJECTION) {
		auto &projection = op.Cast<LogicalProjection>();
		if (binding.table_index != projection.table_index || binding.column_index >= projection.expressions.size()) {
			return false;
		}
		return ColumnOf(*op.children[0], get, *projection.expressions[binding.column_index], position);
	}
	if (&op != &get || binding.table_index != get.table_index) {
		return false;
	}
	position = get.projection_ids.empty() ? binding.column_index
	                                      : (binding.column_index < get.projection_ids.size()
	                                             ? get.projection_ids[binding.column_index]
	                                             : DConstants::INVALID_INDEX);
	return position < get.GetColumnIds().size();
}

//! `limit` plus `offset`: the rows a LIMIT ... OFFSET reads (false when they overflow).
bool RowsRead(idx_t limit, idx_t offset, idx_t &rows) {
	if (limit > NumericLimits<idx_t>::Maximum() - offset) {
		return false;
	}
	rows = limit + offset;
	return true;
}

void PushLimit(LogicalLimit &limit) {
	if (limit.limit_val.Type() != LimitNodeType::CONSTANT_VALUE) {
		return;
	}
	idx_t offset = 0;
	if (limit.offset_val.Type() == LimitNodeType::CONSTANT_VALUE) {
		offset = limit.offset_val.GetConstantValue();
	} else if (limit.offset_val.Type() != LimitNodeType::UNSET) {
		return;
	}
	idx_t rows;
	auto get = ScanBelow(*limit.children[0]);
	if (get && RowsRead(limit.limit_val.GetConstantValue(), offset, rows)) {
		LimitScan(*get, rows, {});
	}
}

void PushTopN(LogicalTopN &top) {
	auto get = ScanBelow(*top.children[0]);
	idx_t rows;
	if (!get || !RowsRead(top.limit, top.offset, rows)) {
		return;
	}
	vector<std::pair<idx_t, std::string>> order;
	for (auto &key : top.orders) {
		idx_t position;
		if (ZoneDependent(key.expression->return_type) || !ColumnOf(*top.children[0], *get, *key.expression, position)) {
			return;
		}
		std::string direction = key.type == OrderType::DESCENDING ? " DESC" : " ASC";
		direction += key.null_order == OrderByNullType::NULLS_FIRST ? " NULLS FIRST" : " NULLS LAST";
		order.emplace_back(position, std::move(direction));
	}
	LimitScan(*get, rows, order);
}

void Visit(LogicalOperator &op) {
	if (op.type == LogicalOperatorType::LOGICAL_LIMIT) {
		PushLimit(op.Cast<LogicalLimit>());
	} else if (op.type == LogicalOperatorType::LOGICAL_TOP_N) {
		PushTopN(op.Cast<LogicalTopN>());
	}
	for (auto &child : op.children) {
		Visit(*child);
	}
}

} // namespace

void PushLimits(OptimizerExtensionInput &, unique_ptr<LogicalOperator> &plan) {
	if (plan) {
		Visit(*plan);
	}
}

} // namespace openduck
