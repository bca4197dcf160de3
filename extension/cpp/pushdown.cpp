#include "pushdown.hpp"

#include "duckdb/planner/expression/list.hpp"
#include "duckdb/planner/filter/conjunction_filter.hpp"
#include "duckdb/planner/filter/constant_filter.hpp"
#include "duckdb/planner/filter/in_filter.hpp"
#include "duckdb/planner/filter/optional_filter.hpp"
#include "duckdb/planner/filter/struct_filter.hpp"

namespace openduck {

using namespace duckdb;

namespace {

const char *ComparisonOperator(ExpressionType type) {
	switch (type) {
	case ExpressionType::COMPARE_EQUAL:
		return "=";
	case ExpressionType::COMPARE_NOTEQUAL:
		return "<>";
	case ExpressionType::COMPARE_LESSTHAN:
		return "<";
	case ExpressionType::COMPARE_GREATERTHAN:
		return ">";
	case ExpressionType::COMPARE_LESSTHANOREQUALTO:
		return "<=";
	case ExpressionType::COMPARE_GREATERTHANOREQUALTO:
		return ">=";
	case ExpressionType::COMPARE_DISTINCT_FROM:
		return "IS DISTINCT FROM";
	case ExpressionType::COMPARE_NOT_DISTINCT_FROM:
		return "IS NOT DISTINCT FROM";
	default:
		return nullptr;
	}
}

//! Scalar functions rendered as calls: deterministic, and bound alike on both sides.
bool IsPortableFunction(const std::string &name) {
	static const std::unordered_set<std::string> portable = {
	    "prefix", "suffix", "contains", "starts_with", "ends_with", "lower", "upper", "length", "abs",
	    "regexp_matches", "struct_extract", "array_extract", "list_contains", "+", "-", "*", "/", "//", "%", "||"};
	return portable.count(name) > 0;
}

//! LIKE and friends: DuckDB binds them to these function names.
const char *LikeOperator(const std::string &name) {
	if (name == "~~") {
		return "LIKE";
	}
	if (name == "!~~") {
		return "NOT LIKE";
	}
	if (name == "~~*") {
		return "ILIKE";
	}
	if (name == "!~~*") {
		return "NOT ILIKE";
	}
	return nullptr;
}

bool Children(const vector<unique_ptr<Expression>> &children, const ColumnNamer &column, vector<std::string> &out) {
	for (auto &child : children) {
		std::string sql;
		if (!ExpressionSQL(*child, column, sql)) {
			return false;
		}
		out.push_back(std::move(sql));
	}
	return true;
}

std::string Join(const vector<std::string> &parts, const std::string &separator) {
	std::string out;
	for (idx_t i = 0; i < parts.size(); i++) {
		out += (i ? separator : "") + parts[i];
	}
	return out;
}

} // namespace

bool AnyType(const LogicalType &type, const std::function<bool(const LogicalType &)> &is) {
	if (is(type)) {
		return true;
	}
	switch (type.id()) {
	case LogicalTypeId::LIST:
		return AnyType(ListType::GetChildType(type), is);
	case LogicalTypeId::ARRAY:
		return AnyType(ArrayType::GetChildType(type), is);
	case LogicalTypeId::MAP:
		return AnyType(MapType::KeyType(type), is) || AnyType(MapType::ValueType(type), is);
	case LogicalTypeId::STRUCT:
	case LogicalTypeId::UNION:
		for (auto &child : StructType::GetChildTypes(type)) {
			if (AnyType(child.second, is)) {
				return true;
			}
		}
		return false;
	default:
		return false;
	}
}

bool ZoneDependent(const LogicalType &type) {
	return AnyType(type, [](const LogicalType &member) {
		return member.id() == LogicalTypeId::TIMESTAMP_TZ || member.id() == LogicalTypeId::TIME_TZ;
	});
}

bool FilterSQL(const TableFilter &filter, const std::string &column, std::string &out) {
	switch (filter.filter_type) {
	case TableFilterType::CONSTANT_COMPARISON: {
		auto &constant = filter.Cast<ConstantFilter>();
		auto op = ComparisonOperator(constant.comparison_type);
		if (!op) {
			return false;
		}
		out = column + " " + op + " " + constant.constant.ToSQLString();
		return true;
	}
	case TableFilterType::IS_NULL:
		out = column + " IS NULL";
		return true;
	case TableFilterType::IS_NOT_NULL:
		out = column + " IS NOT NULL";
		return true;
	case TableFilterType::IN_FILTER: {
		auto &in = filter.Cast<InFilter>();
		if (in.values.empty()) {
			return false;
		}
		vector<std::string> values;
		for (auto &value : in.values) {
			values.push_back(value.ToSQLString());
		}
		out = column + " IN (" + Join(values, ", ") + ")";
		return true;
	}
	case TableFilterType::CONJUNCTION_AND:
	case TableFilterType::CONJUNCTION_OR: {
		auto &conjunction = static_cast<const ConjunctionFilter &>(filter);
		vector<std::string> children;
		for (auto &child : conjunction.child_filters) {
			std::string sql;
			if (!FilterSQL(*child, column, sql)) {
				return false;
			}
			children.push_back(std::move(sql));
		}
		auto separator = filter.filter_type == TableFilterType::CONJUNCTION_AND ? " AND " : " OR ";
		out = "(" + Join(children, separator) + ")";
		return true;
	}
	case TableFilterType::STRUCT_EXTRACT: {
		auto &field = filter.Cast<StructFilter>();
		auto child = "struct_extract(" + column + ", " + Value(field.child_name).ToSQLString() + ")";
		return FilterSQL(*field.child_filter, child, out);
	}
	default:
		return false;
	}
}

void SplitFilter(const TableFilter &filter, const std::string &column, std::vector<std::string> &sent,
                 std::vector<std::reference_wrapper<const TableFilter>> &kept) {
	std::string sql;
	auto render = [&](const TableFilter &part) {
		return !column.empty() && FilterSQL(part, column, sql);
	};
	switch (filter.filter_type) {
	case TableFilterType::CONJUNCTION_AND:
		// DuckDB joins every filter it has for one column into one AND: split it, so that
		// a part without a rendering does not keep the others from the service.
		for (auto &child : filter.Cast<ConjunctionAndFilter>().child_filters) {
			SplitFilter(*child, column, sent, kept);
		}
		return;
	case TableFilterType::OPTIONAL_FILTER:
		if (render(*filter.Cast<OptionalFilter>().child_filter)) {
			sent.push_back(std::move(sql));
		}
		return;
	case TableFilterType::DYNAMIC_FILTER: // a top-N's bound: not set yet when a scan begins
	case TableFilterType::BLOOM_FILTER:
		return;
	default:
		if (render(filter)) {
			sent.push_back(std::move(sql));
		} else {
			kept.push_back(filter);
		}
	}
}

bool ExpressionSQL(const Expression &expression, const ColumnNamer &column, std::string &out) {
	switch (expression.GetExpressionClass()) {
	case ExpressionClass::BOUND_COLUMN_REF:
		return column(expression.Cast<BoundColumnRefExpression>().binding.column_index, out);
	case ExpressionClass::BOUND_CONSTANT:
		out = expression.Cast<BoundConstantExpression>().value.ToSQLString();
		return true;
	case ExpressionClass::BOUND_COMPARISON: {
		auto &comparison = expression.Cast<BoundComparisonExpression>();
		auto op = ComparisonOperator(comparison.GetExpressionType());
		std::string left, right;
		if (!op || !ExpressionSQL(*comparison.left, column, left) || !ExpressionSQL(*comparison.right, column, right)) {
			return false;
		}
		out = "(" + left + " " + op + " " + right + ")";
		return true;
	}
	case ExpressionClass::BOUND_CONJUNCTION: {
		auto &conjunction = expression.Cast<BoundConjunctionExpression>();
		vector<std::string> children;
		if (!Children(conjunction.children, column, children)) {
			return false;
		}
		auto and_ = conjunction.GetExpressionType() == ExpressionType::CONJUNCTION_AND;
		out = "(" + Join(children, and_ ? " AND " : " OR ") + ")";
		return true;
	}
	case ExpressionClass::BOUND_OPERATOR: {
		auto &op = expression.Cast<BoundOperatorExpression>();
		vector<std::string> children;
		if (!Children(op.children, column, children) || children.empty()) {
			return false;
		}
		switch (op.GetExpressionType()) {
		case ExpressionType::OPERATOR_IS_NULL:
			out = "(" + children[0] + " IS NULL)";
			return true;
		case ExpressionType::OPERATOR_IS_NOT_NULL:
			out = "(" + children[0] + " IS NOT NULL)";
			return true;
		case ExpressionType::OPERATOR_NOT:
			out = "(NOT " + children[0] + ")";
			return true;
		case ExpressionType::COMPARE_IN:
		case ExpressionType::COMPARE_NOT_IN: {
			if (children.size() < 2) {
				return false;
			}
			auto not_ = op.GetExpressionType() == ExpressionType::COMPARE_NOT_IN ? " NOT" : "";
			vector<std::string> list(children.begin() + 1, children.end());
			out = "(" + children[0] + not_ + " IN (" + Join(list, ", ") + "))";
			return true;
		}
		default:
			return false;
		}
	}
	case ExpressionClass::BOUND_BETWEEN: {
		auto &between = expression.Cast<BoundBetweenExpression>();
		std::string input, lower, upper;
		if (!ExpressionSQL(*between.input, column, input) || !ExpressionSQL(*between.lower, column, lower) ||
		    !ExpressionSQL(*between.upper, column, upper)) {
			return false;
		}
		out = "(" + input + (between.lower_inclusive ? " >= " : " > ") + lower + " AND " + input +
		      (between.upper_inclusive ? " <= " : " < ") + upper + ")";
		return true;
	}
	case ExpressionClass::BOUND_CAST: {
		auto &cast = expression.Cast<BoundCastExpression>();
		std::string child;
		if (ZoneDependent(cast.return_type) || ZoneDependent(cast.child->return_type) ||
		    !ExpressionSQL(*cast.child, column, child)) {
			return false;
		}
		out = std::string(cast.try_cast ? "TRY_CAST(" : "CAST(") + child + " AS " + cast.return_type.ToString() + ")";
		return true;
	}
	case ExpressionClass::BOUND_FUNCTION: {
		auto &function = expression.Cast<BoundFunctionExpression>();
		auto &name = function.function.name;
		vector<std::string> children;
		if (!Children(function.children, column, children)) {
			return false;
		}
		for (auto &child : function.children) {
			if (ZoneDependent(child->return_type)) {
				return false;
			}
		}
		if (auto like = LikeOperator(name)) {
			if (children.size() != 2) {
				return false;
			}
			out = "(" + children[0] + " " + like + " " + children[1] + ")";
			return true;
		}
		if (!IsPortableFunction(name)) {
			return false;
		}
		if (function.is_operator && children.size() == 2) {
			out = "(" + children[0] + " " + name + " " + children[1] + ")";
		} else {
			out = name + "(" + Join(children, ", ") + ")";
		}
		return true;
	}
	default:
		return false;
	}
}

} // namespace openduck
