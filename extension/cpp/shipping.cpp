#include "shipping.hpp"

#include "catalog.hpp"
#include "pushdown.hpp"

#include "duckdb/catalog/catalog_entry/table_catalog_entry.hpp"
#include "duckdb/main/client_context.hpp"
#include "duckdb/parser/expression/columnref_expression.hpp"
#include "duckdb/parser/expression/constant_expression.hpp"
#include "duckdb/parser/expression/function_expression.hpp"
#include "duckdb/parser/expression/parameter_expression.hpp"
#include "duckdb/parser/expression/subquery_expression.hpp"
#include "duckdb/parser/parsed_expression_iterator.hpp"
#include "duckdb/parser/expression/cast_expression.hpp"
#include "duckdb/parser/query_node/recursive_cte_node.hpp"
#include "duckdb/parser/query_node/select_node.hpp"
#include "duckdb/parser/query_node/set_operation_node.hpp"
#include "duckdb/parser/tableref/joinref.hpp"
#include "duckdb/parser/tableref/subqueryref.hpp"
#include "duckdb/planner/binder.hpp"
#include "duckdb/planner/expression_iterator.hpp"
#include "duckdb/planner/operator/logical_expression_get.hpp"
#include "duckdb/planner/operator/logical_get.hpp"

namespace openduck {

using namespace duckdb;

void CannotShip(const std::string &statement, const std::string &why) {
	throw NotImplementedException("openduck: this %s cannot run on the service as written (%s); run it there with "
	                              "openduck_query('<attachment>', '...')",
	                              statement, why);
}

namespace {

//! Functions whose value is the user's session's (its variables, settings, user, or its
//! time zone's today), not the service's.
bool SessionFunction(const std::string &name) {
	static const std::unordered_set<std::string> session = {
	    "getvariable",    "current_setting", "current_database", "current_catalog", "current_schema",
	    "current_schemas", "current_user",   "session_user",     "user",            "current_role",
	    "current_date",   "today",           "current_time",     "get_current_time", "current_localtime",
	    "current_localtimestamp", "localtime", "localtimestamp", "now", "current_timestamp",
	    "get_current_timestamp", "transaction_timestamp", "current_query", "in_search_path",
	    "current_connection_id", "current_transaction_id", "txid_current", "current_query_id",
	    "nextval", "currval"};
	return session.count(StringUtil::Lower(name)) > 0;
}

//! Whether `type` (at any depth) is one named in this session's catalog (parsed, it is
//! unbound until bound: CREATE TYPE's types, ENUMs, extension types), which the service
//! may name otherwise.
bool SessionType(const LogicalType &type) {
	return AnyType(type, [](const LogicalType &member) {
		if (member.id() == LogicalTypeId::UNBOUND) {
			// The parser leaves some of DuckDB's own names unbound too (HUGEINT).
			try {
				auto builtin = UnboundType::TryDefaultBind(member);
				return builtin.id() == LogicalTypeId::UNBOUND || SessionType(builtin);
			} catch (std::exception &) {
				return true;
			}
		}
		return member.id() == LogicalTypeId::ENUM || member.HasAlias();
	});
}

//! Table references a shipped text may hold; anything else (table functions, SHOW,
//! relations of Python data) reads what only this session has.
bool ShippableReference(TableReferenceType type) {
	switch (type) {
	case TableReferenceType::BASE_TABLE:
	case TableReferenceType::JOIN:
	case TableReferenceType::SUBQUERY:
	case TableReferenceType::EXPRESSION_LIST:
	case TableReferenceType::EMPTY_FROM:
		return true;
	default:
		return false;
	}
}

} // namespace

void CheckPlan(const std::string &statement, OpenduckCatalog &catalog, LogicalOperator &op,
               const std::function<bool(TableCatalogEntry &)> &uploaded, optional_ptr<ClientContext> siblings) {
	std::function<void(const Expression &)> check_expression = [&](const Expression &expression) {
		if (ZoneDependent(expression.return_type)) {
			CannotShip(statement, "it computes with time zones, which the service's session need not share");
		}
		ExpressionIterator::EnumerateChildren(expression, check_expression);
	};
	for (auto &expression : op.expressions) {
		check_expression(*expression);
	}
	if (op.type == LogicalOperatorType::LOGICAL_EXPRESSION_GET) {
		// VALUES: its rows are expressions of their own, typed as the columns they fill
		// when no cast is needed above them.
		auto &values = op.Cast<LogicalExpressionGet>();
		for (auto &type : values.expr_types) {
			if (ZoneDependent(type)) {
				CannotShip(statement, "it computes with time zones, which the service's session need not share");
			}
		}
		for (auto &row : values.expressions) {
			for (auto &expression : row) {
				check_expression(*expression);
			}
		}
	}
	if (op.type == LogicalOperatorType::LOGICAL_GET) {
		auto &get = op.Cast<LogicalGet>();
		auto table = get.GetTable();
		if (!table) {
			CannotShip(statement, "it reads " + get.function.name + "(), which is not a table of the attachment");
		}
		auto &owner = table->ParentCatalog();
		auto remote = get.function.name == "openduck_scan" &&
		              (&owner == &catalog || (siblings && catalog.Sibling(*siblings, owner)));
		if (!remote && !(uploaded && uploaded(*table))) {
			CannotShip(statement, "it reads " + table->ParentCatalog().GetName() + "." + table->schema.name + "." +
			                          table->name + ", which is not a table of the same attachment");
		}
		auto &columns = get.GetColumnIds();
		for (auto &column : columns) {
			if (!column.IsVirtualColumn() && ZoneDependent(get.GetColumnType(column))) {
				CannotShip(statement, "it reads values with time zones, which the service's session need not share");
			}
		}
		for (auto &filter : get.table_filters.filters) {
			if (filter.first < columns.size() && ZoneDependent(get.GetColumnType(columns[filter.first]))) {
				CannotShip(statement, "it filters on time zones, which the service's session need not share");
			}
		}
	}
	for (auto &child : op.children) {
		CheckPlan(statement, catalog, *child, uploaded, siblings);
	}
}

Rewriter::Rewriter(ClientContext &context, OpenduckCatalog &catalog, std::string statement)
    : context(context), catalog(catalog), statement(std::move(statement)), parameters(StatementState::Get(context)) {
}

void Rewriter::Visit(unique_ptr<ParsedExpression> &expression) {
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
	case ExpressionClass::FUNCTION: {
		auto &function = expression->Cast<FunctionExpression>();
		if (SessionFunction(function.function_name)) {
			CannotShip(statement, "it calls " + function.function_name + ", whose value is this session's");
		}
		// A macro or a function registered in this session (a UDF) does not exist on the
		// service; DuckDB's own functions are internal entries of the system catalog.
		auto entry = Catalog::GetEntry(context, function.catalog, function.schema,
		                               EntryLookupInfo(CatalogType::SCALAR_FUNCTION_ENTRY, function.function_name),
		                               OnEntryNotFound::RETURN_NULL);
		if (entry && (!entry->internal || entry->ParentCatalog().GetName() != SYSTEM_CATALOG)) {
			CannotShip(statement, "it calls " + function.function_name + ", which only this session defines");
		}
		break;
	}
	case ExpressionClass::COLUMN_REF: {
		auto &names = expression->Cast<ColumnRefExpression>().column_names;
		// `cloud.t.x` names the attachment's alias, which means nothing on the service.
		if (names.size() > 2) {
			CannotShip(statement, "it names a column by catalog or schema");
		}
		// `current_date` and its kin are written without parentheses.
		if (names.size() == 1 && SessionFunction(names[0])) {
			CannotShip(statement, "it reads " + names[0] + ", whose value is this session's");
		}
		break;
	}
	case ExpressionClass::STAR:
		saw_star = true;
		break;
	case ExpressionClass::CAST: {
		auto &type = expression->Cast<CastExpression>().cast_type;
		if (SessionType(type)) {
			CannotShip(statement, "it casts to " + type.ToString() + ", a type of this session");
		}
		break;
	}
	case ExpressionClass::SUBQUERY: {
		auto &subquery = expression->Cast<SubqueryExpression>();
		VisitNode(*subquery.subquery->node);
		break;
	}
	default:
		break;
	}
	ParsedExpressionIterator::EnumerateChildren(*expression,
	                                            [&](unique_ptr<ParsedExpression> &child) { Visit(child); });
}

