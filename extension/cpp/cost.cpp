#include "cost.hpp"

#include "bridge.hpp"
#include "catalog.hpp"
#include "pushdown.hpp"
#include "scan.hpp"

#include "duckdb/planner/expression/bound_columnref_expression.hpp"
#include "duckdb/planner/expression/bound_conjunction_expression.hpp"
#include "duckdb/planner/expression/bound_reference_expression.hpp"
#include "duckdb/planner/operator/logical_join.hpp"
#include "duckdb/planner/expression_iterator.hpp"
#include "duckdb/storage/table_storage_info.hpp"

#include <set>

namespace openduck {

using namespace duckdb;

namespace {

//! Bytes a value of `type` takes on the wire, roughly (strings and nested values: a guess).
idx_t Width(const LogicalType &type) {
	if (type.IsNested() || type.InternalType() == PhysicalType::VARCHAR) {
		return 32;
	}
	return GetTypeIdSize(type.InternalType());
}

idx_t RowsOf(ClientContext &context, TableCatalogEntry &table, idx_t unknown) {
	auto rows = table.GetStorageInfo(context).cardinality;
	return rows.IsValid() ? rows.GetIndex() : unknown;
}

//! The conjuncts of a filter's expressions.
void Split(LogicalOperator &filter, vector<reference<Expression>> &out) {
	std::function<void(Expression &)> split = [&](Expression &expression) {
		if (expression.GetExpressionType() == ExpressionType::CONJUNCTION_AND) {
			for (auto &child : expression.Cast<BoundConjunctionExpression>().children) {
				split(*child);
			}
		} else {
			out.push_back(expression);
		}
	};
	for (auto &expression : filter.expressions) {
		split(*expression);
	}
}

//! Whether `expression` reads columns of the scan `table_index` and of nothing else.
bool ReadsOnly(const Expression &expression, idx_t table_index) {
	bool only = true, any = false;
	std::function<void(const Expression &)> visit = [&](const Expression &child) {
		if (child.GetExpressionClass() == ExpressionClass::BOUND_COLUMN_REF) {
			auto &binding = child.Cast<BoundColumnRefExpression>();
			only = only && binding.binding.table_index == table_index && binding.depth == 0;
			any = true;
		} else if (child.GetExpressionClass() == ExpressionClass::BOUND_SUBQUERY) {
			only = false;
		}
		ExpressionIterator::EnumerateChildren(child, visit);
	};
	visit(expression);
	return only && any;
}

//! The number in the first row and column of `sql`'s result, a BIGINT.
idx_t CountOf(ClientContext &context, const Client &client, const std::string &sql) {
	auto stream = client.Query(sql, context);
	auto chunk = stream->GetNextChunk();
	auto &array = chunk->arrow_array;
	if (!array.release || array.length < 1 || array.n_children < 1 || !array.children[0]->buffers[1]) {
		throw IOException("openduck: the service sent no count for %s", sql);
	}
	auto &column = *array.children[0];
	return NumericCast<idx_t>(static_cast<const int64_t *>(column.buffers[1])[column.offset]);
}

} // namespace

optional_idx EstimatedRows(ClientContext &context, const Client &client, const std::string &sql) {
	auto stream = client.Query("EXPLAIN (FORMAT json) " + sql, context);
	std::string plan;
	for (auto chunk = stream->GetNextChunk(); chunk && chunk->arrow_array.release; chunk = stream->GetNextChunk()) {
		auto &array = chunk->arrow_array;
		if (array.n_children < 2 || array.length < 1) {
			break;
		}
		auto &column = *array.children[1]; // explain_value, a string
		if (!column.buffers[1] || !column.buffers[2]) {
			break;
		}
		auto offsets = static_cast<const int32_t *>(column.buffers[1]) + column.offset;
		plan.append(static_cast<const char *>(column.buffers[2]) + offsets[0], offsets[1] - offsets[0]);
		break;
	}
	// Each operator's extra_info follows its children: the root's estimate comes last.
	const std::string key = "\"Estimated Cardinality\": \"";
	auto at = plan.rfind(key);
	if (at == std::string::npos) {
		return optional_idx();
	}
	auto digits = plan.c_str() + at + key.size();
	char *end = nullptr;
	auto rows = std::strtoull(digits, &end, 10);
	return end == digits ? optional_idx() : optional_idx(rows);
}

QueryReads QueryReads::Of(ClientContext &context, LogicalOperator &plan) {
	QueryReads reads;
	std::function<void(LogicalOperator &)> visit = [&](LogicalOperator &op) {
		if (op.type == LogicalOperatorType::LOGICAL_GET) {
			auto &get = op.Cast<LogicalGet>();
			auto table = get.GetTable();
			if (table && get.function.name == "openduck_scan") {
				auto &catalog = table->ParentCatalog().Cast<OpenduckCatalog>();
				if (!reads.attachment) {
					reads.attachment = &catalog;
				} else if (reads.attachment.get() != &catalog) {
					auto sibling = reads.attachment->Sibling(context, catalog);
					reads.several = reads.several || sibling;
					reads.other = reads.other || !sibling;
				}
				RemoteRead read {get, *table};
				read.rows = RowsOf(context, *table, 1000000);
				for (auto &column : get.GetColumnIds()) {
					reads.remote_row_ids = reads.remote_row_ids || (column.IsVirtualColumn() && !column.IsEmptyColumn());
					read.width += column.IsVirtualColumn() ? 8 : Width(get.GetColumnType(column));
				}
				read.width = MaxValue<idx_t>(read.width, 1);
				reads.remote.push_back(read);
			} else if (table && get.function.name == "seq_scan") {
				auto local = reads.Local(*table);
				if (!local) {
					auto why = UploadRefusal(*table);
					if (!why.empty()) {
						reads.refusal = why;
					}
					reads.local.push_back(LocalRead {*table, RowsOf(context, *table, 0)});
					local = &reads.local.back();
				}
				local->gets.push_back(get);
				for (auto &column : get.GetColumnIds()) {
					if (column.IsEmptyColumn()) {
						continue;
					}
					if (column.IsVirtualColumn()) {
						// Its copy's row ids would be others.
						reads.refusal = table->name + "'s row ids are read";
						continue;
					}
					local->columns.push_back(column.GetPrimaryIndex());
				}
			} else {
				reads.other = true;
			}
		}
		for (auto &child : op.children) {
			visit(*child);
		}
	};
	visit(plan);
	for (auto &local : reads.local) {
		if (local.columns.empty()) {
			local.columns.push_back(0); // only its rows count: one column carries them
		}
		std::sort(local.columns.begin(), local.columns.end());
		local.columns.erase(std::unique(local.columns.begin(), local.columns.end()), local.columns.end());
		auto &columns = local.table.get().GetColumns();
		for (auto index : local.columns) {
			local.width += Width(columns.GetColumn(LogicalIndex(index)).Type());
		}
	}
	return reads;
}

optional_ptr<LocalRead> QueryReads::Local(TableCatalogEntry &table) {
	for (auto &local : local) {
		if (&local.table.get() == &table) {
			return &local;
		}
	}
	return nullptr;
}

idx_t QueryReads::RemoteBytes() const {
	idx_t bytes = 0;
	for (auto &read : remote) {
		bytes += read.rows * read.width;
	}
	return bytes;
}

idx_t QueryReads::LocalBytes() const {
	idx_t bytes = 0;
	for (auto &read : local) {
		if (read.kept) {
			continue;
		}
		// DuckDB's own guess for a filtered scan: a fifth of the rows.
		bytes += (read.filters.empty() ? read.rows : read.rows / 5) * read.width;
	}
	return bytes;
}

namespace {

//! Whether rows of `target`, below `op`, reach `op` through operators that keep or drop
//! each of them on its own (so that dropping one earlier changes no other row).
bool KeepsRowsApart(LogicalOperator &op, LogicalGet &target) {
	if (&op == &target) {
		return true;
	}
	switch (op.type) {
	case LogicalOperatorType::LOGICAL_FILTER:
	case LogicalOperatorType::LOGICAL_CROSS_PRODUCT:
		break;
	case LogicalOperatorType::LOGICAL_COMPARISON_JOIN:
	case LogicalOperatorType::LOGICAL_ANY_JOIN:
	case LogicalOperatorType::LOGICAL_DEPENDENT_JOIN: {
		auto type = op.Cast<LogicalJoin>().join_type;
		if (type == JoinType::INNER && op.type != LogicalOperatorType::LOGICAL_DEPENDENT_JOIN) {
			break;
		}
		// Only the side whose rows are kept or dropped one by one.
		idx_t preserved = type == JoinType::RIGHT ? 1 : 0;
		if (type == JoinType::OUTER || op.children.size() <= preserved) {
			return false;
		}
		return KeepsRowsApart(*op.children[preserved], target);
	}
	default:
		return false;
	}
	for (auto &child : op.children) {
		if (KeepsRowsApart(*child, target)) {
			return true;
		}
	}
	return false;
}

//! A copy of `expression` with the columns of the scan `get` made references to their
//! logical column indexes.
unique_ptr<Expression> OverColumns(const Expression &expression, LogicalGet &get) {
	auto copy = expression.Copy();
	std::function<void(unique_ptr<Expression> &)> visit = [&](unique_ptr<Expression> &child) {
		if (child->GetExpressionClass() == ExpressionClass::BOUND_COLUMN_REF) {
			auto &binding = child->Cast<BoundColumnRefExpression>().binding;
			auto logical = get.GetColumnIds()[binding.column_index].GetPrimaryIndex();
			child = make_uniq<BoundReferenceExpression>(child->return_type, logical);
			return;
		}
		ExpressionIterator::EnumerateChildren(*child, visit);
	};
	visit(copy);
	return copy;
}

//! The conjuncts of `plan`'s filters that every row of `get` reaching the result
//! satisfies, and that may be evaluated on its rows alone: they read only its columns,
//! cannot fail on rows the query would drop first, and reach it through operators that keep
//! rows apart (KeepsRowsApart).
vector<reference<Expression>> RowFilters(LogicalOperator &plan, LogicalGet &get) {
	vector<reference<Expression>> found;
	std::function<void(LogicalOperator &)> visit = [&](LogicalOperator &op) {
		if (op.type == LogicalOperatorType::LOGICAL_FILTER) {
			vector<reference<Expression>> conjuncts;
			Split(op, conjuncts);
			for (auto &conjunct : conjuncts) {
				auto &expression = conjunct.get();
				if (ReadsOnly(expression, get.table_index) && expression.IsConsistent() && !expression.CanThrow() &&
				    KeepsRowsApart(op, get)) {
					found.push_back(expression);
				}
			}
		}
		for (auto &child : op.children) {
			visit(*child);
		}
	};
	visit(plan);
	return found;
}

} // namespace

void QueryReads::FindLocalFilters(LogicalOperator &plan) {
	for (auto &read : local) {
		if (read.gets.size() != 1) {
			continue; // scans of one table under other filters
		}
		auto &get = read.gets[0].get();
		for (auto &conjunct : RowFilters(plan, get)) {
			read.filters.push_back(shared_ptr<Expression>(OverColumns(conjunct, get)));
		}
	}
}

void QueryReads::ProbeRemote(ClientContext &context, LogicalOperator &plan) {
	for (auto &read : remote) {
		auto &get = read.get.get();
		auto &column_ids = get.GetColumnIds();
		ColumnNamer column = [&](idx_t index, std::string &quoted) {
			if (index >= column_ids.size() || column_ids[index].IsVirtualColumn()) {
				return false;
			}
			quoted = QuoteIdentifier(get.names[column_ids[index].GetPrimaryIndex()]);
			return true;
		};
		std::string where;
		for (auto &conjunct : RowFilters(plan, get)) {
			std::string predicate;
			if (ExpressionSQL(conjunct, column, predicate)) {
				where += (where.empty() ? " WHERE " : " AND ") + predicate;
			}
		}
		if (where.empty()) {
			continue;
		}
		auto &table = read.table.get();
		auto &catalog = table.ParentCatalog().Cast<OpenduckCatalog>();
		RemoteTable name {catalog.RemoteName(), table.schema.name, table.name};
		read.rows = CountOf(context, *catalog.GetClient(), "SELECT count(*) FROM " + name.ToSQL() + where);
	}
}

} // namespace openduck
