//===----------------------------------------------------------------------===//
// Placement: where each part of a query runs, in the user's DuckDB or on the service.
//
// Today one decision: a query whose every table lives in one attachment runs on the
// service whole, as the user wrote it (its table names made the service's), and only its
// result crosses. A query that mixes in anything of this session runs here, as DuckDB
// planned it, with scans of the attachment's tables. `SET openduck_placement` chooses:
//   auto    (default) ship a query over one attachment's tables when the service's part
//           reduces what crosses (a join, an aggregate, a window, DISTINCT, LIMIT, a set
//           operation); a scan with filters stays a scan, whose filters go to the service
//   remote  ship every query over one attachment's tables
//   local   ship nothing: every remote table is scanned (filters and columns pushed down)
//===----------------------------------------------------------------------===//
#pragma once

#include "core.hpp"

#include "duckdb/planner/planner_extension.hpp"

namespace openduck {

//! Registers the `openduck_placement` setting.
void RegisterPlacement(duckdb::DBConfig &config);

//! A planner hook (right after binding): replaces the plan of a SELECT (or of the query an
//! EXPLAIN explains) that can run on the service whole by a scan of its result there.
void PlaceQuery(duckdb::PlannerExtensionInput &input, duckdb::BoundStatement &statement);

} // namespace openduck
