//===----------------------------------------------------------------------===//
// Placement: where each part of a query runs, in the user's DuckDB or on the service.
//
// A query whose every table lives in one attachment runs on the service whole, as the
// user wrote it (its table names made the service's), and only its result crosses; so does
// one that also reads this session's tables when copying them up moves less than scanning
// the service's down. Attachments of one service, reached as the same principal (`ATTACH
// 'openduck:'` makes one per database), count as one, while none of them has written in
// this transaction (see OpenduckCatalog::Sibling): a query over several of their databases
// runs there whole too, when one executor of the service serves them all (the service is
// asked; a coordinator would plan one across executors in its own dialect), and without
// copies of this session's tables. Otherwise it runs here, as DuckDB planned it, with scans of the
// attachment's tables, and each of its outermost subqueries (a derived table, a CTE, a
// subquery expression, a branch of a set operation) that reads one attachment's tables
// only runs on the service by the same rules (subqueries.hpp). `SET openduck_placement`:
//   auto    (default) ship a query over one attachment's tables when the service's part
//           reduces what crosses (a join, an aggregate, a window, DISTINCT, LIMIT, a set
//           operation); a scan with filters stays a scan, whose filters go to the service
//   remote  ship every query (and subquery) over one attachment's tables
//   local   ship nothing: every remote table is scanned (filters and columns pushed down)
//===----------------------------------------------------------------------===//
#pragma once

#include "core.hpp"

#include "duckdb/planner/planner_extension.hpp"

namespace openduck {

//! Registers the `openduck_placement` setting.
void RegisterPlacement(duckdb::DBConfig &config);

//! A planner hook (right after binding): replaces the plan of a SELECT (or of the query an
//! EXPLAIN explains) that can run on the service whole by a scan of its result there, or
//! else its subqueries that can.
void PlaceQuery(duckdb::PlannerExtensionInput &input, duckdb::BoundStatement &statement);

} // namespace openduck
