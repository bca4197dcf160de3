#include "modify.hpp"

#include "catalog.hpp"
#include "scan.hpp"
#include "shipping.hpp"

#include "duckdb/catalog/catalog_entry/table_catalog_entry.hpp"
#include "duckdb/main/client_context.hpp"
#include "duckdb/parser/parsed_data/create_view_info.hpp"
#include "duckdb/parser/expression/columnref_expression.hpp"
#include "duckdb/parser/expression/star_expression.hpp"
#include "duckdb/parser/keyword_helper.hpp"
#include "duckdb/parser/parser.hpp"
#include "duckdb/parser/statement/delete_statement.hpp"
#include "duckdb/parser/statement/explain_statement.hpp"
#include "duckdb/parser/statement/insert_statement.hpp"
#include "duckdb/parser/statement/update_statement.hpp"
#include "duckdb/parser/tableref/basetableref.hpp"
#include "duckdb/planner/binder.hpp"
#include "duckdb/planner/bound_parameter_map.hpp"
#include "duckdb/planner/operator/logical_delete.hpp"
#include "duckdb/planner/operator/logical_insert.hpp"
#include "duckdb/planner/operator/logical_merge_into.hpp"
#include "duckdb/planner/operator/logical_update.hpp"

namespace openduck {

using namespace duckdb;

namespace {

//! What a statement that changes a table of the attachment is called in messages.
const char *KindName(LogicalOperatorType kind) {
	switch (kind) {
	case LogicalOperatorType::LOGICAL_UPDATE:
		return "UPDATE";
	case LogicalOperatorType::LOGICAL_DELETE:
		return "DELETE";
	case LogicalOperatorType::LOGICAL_INSERT:
		return "INSERT ... RETURNING";
	default:
		return "INSERT ... ON CONFLICT (or MERGE INTO)";
	}
}

//! Whether `op` (an UPDATE, DELETE, MERGE INTO or INSERT) returns the rows it changed.
bool Returns(LogicalOperator &op) {
	switch (op.type) {
	case LogicalOperatorType::LOGICAL_UPDATE:
		return op.Cast<LogicalUpdate>().return_chunk;
	case LogicalOperatorType::LOGICAL_DELETE:
		return op.Cast<LogicalDelete>().return_chunk;
	case LogicalOperatorType::LOGICAL_MERGE_INTO:
		return op.Cast<LogicalMergeInto>().return_chunk;
	case LogicalOperatorType::LOGICAL_INSERT:
		return op.Cast<LogicalInsert>().return_chunk;
	default:
		return false;
	}
}

//! A RETURNING list asks the service for every column of the rows changed, in the
//! table's order (and, for an INSERT ... ON CONFLICT, whether each row was inserted or
//! updated): what DuckDB's plan of the statement returns, and what the user's own
//! RETURNING expressions are then evaluated over, here.
void ReturnEveryColumn(vector<unique_ptr<ParsedExpression>> &list, bool returning, bool merge = false) {
	list.clear();
	if (returning) {
		list.push_back(make_uniq<StarExpression>());
		if (merge) {
			list.push_back(make_uniq<ColumnRefExpression>("merge_action"));
		}
	}
}

//! The statement being run, rewritten for the service: an UPDATE, DELETE, INSERT ...
//! ON CONFLICT (DuckDB binds it as a MERGE INTO: `op_kind`) or INSERT ... RETURNING of `changed` that
//! CheckShipping let through (local tables and the like are refused there, from the bound
//! plan), with `RETURNING *` when `returning`.
std::string ShippedSQL(ClientContext &context, OpenduckCatalog &catalog, TableCatalogEntry &changed,
                       LogicalOperatorType op_kind, bool returning) {
	auto kind = KindName(op_kind);
	auto update = op_kind == LogicalOperatorType::LOGICAL_UPDATE;
	Parser parser(context.GetParserOptions());
	parser.ParseQuery(context.GetCurrentQuery());
	if (parser.statements.size() != 1) {
		CannotShip(kind, "its text is not one statement");
	}
	auto statement = std::move(parser.statements[0]);
	if (statement->type == StatementType::EXPLAIN_STATEMENT) {
		statement = std::move(statement->Cast<ExplainStatement>().stmt);
	}

	Rewriter rewriter(context, catalog, kind);
	unique_ptr<TableRef> *target = nullptr;
	if (statement->type == StatementType::UPDATE_STATEMENT && update) {
		auto &statement_ = statement->Cast<UpdateStatement>();
		if (statement_.returning_list.empty() == returning) {
			CannotShip(kind, "it is not the statement being run");
		}
		ReturnEveryColumn(statement_.returning_list, returning);
		rewriter.VisitCtes(statement_.cte_map);
		target = &statement_.table;
		if (statement_.from_table) {
			rewriter.VisitRef(*statement_.from_table);
		}
		rewriter.Visit(statement_.set_info->condition);
		for (auto &expression : statement_.set_info->expressions) {
			rewriter.Visit(expression);
		}
	} else if (statement->type == StatementType::INSERT_STATEMENT &&
	           (op_kind == LogicalOperatorType::LOGICAL_MERGE_INTO || op_kind == LogicalOperatorType::LOGICAL_INSERT)) {
		// An INSERT ... ON CONFLICT (a MERGE INTO), or a plain INSERT with RETURNING.
		auto &insert = statement->Cast<InsertStatement>();
		auto merge = op_kind == LogicalOperatorType::LOGICAL_MERGE_INTO;
		if (!insert.on_conflict_info != !merge || insert.returning_list.empty() == returning) {
			CannotShip(kind, "it is not the statement being run");
		}
		ReturnEveryColumn(insert.returning_list, returning, merge);
		rewriter.VisitCtes(insert.cte_map);
		BaseTableRef written;
		written.catalog_name = insert.catalog;
		written.schema_name = insert.schema;
		written.table_name = insert.table;
		if (rewriter.Resolved(written).get() != &changed) {
			CannotShip(kind, "its target is not the table being changed");
		}
		auto remote = RemoteTable {catalog.RemoteName(), changed.schema.name, changed.name};
		insert.catalog = remote.catalog;
		insert.schema = remote.schema;
		insert.table = remote.name;
		if (insert.select_statement) {
			rewriter.VisitNode(*insert.select_statement->node);
		}
		if (!merge) {
			return statement->ToString();
		}
		auto &conflict = *insert.on_conflict_info;
		// (Written back unquoted: a name that needs quotes would mean another there.)
		auto names = conflict.indexed_columns;
		if (conflict.set_info) {
			names.insert(names.end(), conflict.set_info->columns.begin(), conflict.set_info->columns.end());
		}
		for (auto &name : names) {
			if (KeywordHelper::RequiresQuotes(name)) {
				CannotShip(kind, "it names column \"" + name + "\", whose name needs quotes");
			}
		}
		rewriter.Visit(conflict.condition);
		if (conflict.set_info) {
			rewriter.Visit(conflict.set_info->condition);
			for (auto &expression : conflict.set_info->expressions) {
				rewriter.Visit(expression);
			}
		}
		return statement->ToString();
	} else if (statement->type == StatementType::DELETE_STATEMENT && op_kind == LogicalOperatorType::LOGICAL_DELETE) {
		auto &statement_ = statement->Cast<DeleteStatement>();
		if (statement_.returning_list.empty() == returning) {
			CannotShip(kind, "it is not the statement being run");
		}
		ReturnEveryColumn(statement_.returning_list, returning);
		rewriter.VisitCtes(statement_.cte_map);
		target = &statement_.table;
		for (auto &using_clause : statement_.using_clauses) {
			rewriter.VisitRef(*using_clause);
		}
		rewriter.Visit(statement_.condition);
	} else {
		// EXECUTE of a statement PREPAREd in SQL, or a statement inside another one.
		CannotShip(kind, "it is not the statement being run");
	}
	if ((*target)->type != TableReferenceType::BASE_TABLE) {
		CannotShip(kind, "its target is not a table");
	}
	if (rewriter.Resolved((*target)->Cast<BaseTableRef>()).get() != &changed) {
		CannotShip(kind, "its target is not the table being changed");
	}
	rewriter.VisitRef(**target);
	return statement->ToString();
}

} // namespace

std::string ViewSQL(ClientContext &context, OpenduckCatalog &catalog, const std::string &schema,
                    CreateViewInfo &info) {
	auto copy = info.Copy();
	auto &view = copy->Cast<CreateViewInfo>();
	if (view.temporary) {
		CannotShip("CREATE VIEW", "a temporary view belongs to this session");
	}
	view.catalog = catalog.RemoteName();
	view.schema = schema;
	Rewriter rewriter(context, catalog, "CREATE VIEW");
	rewriter.strict = true;
	rewriter.VisitNode(*view.query->node);
	return view.ToString();
}

void CheckShipping(PlannerExtensionInput &input, BoundStatement &statement) {
	std::function<void(LogicalOperator &)> find = [&](LogicalOperator &op) {
		optional_ptr<TableCatalogEntry> changed;
		bool returning = false;
		if (op.type == LogicalOperatorType::LOGICAL_UPDATE) {
			changed = &op.Cast<LogicalUpdate>().table;
			returning = op.Cast<LogicalUpdate>().return_chunk;
		} else if (op.type == LogicalOperatorType::LOGICAL_DELETE) {
			changed = &op.Cast<LogicalDelete>().table;
			returning = op.Cast<LogicalDelete>().return_chunk;
		} else if (op.type == LogicalOperatorType::LOGICAL_MERGE_INTO) {
			changed = &op.Cast<LogicalMergeInto>().table;
			returning = op.Cast<LogicalMergeInto>().return_chunk;
		} else if (op.type == LogicalOperatorType::LOGICAL_INSERT && op.Cast<LogicalInsert>().return_chunk) {
			// Without RETURNING, an INSERT streams its rows up through bulk ingest instead.
			changed = &op.Cast<LogicalInsert>().table;
			returning = true;
		}
		if (changed && changed->catalog.GetCatalogType() == "openduck") {
			auto &state = StatementState::Get(input.context);
			state.checked = true;
			state.refusal.clear();
			state.values.clear();
			if (auto parameters = input.binder.GetParameters()) {
				for (auto &parameter : parameters->GetParameterData()) {
					state.values[parameter.first] = parameter.second.GetValue();
				}
				if (!parameters->GetParameters().empty()) {
					// The SQL sent holds the values: a statement prepared ahead is bound
					// again at each run, with that run's values (DuckDB would otherwise
					// keep a plan that needs no other values, as an INSERT ... VALUES).
					input.binder.GetStatementProperties().always_require_rebind = true;
				}
			}
			auto kind = KindName(op.type);
			try {
				if (returning && changed->HasGeneratedColumns()) {
					CannotShip(kind, "RETURNING of a table with generated columns is not supported");
				}
				for (auto &child : op.children) {
					CheckPlan(kind, changed->catalog.Cast<OpenduckCatalog>(), *child);
				}
			} catch (NotImplementedException &refused) {
				state.refusal = ErrorData(refused).RawMessage();
			}
			return;
		}
		for (auto &child : op.children) {
			find(*child);
		}
	};
	if (statement.plan) {
		find(*statement.plan);
	}
}

PhysicalOperator &OpenduckStatement::Plan(ClientContext &context, PhysicalPlanGenerator &planner,
                                          OpenduckCatalog &catalog, LogicalOperator &op, TableCatalogEntry &table) {
	auto &state = StatementState::Get(context);
	auto checked = state.checked;
	state.checked = false;
	if (!checked) {
		CannotShip(KindName(op.type), "it was not seen bound");
	}
	if (!state.refusal.empty()) {
		throw NotImplementedException(state.refusal);
	}

	// The rows to change are found on the service, by the statement itself: the plan
	// DuckDB made below this operator is never run. Planned as the statement runs (not
	// prepared ahead), the SQL is made now, for EXPLAIN and to be sent, and one that
	// cannot be shipped fails before anything runs; else when it runs.
	auto running = context.transaction.GetActiveQuery() != MAXIMUM_QUERY_ID;
	if (Returns(op)) {
		// The rows changed come back: every column, which DuckDB's plan above this
		// operator evaluates the RETURNING list over.
		auto sql = running ? ShippedSQL(context, catalog, table, op.type, true) : std::string();
		auto kind = op.type;
		auto make_sql = [&catalog, &table, kind](ClientContext &at) {
			return ShippedSQL(at, catalog, table, kind, true);
		};
		vector<std::string> names;
		for (auto &column : table.GetColumns().Physical()) {
			names.push_back(column.Name());
		}
		if (op.type == LogicalOperatorType::LOGICAL_MERGE_INTO) {
			names.push_back("merge_action");
		}
		auto scan = ShippedChange(catalog, std::move(sql), std::move(make_sql), op.types, std::move(names));
		return planner.CreatePlan(*scan);
	}
	auto &made = planner.Make<OpenduckStatement>(catalog, table, op.type, op.estimated_cardinality);
	if (running) {
		made.Cast<OpenduckStatement>().sent = ShippedSQL(context, catalog, table, op.type, false);
	}
	return made;
}

OpenduckStatement::OpenduckStatement(PhysicalPlan &plan, OpenduckCatalog &catalog, TableCatalogEntry &table,
                                     LogicalOperatorType kind, idx_t estimated_cardinality, std::string sql)
    : PhysicalOperator(plan, PhysicalOperatorType::EXTENSION, {LogicalType::BIGINT}, estimated_cardinality),
      catalog(catalog), table(table), kind(kind), sent(std::move(sql)) {
}

InsertionOrderPreservingMap<std::string> OpenduckStatement::ParamsToString() const {
	InsertionOrderPreservingMap<std::string> result;
	result["Table"] = RemoteTable {catalog.RemoteName(), table.schema.name, table.name}.ToSQL();
	result["Service"] = catalog.GetClient()->Endpoint();
	if (!sent.empty()) {
		result["Remote SQL"] = sent;
	}
	return result;
}

SourceResultType OpenduckStatement::GetDataInternal(ExecutionContext &context, DataChunk &chunk,
                                                    OperatorSourceInput &input) const {
	auto &client = context.client;
	if (sent.empty()) {
		// Prepared ahead: made here, where the statement's text and values are known.
		sent = ShippedSQL(client, catalog, table, kind, false);
	}
	auto through = catalog.ClientFor(client, true);
	int64_t rows = 0;
	Check(od_update(through->Get(), sent.c_str(), &client.interrupted, &rows));
	chunk.SetCardinality(1);
	chunk.SetValue(0, 0, Value::BIGINT(rows));
	return SourceResultType::FINISHED;
}

} // namespace openduck
