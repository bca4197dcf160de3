//===----------------------------------------------------------------------===//
// LIMIT and top-N pushdown: a scan of a remote table right under a LIMIT (or ORDER BY ...
// LIMIT), through nothing but projections, asks the service for the rows the limit can
// keep and no more. DuckDB's own LIMIT or top-N stays above and picks from them, so what
// the query returns is what it would have been (any rows for a LIMIT alone; the first
// rows by the keys, ties broken either way, for a top-N).
//===----------------------------------------------------------------------===//
#pragma once

#include "core.hpp"

#include "duckdb/optimizer/optimizer_extension.hpp"

namespace openduck {

//! An optimizer hook (after DuckDB's own): pushes each LIMIT and top-N it can into the
//! scan below it.
void PushLimits(duckdb::OptimizerExtensionInput &input, duckdb::unique_ptr<duckdb::LogicalOperator> &plan);

} // namespace openduck
