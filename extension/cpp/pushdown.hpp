//===----------------------------------------------------------------------===//
// Filters as SQL for the service. Both sides are DuckDB, so a predicate rendered here
// means on the service exactly what it meant in the user's DuckDB; anything without an
// exact rendering is refused (returns false) and stays in the user's DuckDB.
//===----------------------------------------------------------------------===//
#pragma once

#include "duckdb/planner/expression.hpp"
#include "duckdb/planner/table_filter.hpp"

#include <functional>

namespace openduck {

//! Names a column by its binding's index into the scan's column ids; false when the
//! binding is no column of the remote table (rowid, virtual columns).
using ColumnNamer = std::function<bool(duckdb::idx_t column_index, std::string &quoted)>;

//! Whether `is` holds for `type` or for any type nested in it (list, array, map, struct
//! and union members).
bool AnyType(const duckdb::LogicalType &type, const std::function<bool(const duckdb::LogicalType &)> &is);

//! Values whose meaning depends on the session's time zone, which the service's session
//! need not share (at any depth of a nested type): nothing computed from them is sent.
bool ZoneDependent(const duckdb::LogicalType &type);

//! `filter` applied to `column` (already SQL) as an exact predicate.
bool FilterSQL(const duckdb::TableFilter &filter, const std::string &column, std::string &out);

//! What of `filter` (on `column`, already SQL; empty for no column of the service's
//! table, like `rowid`) the service can be sent: each exact
//! predicate goes to `sent`, and each part DuckDB needs applied that has no exact rendering
//! to `kept`. Optional parts (the ranges, IN lists and bloom filters a hash join derives
//! from its build side) are sent when they can be, else left out: they only ever drop rows
//! DuckDB drops above the scan anyway.
void SplitFilter(const duckdb::TableFilter &filter, const std::string &column, std::vector<std::string> &sent,
                 std::vector<std::reference_wrapper<const duckdb::TableFilter>> &kept);

//! A bound expression (a filter DuckDB offers a scan) as exact SQL.
bool ExpressionSQL(const duckdb::Expression &expression, const ColumnNamer &column, std::string &out);

} // namespace openduck