void Rewriter::VisitNode(QueryNode &node) {
	CollectCtes(node);
	ParsedExpressionIterator::EnumerateQueryNodeChildren(
	    node, [&](unique_ptr<ParsedExpression> &child) { Visit(child); }, [&](TableRef &ref) { Reference(ref); });
}

void Rewriter::VisitRef(TableRef &ref) {
	ParsedExpressionIterator::EnumerateTableRefChildren(
	    ref, [&](unique_ptr<ParsedExpression> &child) { Visit(child); }, [&](TableRef &child) { Reference(child); });
}

void Rewriter::VisitCtes(CommonTableExpressionMap &map) {
	for (auto &cte : map.map) {
		ctes.insert(cte.first);
		CollectCtes(*cte.second->query->node);
	}
	for (auto &cte : map.map) {
		VisitNode(*cte.second->query->node);
	}
}

void Rewriter::CollectCtes(QueryNode &node) {
	// Every CTE name at any depth below `node` (CTE bodies, set operations, subqueries in
	// FROM and in expressions), before any reference is resolved: scopes are not
	// followed, so a name that is both a CTE's somewhere and a table's is refused.
	std::function<void(ParsedExpression &)> in_expression = [&](ParsedExpression &expression) {
		if (expression.GetExpressionClass() == ExpressionClass::SUBQUERY) {
			CollectCtes(*expression.Cast<SubqueryExpression>().subquery->node);
		}
		ParsedExpressionIterator::EnumerateChildren(expression, in_expression);
	};
	std::function<void(TableRef &)> in_ref = [&](TableRef &ref) {
		switch (ref.type) {
		case TableReferenceType::SUBQUERY:
			CollectCtes(*ref.Cast<SubqueryRef>().subquery->node);
			break;
		case TableReferenceType::JOIN: {
			auto &join = ref.Cast<JoinRef>();
			in_ref(*join.left);
			in_ref(*join.right);
			if (join.condition) {
				in_expression(*join.condition);
			}
			break;
		}
		default:
			break;
		}
	};
	for (auto &cte : node.cte_map.map) {
		ctes.insert(cte.first);
		CollectCtes(*cte.second->query->node);
	}
	switch (node.type) {
	case QueryNodeType::SELECT_NODE: {
		auto &select = node.Cast<SelectNode>();
		for (auto &expression : select.select_list) {
			in_expression(*expression);
		}
		for (auto *clause : {&select.where_clause, &select.having, &select.qualify}) {
			if (*clause) {
				in_expression(**clause);
			}
		}
		for (auto &expression : select.groups.group_expressions) {
			in_expression(*expression);
		}
		if (select.from_table) {
			in_ref(*select.from_table);
		}
		break;
	}
	case QueryNodeType::SET_OPERATION_NODE:
		for (auto &child : node.Cast<SetOperationNode>().children) {
			CollectCtes(*child);
		}
		break;
	case QueryNodeType::RECURSIVE_CTE_NODE: {
		auto &recursive = node.Cast<RecursiveCTENode>();
		ctes.insert(recursive.ctename);
		CollectCtes(*recursive.left);
		CollectCtes(*recursive.right);
		break;
	}
	default:
		// Another kind of node: its names are not followed, so it is not shipped.
		CannotShip(statement, "it holds a query of a kind not checked for shipping");
	}
	ParsedExpressionIterator::EnumerateQueryNodeModifiers(
	    node, [&](unique_ptr<ParsedExpression> &child) { in_expression(*child); });
}

