#include "catalog.hpp"

#include "scan.hpp"
#include "write.hpp"

#include "duckdb/common/arrow/arrow_wrapper.hpp"
#include "duckdb/function/table/arrow.hpp"
#include "duckdb/parser/constraints/not_null_constraint.hpp"
#include "duckdb/parser/parsed_data/create_schema_info.hpp"
#include "duckdb/parser/parsed_data/create_table_info.hpp"
#include "duckdb/parser/parsed_data/drop_info.hpp"
#include "duckdb/execution/physical_plan_generator.hpp"
#include "duckdb/planner/operator/logical_create_table.hpp"
#include "duckdb/planner/operator/logical_insert.hpp"
#include "duckdb/planner/parsed_data/bound_create_table_info.hpp"
#include "duckdb/storage/database_size.hpp"
#include "duckdb/storage/table_storage_info.hpp"

namespace openduck {

using namespace duckdb;

namespace {

const char *const READ_ONLY_YET = "openduck: writing through an attachment is not supported yet; "
                                  "run the statement on the service with openduck_query('%s', '...')";

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
                             shared_ptr<OdCatalog> listing, size_t index, optional_idx rows)
    : TableCatalogEntry(catalog, schema, info), listing(std::move(listing)), index(index), rows(rows) {
}

unique_ptr<BaseStatistics> OpenduckTable::GetStatistics(ClientContext &context, column_t column_id) {
	return nullptr;
}

TableFunction OpenduckTable::GetScanFunction(ClientContext &context, unique_ptr<FunctionData> &bind_data) {
	auto &attached = catalog.Cast<OpenduckCatalog>();
	ArrowSchemaWrapper arrow;
	Check(od_catalog_table_arrow(listing.get(), index, &arrow.arrow_schema));
	bind_data = BindTableScan(context, *this, attached.GetClient(), RemoteTable {attached.RemoteName(), schema.name, name},
	                          arrow, rows);
	return TableScanFunction();
}

TableStorageInfo OpenduckTable::GetStorageInfo(ClientContext &context) {
	TableStorageInfo info;
	info.cardinality = rows;
	return info;
}

//===--------------------------------------------------------------------===//
// Schemas
//===--------------------------------------------------------------------===//

OpenduckSchema::OpenduckSchema(Catalog &catalog, CreateSchemaInfo &info) : SchemaCatalogEntry(catalog, info) {
}

void OpenduckSchema::AddTable(unique_ptr<OpenduckTable> table) {
	auto name = table->name;
	tables[name] = std::move(table);
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
	if (lookup_info.GetCatalogType() != CatalogType::TABLE_ENTRY) {
		return nullptr;
	}
	auto entry = tables.find(lookup_info.GetEntryName());
	if (entry == tables.end()) {
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
	auto &attached = catalog.Cast<OpenduckCatalog>();
	auto &base = info.Base();
	auto create = base.Copy();
	create->catalog = attached.RemoteName();
	create->schema = name;
	attached.Execute(transaction.GetContext(), create->ToString());
	return attached.Relist(transaction.GetContext(), name, base.table);
}
optional_ptr<CatalogEntry> OpenduckSchema::CreateView(CatalogTransaction, CreateViewInfo &) {
	NotYet(catalog.GetName());
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
	if (info.type != CatalogType::TABLE_ENTRY) {
		throw NotImplementedException("openduck: DROP %s through an attachment is not supported yet",
		                              ParseInfo::TypeToString(info.type));
	}
	auto drop = info.Copy();
	drop->catalog = catalog.Cast<OpenduckCatalog>().RemoteName();
	drop->schema = name;
	catalog.Cast<OpenduckCatalog>().Execute(context, drop->ToString());
}
void OpenduckSchema::Alter(CatalogTransaction, AlterInfo &) {
	NotYet(catalog.GetName());
}

//===--------------------------------------------------------------------===//
// The catalog
//===--------------------------------------------------------------------===//

OpenduckCatalog::OpenduckCatalog(AttachedDatabase &db, shared_ptr<Client> client, AccessMode access_mode)
    : Catalog(db), client(std::move(client)), remote_name(this->client->Database()), access_mode(access_mode) {
}

void OpenduckCatalog::Initialize(bool load_builtin) {
}

void OpenduckCatalog::Load(ClientContext &context) {
	std::lock_guard<std::mutex> guard(lock);
	if (loaded) {
		return;
	}
	OdCatalog *raw = nullptr;
	Check(od_catalog_load(client->Get(), remote_name.c_str(), &raw));
	shared_ptr<OdCatalog> listing(raw, od_catalog_free);

	auto schema_named = [&](const std::string &name) -> OpenduckSchema & {
		auto entry = schemas.find(name);
		if (entry == schemas.end()) {
			CreateSchemaInfo info;
			info.schema = name;
			auto schema = make_uniq<OpenduckSchema>(*this, info);
			entry = schemas.emplace(name, std::move(schema)).first;
		}
		return *entry->second;
	};
	for (size_t i = 0; i < od_catalog_schema_count(raw); i++) {
		schema_named(od_catalog_schema(raw, i));
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
		for (idx_t c = 0; c < names.size(); c++) {
			info.columns.AddColumn(ColumnDefinition(names[c], types[c]));
			if (!(arrow.arrow_schema.children[c]->flags & ARROW_NULLABLE)) {
				info.constraints.push_back(make_uniq<NotNullConstraint>(LogicalIndex(c)));
			}
		}
		auto estimate = rows >= 0 ? optional_idx(NumericCast<idx_t>(rows)) : optional_idx();
		schema.AddTable(make_uniq<OpenduckTable>(*this, schema, info, listing, i, estimate));
	}
	loaded = true;
}

void OpenduckCatalog::Refresh() {
	std::lock_guard<std::mutex> guard(lock);
	if (loaded) {
		retired.push_back(std::move(schemas));
		schemas.clear();
		loaded = false;
	}
}

optional_ptr<CatalogEntry> OpenduckCatalog::CreateSchema(CatalogTransaction transaction, CreateSchemaInfo &info) {
	auto create = info.Copy();
	create->catalog = remote_name;
	Execute(transaction.GetContext(), create->ToString());
	Load(transaction.GetContext());
	auto entry = schemas.find(info.schema);
	return entry == schemas.end() ? nullptr : entry->second.get();
}

void OpenduckCatalog::Execute(ClientContext &context, const std::string &sql) {
	Check(od_execute(client->Get(), sql.c_str(), &context.interrupted));
	Refresh();
}

optional_ptr<CatalogEntry> OpenduckCatalog::Relist(ClientContext &context, const std::string &schema,
                                                   const std::string &name) {
	Load(context);
	auto entry = schemas.find(schema);
	if (entry == schemas.end()) {
		return nullptr;
	}
	CatalogTransaction transaction(*this, context);
	return entry->second->LookupEntry(transaction, EntryLookupInfo(CatalogType::TABLE_ENTRY, name));
}

optional_ptr<SchemaCatalogEntry> OpenduckCatalog::LookupSchema(CatalogTransaction transaction,
                                                               const EntryLookupInfo &schema_lookup,
                                                               OnEntryNotFound if_not_found) {
	if (transaction.context) {
		Load(*transaction.context);
	}
	auto entry = schemas.find(schema_lookup.GetEntryName());
	if (entry != schemas.end()) {
		return entry->second.get();
	}
	if (if_not_found == OnEntryNotFound::THROW_EXCEPTION) {
		throw CatalogException("openduck: schema \"%s\" does not exist in \"%s\" on %s", schema_lookup.GetEntryName(),
		                       remote_name, client->Endpoint());
	}
	return nullptr;
}

void OpenduckCatalog::ScanSchemas(ClientContext &context, std::function<void(SchemaCatalogEntry &)> callback) {
	Load(context);
	for (auto &entry : schemas) {
		callback(*entry.second);
	}
}

void OpenduckCatalog::DropSchema(ClientContext &context, DropInfo &info) {
	auto drop = info.Copy();
	drop->catalog = remote_name;
	Execute(context, drop->ToString());
}

PhysicalOperator &OpenduckCatalog::PlanCreateTableAs(ClientContext &context, PhysicalPlanGenerator &planner,
                                                     LogicalCreateTable &op, PhysicalOperator &plan) {
	auto &base = op.info->Base();
	auto create = base.Copy();
	auto &table = create->Cast<CreateTableInfo>();
	table.catalog = remote_name;
	table.schema = op.schema.name;
	table.query = nullptr; // the rows come through the ingest
	auto &insert = planner.Make<OpenduckInsert>(*this, RemoteTable {remote_name, op.schema.name, base.table},
	                                            table.ToString(), base.columns.GetColumnNames(),
	                                            base.columns.GetColumnTypes(), op.estimated_cardinality);
	insert.children.push_back(plan);
	return insert;
}

PhysicalOperator &OpenduckCatalog::PlanInsert(ClientContext &context, PhysicalPlanGenerator &planner,
                                              LogicalInsert &op, optional_ptr<PhysicalOperator> plan) {
	if (op.return_chunk) {
		throw NotImplementedException("openduck: INSERT ... RETURNING into an attached openduck table is not "
		                              "supported yet");
	}
	if (op.on_conflict_info.action_type != OnConflictAction::THROW) {
		throw NotImplementedException("openduck: INSERT ... ON CONFLICT into an attached openduck table is not "
		                              "supported yet");
	}
	for (idx_t i = 0; i < op.column_index_map.size(); i++) {
		if (op.column_index_map[PhysicalIndex(i)] != i) {
			throw NotImplementedException("openduck: an INSERT into an attached openduck table must give every "
			                              "column, in the table's order (the service's defaults are not known here)");
		}
	}
	if (!plan) {
		throw NotImplementedException("openduck: INSERT without a source is not supported");
	}
	auto &table = op.table;
	auto &insert = planner.Make<OpenduckInsert>(*this, RemoteTable {remote_name, table.schema.name, table.name},
	                                            std::string(), table.GetColumns().GetColumnNames(),
	                                            table.GetColumns().GetColumnTypes(), op.estimated_cardinality);
	insert.children.push_back(*plan);
	return insert;
}
PhysicalOperator &OpenduckCatalog::PlanDelete(ClientContext &, PhysicalPlanGenerator &, LogicalDelete &,
                                              PhysicalOperator &) {
	NotYet(GetName());
}
PhysicalOperator &OpenduckCatalog::PlanUpdate(ClientContext &, PhysicalPlanGenerator &, LogicalUpdate &,
                                              PhysicalOperator &) {
	NotYet(GetName());
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
	auto transaction = make_uniq<Transaction>(*this, context);
	auto &result = *transaction;
	std::lock_guard<std::mutex> guard(lock);
	transactions[result] = std::move(transaction);
	return result;
}

ErrorData OpenduckTransactionManager::CommitTransaction(ClientContext &, Transaction &transaction) {
	std::lock_guard<std::mutex> guard(lock);
	transactions.erase(transaction);
	return ErrorData();
}

void OpenduckTransactionManager::RollbackTransaction(Transaction &transaction) {
	std::lock_guard<std::mutex> guard(lock);
	transactions.erase(transaction);
}

} // namespace openduck
