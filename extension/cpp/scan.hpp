//===----------------------------------------------------------------------===//
// Reading from the service: table scans with projections and filters pushed down as SQL,
// openduck_query() for SQL run verbatim, and queries placed on the service whole. Rows
// arrive as an Arrow C stream and become DuckDB vectors through DuckDB's own Arrow
// conversion.
//===----------------------------------------------------------------------===//
#pragma once

#include "bridge.hpp"
#include "core.hpp"
#include "duckdb/common/arrow/arrow_wrapper.hpp"
#include "duckdb/catalog/catalog_entry/table_catalog_entry.hpp"
#include "duckdb/function/table_function.hpp"
#include "duckdb/planner/operator/logical_get.hpp"

#include <functional>

namespace duckdb {
class Binder;
}

namespace openduck {

class OpenduckCatalog;

//! A table as the service names it.
struct RemoteTable {
	std::string catalog;
	std::string schema;
	std::string name;

	//! `"catalog"."schema"."name"`, each part quoted.
	std::string ToSQL() const;
};

//! `name` as a DuckDB identifier, always quoted.
std::string QuoteIdentifier(const std::string &name);

//! The bind data of a scan of `table`, whose columns `arrow` describes (taken over).
duckdb::unique_ptr<duckdb::FunctionData> BindTableScan(duckdb::ClientContext &context,
                                                       duckdb::TableCatalogEntry &entry,
                                                       const duckdb::shared_ptr<Client> &client, RemoteTable table,
                                                       duckdb::ArrowSchemaWrapper &arrow, duckdb::optional_idx rows);

//! The table function that scans a table bound by BindTableScan.
duckdb::TableFunction TableScanFunction();

//! Asks a scan of TableScanFunction's (`get`, else false) for its first `rows` rows only,
//! ordered by `order`: the indexes of its column ids, each with its direction and NULL
//! order in SQL (" DESC NULLS LAST"); empty: any rows. DuckDB's LIMIT or top-N above it stays
//! and picks its rows from these. When some filter of the scan stays in DuckDB as it
//! starts, it asks for every row as before. False when an order key is no column the
//! service has as it is here (a row id, a nested field, another type there).
bool LimitScan(duckdb::LogicalGet &get, duckdb::idx_t rows,
               const duckdb::vector<std::pair<duckdb::idx_t, std::string>> &order);

//! A scan of the rows `sql` gives on the service of `catalog`, typed `types` (what the
//! user's DuckDB bound the same query to): a query placed on the service whole. Columns
//! that arrive as another type (HUGEINT as DECIMAL(38,0), UUID and ENUM as VARCHAR) are
//! cast back to these. `ordered`: the rows arrive in the query's order, which the scan
//! keeps (one thread). `uploads`: tables of this session the query reads, copied up
//! first into a transaction of the service that is rolled back when the scan ends.
duckdb::unique_ptr<duckdb::LogicalOperator> ShippedQuery(duckdb::Binder &binder, OpenduckCatalog &catalog,
                                                         std::string sql, duckdb::vector<duckdb::LogicalType> types,
                                                         duckdb::vector<std::string> names, bool ordered,
                                                         duckdb::vector<Upload> uploads);

//! ShippedQuery's rows (without uploads) as the bind data of a table function made by
//! ShippedRows: a query placed while a statement is bound (a subquery of it).
duckdb::unique_ptr<duckdb::FunctionData> ShippedQueryData(OpenduckCatalog &catalog, std::string sql,
                                                          duckdb::vector<duckdb::LogicalType> types, bool ordered);

//! A table function named `name` whose `bind` returns ShippedQueryData.
duckdb::TableFunction ShippedRows(const std::string &name, duckdb::vector<duckdb::LogicalType> arguments,
                                  duckdb::table_function_bind_t bind);

//! Makes the SQL of a statement that changes rows when it runs (a prepared statement's
//! values are known only then).
using MakeSQL = std::function<std::string(duckdb::ClientContext &context)>;

//! A scan of the rows an UPDATE, DELETE or INSERT (... ON CONFLICT) with `RETURNING *`
//! gives on the service of `catalog`, typed `types` (every column of the table changed),
//! run in the transaction that writes through the attachment. `sql` is the statement, or
//! empty: then `make_sql` makes it as the scan starts.
duckdb::unique_ptr<duckdb::LogicalOperator> ShippedChange(OpenduckCatalog &catalog, std::string sql,
                                                          MakeSQL make_sql,
                                                          duckdb::vector<duckdb::LogicalType> types,
                                                          duckdb::vector<std::string> names);

//! `CALL openduck_refresh()`: every openduck attachment lists its catalog again.
duckdb::TableFunction RefreshFunction();

//! `openduck_query(attachment, sql)`: rows of SQL run verbatim on the attachment's service.
duckdb::TableFunction QueryFunction();

} // namespace openduck
