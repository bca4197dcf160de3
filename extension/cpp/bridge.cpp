#include "bridge.hpp"

#include "pushdown.hpp"
#include "scan.hpp"
#include "write.hpp"

#include "duckdb/catalog/catalog_entry/duck_table_entry.hpp"
#include "duckdb/common/types/hash.hpp"
#include "duckdb/common/vector_operations/vector_operations.hpp"
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

//! Whether values of `type` are hashed here by their bytes, a 64-bit word at a time, not
//! with DuckDB's hash: that one is of floating point numbers' and intervals' values (equal
//! values of other bytes hash alike: 0.0 and -0.0, one month and 30 days), and XORs the
//! halves of 128-bit integers (0 and -1 hash alike, as do halves swapped).
bool HashedByBytes(PhysicalType type) {
	switch (type) {
	case PhysicalType::FLOAT:
	case PhysicalType::DOUBLE:
	case PhysicalType::INTERVAL:
	case PhysicalType::INT128:
	case PhysicalType::UINT128:
		return true;
	default:
		return false;
	}
}

//! Adds the rows of `chunk` (of Hashed types) to `print`: each row's hash combines its
//! columns' in order (DuckDB's vectorized hash, or see HashedByBytes), and the rows'
//! hashes are summed.
void AddRows(DataChunk &chunk, Fingerprint &print) {
	constexpr uint64_t NULL_WORD = UINT64_C(0x9e3779b97f4a7c15);
	auto count = chunk.size();
	Vector hashes(LogicalType::HASH, count);
	for (idx_t c = 0; c < chunk.ColumnCount(); c++) {
		auto &column = chunk.data[c];
		auto physical = column.GetType().InternalType();
		if (!HashedByBytes(physical)) {
			if (c == 0) {
				VectorOperations::Hash(column, hashes, count);
			} else {
				VectorOperations::CombineHash(hashes, column, count);
			}
		}
		UnifiedVectorFormat format;
		column.ToUnifiedFormat(count, format);
		if (physical == PhysicalType::VARCHAR) {
			auto texts = UnifiedVectorFormat::GetData<string_t>(format);
			for (idx_t i = 0; i < count; i++) {
				auto index = format.sel->get_index(i);
				if (format.validity.RowIsValid(index)) {
					print.bytes += texts[index].GetSize();
				}
			}
			continue;
		}
		auto width = GetTypeIdSize(physical);
		print.bytes += width * count;
		if (!HashedByBytes(physical)) {
			continue;
		}
		if (c == 0) {
			hashes.SetVectorType(VectorType::CONSTANT_VECTOR);
			ConstantVector::GetData<hash_t>(hashes)[0] = NULL_WORD;
		}
		hashes.Flatten(count);
		auto rows = FlatVector::GetData<hash_t>(hashes);
		for (idx_t i = 0; i < count; i++) {
			auto index = format.sel->get_index(i);
			if (!format.validity.RowIsValid(index)) {
				rows[i] = Mix(rows[i] ^ NULL_WORD);
				continue;
			}
			auto value = format.data + index * width;
			for (idx_t offset = 0; offset < width; offset += sizeof(uint64_t)) {
				uint64_t word = 0;
				memcpy(&word, value + offset, MinValue<idx_t>(sizeof(uint64_t), width - offset));
				rows[i] = Mix(rows[i] ^ word);
			}
		}
	}
	hashes.Flatten(count);
	auto rows = FlatVector::GetData<hash_t>(hashes);
	for (idx_t i = 0; i < count; i++) {
		print.sum += rows[i];
		print.mixed += Mix(rows[i] + NULL_WORD);
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