void Rewriter::KnowCtes(QueryNode &root) {
	CollectCtes(root);
}

bool Rewriter::IsCte(const BaseTableRef &ref) const {
	return ref.catalog_name.empty() && ref.schema_name.empty() && ctes.count(ref.table_name);
}

optional_ptr<TableCatalogEntry> Rewriter::Resolved(BaseTableRef &ref) {
	return IsCte(ref) ? nullptr : TableNamed(context, ref);
}

optional_ptr<TableCatalogEntry> TableNamed(ClientContext &context, const BaseTableRef &ref) {
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

void Rewriter::Reference(TableRef &ref) {
	if (strict && !ShippableReference(ref.type)) {
		CannotShip(statement, "it reads a table function or data of this session");
	}
	if (ref.type != TableReferenceType::BASE_TABLE) {
		return;
	}
	auto &table = ref.Cast<BaseTableRef>();
	if (strict && IsCte(table)) {
		// A CTE's name that is also a table's: which one a reference means depends on its
		// scope, which this rewrite does not follow.
		auto saved = std::move(ctes);
		ctes.clear();
		auto shadowed = Resolved(table);
		ctes = std::move(saved);
		if (shadowed) {
			CannotShip(statement, "a CTE is named like the table " + table.table_name);
		}
		return;
	}
	auto entry = Resolved(table);
	auto owner = !entry ? nullptr
	             : siblings ? catalog.Sibling(context, entry->ParentCatalog())
	                        : optional_ptr<OpenduckCatalog>(&entry->ParentCatalog() == &catalog ? &catalog : nullptr);
	if (owner) {
		table.catalog_name = owner->RemoteName();
		table.schema_name = entry->ParentSchema().name;
	} else if (entry && foreign && foreign(table, *entry)) {
		// Renamed to what the service has of it.
	} else if (strict && !IsCte(table)) {
		CannotShip(statement, "it reads " + table.ToString() + ", which is not a table of the same attachment");
	}
	// Otherwise the name is a CTE's (the plan read nothing but the attachment's tables).
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
