//===----------------------------------------------------------------------===//
// The bridge from the user's DuckDB up to the service: a table of this session copied
// into a temporary table of a transaction on the service (exact column types, rows
// streamed through bulk ingest), so that a query joining it with the service's tables
// runs there. Copies are kept there for later queries (copies.hpp), or, in a transaction
// of the query's own, rolled back afterwards.
//===----------------------------------------------------------------------===//
#pragma once

#include "core.hpp"

#include "duckdb/catalog/catalog_entry/table_catalog_entry.hpp"
#include "duckdb/planner/expression.hpp"

namespace openduck {

//! A table of this session to copy up, the name of its copy on the service, the columns
//! copied (logical indexes; empty: all), and filters rows not copied fail (over logical
//! column indexes; see QueryReads::FindLocalFilters). `kept`: a copy kept on the service
//! covered it when the query was planned (copies.hpp).
struct Upload {
	duckdb::reference<duckdb::TableCatalogEntry> table;
	std::string name;
	duckdb::vector<duckdb::idx_t> columns;
	duckdb::vector<duckdb::shared_ptr<duckdb::Expression>> filters;
	bool kept = false;
};

//! The rows of a copy told apart from any other rows, whatever their order: their count
//! and two sums of a hash of each row (of the bytes of floating point numbers and
//! intervals, not their values: 0.0 and -0.0, or one month and 30 days, are equal values
//! but other bytes). And their bytes, roughly.
struct Fingerprint {
	duckdb::idx_t rows = 0;
	uint64_t sum = 0;
	uint64_t mixed = 0;
	duckdb::idx_t bytes = 0;

	bool operator==(const Fingerprint &other) const {
		return rows == other.rows && sum == other.sum && mixed == other.mixed;
	}
};

//! Why `table` cannot be copied up exactly (empty: it can): it must be a table of a
//! DuckDB database, without generated columns, collations, or types only this session
//! defines.
std::string UploadRefusal(duckdb::TableCatalogEntry &table);

//! Whether the copied columns of `upload` have a fingerprint (scalar types, whose
//! values are their bytes; nested types are not hashed here).
bool HasFingerprint(const Upload &upload);

//! Copies `upload.table` (as `context`'s transaction sees it, its own changes included)
//! into `temp.main.<name>` of the transaction `session` runs in, on the executor that
//! holds `database`. Returns the fingerprint of the rows copied (when HasFingerprint).
Fingerprint CopyUp(duckdb::ClientContext &context, const Client &session, const std::string &database,
                   const Upload &upload);

//! The fingerprint CopyUp would return for `upload` now, without copying anything.
Fingerprint FingerprintOf(duckdb::ClientContext &context, const Upload &upload);

} // namespace openduck
