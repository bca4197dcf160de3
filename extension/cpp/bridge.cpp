#include "bridge.hpp"

#include "pushdown.hpp"
#include "scan.hpp"
#include "write.hpp"

#include "duckdb/catalog/catalog_entry/duck_table_entry.hpp"
#include "duckdb/common/types/hash.hpp"
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

namespace {

//! The columns of a table an upload copies, in the table's physical order.
struct Copied {
	vector<std::string> names;
	vector<LogicalType> types;
	vector<StorageIndex> columns;
	vector<idx_t> logical;
};

Copied CopiedColumns(const Upload &upload) {
	Copied copied;
	for (auto &column : upload.table.get().GetColumns().Physical()) {
		if (!upload.columns.empty() &&
		    std::find(upload.columns.begin(), upload.columns.end(), column.Logical().index) == upload.columns.end()) {
			continue;
		}
		copied.names.push_back(column.Name());
		copied.types.push_back(column.Type());
		copied.logical.push_back(column.Logical().index);
		copied.columns.emplace_back(column.StorageOid());
	}
	return copied;
}

//! Hands `consume` the rows of `upload` its filters keep, chunk by chunk, as the
//! transaction of `context` sees them (its own changes included).
void ReadRows(ClientContext &context, const Upload &upload, const Copied &copied,
              const std::function<void(DataChunk &)> &consume) {
	// The filters, over the positions of the copied columns in the chunks read.
	unique_ptr<Expression> keep;
	for (auto &filter : upload.filters) {
		auto copy = filter->Copy();
		std::function<void(unique_ptr<Expression> &)> place = [&](unique_ptr<Expression> &child) {
			if (child->GetExpressionClass() == ExpressionClass::BOUND_REF) {
				auto &reference = child->Cast<BoundReferenceExpression>();
				auto position = std::find(copied.logical.begin(), copied.logical.end(), reference.index);
				D_ASSERT(position != copied.logical.end());
				reference.index = NumericCast<idx_t>(position - copied.logical.begin());
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

	auto &table = upload.table.get().Cast<DuckTableEntry>();
	auto &storage = table.GetStorage();
	auto &transaction = DuckTransaction::Get(context, table.catalog);
	TableScanState state;
	storage.InitializeScan(context, transaction, state, copied.columns);
	DataChunk chunk;
	chunk.Initialize(context, copied.types);
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
		consume(chunk);
	}
}

//! Whether values of `type` are their bytes, and are hashed here.
bool Hashed(const LogicalType &type) {
	switch (type.InternalType()) {
	case PhysicalType::BOOL:
	case PhysicalType::UINT8:
	case PhysicalType::INT8:
	case PhysicalType::UINT16:
	case PhysicalType::INT16:
	case PhysicalType::UINT32:
	case PhysicalType::INT32:
	case PhysicalType::UINT64:
	case PhysicalType::INT64:
	case PhysicalType::UINT128:
	case PhysicalType::INT128:
	case PhysicalType::FLOAT:
	case PhysicalType::DOUBLE:
	case PhysicalType::INTERVAL:
	case PhysicalType::VARCHAR:
		return true;
	default:
		return false;
	}
}

//! splitmix64's finalizer: a bijection that mixes every bit into every other.
uint64_t Mix(uint64_t x) {
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

//! Adds the rows of `chunk` (of Hashed types) to `print`.
void AddRows(DataChunk &chunk, Fingerprint &print) {
	auto count = chunk.size();
	vector<hash_t> rows(count, UINT64_C(0x6f70656e6475636b));
	for (auto &column : chunk.data) {
		UnifiedVectorFormat format;
		column.ToUnifiedFormat(count, format);
		auto physical = column.GetType().InternalType();
		auto width = physical == PhysicalType::VARCHAR ? 0 : GetTypeIdSize(physical);
		for (idx_t i = 0; i < count; i++) {
			auto index = format.sel->get_index(i);
			hash_t value;
			if (!format.validity.RowIsValid(index)) {
				value = UINT64_C(0x9e3779b97f4a7c15);
			} else if (width == 0) {
				auto &text = UnifiedVectorFormat::GetData<string_t>(format)[index];
				value = Hash(text.GetData(), text.GetSize());
				print.bytes += text.GetSize();
			} else {
				value = Hash(const_char_ptr_cast(format.data + index * width), width);
			}
			// Mixed after each column: no two columns' values cancel or trade places.
			rows[i] = Mix(rows[i] ^ value);
		}
		print.bytes += width * count;
	}
	for (auto row : rows) {
		print.sum += row;
		print.mixed += Mix(row + UINT64_C(0x9e3779b97f4a7c15));
	}
	print.rows += count;
}

} // namespace

bool HasFingerprint(const Upload &upload) {
	auto copied = CopiedColumns(upload);
	return std::all_of(copied.types.begin(), copied.types.end(), Hashed);
}

Fingerprint CopyUp(ClientContext &context, const Client &session, const std::string &database, const Upload &upload) {
	auto copied = CopiedColumns(upload);
	std::string definition;
	for (idx_t i = 0; i < copied.names.size(); i++) {
		definition += (i ? ", " : "") + QuoteIdentifier(copied.names[i]) + " " + copied.types[i].ToString();
	}
	auto create = "CREATE TEMPORARY TABLE " + QuoteIdentifier(upload.name) + " (" + definition + ")";
	Check(od_execute(session.Get(), create.c_str(), &context.interrupted));

	auto hashed = std::all_of(copied.types.begin(), copied.types.end(), Hashed);
	Fingerprint print;
	Ingest ingest(context, session, RemoteTable {database, "main", upload.name}, true, copied.names, copied.types);
	ReadRows(context, upload, copied, [&](DataChunk &chunk) {
		if (hashed) {
			AddRows(chunk, print);
		}
		ingest.Push(chunk);
	});
	ingest.Finish();
	return print;
}

Fingerprint FingerprintOf(ClientContext &context, const Upload &upload) {
	auto copied = CopiedColumns(upload);
	Fingerprint print;
	ReadRows(context, upload, copied, [&](DataChunk &chunk) { AddRows(chunk, print); });
	return print;
}

} // namespace openduck
