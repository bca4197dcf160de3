//===----------------------------------------------------------------------===//
// Shipping SQL as the user wrote it: the checks and the rewrite every statement that runs
// on the service as written goes through (UPDATE and DELETE, views, whole queries).
//
// Both sides are DuckDB of one version, so a statement means on the service what it meant
// here, provided that it reads nothing but tables of one attachment, calls nothing that
// exists only in this session (macros, UDFs, session functions), and depends on nothing
// the service's session need not share (time zones, parameters whose values are unknown).
// The rewrite makes every table name the service's (`"mydb"."main"."t"`).
//===----------------------------------------------------------------------===//
#pragma once

#include "core.hpp"

#include "duckdb/main/client_context_state.hpp"
#include "duckdb/parser/query_node.hpp"
#include "duckdb/parser/tableref.hpp"
#include "duckdb/parser/tableref/basetableref.hpp"
#include "duckdb/planner/logical_operator.hpp"

namespace openduck {

class OpenduckCatalog;

//! Refuses to ship `statement` (a kind: "UPDATE", "query") because of `why`, as
//! NotImplementedException.
[[noreturn]] void CannotShip(const std::string &statement, const std::string &why);

//! Checks a bound plan: every source of rows must be a scan of `catalog` (or, with
//! `siblings`, of another attachment of its service: see OpenduckCatalog::Sibling; or of a
//! table `uploaded` says the service will have), and nothing may depend on the session's
//! time zone. Throws CannotShip.
void CheckPlan(const std::string &statement, OpenduckCatalog &catalog, duckdb::LogicalOperator &op,
               const std::function<bool(duckdb::TableCatalogEntry &)> &uploaded = nullptr,
               duckdb::optional_ptr<duckdb::ClientContext> siblings = nullptr);

//! The table a base table reference names in `context`, in any catalog (null: none, or a
//! view), as the binder would find it (CTEs aside).
duckdb::optional_ptr<duckdb::TableCatalogEntry> TableNamed(duckdb::ClientContext &context,
                                                         const duckdb::BaseTableRef &ref);

//! Per connection: what a statement shipped as written needs from the planning of it.
class StatementState : public duckdb::ClientContextState {
public:
	static StatementState &Get(duckdb::ClientContext &context);

	void QueryEnd(duckdb::ClientContext &context) override;

	//! The values of the statement's parameters, as bound.
	duckdb::case_insensitive_map_t<duckdb::Value> values;
	//! Whether CheckShipping saw the plan being made, and why it cannot be shipped (empty: it can).
	bool checked = false;
	std::string refusal;
};

//! Rewrites a parsed statement for the service in place: table names of the attachment
//! become the service's, parameters their values. Throws CannotShip for what cannot run
//! there as written.
class Rewriter {
public:
	Rewriter(duckdb::ClientContext &context, OpenduckCatalog &catalog, std::string statement);

	void Visit(duckdb::unique_ptr<duckdb::ParsedExpression> &expression);
	void VisitNode(duckdb::QueryNode &node);
	void VisitRef(duckdb::TableRef &ref);
	void VisitCtes(duckdb::CommonTableExpressionMap &map);

	//! The table entry a base table reference resolves to, in any catalog (null: a CTE,
	//! or nothing).
	duckdb::optional_ptr<duckdb::TableCatalogEntry> Resolved(duckdb::BaseTableRef &ref);

	//! Refuse every reference that is no table of the attachment (nor a CTE), and every
	//! table function, instead of leaving it as written: for text DuckDB did not plan here
	//! (a view) or whose plan was not checked reference by reference (a whole query).
	bool strict = false;
	//! Renames a reference to a table of this session that the service will have under
	//! another name (an upload); false leaves it to the rules above.
	std::function<bool(duckdb::BaseTableRef &ref, duckdb::TableCatalogEntry &table)> foreign;
	//! Also renames the tables of the other attachments of the service (Sibling) to the
	//! service's names, rather than treating them as foreign: for a query, whose rows the
	//! service computes from what it holds now.
	bool siblings = false;
	//! Whether a `*` or COLUMNS(...) was met.
	bool saw_star = false;

	//! Takes the name of every CTE below `root` as one, before a part of it is rewritten
	//! alone (a subquery): a reference to a table named like any of them is refused, as its
	//! meaning depends on the scope it is in.
	void KnowCtes(duckdb::QueryNode &root);

private:
	bool IsCte(const duckdb::BaseTableRef &ref) const;
	void Reference(duckdb::TableRef &ref);
	void CollectCtes(duckdb::QueryNode &node);

	duckdb::ClientContext &context;
	OpenduckCatalog &catalog;
	std::string statement;
	StatementState &parameters;
	duckdb::case_insensitive_set_t ctes;
};

} // namespace openduck
