#include "modify.hpp"

#include "catalog.hpp"
#include "pushdown.hpp"
#include "scan.hpp"

#include "duckdb/catalog/catalog_entry/table_catalog_entry.hpp"
#include "duckdb/main/client_context.hpp"
#include "duckdb/parser/expression/constant_expression.hpp"
#include "duckdb/parser/expression/function_expression.hpp"
#include "duckdb/parser/expression/parameter_expression.hpp"
#include "duckdb/parser/expression/subquery_expression.hpp"
#include "duckdb/parser/parsed_expression_iterator.hpp"
#include "duckdb/parser/parsed_data/create_view_info.hpp"
#include "duckdb/parser/parser.hpp"
#include "duckdb/parser/statement/delete_statement.hpp"
#include "duckdb/parser/statement/explain_statement.hpp"
#include "duckdb/parser/statement/update_statement.hpp"
#include "duckdb/parser/tableref/basetableref.hpp"
#include "duckdb/planner/binder.hpp"
#include "duckdb/planner/bound_parameter_map.hpp"
#include "duckdb/planner/expression_iterator.hpp"
#include "duckdb/planner/operator/logical_delete.hpp"
#include "duckdb/planner/operator/logical_get.hpp"
#include "duckdb/planner/operator/logical_update.hpp"

namespace openduck {

using namespace duckdb;

namespace {

[[noreturn]] void CannotShip(const std::string &statement, const std::string &why) {
	throw NotImplementedException("openduck: this %s cannot run on the service as written (%s); run it there with "
	                              "openduck_query('<attachment>', '...')",
	                              statement, why);
}

//! Functions whose value is the user's session's, not the service's.
bool SessionFunction(const std::string &name) {
	static const std::unordered_set<std::string> session = {
	    "getvariable",    "current_setting", "current_database", "current_catalog", "current_schema",
	    "current_schemas", "current_user",   "session_user",     "user",            "current_role"};
	return session.count(StringUtil::Lower(name)) > 0;
}

//! Checks the bound plan: every source of rows must be a scan of `catalog`, and nothing
//! may depend on the session's time zone.
void CheckPlan(const std::string &statement, OpenduckCatalog &catalog, LogicalOperator &op) {
	std::function<void(const Expression &)> check_expression = [&](const Expression &expression) {
		if (ZoneDependent(expression.return_type)) {
			CannotShip(statement, "it computes with time zones, which the service's session need not share");
		}
		ExpressionIterator::EnumerateChildren(expression, check_expression);
	};
	for (auto &expression : op.expressions) {
		check_expression(*expression);
	}
	if (op.type == LogicalOperatorType::LOGICAL_GET) {
		auto &get = op.Cast<LogicalGet>();
		auto table = get.GetTable();
		if (!table) {
			CannotShip(statement, "it reads " + get.function.name + "(), which is not a table of the attachment");
		}
		if (get.function.name != "openduck_scan" || &table->ParentCatalog() != &catalog) {
			CannotShip(statement, "it reads " + table->ParentCatalog().GetName() + "." + table->schema.name + "." +
			                          table->name + ", which is not a table of the same attachment");
		}
		auto &columns = get.GetColumnIds();
		for (auto &filter : get.table_filters.filters) {
			if (filter.first < columns.size() && ZoneDependent(get.GetColumnType(columns[filter.first]))) {
				CannotShip(statement, "it filters on time zones, which the service's session need not share");
			}
		}
	}
	for (auto &child : op.children) {
		CheckPlan(statement, catalog, *child);
	}
}

//! Rewrites a parsed UPDATE or DELETE for the service.
class Rewriter {
public:
	Rewriter(ClientContext &context, OpenduckCatalog &catalog, std::string statement)
	    : context(context), catalog(catalog), statement(std::move(statement)),
	      parameters(StatementState::Get(context)) {
	}

	void Visit(unique_ptr<ParsedExpression> &expression) {
		if (!expression) {
			return;
		}
		switch (expression->GetExpressionClass()) {
		case ExpressionClass::PARAMETER: {
			auto &parameter = expression->Cast<ParameterExpression>();
			auto value = parameters.values.find(parameter.identifier);
			if (value == parameters.values.end()) {
				CannotShip(statement, "the value of parameter $" + parameter.identifier + " is not known here");
			}
			auto alias = expression->GetAlias();
			expression = make_uniq<ConstantExpression>(value->second);
			expression->SetAlias(alias);
			return;
		}
		case ExpressionClass::FUNCTION:
			if (SessionFunction(expression->Cast<FunctionExpression>().function_name)) {
				CannotShip(statement, "it calls " + expression->Cast<FunctionExpression>().function_name +
				                          ", whose value is this session's");
			}
			break;
		case ExpressionClass::SUBQUERY: {
			auto &subquery = expression->Cast<SubqueryExpression>();
			VisitNode(*subquery.subquery->node);
			break;
		}
		default:
			break;
		}
		ParsedExpressionIterator::EnumerateChildren(
		    *expression, [&](unique_ptr<ParsedExpression> &child) { Visit(child); });
	}

	void VisitNode(QueryNode &node) {
		for (auto &cte : node.cte_map.map) {
			ctes.insert(cte.first);
		}
		ParsedExpressionIterator::EnumerateQueryNodeChildren(
		    node, [&](unique_ptr<ParsedExpression> &child) { Visit(child); },
		    [&](TableRef &ref) { Reference(ref); });
	}

	void VisitRef(TableRef &ref) {
		ParsedExpressionIterator::EnumerateTableRefChildren(
		    ref, [&](unique_ptr<ParsedExpression> &child) { Visit(child); },
		    [&](TableRef &child) { Reference(child); });
	}

