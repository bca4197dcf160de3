//===----------------------------------------------------------------------===//
// An attached openduck database as a DuckDB catalog: its schemas and tables, listed from
// the service on first use, and a transaction manager with nothing to keep.
//===----------------------------------------------------------------------===//
#pragma once

#include "core.hpp"
#include "duckdb/catalog/catalog.hpp"
#include "duckdb/catalog/catalog_entry/schema_catalog_entry.hpp"
#include "duckdb/catalog/catalog_entry/table_catalog_entry.hpp"
#include "duckdb/transaction/transaction.hpp"
#include "duckdb/transaction/transaction_manager.hpp"

namespace openduck {

using duckdb::AttachedDatabase;
using duckdb::CatalogTransaction;
using duckdb::ClientContext;
using duckdb::shared_ptr;
using duckdb::unique_ptr;

class OpenduckCatalog;

//! One table (or view) of the service: scanned with its filters and columns pushed down.
class OpenduckTable : public duckdb::TableCatalogEntry {
public:
	OpenduckTable(duckdb::Catalog &catalog, duckdb::SchemaCatalogEntry &schema, duckdb::CreateTableInfo &info,
	              shared_ptr<OdCatalog> listing, size_t index, duckdb::optional_idx rows);

	unique_ptr<duckdb::BaseStatistics> GetStatistics(ClientContext &context, duckdb::column_t column_id) override;
	duckdb::TableFunction GetScanFunction(ClientContext &context, unique_ptr<duckdb::FunctionData> &bind_data) override;
	duckdb::TableStorageInfo GetStorageInfo(ClientContext &context) override;

private:
	//! The listing this table came from, and its place there (for its Arrow schema).
	shared_ptr<OdCatalog> listing;
	size_t index;
	//! The service's estimate of its rows.
	duckdb::optional_idx rows;
};

//! One schema of the service's database.
class OpenduckSchema : public duckdb::SchemaCatalogEntry {
public:
	OpenduckSchema(duckdb::Catalog &catalog, duckdb::CreateSchemaInfo &info);

	void AddTable(unique_ptr<OpenduckTable> table);

	void Scan(ClientContext &context, duckdb::CatalogType type,
	          const std::function<void(duckdb::CatalogEntry &)> &callback) override;
	void Scan(duckdb::CatalogType type, const std::function<void(duckdb::CatalogEntry &)> &callback) override;
	duckdb::optional_ptr<duckdb::CatalogEntry> LookupEntry(CatalogTransaction transaction,
	                                                       const duckdb::EntryLookupInfo &lookup_info) override;

	duckdb::optional_ptr<duckdb::CatalogEntry> CreateIndex(CatalogTransaction transaction, duckdb::CreateIndexInfo &info,
	                                                       duckdb::TableCatalogEntry &table) override;
	duckdb::optional_ptr<duckdb::CatalogEntry> CreateFunction(CatalogTransaction transaction,
	                                                          duckdb::CreateFunctionInfo &info) override;
	duckdb::optional_ptr<duckdb::CatalogEntry> CreateTable(CatalogTransaction transaction,
	                                                       duckdb::BoundCreateTableInfo &info) override;
	duckdb::optional_ptr<duckdb::CatalogEntry> CreateView(CatalogTransaction transaction,
	                                                      duckdb::CreateViewInfo &info) override;
	duckdb::optional_ptr<duckdb::CatalogEntry> CreateSequence(CatalogTransaction transaction,
	                                                          duckdb::CreateSequenceInfo &info) override;
	duckdb::optional_ptr<duckdb::CatalogEntry> CreateTableFunction(CatalogTransaction transaction,
	                                                               duckdb::CreateTableFunctionInfo &info) override;
	duckdb::optional_ptr<duckdb::CatalogEntry> CreateCopyFunction(CatalogTransaction transaction,
	                                                              duckdb::CreateCopyFunctionInfo &info) override;
	duckdb::optional_ptr<duckdb::CatalogEntry> CreatePragmaFunction(CatalogTransaction transaction,
	                                                                duckdb::CreatePragmaFunctionInfo &info) override;
	duckdb::optional_ptr<duckdb::CatalogEntry> CreateCollation(CatalogTransaction transaction,
	                                                           duckdb::CreateCollationInfo &info) override;
	duckdb::optional_ptr<duckdb::CatalogEntry> CreateType(CatalogTransaction transaction,
	                                                      duckdb::CreateTypeInfo &info) override;
	void DropEntry(ClientContext &context, duckdb::DropInfo &info) override;
	void Alter(CatalogTransaction transaction, duckdb::AlterInfo &info) override;

private:
	duckdb::case_insensitive_map_t<unique_ptr<OpenduckTable>> tables;
};

//! An attached database of an openduck service.
class OpenduckCatalog : public duckdb::Catalog {
public:
	OpenduckCatalog(AttachedDatabase &db, shared_ptr<Client> client, duckdb::AccessMode access_mode);

