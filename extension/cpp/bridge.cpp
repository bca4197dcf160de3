#include "bridge.hpp"

#include "pushdown.hpp"
#include "scan.hpp"
#include "write.hpp"

#include "duckdb/catalog/catalog_entry/duck_table_entry.hpp"
#include "duckdb/execution/expression_executor.hpp"
#include "duckdb/main/client_context.hpp"
#include "duckdb/planner/expression/bound_conjunction_expression.hpp"
#include "duckdb/planner/expression/bound_reference_expression.hpp"
#include "duckdb/planner/expression_iterator.hpp"
#include "duckdb/storage/data_table.hpp"
#include "duckdb/storage/table/scan_state.hpp"
#include "duckdb/transaction/duck_transaction.hpp"

namespace openduck {

using namespace duckdb;

namespace {

//! Whether `type` names something only this session knows (an ENUM or another type
//! made with CREATE TYPE), or carries a collation its DDL would not, at any depth.
bool SessionType(const LogicalType &type) {
	return AnyType(type, [](const LogicalType &member) {
		return member.HasAlias() || member.id() == LogicalTypeId::ENUM ||
		       (member.id() == LogicalTypeId::VARCHAR && !StringType::GetCollation(member).empty());
	});
}

} // namespace

std::string UploadRefusal(TableCatalogEntry &table) {
	if (table.catalog.GetCatalogType() != "duckdb") {
		return table.name + " is not a table of a DuckDB database";
	}
	for (auto &column : table.GetColumns().Logical()) {
		if (column.Generated()) {
			return table.name + " has a generated column";
		}
		if (SessionType(column.Type())) {
			return table.name + "." + column.Name() + " has a type of this session or a collation";
		}
	}
	return std::string();
}

void CopyUp(ClientContext &context, const Client &session, const std::string &database, const Upload &upload) {
	auto &table = upload.table.get().Cast<DuckTableEntry>();
	vector<std::string> names;
	vector<LogicalType> types;
	vector<StorageIndex> columns;
	vector<idx_t> logical;
	std::string definition;
	for (auto &column : table.GetColumns().Physical()) {
		if (!upload.columns.empty() &&
		    std::find(upload.columns.begin(), upload.columns.end(), column.Logical().index) == upload.columns.end()) {
			continue;
		}
		definition += (names.empty() ? "" : ", ") + QuoteIdentifier(column.Name()) + " " + column.Type().ToString();
		names.push_back(column.Name());
		types.push_back(column.Type());
		logical.push_back(column.Logical().index);
		columns.emplace_back(column.StorageOid());
	}
	auto create = "CREATE TEMPORARY TABLE " + QuoteIdentifier(upload.name) + " (" + definition + ")";
	Check(od_execute(session.Get(), create.c_str(), &context.interrupted));

	// The filters, over the positions of the copied columns in the chunks read.
	unique_ptr<Expression> keep;
	for (auto &filter : upload.filters) {
		auto copy = filter->Copy();
		std::function<void(unique_ptr<Expression> &)> place = [&](unique_ptr<Expression> &child) {
			if (child->GetExpressionClass() == ExpressionClass::BOUND_REF) {
				auto &reference = child->Cast<BoundReferenceExpression>();
				auto position = std::find(logical.begin(), logical.end(), reference.index);
				D_ASSERT(position != logical.end());
				reference.index = NumericCast<idx_t>(position - logical.begin());
				return;
			}
			ExpressionIterator::EnumerateChildren(*child, place);
		};
		place(copy);
		if (!keep) {
			keep = std::move(copy);
		} else {
			auto both = make_uniq<BoundConjunctionExpression>(ExpressionType::CONJUNCTION_AND);
			both->children.push_back(std::move(keep));
			both->children.push_back(std::move(copy));
			keep = std::move(both);
		}
	}
	unique_ptr<ExpressionExecutor> executor;
	if (keep) {
		executor = make_uniq<ExpressionExecutor>(context, *keep);
	}
	SelectionVector kept(STANDARD_VECTOR_SIZE);

	Ingest ingest(context, session, RemoteTable {database, "main", upload.name}, true, names, types);
	auto &storage = table.GetStorage();
	auto &transaction = DuckTransaction::Get(context, table.catalog);
	TableScanState state;
	storage.InitializeScan(context, transaction, state, columns);
	DataChunk chunk;
	chunk.Initialize(context, types);
	while (true) {
		chunk.Reset();
		storage.Scan(transaction, chunk, state);
		if (chunk.size() == 0) {
			break;
		}
		if (context.interrupted) {
			throw InterruptException();
		}
		if (executor) {
			auto count = executor->SelectExpression(chunk, kept);
			if (count == 0) {
				continue;
			}
			if (count < chunk.size()) {
				chunk.Slice(kept, count);
			}
		}
		ingest.Push(chunk);
	}
	ingest.Finish();
}

} // namespace openduck
