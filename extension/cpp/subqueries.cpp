#include "subqueries.hpp"

#include "catalog.hpp"
#include "joins.hpp"
#include "scan.hpp"
#include "shipping.hpp"

#include "duckdb/main/client_context.hpp"
#include "duckdb/main/client_context_state.hpp"
#include "duckdb/parser/expression/constant_expression.hpp"
#include "duckdb/parser/expression/function_expression.hpp"
#include "duckdb/parser/expression/star_expression.hpp"
#include "duckdb/parser/expression/subquery_expression.hpp"
#include "duckdb/parser/parsed_expression_iterator.hpp"
#include "duckdb/parser/query_node/select_node.hpp"
#include "duckdb/parser/query_node/set_operation_node.hpp"
#include "duckdb/parser/tableref/joinref.hpp"
#include "duckdb/parser/tableref/subqueryref.hpp"
#include "duckdb/parser/tableref/table_function_ref.hpp"

namespace openduck {

using namespace duckdb;

namespace {

//! Named as a query shipped whole is in EXPLAIN.
const char *const FUNCTION = "openduck_remote_query";

//! A subquery placed on a service: what its scan is bound to.
struct Placed {
	reference<OpenduckCatalog> catalog;
	std::string sql;
	vector<LogicalType> types;
	vector<std::string> names;
	bool ordered;
};

//! Per connection: the subqueries placed in the statement being planned, by number (the
//! argument of their `openduck_remote_query`). Bound before the statement's query ends.
class PlacedState : public ClientContextState {
public:
	static PlacedState &Get(ClientContext &context) {
		return *context.registered_state->GetOrCreate<PlacedState>("openduck_placed");
	}
	void QueryEnd(ClientContext &) override {
		placed.clear();
	}
	vector<Placed> placed;
};

//! Whether the rows of `plan` come in an order (its own ORDER BY or top-N), which the scan
//! of its result keeps.
bool Ordered(LogicalOperator &plan) {
	if (plan.type == LogicalOperatorType::LOGICAL_ORDER_BY || plan.type == LogicalOperatorType::LOGICAL_TOP_N) {
		return true;
	}
	for (auto &child : plan.children) {
		if (Ordered(*child)) {
			return true;
		}
	}
	return false;
}

//! Whether two of `names` are the same to DuckDB (a scan's columns are renamed then).
bool Repeats(const vector<std::string> &names) {
	case_insensitive_set_t seen;
	for (auto &name : names) {
		if (!seen.insert(name).second) {
			return true;
		}
	}
	return false;
}

//! `SELECT * FROM openduck_remote_query(number)`.
unique_ptr<QueryNode> ScanOfPlaced(idx_t number) {
	vector<unique_ptr<ParsedExpression>> arguments;
	arguments.push_back(make_uniq<ConstantExpression>(Value::BIGINT(NumericCast<int64_t>(number))));
	auto function = make_uniq<TableFunctionRef>();
	function->function = make_uniq<FunctionExpression>(FUNCTION, std::move(arguments));
	auto select = make_uniq<SelectNode>();
	select->select_list.push_back(make_uniq<StarExpression>());
	select->from_table = std::move(function);
	return std::move(select);
}

//! Walks a statement's query nodes from the outside in, placing each subquery whole when
//! it can, and its parts otherwise.
class Placer {
public:
	Placer(ClientContext &context, OpenduckCatalog &catalog, const SubqueryPlace &place, QueryNode &root)
	    : context(context), catalog(catalog), place(place), root(root) {
	}

	//! The parts of `node` (not `node` itself: the statement's own query).
	void Parts(QueryNode &node) {
		for (auto &cte : node.cte_map.map) {
			Candidate(cte.second->query->node);
		}
		switch (node.type) {
		case QueryNodeType::SELECT_NODE: {
			auto &select = node.Cast<SelectNode>();
			for (auto &expression : select.select_list) {
				Expression(expression);
			}
			for (auto *clause : {&select.where_clause, &select.having, &select.qualify}) {
				Expression(*clause);
			}
			for (auto &expression : select.groups.group_expressions) {
				Expression(expression);
			}
			if (select.from_table && !PlaceJoin(select)) {
				Reference(*select.from_table);
			}
			break;
		}
		case QueryNodeType::SET_OPERATION_NODE:
			for (auto &child : node.Cast<SetOperationNode>().children) {
				Candidate(child);
			}
			break;
		default:
			return; // a recursive CTE: its parts read each other
		}
		ParsedExpressionIterator::EnumerateQueryNodeModifiers(
		    node, [&](unique_ptr<ParsedExpression> &child) { Expression(child); });
	}

	idx_t placed = 0;

private:
	void Candidate(unique_ptr<QueryNode> &node) {
		if (!Place(node)) {
			Parts(*node);
		}
	}

	void Expression(unique_ptr<ParsedExpression> &expression) {
		if (!expression) {
			return;
		}
		if (expression->GetExpressionClass() == ExpressionClass::SUBQUERY) {
			Candidate(expression->Cast<SubqueryExpression>().subquery->node);
		}
		ParsedExpressionIterator::EnumerateChildren(
		    *expression, [&](unique_ptr<ParsedExpression> &child) { Expression(child); });
	}