	//! The connection every scan of this attachment uses.
	const shared_ptr<Client> &GetClient() const {
		return client;
	}
	//! The database's name on the service (which may differ from the attachment's alias).
	const std::string &RemoteName() const {
		return remote_name;
	}

	void Initialize(bool load_builtin) override;
	std::string GetCatalogType() override {
		return "openduck";
	}
	duckdb::optional_ptr<duckdb::CatalogEntry> CreateSchema(CatalogTransaction transaction,
	                                                        duckdb::CreateSchemaInfo &info) override;
	duckdb::optional_ptr<duckdb::SchemaCatalogEntry> LookupSchema(CatalogTransaction transaction,
	                                                              const duckdb::EntryLookupInfo &schema_lookup,
	                                                              duckdb::OnEntryNotFound if_not_found) override;
	void ScanSchemas(ClientContext &context, std::function<void(duckdb::SchemaCatalogEntry &)> callback) override;
	void DropSchema(ClientContext &context, duckdb::DropInfo &info) override;

	duckdb::PhysicalOperator &PlanCreateTableAs(ClientContext &context, duckdb::PhysicalPlanGenerator &planner,
	                                            duckdb::LogicalCreateTable &op, duckdb::PhysicalOperator &plan) override;
	duckdb::PhysicalOperator &PlanInsert(ClientContext &context, duckdb::PhysicalPlanGenerator &planner,
	                                     duckdb::LogicalInsert &op,
	                                     duckdb::optional_ptr<duckdb::PhysicalOperator> plan) override;
	duckdb::PhysicalOperator &PlanDelete(ClientContext &context, duckdb::PhysicalPlanGenerator &planner,
	                                     duckdb::LogicalDelete &op, duckdb::PhysicalOperator &plan) override;
	duckdb::PhysicalOperator &PlanUpdate(ClientContext &context, duckdb::PhysicalPlanGenerator &planner,
	                                     duckdb::LogicalUpdate &op, duckdb::PhysicalOperator &plan) override;

	duckdb::DatabaseSize GetDatabaseSize(ClientContext &context) override;
	bool InMemory() override {
		return false;
	}
	std::string GetDBPath() override;

	//! Forgets the listing: the next use lists the service's schemas and tables again.
	void Refresh();

	//! Runs DDL on the service, then refreshes the listing.
	void Execute(ClientContext &context, const std::string &sql);

	//! The entry of `schema`.`name` as the service now lists it (after DDL).
	duckdb::optional_ptr<duckdb::CatalogEntry> Relist(ClientContext &context, const std::string &schema,
	                                                  const std::string &name);

private:
	//! Lists the service's schemas and tables once (DuckDB asks from many threads).
	void Load(ClientContext &context);

	shared_ptr<Client> client;
	std::string remote_name;
	duckdb::AccessMode access_mode;
	std::mutex lock;
	bool loaded = false;
	duckdb::case_insensitive_map_t<unique_ptr<OpenduckSchema>> schemas;
	//! Listings replaced by a refresh, kept while queries bound to them may still run.
	duckdb::vector<duckdb::case_insensitive_map_t<unique_ptr<OpenduckSchema>>> retired;
};

//! Transactions on an attachment: reads need no state (writes are not supported yet).
class OpenduckTransactionManager : public duckdb::TransactionManager {
public:
	explicit OpenduckTransactionManager(AttachedDatabase &db) : TransactionManager(db) {
	}

	duckdb::Transaction &StartTransaction(ClientContext &context) override;
	duckdb::ErrorData CommitTransaction(ClientContext &context, duckdb::Transaction &transaction) override;
	void RollbackTransaction(duckdb::Transaction &transaction) override;
	void Checkpoint(ClientContext &context, bool force = false) override {
	}

private:
	std::mutex lock;
	duckdb::reference_map_t<duckdb::Transaction, unique_ptr<duckdb::Transaction>> transactions;
};

} // namespace openduck
