//===----------------------------------------------------------------------===//
// An attached openduck database as a DuckDB catalog: its schemas and tables, listed from
// the service on first use, and its transactions, which become transactions of the
// service once they write.
//===----------------------------------------------------------------------===//
#pragma once

#include "copies.hpp"
#include "core.hpp"

#include <atomic>

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
	//! A table as the service listed it: `listing` holds its Arrow schema at `index`.
	//! Without a listing, the table was made by the running transaction, and its Arrow
	//! schema is asked of the service in that transaction.
	OpenduckTable(duckdb::Catalog &catalog, duckdb::SchemaCatalogEntry &schema, duckdb::CreateTableInfo &info,
	              shared_ptr<OdCatalog> listing, size_t index, duckdb::optional_idx rows, bool view);

	//! A view on the service (read like a table; DROP VIEW drops it).
	bool IsView() const {
		return view;
	}

	//! The same table, in `schema` (a transaction's copy of the listing).
	unique_ptr<OpenduckTable> CopyInto(duckdb::SchemaCatalogEntry &schema);

	//! Whether `column` has another type on the service than here (a collation, a TIMETZ
	//! read as TIME, a BIT read as BLOB): the service would compare it
	//! otherwise, so no predicate on it is sent there.
	bool Retyped(duckdb::idx_t column) const {
		return column < retyped.size() && retyped[column];
	}
	//! Whether the service described every column (its own catalog listed them): only
	//! then does Retyped know. A table made by the running transaction, or listed when
	//! the service's catalog could not be read, is not described.
	bool Described() const {
		return !retyped.empty();
	}
	//! Marks the columns Retyped answers for (from the service's own catalog).
	void SetRetyped(duckdb::vector<bool> columns) {
		retyped = std::move(columns);
	}

	unique_ptr<duckdb::BaseStatistics> GetStatistics(ClientContext &context, duckdb::column_t column_id) override;
	duckdb::TableFunction GetScanFunction(ClientContext &context, unique_ptr<duckdb::FunctionData> &bind_data) override;
	duckdb::TableStorageInfo GetStorageInfo(ClientContext &context) override;
	void BindUpdateConstraints(duckdb::Binder &binder, duckdb::LogicalGet &get, duckdb::LogicalProjection &proj,
	                           duckdb::LogicalUpdate &update, ClientContext &context) override;

private:
	//! The listing this table came from, and its place there (for its Arrow schema).
	shared_ptr<OdCatalog> listing;
	size_t index;
	//! The service's estimate of its rows.
	duckdb::optional_idx rows;
	bool view;
	duckdb::vector<bool> retyped;
};

//! One schema of the service's database.
class OpenduckSchema : public duckdb::SchemaCatalogEntry {
public:
	OpenduckSchema(duckdb::Catalog &catalog, duckdb::CreateSchemaInfo &info);

	//! Adds or replaces a table (and gives back the one it replaced, if any).
	unique_ptr<OpenduckTable> AddTable(unique_ptr<OpenduckTable> table);
	//! Takes a table out (null if there is none of that name).
	unique_ptr<OpenduckTable> RemoveTable(const std::string &name);
	//! The same schema and tables, for a transaction's copy of the listing.
	unique_ptr<OpenduckSchema> Copy();

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

//! A column as the service's own catalog describes it.
struct ServiceColumn {
	//! DuckDB's name for its type (` (collated)` appended for a column compared by a collation).
	std::string type;
	//! Its place in its table's primary key, from 1 (0: in none).
	duckdb::idx_t key = 0;
};
//! Every column of the database, keyed `schema\0table\0column`.
using NativeTypes = std::unordered_map<std::string, ServiceColumn>;

//! Whether the wire carries values of `expected` as `arrived`, so that a cast gives them
//! back exactly: the same type, or the mapping every Flight SQL client sees (UUID and ENUM
//! as VARCHAR, HUGEINT and UHUGEINT as DECIMAL(38,0)), also inside lists, arrays, structs
//! and maps.
bool Carries(const duckdb::LogicalType &arrived, const duckdb::LogicalType &expected);

//! The schemas (with their tables) of the service's database, as one listing returned them.
using Listing = duckdb::case_insensitive_map_t<unique_ptr<OpenduckSchema>>;

//! A DuckDB transaction on an attachment. It reads outside any transaction of the service
//! until it first writes; from then on all its statements run in one service transaction,
//! which commits or rolls back with it (all or nothing on the service).
class OpenduckTransaction : public duckdb::Transaction {
public:
	OpenduckTransaction(duckdb::TransactionManager &manager, ClientContext &context)
	    : Transaction(manager, context) {
	}