	void VisitCtes(CommonTableExpressionMap &map) {
		for (auto &cte : map.map) {
			ctes.insert(cte.first);
		}
		for (auto &cte : map.map) {
			VisitNode(*cte.second->query->node);
		}
	}

	//! Whether `ref` names a CTE of the statement.
	bool IsCte(const BaseTableRef &ref) const {
		return ref.catalog_name.empty() && ref.schema_name.empty() && ctes.count(ref.table_name);
	}

	//! The table entry a base table reference resolves to, in any catalog (null: a CTE,
	//! or nothing).
	optional_ptr<TableCatalogEntry> Resolved(BaseTableRef &ref) {
		if (IsCte(ref)) {
			return nullptr;
		}
		auto catalog_name = ref.catalog_name;
		auto schema_name = ref.schema_name;
		Binder::BindSchemaOrCatalog(context, catalog_name, schema_name);
		auto entry = Catalog::GetEntry(context, catalog_name, schema_name,
		                               EntryLookupInfo(CatalogType::TABLE_ENTRY, ref.table_name),
		                               OnEntryNotFound::RETURN_NULL);
		if (!entry || entry->type != CatalogType::TABLE_ENTRY) {
			return nullptr;
		}
		return &entry->Cast<TableCatalogEntry>();
	}

	//! Refuse every reference that is no table of the attachment (nor a CTE), instead of
	//! leaving it as written: for a view, whose query DuckDB did not plan here.
	bool strict = false;

private:
	void Reference(TableRef &ref) {
		if (strict && ref.type == TableReferenceType::TABLE_FUNCTION) {
			CannotShip(statement, "it calls a table function, which would run on the service");
		}
		if (ref.type != TableReferenceType::BASE_TABLE) {
			return;
		}
		auto &table = ref.Cast<BaseTableRef>();
		auto entry = Resolved(table);
		if (entry && &entry->ParentCatalog() == &catalog) {
			table.catalog_name = catalog.RemoteName();
			table.schema_name = entry->ParentSchema().name;
		} else if (strict && !IsCte(table)) {
			CannotShip(statement, "it reads " + table.ToString() + ", which is not a table of the same attachment");
		}
		// Otherwise the name is a CTE's (the plan read nothing but the attachment's tables).
	}

	ClientContext &context;
	OpenduckCatalog &catalog;
	std::string statement;
	StatementState &parameters;
	case_insensitive_set_t ctes;
};

//! The statement being run, rewritten for the service: an UPDATE (`update`) or DELETE
//! of `changed` that CheckShipping let through (RETURNING, local tables and the like are
//! refused there, from the bound plan).
std::string ShippedSQL(ClientContext &context, OpenduckCatalog &catalog, TableCatalogEntry &changed, bool update) {
	auto kind = update ? "UPDATE" : "DELETE";
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
		rewriter.VisitCtes(statement_.cte_map);
		target = &statement_.table;
		if (statement_.from_table) {
			rewriter.VisitRef(*statement_.from_table);
		}
		rewriter.Visit(statement_.set_info->condition);
		for (auto &expression : statement_.set_info->expressions) {
			rewriter.Visit(expression);
		}
	} else if (statement->type == StatementType::DELETE_STATEMENT && !update) {
		auto &statement_ = statement->Cast<DeleteStatement>();
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
			}
			auto kind = op.type == LogicalOperatorType::LOGICAL_UPDATE ? "UPDATE" : "DELETE";
			try {
				if (returning) {
					CannotShip(kind, "RETURNING is not supported yet");
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
	auto update = op.type == LogicalOperatorType::LOGICAL_UPDATE;
	auto &state = StatementState::Get(context);
	auto checked = state.checked;
	state.checked = false;
	if (!checked) {
		CannotShip(update ? "UPDATE" : "DELETE", "it was not seen bound");
	}
	if (!state.refusal.empty()) {
		throw NotImplementedException(state.refusal);
	}

	// The rows to change are found on the service, by the statement itself: the plan
	// DuckDB made below this operator is never run.
	auto &made = planner.Make<OpenduckStatement>(catalog, table, update, op.estimated_cardinality);
	if (context.transaction.GetActiveQuery() != MAXIMUM_QUERY_ID) {
		// Planned as the statement runs (not prepared ahead): the SQL is made now, for
		// EXPLAIN and to be sent, and one that cannot be shipped fails before anything runs.
		made.Cast<OpenduckStatement>().sent = ShippedSQL(context, catalog, table, update);
	}
	return made;
}

OpenduckStatement::OpenduckStatement(PhysicalPlan &plan, OpenduckCatalog &catalog, TableCatalogEntry &table,
                                     bool update, idx_t estimated_cardinality)
    : PhysicalOperator(plan, PhysicalOperatorType::EXTENSION, {LogicalType::BIGINT}, estimated_cardinality),
      catalog(catalog), table(table), update(update) {
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
		sent = ShippedSQL(client, catalog, table, update);
	}
	auto through = catalog.ClientFor(client, true);
	int64_t rows = 0;
	Check(od_update(through->Get(), sent.c_str(), &client.interrupted, &rows));
	chunk.SetCardinality(1);
	chunk.SetValue(0, 0, Value::BIGINT(rows));
	return SourceResultType::FINISHED;
}

StatementState &StatementState::Get(ClientContext &context) {
	return *context.registered_state->GetOrCreate<StatementState>("openduck_statement");
}

void StatementState::QueryEnd(ClientContext &) {
	values.clear();
	checked = false;
	refusal.clear();
}

} // namespace openduck
