//===----------------------------------------------------------------------===//
// What moving a query's data costs: the tables a bound plan reads, on the service (one
// service's attachments) and in this session, with the rows and bytes each would move across the
// link. Placement compares bringing the service's tables down (scans) with taking this
// session's up (copies).
//===----------------------------------------------------------------------===//
#pragma once

#include "core.hpp"

#include "duckdb/catalog/catalog_entry/table_catalog_entry.hpp"
#include "duckdb/planner/logical_operator.hpp"
#include "duckdb/planner/operator/logical_get.hpp"

namespace openduck {

class OpenduckCatalog;

//! The rows DuckDB on the service estimates `sql` (a query) returns, from its own
//! statistics (its EXPLAIN); invalid when it does not say.
duckdb::optional_idx EstimatedRows(duckdb::ClientContext &context, const Client &client, const std::string &sql);

//! A scan of a table of the service in the plan.
struct RemoteRead {
	duckdb::reference<duckdb::LogicalGet> get;
	duckdb::reference<duckdb::TableCatalogEntry> table;
	//! Rows that would come down: the service's count, or after ProbeRemote, the exact
	//! count under the scan's filters.
	duckdb::idx_t rows = 0;
	//! Bytes of a row of the columns read, roughly.
	duckdb::idx_t width = 0;
};

//! A table of this session in the plan (each once, whatever its scans).
struct LocalRead {
	duckdb::reference<duckdb::TableCatalogEntry> table;
	duckdb::idx_t rows = 0;
	//! The columns read (logical indexes, ascending), and their bytes per row.
	duckdb::vector<duckdb::idx_t> columns;
	duckdb::idx_t width = 0;
	//! Its scans in the plan.
	duckdb::vector<duckdb::reference<duckdb::LogicalGet>> gets;
	//! Whether a copy kept on the service holds what the query reads of it (then copying
	//! up moves nothing, unless the table changed since).
	bool kept = false;
	//! Conjuncts of the query's filters that every row of it the query uses satisfies,
	//! over its columns (BoundReferenceExpression indexes are logical column indexes):
	//! rows failing one need not be copied up.
	duckdb::vector<duckdb::shared_ptr<duckdb::Expression>> filters;
};

//! What a bound plan reads.
struct QueryReads {
	//! The attachment of the service's tables (null: it reads none): the first scanned.
	duckdb::optional_ptr<OpenduckCatalog> attachment;
	//! It reads tables of other attachments of the same service too (see
	//! OpenduckCatalog::Sibling), which a query sent through `attachment` may read.
	bool several = false;
	//! It reads something else: another service's attachment (or one with a transaction of
	//! its own), a table function, Python data.
	bool other = false;
	//! It reads row ids of the service's tables (a scan gives none; the service would).
	bool remote_row_ids = false;
	duckdb::vector<RemoteRead> remote;
	duckdb::vector<LocalRead> local;
	//! Why this session's tables cannot be copied up exactly (empty: they can).
	std::string refusal;

	static QueryReads Of(duckdb::ClientContext &context, duckdb::LogicalOperator &plan);

	duckdb::optional_ptr<LocalRead> Local(duckdb::TableCatalogEntry &table);
	duckdb::idx_t RemoteBytes() const;
	duckdb::idx_t LocalBytes() const;

	//! Finds, for each table of this session scanned once, the filters its rows can be
	//! taken through before they are copied: conjuncts over its columns only that cannot
	//! fail, reached from the scan through nothing but filters, inner joins, and the
	//! preserved sides of outer, semi, anti and mark joins (where dropping a row early
	//! changes nothing else).
	void FindLocalFilters(duckdb::LogicalOperator &plan);

	//! Asks the service how many rows each scan of it would bring down under the
	//! filters that apply to its rows alone (as FindLocalFilters finds them) and have an
	//! exact SQL rendering (one count per scan that has such filters).
	void ProbeRemote(duckdb::ClientContext &context, duckdb::LogicalOperator &plan);
};

} // namespace openduck
