//===----------------------------------------------------------------------===//
// UPDATE and DELETE on tables of the service, shipped whole: the statement the user wrote
// runs on the service as one statement, with its table names made the service's and its
// prepared parameters made literals. Both sides are DuckDB, so it means there what it meant
// here. Only a statement that reads nothing but this attachment's tables is shipped; any
// other is refused with a clear error, never run half here and half there.
//===----------------------------------------------------------------------===//
#pragma once

#include "core.hpp"

#include "duckdb/execution/physical_operator.hpp"
#include "duckdb/execution/physical_plan_generator.hpp"
#include "duckdb/planner/planner_extension.hpp"

namespace openduck {

class OpenduckCatalog;

//! Runs the UPDATE or DELETE being executed (or an INSERT ... DEFAULT VALUES) on the
//! service, as one statement; as a source, yields the number of rows it changed.
class OpenduckStatement : public duckdb::PhysicalOperator {
public:
	//! Plans `op`, refused unless its statement can be shipped exactly (CheckShipping).
	//! One with a RETURNING list becomes a scan of the rows the statement, sent with
	//! `RETURNING *`, gives there (ShippedChange), which DuckDB's plan above evaluates the
	//! list over.
	static duckdb::PhysicalOperator &Plan(duckdb::ClientContext &context, duckdb::PhysicalPlanGenerator &planner,
	                                      OpenduckCatalog &catalog, duckdb::LogicalOperator &op,
	                                      duckdb::TableCatalogEntry &table);

	//! `sql`, if given, is what is sent; else the statement being run, made the service's.
	OpenduckStatement(duckdb::PhysicalPlan &plan, OpenduckCatalog &catalog, duckdb::TableCatalogEntry &table,
	                  duckdb::LogicalOperatorType kind, duckdb::idx_t estimated_cardinality,
	                  std::string sql = std::string());

	std::string GetName() const override {
		return "OPENDUCK_STATEMENT";
	}
	duckdb::InsertionOrderPreservingMap<std::string> ParamsToString() const override;

	duckdb::SourceResultType GetDataInternal(duckdb::ExecutionContext &context, duckdb::DataChunk &chunk,
	                                         duckdb::OperatorSourceInput &input) const override;
	bool IsSource() const override {
		return true;
	}

private:
	OpenduckCatalog &catalog;
	//! The table changed.
	duckdb::TableCatalogEntry &table;
	//! LOGICAL_UPDATE, LOGICAL_DELETE, or LOGICAL_MERGE_INTO (an INSERT ... ON CONFLICT).
	duckdb::LogicalOperatorType kind;
	//! The SQL sent: made at planning when the statement is running then (for EXPLAIN),
	//! else when it runs.
	mutable std::string sent;
};

//! `CREATE VIEW` of `info` in `schema` of the service, its query's table names made the
//! service's. Refused unless the query reads only tables of the same attachment (a view
//! runs on the service, where nothing of this session exists).
std::string ViewSQL(duckdb::ClientContext &context, OpenduckCatalog &catalog, const std::string &schema,
                    duckdb::CreateViewInfo &info);

//! A planner hook (right after binding) that decides from the bound plan whether an UPDATE
//! or DELETE of an openduck table can be shipped (every table it reads is one of the same
//! attachment, and nothing depends on the session's time zone), and keeps the values of its
//! parameters, which DuckDB then folds into the plan.
void CheckShipping(duckdb::PlannerExtensionInput &input, duckdb::BoundStatement &statement);

} // namespace openduck
