//===----------------------------------------------------------------------===//
// Placing parts of a query: in a query that runs here, each maximal subquery (a derived
// table, a CTE, a subquery in an expression, a branch of a set operation) that can run on
// the service runs there as one query, and only its rows come down.
//
// Done on the parsed statement, where a subquery's text is at hand: each one is rewritten
// for the service (one that reads anything but the attachment's tables is not, and is not
// bound either), then bound on its own (one that does not bind alone reads the query
// around it, as a correlated subquery does, and stays here), the caller says from that
// plan whether it runs on the service, and those that do are replaced by a scan of their
// result there (the table function `openduck_remote_query(n)`, bound to what this file
// keeps for the statement being planned). The statement is then bound again.
//===----------------------------------------------------------------------===//
#pragma once

#include "core.hpp"

#include "duckdb/function/table_function.hpp"
#include "duckdb/parser/statement/select_statement.hpp"
#include "duckdb/planner/binder.hpp"

#include <functional>

namespace openduck {

class OpenduckCatalog;

//! Whether a subquery bound alone (its plan), which reads the attachment's tables only,
//! runs on its service. `regrouped`: the SQL the service would run, when the subquery is
//! a FROM's tables regrouped into one join (joins.hpp), not one the query wrote.
using SubqueryPlace = std::function<bool(duckdb::LogicalOperator &plan, const std::string *regrouped)>;

//! Binds `select` again (in a binder under `binder`, the statement's), with its subqueries
//! over the tables of `catalog` that `place` puts on its service (the outermost ones that
//! it does) replaced by scans of their result there, and in a FROM that joins the service's
//! tables with others, the join of the service's (joins.hpp). Returns that plan (and its
//! columns' `names`), or null when nothing is placed. Throws what binding throws.
duckdb::unique_ptr<duckdb::LogicalOperator> PlaceSubqueries(duckdb::ClientContext &context, duckdb::Binder &binder,
                                                           duckdb::SelectStatement &select, OpenduckCatalog &catalog,
                                                           const SubqueryPlace &place,
                                                           duckdb::vector<std::string> &names);

//! The table function placed subqueries are scanned by (made by PlaceSubqueries, never
//! called by name).
duckdb::TableFunction PlacedSubqueryFunction();

} // namespace openduck