	void Reference(TableRef &ref) {
		switch (ref.type) {
		case TableReferenceType::SUBQUERY:
			Candidate(ref.Cast<SubqueryRef>().subquery->node);
			break;
		case TableReferenceType::JOIN: {
			auto &join = ref.Cast<JoinRef>();
			Reference(*join.left);
			Reference(*join.right);
			Expression(join.condition);
			break;
		}
		default:
			break; // a table, a table function (its arguments are this session's)
		}
	}

	//! Joins the service's tables of `select`'s FROM in one derived table placed on the
	//! service (joins.hpp), and looks for subqueries in the rest of the FROM. False, leaving
	//! `select` as it was, when there is no such part or it is not placed.
	bool PlaceJoin(SelectNode &select) {
		case_insensitive_set_t ctes;
		for (auto *node : {&root, static_cast<QueryNode *>(&select)}) {
			for (auto &cte : node->cte_map.map) {
				ctes.insert(cte.first);
			}
		}
		optional_ptr<SubqueryRef> remote;
		unique_ptr<SelectNode> grouped;
		try {
			grouped = GroupServiceJoin(context, catalog, select, ctes, remote);
		} catch (std::exception &) {
			return false;
		}
		if (!grouped || !Place(remote->subquery->node, true)) {
			return false;
		}
		select.select_list = std::move(grouped->select_list);
		select.from_table = std::move(grouped->from_table);
		select.where_clause = std::move(grouped->where_clause);
		select.groups = std::move(grouped->groups);
		select.having = std::move(grouped->having);
		select.qualify = std::move(grouped->qualify);
		select.modifiers = std::move(grouped->modifiers);
		Reference(*select.from_table);
		return true;
	}

	//! Replaces `node` by a scan of its result on the service, when it reads the
	//! attachment's tables only, binds alone, and `place` puts it there (`regrouped`: it is
	//! a FROM's tables regrouped, see PlaceJoin).
	bool Place(unique_ptr<QueryNode> &node, bool regrouped = false) {
		std::string sql;
		try {
			Rewriter rewriter(context, catalog, "subquery");
			rewriter.strict = true;
			rewriter.siblings = true;
			rewriter.KnowCtes(root);
			auto text = node->Copy();
			rewriter.VisitNode(*text);
			sql = text->ToString();
		} catch (std::exception &) {
			return false; // it reads something else, or cannot run there exactly as here
		}
		SelectStatement alone;
		alone.node = node->Copy();
		BoundStatement bound;
		try {
			bound = Binder::CreateBinder(context)->Bind(static_cast<SQLStatement &>(alone));
		} catch (std::exception &) {
			return false; // it reads what is around it
		}
		if (!bound.plan || Repeats(bound.names) || !place(*bound.plan, regrouped ? &sql : nullptr)) {
			return false;
		}
		auto &state = PlacedState::Get(context);
		auto number = state.placed.size();
		state.placed.push_back(Placed {catalog, std::move(sql), bound.types, bound.names, Ordered(*bound.plan)});
		node = ScanOfPlaced(number);
		placed++;
		return true;
	}

	ClientContext &context;
	OpenduckCatalog &catalog;
	const SubqueryPlace &place;
	QueryNode &root;
};

unique_ptr<FunctionData> BindPlaced(ClientContext &context, TableFunctionBindInput &input,
                                    vector<LogicalType> &return_types, vector<std::string> &names) {
	auto &placed = PlacedState::Get(context).placed;
	auto &number = input.inputs[0];
	if (number.IsNull() || number.GetValue<int64_t>() < 0 ||
	    NumericCast<idx_t>(number.GetValue<int64_t>()) >= placed.size()) {
		throw BinderException("%s(n) scans a subquery placed on an openduck service while its statement is "
		                      "planned; it is not called by name (run SQL there with openduck_query)",
		                      FUNCTION);
	}
	auto &subquery = placed[NumericCast<idx_t>(number.GetValue<int64_t>())];
	return_types = subquery.types;
	names = subquery.names;
	return ShippedQueryData(subquery.catalog, subquery.sql, subquery.types, subquery.ordered);
}

} // namespace

unique_ptr<LogicalOperator> PlaceSubqueries(ClientContext &context, Binder &binder, SelectStatement &select,
                                            OpenduckCatalog &catalog, const SubqueryPlace &place,
                                            vector<std::string> &names) {
	Placer placer(context, catalog, place, *select.node);
	placer.Parts(*select.node);
	if (placer.placed == 0) {
		return nullptr;
	}
	auto bound = Binder::CreateBinder(context, &binder)->Bind(static_cast<SQLStatement &>(select));
	names = std::move(bound.names);
	return std::move(bound.plan);
}

TableFunction PlacedSubqueryFunction() {
	return ShippedRows(FUNCTION, {LogicalType::BIGINT}, BindPlaced);
}

} // namespace openduck
