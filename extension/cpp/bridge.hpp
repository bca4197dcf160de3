//===----------------------------------------------------------------------===//
// The bridge from the user's DuckDB up to the service: a table of this session copied
// into a temporary table of a transaction on the service (exact column types, rows
// streamed through bulk ingest), so that a query joining it with the service's tables
// runs there. The transaction is rolled back afterwards, and the copy with it.
//===----------------------------------------------------------------------===//
#pragma once

#include "core.hpp"

#include "duckdb/catalog/catalog_entry/table_catalog_entry.hpp"
#include "duckdb/planner/expression.hpp"

namespace openduck {

//! A table of this session to copy up, the name of its copy on the service, the columns
//! copied (logical indexes; empty: all), and filters rows not copied fail (over logical
//! column indexes; see QueryReads::FindLocalFilters).
struct Upload {
	duckdb::reference<duckdb::TableCatalogEntry> table;
	std::string name;
	duckdb::vector<duckdb::idx_t> columns;
	duckdb::vector<duckdb::shared_ptr<duckdb::Expression>> filters;
};

//! Why `table` cannot be copied up exactly (empty: it can): it must be a table of a
//! DuckDB database, without generated columns, collations, or types only this session
//! defines.
std::string UploadRefusal(duckdb::TableCatalogEntry &table);

//! Copies `upload.table` (as `context`'s transaction sees it, its own changes included)
//! into `temp.main.<name>` of the transaction `session` runs in, on the executor that
//! holds `database`.
void CopyUp(duckdb::ClientContext &context, const Client &session, const std::string &database,
            const Upload &upload);

} // namespace openduck
