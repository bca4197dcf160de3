#include "catalog.hpp"

#include <algorithm>

#include "scan.hpp"
#include "modify.hpp"
#include "write.hpp"

#include "duckdb/common/arrow/arrow_wrapper.hpp"
#include "duckdb/function/table/arrow.hpp"
#include "duckdb/parser/constraints/not_null_constraint.hpp"
#include "duckdb/parser/constraints/unique_constraint.hpp"
#include "duckdb/planner/operator/logical_merge_into.hpp"
#include "duckdb/parser/parsed_data/create_schema_info.hpp"
#include "duckdb/parser/parsed_data/create_table_info.hpp"
#include "duckdb/parser/parsed_data/create_view_info.hpp"
#include "duckdb/parser/parsed_data/drop_info.hpp"
#include "duckdb/execution/physical_plan_generator.hpp"
#include "duckdb/planner/operator/logical_create_table.hpp"
#include "duckdb/planner/operator/logical_delete.hpp"
#include "duckdb/planner/operator/logical_insert.hpp"
#include "duckdb/planner/operator/logical_update.hpp"
#include "duckdb/planner/parsed_data/bound_create_table_info.hpp"
#include "duckdb/storage/database_size.hpp"
#include "duckdb/storage/table_storage_info.hpp"

namespace openduck {

using namespace duckdb;

namespace {

const char *const READ_ONLY_YET = "openduck: this statement is not supported through an attachment yet; "
                                  "run it on the service with openduck_query('%s', '...')";

//! Arrow's flag for a nullable field (ARROW_FLAG_NULLABLE in the C data interface).
constexpr int64_t ARROW_NULLABLE = 2;

[[noreturn]] void NotYet(const std::string &catalog) {
	throw NotImplementedException(READ_ONLY_YET, catalog);
}

} // namespace

//===--------------------------------------------------------------------===//
// Tables
//===--------------------------------------------------------------------===//

OpenduckTable::OpenduckTable(Catalog &catalog, SchemaCatalogEntry &schema, CreateTableInfo &info,
                             shared_ptr<OdCatalog> listing, size_t index, optional_idx rows, bool view)
    : TableCatalogEntry(catalog, schema, info), listing(std::move(listing)), index(index), rows(rows), view(view) {
}

unique_ptr<BaseStatistics> OpenduckTable::GetStatistics(ClientContext &context, column_t column_id) {
	return nullptr;
}

unique_ptr<OpenduckTable> OpenduckTable::CopyInto(SchemaCatalogEntry &schema) {
	auto info = GetInfo();
	auto copy = make_uniq<OpenduckTable>(catalog, schema, info->Cast<CreateTableInfo>(), listing, index, rows, view);
	copy->retyped = retyped;
	return copy;
}

TableFunction OpenduckTable::GetScanFunction(ClientContext &context, unique_ptr<FunctionData> &bind_data) {
	auto &attached = catalog.Cast<OpenduckCatalog>();
	auto through = attached.ClientFor(context, false);
	RemoteTable table {attached.RemoteName(), schema.name, name};
	ArrowSchemaWrapper arrow;
	if (listing) {
		Check(od_catalog_table_arrow(listing.get(), index, &arrow.arrow_schema));
	} else {
		// Made by this transaction: the service says how its rows come, in the transaction.
		auto empty = through->Query("SELECT * FROM " + table.ToSQL() + " LIMIT 0", context);
		auto &stream = empty->arrow_array_stream;
		if (stream.get_schema(&stream, &arrow.arrow_schema) != 0) {
			throw IOException("openduck: the service sent no schema for %s", table.ToSQL());
		}
	}
	bind_data = BindTableScan(context, *this, through, std::move(table), arrow, rows);
	return TableScanFunction();
}

void OpenduckTable::BindUpdateConstraints(Binder &, LogicalGet &, LogicalProjection &, LogicalUpdate &update,
                                          ClientContext &) {
	// An UPDATE runs on the service as written (modify.cpp): the plan DuckDB makes here
	// never runs, so it needs no extra columns, nor a delete and insert for key columns.
	update.update_is_del_and_insert = false;
}

TableStorageInfo OpenduckTable::GetStorageInfo(ClientContext &context) {
	TableStorageInfo info;
	info.cardinality = rows;
	// Its primary key as a unique index: what DuckDB binds INSERT ... ON CONFLICT against
	// (the service holds the index itself, and checks conflicts there).
	for (auto &constraint : GetConstraints()) {
		if (constraint->type != ConstraintType::UNIQUE) {
			continue;
		}
		auto &unique = constraint->Cast<UniqueConstraint>();
		IndexInfo index;
		index.is_unique = true;
		index.is_primary = unique.IsPrimaryKey();
		index.is_foreign = false;
		for (auto &name : unique.GetColumnNames()) {
			index.column_set.insert(GetColumn(name).Physical().index);
		}
		info.index_info.push_back(std::move(index));
	}
	return info;
}

//===--------------------------------------------------------------------===//
// Schemas
//===--------------------------------------------------------------------===//

OpenduckSchema::OpenduckSchema(Catalog &catalog, CreateSchemaInfo &info) : SchemaCatalogEntry(catalog, info) {
}

unique_ptr<OpenduckTable> OpenduckSchema::AddTable(unique_ptr<OpenduckTable> table) {
	auto name = table->name;
	auto replaced = RemoveTable(name);
	tables[name] = std::move(table);
	return replaced;
}

unique_ptr<OpenduckTable> OpenduckSchema::RemoveTable(const std::string &name) {
	auto entry = tables.find(name);
	if (entry == tables.end()) {
		return nullptr;
	}
	auto removed = std::move(entry->second);
	tables.erase(entry);
	return removed;
}

unique_ptr<OpenduckSchema> OpenduckSchema::Copy() {
	CreateSchemaInfo info;
	info.schema = name;
	auto copy = make_uniq<OpenduckSchema>(catalog, info);
	for (auto &table : tables) {
		copy->AddTable(table.second->CopyInto(*copy));
	}
	return copy;
}

void OpenduckSchema::Scan(ClientContext &context, CatalogType type, const std::function<void(CatalogEntry &)> &callback) {
	Scan(type, callback);
}

void OpenduckSchema::Scan(CatalogType type, const std::function<void(CatalogEntry &)> &callback) {
	if (type != CatalogType::TABLE_ENTRY) {
		return;
	}
	for (auto &entry : tables) {
		callback(*entry.second);
	}
}

optional_ptr<CatalogEntry> OpenduckSchema::LookupEntry(CatalogTransaction transaction,
                                                       const EntryLookupInfo &lookup_info) {
	auto type = lookup_info.GetCatalogType();
	if (type != CatalogType::TABLE_ENTRY && type != CatalogType::VIEW_ENTRY) {
		return nullptr;
	}
	auto entry = tables.find(lookup_info.GetEntryName());
	if (entry == tables.end() || (type == CatalogType::VIEW_ENTRY && !entry->second->IsView())) {
		return nullptr;
	}
	return entry->second.get();
}

optional_ptr<CatalogEntry> OpenduckSchema::CreateIndex(CatalogTransaction, CreateIndexInfo &, TableCatalogEntry &) {
	NotYet(catalog.GetName());
}
optional_ptr<CatalogEntry> OpenduckSchema::CreateFunction(CatalogTransaction, CreateFunctionInfo &) {
	NotYet(catalog.GetName());
}
optional_ptr<CatalogEntry> OpenduckSchema::CreateTable(CatalogTransaction transaction, BoundCreateTableInfo &info) {
	return catalog.Cast<OpenduckCatalog>().MakeTable(transaction.GetContext(), name, info.Base());
}

optional_ptr<CatalogEntry> OpenduckCatalog::MakeTable(ClientContext &context, const std::string &schema_name,
                                                      const CreateTableInfo &base) {
	auto create = base.Copy();
	create->catalog = RemoteName();
	create->schema = schema_name;
	create->Cast<CreateTableInfo>().query = nullptr; // CREATE TABLE AS: the rows come through an ingest
	Execute(context, create->ToString());
	optional_ptr<CatalogEntry> result;
	Overlay(context, [&](Listing &listing, vector<unique_ptr<CatalogEntry>> &retired) {
		auto schema = listing.find(schema_name);
		if (schema == listing.end()) {
			return; // dropped by the transaction: the service said so already
		}
		auto &into = *schema->second;
		auto existing =
		    into.LookupEntry(CatalogTransaction(*this, context), EntryLookupInfo(CatalogType::TABLE_ENTRY, base.table));
		if (existing && base.on_conflict == OnCreateConflict::IGNORE_ON_CONFLICT) {
			result = existing;
			return;
		}
		auto columns = base.Copy(); // the entry takes its columns over
		auto &table = columns->Cast<CreateTableInfo>();
		table.query = nullptr;
		auto made = make_uniq<OpenduckTable>(*this, into, table, nullptr, 0, optional_idx(), false);
		result = made.get();
		if (auto replaced = into.AddTable(std::move(made))) {
			retired.push_back(std::move(replaced));
		}
	});
	return result;
}

optional_ptr<CatalogEntry> OpenduckSchema::CreateView(CatalogTransaction transaction, CreateViewInfo &info) {
	auto &attached = catalog.Cast<OpenduckCatalog>();
	auto &context = transaction.GetContext();
	attached.Execute(context, ViewSQL(context, attached, name, info));
	// The view's columns as DuckDB bound them here: what the service binds them to.
	CreateTableInfo columns(*this, info.view_name);
	for (idx_t i = 0; i < info.types.size(); i++) {
		auto &column = i < info.aliases.size() ? info.aliases[i] : info.names[i];
		columns.columns.AddColumn(ColumnDefinition(column, info.types[i]));
	}
	optional_ptr<CatalogEntry> result;
	attached.Overlay(context, [&](Listing &listing, vector<unique_ptr<CatalogEntry>> &retired) {
		auto schema = listing.find(name);
		if (schema == listing.end()) {
			return;
		}
		auto made = make_uniq<OpenduckTable>(attached, *schema->second, columns, nullptr, 0, optional_idx(), true);
		result = made.get();
		if (auto replaced = schema->second->AddTable(std::move(made))) {
			retired.push_back(std::move(replaced));
		}
	});
	return result;
}
optional_ptr<CatalogEntry> OpenduckSchema::CreateSequence(CatalogTransaction, CreateSequenceInfo &) {
	NotYet(catalog.GetName());
}
optional_ptr<CatalogEntry> OpenduckSchema::CreateTableFunction(CatalogTransaction, CreateTableFunctionInfo &) {
	NotYet(catalog.GetName());
}
optional_ptr<CatalogEntry> OpenduckSchema::CreateCopyFunction(CatalogTransaction, CreateCopyFunctionInfo &) {
	NotYet(catalog.GetName());
}
optional_ptr<CatalogEntry> OpenduckSchema::CreatePragmaFunction(CatalogTransaction, CreatePragmaFunctionInfo &) {
	NotYet(catalog.GetName());
}
optional_ptr<CatalogEntry> OpenduckSchema::CreateCollation(CatalogTransaction, CreateCollationInfo &) {
	NotYet(catalog.GetName());
}
optional_ptr<CatalogEntry> OpenduckSchema::CreateType(CatalogTransaction, CreateTypeInfo &) {
	NotYet(catalog.GetName());
}
void OpenduckSchema::DropEntry(ClientContext &context, DropInfo &info) {
	if (info.type != CatalogType::TABLE_ENTRY && info.type != CatalogType::VIEW_ENTRY) {
		throw NotImplementedException("openduck: DROP %s through an attachment is not supported yet",
		                              ParseInfo::TypeToString(info.type));
	}
	auto &attached = catalog.Cast<OpenduckCatalog>();
	auto drop = info.Copy();
	drop->catalog = attached.RemoteName();
	drop->schema = name;
	attached.Execute(context, drop->ToString());
	attached.Overlay(context, [&](Listing &listing, vector<unique_ptr<CatalogEntry>> &retired) {
		auto schema = listing.find(name);
		if (schema == listing.end()) {
			return;
		}
		if (auto dropped = schema->second->RemoveTable(info.name)) {
			retired.push_back(std::move(dropped));
		}
	});
}
void OpenduckSchema::Alter(CatalogTransaction, AlterInfo &) {
	NotYet(catalog.GetName());
}

//===--------------------------------------------------------------------===//
// The catalog
//===--------------------------------------------------------------------===//

OpenduckCatalog::OpenduckCatalog(AttachedDatabase &db, shared_ptr<Client> client, AccessMode access_mode)
    : Catalog(db), client(std::move(client)), remote_name(this->client->Database()), access_mode(access_mode),
      copies(make_shared_ptr<KeptCopies>(this->client)) {
}

void OpenduckCatalog::Initialize(bool load_builtin) {
}

namespace {

//! The strings of column `index` of an Arrow array of rows (utf8 or large utf8).
vector<std::string> Strings(const ArrowSchema &schema, const ArrowArray &rows, idx_t index) {
	if (rows.n_children <= static_cast<int64_t>(index) || schema.n_children <= static_cast<int64_t>(index)) {
		throw IOException("openduck: the service listed column types in an unexpected form");
	}
	auto &column = *rows.children[index];
	std::string format = schema.children[index]->format;
	if ((format != "u" && format != "U") || column.null_count != 0) {
		throw IOException("openduck: the service listed column types in an unexpected form");
	}
	vector<std::string> strings;
	auto data = static_cast<const char *>(column.buffers[2]);
	for (int64_t row = column.offset; row < column.offset + column.length; row++) {
		int64_t start, end;
		if (format == "u") {
			start = static_cast<const int32_t *>(column.buffers[1])[row];
			end = static_cast<const int32_t *>(column.buffers[1])[row + 1];
		} else {
			start = static_cast<const int64_t *>(column.buffers[1])[row];
			end = static_cast<const int64_t *>(column.buffers[1])[row + 1];
		}
		strings.emplace_back(data + start, NumericCast<size_t>(end - start));
	}
	return strings;
}

//! A column as the service describes it in `types` (null if unknown).
const ServiceColumn *Lookup(const NativeTypes &types, const std::string &schema, const std::string &table,
                            const std::string &column) {
	auto found = types.find(schema + std::string(1, '\0') + table + std::string(1, '\0') + column);
	return found == types.end() ? nullptr : &found->second;
}

//! `ENUM('a', 'b')` (as duckdb_columns() names an ENUM, with quotes doubled) as that
//! type; VARCHAR when the text has another form.
LogicalType EnumType(const std::string &native) {
	vector<std::string> members;
	idx_t at = 5; // after "ENUM("
	while (at < native.size() && native[at] == '\'') {
		std::string member;
		for (at++; at < native.size(); at++) {
			if (native[at] == '\'' && (at + 1 >= native.size() || native[at + 1] != '\'')) {
				break;
			}
			member += native[at];
			at += native[at] == '\'';
		}
		members.push_back(std::move(member));
		at++; // the closing quote
		if (at < native.size() && native[at] == ')' && at + 1 == native.size()) {
			Vector values(LogicalType::VARCHAR, members.size());
			for (idx_t i = 0; i < members.size(); i++) {
				FlatVector::GetData<string_t>(values)[i] = StringVector::AddString(values, members[i]);
			}
			return LogicalType::ENUM(values, members.size());
		}
		if (native.compare(at, 2, ", ") != 0) {
			break;
		}
		at += 2;
	}
	return LogicalType::VARCHAR;
}

//! The exact type of a column whose rows the service's Arrow carries as `arrives` (the
//! mapping every Flight SQL client sees: UUID and ENUM as VARCHAR, HUGEINT and UHUGEINT
//! as DECIMAL(38,0)), from its type as the service names it; scans cast back. Inside
//! lists, arrays, structs and maps too: DuckDB parses the service's name of such a type.
LogicalType ExactType(ClientContext &context, const LogicalType &arrives, const std::string &native) {
	if (arrives.IsNested()) {
		try {
			auto named = TransformStringToLogicalType(native, context);
			return Carries(arrives, named) ? named : arrives;
		} catch (std::exception &) {
			return arrives; // a name this DuckDB does not parse: the wire's type
		}
	}
	if (arrives == LogicalType::DECIMAL(38, 0)) {
		if (native == "HUGEINT") {
			return LogicalType::HUGEINT;
		}
		if (native == "UHUGEINT") {
			return LogicalType::UHUGEINT;
		}
	} else if (arrives.id() == LogicalTypeId::VARCHAR) {
		if (native == "UUID") {
			return LogicalType::UUID;
		}
		if (StringUtil::StartsWith(native, "ENUM(")) {
			return EnumType(native);
		}
	}
	return arrives;
}

} // namespace

bool Carries(const LogicalType &arrived, const LogicalType &expected) {
	if (arrived == expected) {
		return true;
	}
	switch (expected.id()) {
	case LogicalTypeId::HUGEINT:
	case LogicalTypeId::UHUGEINT:
		return arrived == LogicalType::DECIMAL(38, 0);
	case LogicalTypeId::UUID:
	case LogicalTypeId::ENUM:
		return arrived.id() == LogicalTypeId::VARCHAR;
	case LogicalTypeId::LIST:
		return arrived.id() == LogicalTypeId::LIST &&
		       Carries(ListType::GetChildType(arrived), ListType::GetChildType(expected));
	case LogicalTypeId::ARRAY:
		return arrived.id() == LogicalTypeId::ARRAY && ArrayType::GetSize(arrived) == ArrayType::GetSize(expected) &&
		       Carries(ArrayType::GetChildType(arrived), ArrayType::GetChildType(expected));
	case LogicalTypeId::MAP:
		return arrived.id() == LogicalTypeId::MAP && Carries(MapType::KeyType(arrived), MapType::KeyType(expected)) &&
		       Carries(MapType::ValueType(arrived), MapType::ValueType(expected));
	case LogicalTypeId::STRUCT: {
		if (arrived.id() != LogicalTypeId::STRUCT) {
			return false;
		}
		auto &have = StructType::GetChildTypes(arrived);
		auto &want = StructType::GetChildTypes(expected);
		if (have.size() != want.size()) {
			return false;
		}
		for (idx_t i = 0; i < have.size(); i++) {
			if (!StringUtil::CIEquals(have[i].first, want[i].first) || !Carries(have[i].second, want[i].second)) {
				return false;
			}
		}
		return true;
	}
	default:
		return false;
	}
}

Listing OpenduckCatalog::List(ClientContext &context) {
	OdCatalog *raw = nullptr;
	Check(od_catalog_load(client->Get(), remote_name.c_str(), &raw));
	shared_ptr<OdCatalog> listed(raw, od_catalog_free);

	Listing listing;
	auto schema_named = [&](const std::string &name) -> OpenduckSchema & {
		auto entry = listing.find(name);
		if (entry == listing.end()) {
			CreateSchemaInfo info;
			info.schema = name;
			auto schema = make_uniq<OpenduckSchema>(*this, info);
			entry = listing.emplace(name, std::move(schema)).first;
		}
		return *entry->second;
	};
	for (size_t i = 0; i < od_catalog_schema_count(raw); i++) {
		schema_named(od_catalog_schema(raw, i));
	}
	// The columns' own types (Arrow carries some as others) and primary keys: without
	// them, the wire's types and no keys.
	shared_ptr<const NativeTypes> native;
	try {
		native = ListNativeTypes(context);
	} catch (std::exception &) {
		native = make_shared_ptr<NativeTypes>();
	}
	for (size_t i = 0; i < od_catalog_table_count(raw); i++) {
		const char *schema_name, *table_name, *kind;
		int64_t rows;
		od_catalog_table(raw, i, &schema_name, &table_name, &kind, &rows);
		auto &schema = schema_named(schema_name);

		ArrowSchemaWrapper arrow;
		Check(od_catalog_table_arrow(raw, i, &arrow.arrow_schema));
		ArrowTableSchema columns;
		if (arrow.arrow_schema.n_children == 0) {
			continue; // a view that no longer binds on the service
		}
		ArrowTableFunction::PopulateArrowTableSchema(context, columns, arrow.arrow_schema);

		CreateTableInfo info(schema, table_name);
		auto &names = columns.GetNames();
		auto &types = columns.GetTypes();
		vector<std::pair<idx_t, std::string>> key;
		vector<bool> retyped(names.size(), false);
		bool described_all = true;
		for (idx_t c = 0; c < names.size(); c++) {
			auto type = types[c];
			auto described = Lookup(*native, schema_name, table_name, names[c]);
			described_all = described_all && described;
			if (described) {
				type = ExactType(context, type, described->type);
				retyped[c] = described->type != type.ToString();
				if (described->key) {
					key.emplace_back(described->key, names[c]);
				}
			}
			info.columns.AddColumn(ColumnDefinition(names[c], type));
			if (!(arrow.arrow_schema.children[c]->flags & ARROW_NULLABLE)) {
				info.constraints.push_back(make_uniq<NotNullConstraint>(LogicalIndex(c)));
			}
		}
		if (!key.empty()) {
			std::sort(key.begin(), key.end());
			vector<std::string> columns;
			for (auto &part : key) {
				columns.push_back(part.second);
			}
			info.constraints.push_back(make_uniq<UniqueConstraint>(std::move(columns), true));
		}
		auto estimate = rows >= 0 ? optional_idx(NumericCast<idx_t>(rows)) : optional_idx();
		auto view = std::string(kind) == "VIEW";
		auto table = make_uniq<OpenduckTable>(*this, schema, info, listed, i, estimate, view);
		if (described_all) {
			table->SetRetyped(std::move(retyped));
		}
		schema.AddTable(std::move(table));
	}
	return listing;
}

optional_ptr<OpenduckTransaction> OpenduckCatalog::TransactionOf(ClientContext &context) {
	if (!context.transaction.HasActiveTransaction()) {
		return nullptr;
	}
	return &Transaction::Get(context, *this).Cast<OpenduckTransaction>();
}

Listing &OpenduckCatalog::ListingFor(ClientContext &context) {
	auto transaction = TransactionOf(context);
	if (transaction) {
		std::lock_guard<std::mutex> guard(transaction->lock);
		if (transaction->overlay) {
			return *transaction->overlay;
		}
		if (transaction->pinned) {
			return *transaction->pinned;
		}
	}
	shared_ptr<Listing> current;
	{
		std::lock_guard<std::mutex> guard(lock);
		if (!schemas) {
			schemas = make_shared_ptr<Listing>(List(context));
		}
		current = schemas;
		used_outside = used_outside || !transaction;
	}
	if (!transaction) {
		return *current; // kept by `retired` after a refresh
	}
	std::lock_guard<std::mutex> guard(transaction->lock);
	if (!transaction->pinned) {
		transaction->pinned = std::move(current);
	}
	return *transaction->pinned;
}

void OpenduckCatalog::Overlay(ClientContext &context,
                              const std::function<void(Listing &, vector<unique_ptr<CatalogEntry>> &)> &change) {
	auto transaction = TransactionOf(context);
	if (!transaction) {
		Refresh();
		return;
	}
	if (!transaction->overlay) {
		auto &listed = ListingFor(context);
		auto copy = make_uniq<Listing>();
		for (auto &schema : listed) {
			copy->emplace(schema.first, schema.second->Copy());
		}
		std::lock_guard<std::mutex> guard(transaction->lock);
		transaction->overlay = std::move(copy);
	}
	std::lock_guard<std::mutex> guard(transaction->lock);
	change(*transaction->overlay, transaction->retired);
}

void OpenduckCatalog::Refresh() {
	std::lock_guard<std::mutex> guard(lock);
	if (schemas && used_outside) {
		retired.push_back(std::move(schemas));
	}
	schemas = nullptr;
	used_outside = false;
}


shared_ptr<const NativeTypes> OpenduckCatalog::ListNativeTypes(ClientContext &context) {
	auto listed = make_shared_ptr<NativeTypes>();
	// A collation is in no type name: a column of a table declared with one, or of a
	// service with a default collation, is listed as another type than any here.
	auto database = Value(remote_name).ToSQLString();
	auto stream = client->Query(
	    "SELECT c.schema_name || chr(0) || c.table_name || chr(0) || c.column_name, c.data_type || CASE WHEN "
	    "c.data_type = 'VARCHAR' AND (regexp_matches(t.sql, '\\bCOLLATE\\b', 'i') OR "
	    "current_setting('default_collation') <> '') THEN ' (collated)' ELSE '' END, "
	    "coalesce(list_position(list_transform(k.constraint_column_names, n -> lower(n)), lower(c.column_name)), "
	    "0)::VARCHAR "
	    "FROM duckdb_columns() c "
	    "LEFT JOIN (SELECT schema_name, table_name, sql FROM duckdb_tables() WHERE database_name = " +
	        database +
	        ") t USING (schema_name, table_name) "
	        "LEFT JOIN (SELECT schema_name, table_name, constraint_column_names FROM duckdb_constraints() "
	        "WHERE constraint_type = 'PRIMARY KEY' AND database_name = " +
	        database +
	        ") k USING (schema_name, table_name) WHERE c.database_name = " + database +
	        // (A view that no longer binds lists one row of NULLs.)
	        " AND c.column_name IS NOT NULL AND c.data_type IS NOT NULL",
	    context);
	ArrowSchemaWrapper arrow;
	stream->GetSchema(arrow);
	while (true) {
		auto chunk = stream->GetNextChunk();
		if (!chunk->arrow_array.release) {
			break;
		}
		if (chunk->arrow_array.length == 0) {
			continue;
		}
		auto keys = Strings(arrow.arrow_schema, chunk->arrow_array, 0);
		auto types = Strings(arrow.arrow_schema, chunk->arrow_array, 1);
		auto positions = Strings(arrow.arrow_schema, chunk->arrow_array, 2);
		for (idx_t i = 0; i < keys.size(); i++) {
			(*listed)[keys[i]] = ServiceColumn {types[i], std::stoull(positions[i])};
		}
	}
	return listed;
}


bool OpenduckCatalog::MayCopyUp() {
	if (may_copy_up >= 0) {
		return may_copy_up == 1;
	}
	// Made and rolled back in a transaction of its own: nothing stays. Only the service's
	// answer is kept; a failure to ask (the network) is asked again next time.
	try {
		auto session = client->Begin();
		auto error = od_execute(session->Get(), "CREATE TEMPORARY TABLE openduck_probe (x INTEGER)", nullptr);
		auto refused = error && (error->code == OD_PERMISSION_DENIED || error->code == OD_UNAUTHENTICATED);
		auto failed = error != nullptr;
		od_error_free(error);
		od_error_free(session->End(false));
		if (refused) {
			may_copy_up = 0;
		} else if (!failed) {
			may_copy_up = 1;
		}
		return !failed;
	} catch (std::exception &) {
		return false;
	}
}

optional_ptr<OpenduckCatalog> OpenduckCatalog::Sibling(ClientContext &context, Catalog &other) {
	if (&other == this) {
		return this;
	}
	if (other.GetCatalogType() != "openduck") {
		return nullptr;
	}
	auto &sibling = other.Cast<OpenduckCatalog>();
	if (!client->SameService(*sibling.client) || ClientFor(context, false) != client ||
	    sibling.ClientFor(context, false) != sibling.client) {
		return nullptr;
	}
	return &sibling;
}

shared_ptr<Client> OpenduckCatalog::ClientFor(ClientContext &context, bool write) {
	auto transaction = TransactionOf(context);
	if (!transaction) {
		return client;
	}
	std::lock_guard<std::mutex> guard(transaction->lock);
	if (write) {
		if (!transaction->remote) {
			transaction->remote = client->Begin();
		}
		transaction->wrote = true;
	}
	return transaction->remote ? transaction->remote : client;
}

optional_ptr<CatalogEntry> OpenduckCatalog::CreateSchema(CatalogTransaction transaction, CreateSchemaInfo &info) {
	auto create = info.Copy();
	create->catalog = remote_name;
	auto &context = transaction.GetContext();
	Execute(context, create->ToString());
	optional_ptr<CatalogEntry> result;
	Overlay(context, [&](Listing &listing, vector<unique_ptr<CatalogEntry>> &) {
		auto entry = listing.find(info.schema);
		if (entry == listing.end()) {
			CreateSchemaInfo made;
			made.schema = info.schema;
			entry = listing.emplace(info.schema, make_uniq<OpenduckSchema>(*this, made)).first;
		}
		result = entry->second.get();
	});
	return result;
}

void OpenduckCatalog::Execute(ClientContext &context, const std::string &sql) {
	auto through = ClientFor(context, true);
	Check(od_execute(through->Get(), sql.c_str(), &context.interrupted));
}

optional_ptr<SchemaCatalogEntry> OpenduckCatalog::LookupSchema(CatalogTransaction transaction,
                                                               const EntryLookupInfo &schema_lookup,
                                                               OnEntryNotFound if_not_found) {
	if (transaction.context) {
		auto &listing = ListingFor(*transaction.context);
		auto entry = listing.find(schema_lookup.GetEntryName());
		if (entry != listing.end()) {
			return entry->second.get();
		}
	} else {
		// No client context to list with: what the attachment has listed already.
		std::lock_guard<std::mutex> guard(lock);
		if (schemas) {
			auto entry = schemas->find(schema_lookup.GetEntryName());
			if (entry != schemas->end()) {
				used_outside = true;
				return entry->second.get();
			}
		}
	}
	if (if_not_found == OnEntryNotFound::THROW_EXCEPTION) {
		throw CatalogException("openduck: schema \"%s\" does not exist in \"%s\" on %s", schema_lookup.GetEntryName(),
		                       remote_name, client->Endpoint());
	}
	return nullptr;
}

void OpenduckCatalog::ScanSchemas(ClientContext &context, std::function<void(SchemaCatalogEntry &)> callback) {
	for (auto &entry : ListingFor(context)) {
		callback(*entry.second);
	}
}

void OpenduckCatalog::DropSchema(ClientContext &context, DropInfo &info) {
	auto drop = info.Copy();
	drop->catalog = remote_name;
	Execute(context, drop->ToString());
	Overlay(context, [&](Listing &listing, vector<unique_ptr<CatalogEntry>> &retired) {
		auto entry = listing.find(info.name);
		if (entry != listing.end()) {
			retired.push_back(std::move(entry->second));
			listing.erase(entry);
		}
	});
}

PhysicalOperator &OpenduckCatalog::PlanCreateTableAs(ClientContext &context, PhysicalPlanGenerator &planner,
                                                     LogicalCreateTable &op, PhysicalOperator &plan) {
	auto &base = op.info->Base();
	auto &insert = planner.Make<OpenduckInsert>(*this, RemoteTable {remote_name, op.schema.name, base.table},
	                                            unique_ptr_cast<CreateInfo, CreateTableInfo>(base.Copy()),
	                                            base.columns.GetColumnNames(), base.columns.GetColumnTypes(),
	                                            op.estimated_cardinality);
	insert.children.push_back(plan);
	return insert;
}

PhysicalOperator &OpenduckCatalog::PlanInsert(ClientContext &context, PhysicalPlanGenerator &planner,
                                              LogicalInsert &op, optional_ptr<PhysicalOperator> plan) {
	if (op.return_chunk) {
		// Shipped as SQL, as an UPDATE is: the rows come back with the service's defaults.
		return OpenduckStatement::Plan(context, planner, *this, op, op.table);
	}
	if (op.on_conflict_info.action_type != OnConflictAction::THROW) {
		throw NotImplementedException("openduck: INSERT ... ON CONFLICT into an attached openduck table is not "
		                              "supported yet");
	}
	auto &table = op.table;
	if (!plan || (!op.column_index_map.empty() && op.expected_types.empty())) {
		// INSERT ... DEFAULT VALUES (no column given): one row of the service's defaults,
		// made there (the defaults are not known here).
		auto target = RemoteTable {remote_name, table.schema.name, table.name};
		return planner.Make<OpenduckStatement>(*this, table, LogicalOperatorType::LOGICAL_INSERT, 1,
		                                       "INSERT INTO " + target.ToSQL() + " DEFAULT VALUES");
	}
	// The rows' columns, named: with a column list (INSERT INTO t (c, a)) the service fills
	// them by name and the columns left out take the service's defaults.
	auto names = table.GetColumns().GetColumnNames();
	auto types = table.GetColumns().GetColumnTypes();
	if (!op.column_index_map.empty()) {
		names.assign(op.expected_types.size(), std::string());
		types = op.expected_types;
		for (auto &column : table.GetColumns().Physical()) {
			auto position = op.column_index_map[column.Physical()];
			if (position != DConstants::INVALID_INDEX) {
				names[position] = column.Name();
			}
		}
	}
	auto &insert = planner.Make<OpenduckInsert>(*this, RemoteTable {remote_name, table.schema.name, table.name},
	                                            nullptr, std::move(names), std::move(types),
	                                            op.estimated_cardinality);
	insert.children.push_back(*plan);
	return insert;
}
PhysicalOperator &OpenduckCatalog::PlanDelete(ClientContext &context, PhysicalPlanGenerator &planner,
                                              LogicalDelete &op, PhysicalOperator &) {
	return OpenduckStatement::Plan(context, planner, *this, op, op.table);
}

PhysicalOperator &OpenduckCatalog::PlanUpdate(ClientContext &context, PhysicalPlanGenerator &planner,
                                              LogicalUpdate &op, PhysicalOperator &) {
	return OpenduckStatement::Plan(context, planner, *this, op, op.table);
}

PhysicalOperator &OpenduckCatalog::PlanMergeInto(ClientContext &context, PhysicalPlanGenerator &planner,
                                                 LogicalMergeInto &op, PhysicalOperator &) {
	return OpenduckStatement::Plan(context, planner, *this, op, op.table);
}

DatabaseSize OpenduckCatalog::GetDatabaseSize(ClientContext &) {
	return DatabaseSize();
}

std::string OpenduckCatalog::GetDBPath() {
	return client->Endpoint() + "/" + remote_name;
}

//===--------------------------------------------------------------------===//
// Transactions
//===--------------------------------------------------------------------===//

Transaction &OpenduckTransactionManager::StartTransaction(ClientContext &context) {
	auto transaction = make_uniq<OpenduckTransaction>(*this, context);
	auto &result = *transaction;
	std::lock_guard<std::mutex> guard(lock);
	transactions[result] = std::move(transaction);
	return result;
}

ErrorData OpenduckTransactionManager::CommitTransaction(ClientContext &, Transaction &transaction) {
	auto &ours = transaction.Cast<OpenduckTransaction>();
	ErrorData result;
	if (ours.remote) {
		if (auto error = ours.remote->End(true)) {
			try {
				Throw(error);
			} catch (std::exception &exception) {
				result = ErrorData(exception);
			}
		}
	}
	if (ours.wrote) {
		// New tables, and new row counts for the planner.
		db.GetCatalog().Cast<OpenduckCatalog>().Refresh();
	}
	std::lock_guard<std::mutex> guard(lock);
	transactions.erase(transaction);
	return result;
}

void OpenduckTransactionManager::RollbackTransaction(Transaction &transaction) {
	auto &ours = transaction.Cast<OpenduckTransaction>();
	if (ours.remote) {
		// The service rolls back on its own if this fails (its connection's session ends).
		od_error_free(ours.remote->End(false));
	}
	std::lock_guard<std::mutex> guard(lock);
	transactions.erase(transaction);
}

} // namespace openduck