	std::mutex lock;
	//! The client of the service transaction, once the transaction wrote.
	shared_ptr<Client> remote;
	//! Whether it wrote: the attachment's listing is stale once it commits.
	bool wrote = false;
	//! The attachment's listing as it was when the transaction first looked: it sees one
	//! catalog throughout, and the listing lives as long as statements bound to it.
	shared_ptr<Listing> pinned;
	//! After DDL, what this transaction sees of the service's catalog: the attachment's
	//! listing with the transaction's own changes (the service lists only what is
	//! committed). Entries it replaced stay while statements bound to them may run.
	unique_ptr<Listing> overlay;
	duckdb::vector<unique_ptr<duckdb::CatalogEntry>> retired;
};

//! An attached database of an openduck service.
class OpenduckCatalog : public duckdb::Catalog {
public:
	OpenduckCatalog(AttachedDatabase &db, shared_ptr<Client> client, duckdb::AccessMode access_mode);

	//! The connection the attachment was made with.
	const shared_ptr<Client> &GetClient() const {
		return client;
	}
	//! The connection `context`'s statements on this attachment use: its transaction's on
	//! the service once it wrote. `write` begins that service transaction.
	shared_ptr<Client> ClientFor(ClientContext &context, bool write);
	//! `other` when it is this attachment, or another attachment of the same service reached
	//! as the same principal, while neither has a transaction of its own open on the
	//! service in `context` (which a statement sent through the other would not see): a
	//! query sent through this one may then read its tables, by its RemoteName. Null
	//! otherwise.
	duckdb::optional_ptr<OpenduckCatalog> Sibling(ClientContext &context, duckdb::Catalog &other);
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
	//! An INSERT ... ON CONFLICT, which DuckDB binds as a MERGE INTO: shipped as written.
	duckdb::PhysicalOperator &PlanMergeInto(ClientContext &context, duckdb::PhysicalPlanGenerator &planner,
	                                        duckdb::LogicalMergeInto &op, duckdb::PhysicalOperator &plan) override;

	duckdb::DatabaseSize GetDatabaseSize(ClientContext &context) override;
	bool InMemory() override {
		return false;
	}
	std::string GetDBPath() override;

	//! Forgets the listing: the next use lists the service's schemas and tables again.
	void Refresh();

	//! Whether the service lets this attachment make temporary tables, into which tables
	//! of this session are copied up (a read-only account may not). Asked once.
	bool MayCopyUp();
	//! The copies of this session's tables kept on the service.
	KeptCopies &Copies() {
		return *copies;
	}

	//! Creates a table on the service (CREATE TABLE, and CREATE TABLE AS before its rows),
	//! in `context`'s transaction, which sees it from then on.
	duckdb::optional_ptr<duckdb::CatalogEntry> MakeTable(ClientContext &context, const std::string &schema,
	                                                     const duckdb::CreateTableInfo &table);

	//! Runs DDL on the service, in `context`'s transaction on the service.
	void Execute(ClientContext &context, const std::string &sql);

	//! Applies DDL `context`'s transaction ran to what it sees of the catalog; `change`
	//! edits the transaction's copy of the listing (made on first use) and may move
	//! replaced entries into `retired`.
	void Overlay(ClientContext &context,
	             const std::function<void(Listing &listing, duckdb::vector<unique_ptr<duckdb::CatalogEntry>> &retired)>
	                 &change);

private:
	//! `context`'s transaction on this attachment, if it has one running.
	duckdb::optional_ptr<OpenduckTransaction> TransactionOf(ClientContext &context);
	//! What `context` sees of the service's catalog: the attachment's listing, made once
	//! (DuckDB asks from many threads), or its transaction's copy after DDL in it.
	Listing &ListingFor(ClientContext &context);
	//! Lists the service's schemas and tables (called under `lock`), with exact types for
	//! the columns its Arrow rows carry as another type.
	Listing List(ClientContext &context);
	//! Asks the service for the type and key of every column of the database.
	shared_ptr<const NativeTypes> ListNativeTypes(ClientContext &context);

	shared_ptr<Client> client;
	std::string remote_name;
	duckdb::AccessMode access_mode;
	std::mutex lock;
	//! The current listing (null: list again at next use).
	shared_ptr<Listing> schemas;
	//! Whether a lookup outside any transaction used the current listing, which then
	//! must outlive a refresh (transactions keep theirs alive by pinning).
	bool used_outside = false;
	duckdb::vector<shared_ptr<Listing>> retired;
	//! MayCopyUp's answer, once the service gave one.
	std::atomic<int> may_copy_up {-1};
	shared_ptr<KeptCopies> copies;
};

//! Transactions on an attachment (OpenduckTransaction).
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
