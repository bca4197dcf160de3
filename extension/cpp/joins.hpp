//===----------------------------------------------------------------------===//
// Parts of a FROM clause: in a SELECT whose FROM joins tables of the service with others
// (inner joins and comma joins), the service's tables, joined by conditions over them
// alone, are taken out into one derived table, so that the join of them can run on the
// service as one subquery (subqueries.hpp places it) and only its rows come down:
//
//   SELECT c.name, sum(l.price) FROM local_customers c, cloud.orders o, cloud.lines l
//   WHERE c.id = o.customer AND o.id = l.order_id AND l.day > '2024-01-01' GROUP BY c.name
//
// becomes (the service's columns named after their table)
//
//   SELECT c.name, sum(openduck_join."l.price") FROM local_customers c,
//     (SELECT o.customer AS "o.customer", l.price AS "l.price" FROM cloud.orders o,
//      cloud.lines l WHERE o.id = l.order_id AND l.day > '2024-01-01') AS openduck_join
//   WHERE c.id = openduck_join."o.customer" GROUP BY c.name
//
// Only where each column reference names one table for sure: qualified by a table's name
// or alias, or unqualified and a column of exactly one table of the FROM (every other part
// of it a table of known columns), and no reference could bind to a select list's column
// once each gets its name as its alias (the rewrite names them so, to keep their names).
// Nothing else is rewritten: a `*`, a subquery expression, a lambda, a USING or NATURAL
// join, an outer join, a sample, a subquery in the FROM or a table function or VALUES that
// reads the service's tables (laterally), columns renamed by an alias list, or output
// names that repeat leave the SELECT as it is. Whether the regrouped join runs on the
// service is the caller's (placement.cpp): under 'auto' only when the service estimates
// it at no more rows than its tables hold.
//===----------------------------------------------------------------------===//
#pragma once

#include "core.hpp"

#include "duckdb/parser/query_node/select_node.hpp"
#include "duckdb/parser/tableref/subqueryref.hpp"

namespace openduck {

class OpenduckCatalog;

//! `select` with the service's tables of its FROM joined in one derived table (the file's
//! overview), or null when it has no such part. `remote` is set to that derived table.
//! The service's tables are those of `catalog` or of another attachment of its service
//! (OpenduckCatalog::Sibling); names of CTEs in `ctes` are no tables.
duckdb::unique_ptr<duckdb::SelectNode> GroupServiceJoin(duckdb::ClientContext &context, OpenduckCatalog &catalog,
                                                       const duckdb::SelectNode &select,
                                                       const duckdb::case_insensitive_set_t &ctes,
                                                       duckdb::optional_ptr<duckdb::SubqueryRef> &remote);

} // namespace openduck
