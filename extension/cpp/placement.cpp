#include "placement.hpp"

#include "bridge.hpp"
#include "catalog.hpp"
#include "cost.hpp"
#include "pushdown.hpp"
#include "scan.hpp"
#include "shipping.hpp"
#include "subqueries.hpp"

#include <cmath>

#include "duckdb/main/client_context.hpp"
#include "duckdb/main/config.hpp"
#include "duckdb/parser/parser.hpp"
#include "duckdb/parser/parsed_data/create_table_info.hpp"
#include "duckdb/parser/statement/create_statement.hpp"
#include "duckdb/parser/statement/explain_statement.hpp"
#include "duckdb/parser/statement/insert_statement.hpp"
#include "duckdb/parser/query_node/select_node.hpp"
#include "duckdb/parser/statement/select_statement.hpp"
#include "duckdb/planner/expression/bound_cast_expression.hpp"
#include "duckdb/planner/expression/bound_columnref_expression.hpp"
#include "duckdb/planner/operator/logical_create_table.hpp"
#include "duckdb/planner/operator/logical_insert.hpp"
#include "duckdb/planner/operator/logical_projection.hpp"
#include "duckdb/planner/binder.hpp"
#include "duckdb/planner/bound_parameter_map.hpp"

namespace openduck {

using namespace duckdb;

namespace {

const char *const SETTING = "openduck_placement";

enum class Placement { AUTO, LOCAL, REMOTE };

Placement PlacementOf(const Value &value) {
	auto text = StringUtil::Lower(value.ToString());
	if (text == "auto") {
		return Placement::AUTO;
	}
	if (text == "local") {
		return Placement::LOCAL;
	}
	if (text == "remote") {
		return Placement::REMOTE;
	}
	throw InvalidInputException("openduck_placement must be 'auto', 'local' or 'remote', not '%s'", value.ToString());
}

void ValidatePlacement(ClientContext &, SetScope, Value &parameter) {
	PlacementOf(parameter);
}

Placement CurrentPlacement(ClientContext &context) {
	Value value;
	if (context.TryGetCurrentSetting(SETTING, value) && !value.IsNull()) {
		return PlacementOf(value);
	}
	return Placement::AUTO;
}

//! Settings that change what a query means, at DuckDB's defaults (which the service's
//! sessions keep). A session that changed one runs its queries here.
bool SessionSharesMeaning(ClientContext &context) {
	static const std::pair<const char *, const char *> defaults[] = {
	    {"default_collation", ""},
	    {"default_order", "ASCENDING"},
	    {"default_null_order", "NULLS_LAST"},
	    {"integer_division", "false"},
	    {"ieee_floating_point_ops", "true"},
	    {"scalar_subquery_error_on_multiple_rows", "true"},
	    {"order_by_non_integer_literal", "false"},
	};
	for (auto &setting : defaults) {
		Value value;
		if (context.TryGetCurrentSetting(setting.first, value) &&
		    !StringUtil::CIEquals(value.ToString(), setting.second)) {
			return false;
		}
	}
	return true;
}

//! Whether `op` holds an operator of `types`.
bool Holds(LogicalOperator &op, std::initializer_list<LogicalOperatorType> types) {
	for (auto type : types) {
		if (op.type == type) {
			return true;
		}
	}
	for (auto &child : op.children) {
		if (Holds(*child, types)) {
			return true;
		}
	}
	return false;
}

//! Whether the plan does more than scan, filter and order: then running it on the service
//! moves less than its scans would (a join, an aggregate, DISTINCT, LIMIT, ...).
bool Reduces(LogicalOperator &op) {
	switch (op.type) {
	case LogicalOperatorType::LOGICAL_GET:
	case LogicalOperatorType::LOGICAL_FILTER:
	case LogicalOperatorType::LOGICAL_PROJECTION:
	case LogicalOperatorType::LOGICAL_ORDER_BY:
		break;
	default:
		return true;
	}
	for (auto &child : op.children) {
		if (Reduces(*child)) {
			return true;
		}
	}
	return false;
}

//! Whether the plan reads a column of the service whose type there is not the one it has
//! here (OpenduckTable::Retyped: a TIMETZ read as TIME, a BIT as BLOB, a collation), or of
//! a table whose columns the service did not describe: the service
//! would compare, order and compute with its own.
bool ReadsRetypedColumns(QueryReads &reads) {
	for (auto &read : reads.remote) {
		auto &table = read.table.get().Cast<OpenduckTable>();
		if (!table.Described()) {
			return true;
		}
		for (auto &column : read.get.get().GetColumnIds()) {
			if (!column.IsVirtualColumn() && table.Retyped(column.GetPrimaryIndex())) {
				return true;
			}
		}
	}
	return false;
}

const char *const ROUND_TRIP_SETTING = "openduck_link_round_trip_ms";
const char *const THROUGHPUT_SETTING = "openduck_link_megabytes_per_second";

//! Round trips beyond rows: a copy's DROP of the copy it replaces and CREATE (a FlightInfo
//! and a DoGet each) and its ingest; once for the copies, their transaction's begin and
//! commit and the query's FlightInfo and DoGet; a scan's FlightInfo and DoGet.
const idx_t COPY_ROUND_TRIPS = 5;
const idx_t COPIES_ROUND_TRIPS = 4;
const idx_t SCAN_ROUND_TRIPS = 2;

//! What moving rows over an attachment's link takes: its round trip and throughput, as
//! the settings say or as the attachment measured (before it measured anything: 1 ms and
//! 100 MB/s).
struct LinkCost {
	double round_trip = 0.001;
	double bytes_per_second = 100e6;

	static LinkCost Of(ClientContext &context, OpenduckCatalog &catalog) {
		LinkCost link;
		uint64_t round_trip_us = 0;
		uint64_t rate = 0;
		catalog.GetClient()->Link(round_trip_us, rate);
		if (round_trip_us) {
			link.round_trip = static_cast<double>(round_trip_us) / 1e6;
		}
		if (rate) {
			link.bytes_per_second = static_cast<double>(rate);
		}
		Value value;
		if (context.TryGetCurrentSetting(ROUND_TRIP_SETTING, value) && !value.IsNull()) {
			link.round_trip = value.GetValue<double>() / 1e3;
		}
		if (context.TryGetCurrentSetting(THROUGHPUT_SETTING, value) && !value.IsNull()) {
			link.bytes_per_second = value.GetValue<double>() * 1e6;
		}
		return link;
	}

	//! Seconds to move `bytes` in `round_trips` round trips.
	double Seconds(idx_t bytes, idx_t round_trips) const {
		return static_cast<double>(round_trips) * round_trip + static_cast<double>(bytes) / bytes_per_second;
	}
};

void ValidatePositive(ClientContext &, SetScope, Value &value) {
	if (value.IsNull()) {
		return;
	}
	auto number = value.GetValue<double>();
	if (!std::isfinite(number) || number < 1e-6) {
		throw InvalidInputException("openduck: a link's round trip and throughput must be positive and finite, at "
		                            "least 0.000001 (NULL: measured)");
	}
}

//! Whether copying this session's tables up takes less time than bringing the service's
//! down, over the attachment's link: the copies' rows and round trips (none for a table
//! whose copy is kept there), against the scans' under their filters (the service counts
//! them when the unfiltered estimate alone would copy). The result comes down either way
//! when it runs there, and is small next to either for most analytics.
bool CopyingUpIsFaster(ClientContext &context, OpenduckCatalog &catalog, QueryReads &reads, LogicalOperator &plan) {
	auto copies = NumericCast<idx_t>(
	    std::count_if(reads.local.begin(), reads.local.end(), [](const LocalRead &read) { return !read.kept; }));
	if (copies == 0) {
		return true; // every copy is kept there: nothing goes up
	}
	auto link = LinkCost::Of(context, catalog);
	auto up = link.Seconds(reads.LocalBytes(), COPY_ROUND_TRIPS * copies + COPIES_ROUND_TRIPS);
	auto down = [&]() {
		return link.Seconds(reads.RemoteBytes(), SCAN_ROUND_TRIPS * reads.remote.size());
	};
	if (up >= down()) {
		return false;
	}
	try {
		reads.ProbeRemote(context, plan);
	} catch (std::exception &) {
		return false; // no answer: placed here, which is always exact
	}
	return up < down();
}

//! What the query placed is to the statement: the statement itself (a SELECT), or the
//! rows an INSERT into, or a CREATE TABLE AS of, a table of this session writes.
enum class Source { SELECT, INSERT, CREATE_TABLE };

//! Where the query of `statement`'s plan `root` is (see Source): its `root`, or the
//! source of an INSERT into or a CREATE TABLE AS of a table that is not an attachment's
//! (those are written through the catalog: modify.cpp, write.cpp).
Source SourceOf(unique_ptr<LogicalOperator> *&root) {
	auto &op = **root;
	if (op.children.size() != 1) {
		return Source::SELECT;
	}
	if (op.type == LogicalOperatorType::LOGICAL_INSERT &&
	    op.Cast<LogicalInsert>().table.ParentCatalog().GetCatalogType() != "openduck") {
		root = &op.children[0];
		return Source::INSERT;
	}
	if (op.type == LogicalOperatorType::LOGICAL_CREATE_TABLE &&
	    op.Cast<LogicalCreateTable>().info->schema.ParentCatalog().GetCatalogType() != "openduck") {
		root = &op.children[0];
		return Source::CREATE_TABLE;
	}
	return Source::SELECT;
}

//! Whether a column of this type can be cast to by name on the service, and arrives here
//! as itself (or as a type the scan carries back exactly): a scalar built-in type without
//! alias or time zone (whose casts depend on the session's zone).
bool Spellable(const LogicalType &type) {
	switch (type.id()) {
	case LogicalTypeId::BOOLEAN:
	case LogicalTypeId::TINYINT:
	case LogicalTypeId::SMALLINT:
	case LogicalTypeId::INTEGER:
	case LogicalTypeId::BIGINT:
	case LogicalTypeId::UTINYINT:
	case LogicalTypeId::USMALLINT:
	case LogicalTypeId::UINTEGER:
	case LogicalTypeId::UBIGINT:
	case LogicalTypeId::HUGEINT:
	case LogicalTypeId::UHUGEINT:
	case LogicalTypeId::FLOAT:
	case LogicalTypeId::DOUBLE:
	case LogicalTypeId::DECIMAL:
	case LogicalTypeId::VARCHAR:
	case LogicalTypeId::BLOB:
	case LogicalTypeId::DATE:
	case LogicalTypeId::TIME:
	case LogicalTypeId::TIMESTAMP:
	case LogicalTypeId::TIMESTAMP_SEC:
	case LogicalTypeId::TIMESTAMP_MS:
	case LogicalTypeId::TIMESTAMP_NS:
	case LogicalTypeId::INTERVAL:
	case LogicalTypeId::UUID:
		return !type.HasAlias();
	default:
		return false;
	}
}

//! Whether a query node is an INSERT's VALUES list.
bool IsValuesList(QueryNode &node) {
	if (node.type != QueryNodeType::SELECT_NODE) {
		return false;
	}
	auto &from = node.Cast<SelectNode>().from_table;
	return from && from->type == TableReferenceType::EXPRESSION_LIST;
}

//! The SELECT of the statement `source` names in `statement`. Throws CannotShip.
SelectStatement &SelectOf(SQLStatement &statement, Source source) {
	if (source == Source::SELECT && statement.type == StatementType::SELECT_STATEMENT) {
		return statement.Cast<SelectStatement>();
	}
	if (source == Source::INSERT && statement.type == StatementType::INSERT_STATEMENT) {
		auto &insert = statement.Cast<InsertStatement>();
		// Columns matched by name, CTEs the INSERT holds, or a VALUES list (whose rows
		// take the columns' types here, and DEFAULT): not the SELECT alone.
		if (insert.select_statement && insert.column_order == InsertColumnOrder::INSERT_BY_POSITION &&
		    insert.cte_map.map.empty() && !IsValuesList(*insert.select_statement->node)) {
			return *insert.select_statement;
		}
		CannotShip("query", "its rows are not those of its SELECT alone");
	}
	if (source == Source::CREATE_TABLE && statement.type == StatementType::CREATE_STATEMENT) {
		auto &create = statement.Cast<CreateStatement>();
		if (create.info->type == CatalogType::TABLE_ENTRY) {
			auto &info = create.info->Cast<CreateTableInfo>();
			if (info.query) {
				return *info.query;
			}
		}
	}
	CannotShip("query", "it is not the statement being run");
}

//! The text of the statement being planned, rewritten for the service: a SELECT, or the
//! SELECT an EXPLAIN explains (`explained`), or the SELECT whose rows an INSERT or CREATE
//! TABLE AS of this session writes (`source`), cast to the `types` they are written as,
//! with the tables of this session named as their `uploads`; `star`: whether it holds a
//! `*` (or COLUMNS), which may expand to every column of a table. Throws CannotShip.
std::string ShippedText(ClientContext &context, OpenduckCatalog &catalog, bool explained, Source source,
                        const vector<LogicalType> &types, const vector<Upload> &uploads, bool &star) {
	Parser parser(context.GetParserOptions());
	parser.ParseQuery(context.GetCurrentQuery());
	if (parser.statements.size() != 1) {
		CannotShip("query", "its text is not one statement");
	}
	auto statement = std::move(parser.statements[0]);
	if (explained != (statement->type == StatementType::EXPLAIN_STATEMENT)) {
		CannotShip("query", "it is not the statement being run");
	}
	if (explained) {
		statement = std::move(statement->Cast<ExplainStatement>().stmt);
	}
	auto &select = SelectOf(*statement, source);
	Rewriter rewriter(context, catalog, "query");
	rewriter.strict = true;
	rewriter.siblings = true;
	rewriter.foreign = [&](BaseTableRef &ref, TableCatalogEntry &table) {
		for (auto &upload : uploads) {
			if (&upload.table.get() == &table) {
				if (ref.alias.empty()) {
					ref.alias = ref.table_name; // columns may be qualified by the table's name
				}
				ref.catalog_name = "temp";
				ref.schema_name = "main";
				ref.table_name = upload.name;
				return true;
			}
		}
		return false;
	};
	rewriter.VisitNode(*select.node);
	star = rewriter.saw_star;
	if (source == Source::SELECT) {
		return select.ToString();
	}
	// Written as the table's types: cast there, as the cast DuckDB planned here would.
	std::string columns, aliases;
	for (idx_t i = 0; i < types.size(); i++) {
		if (!Spellable(types[i])) {
			CannotShip("query", "it writes a column of type " + types[i].ToString());
		}
		auto alias = "c" + to_string(i);
		columns += (i ? ", " : "") + StringUtil::Format("CAST(openduck_source.%s AS %s) AS %s", alias,
		                                                 types[i].ToString(), alias);
		aliases += (i ? ", " : "") + alias;
	}
	return "SELECT " + columns + " FROM (" + select.ToString() + ") AS openduck_source(" + aliases + ")";
}

} // namespace

void RegisterPlacement(DBConfig &config) {
	config.AddExtensionOption(SETTING,
	                          "Where queries over openduck attachments run: 'auto' (a query over one attachment's "
	                          "tables runs on the service when that moves less), 'remote' (always when it can), "
	                          "'local' (never: remote tables are scanned)",
	                          LogicalType::VARCHAR, Value("auto"), ValidatePlacement);
	config.AddExtensionOption(ROUND_TRIP_SETTING,
	                          "The round trip to openduck services placement assumes, in milliseconds (NULL: as "
	                          "each attachment measured it)",
	                          LogicalType::DOUBLE, Value(LogicalType::DOUBLE), ValidatePositive);
	config.AddExtensionOption(THROUGHPUT_SETTING,
	                          "The throughput to and from openduck services placement assumes, in megabytes per "
	                          "second (NULL: as each attachment measured it)",
	                          LogicalType::DOUBLE, Value(LogicalType::DOUBLE), ValidatePositive);
}

namespace {

//! Whether one executor of the service serves every database the plan reads there: a query
//! over tables of several of its attachments, written in DuckDB's dialect, runs there
//! verbatim only then.
bool OnOneExecutor(OpenduckCatalog &catalog, QueryReads &reads) {
	vector<std::string> databases;
	for (auto &read : reads.remote) {
		databases.push_back(read.table.get().ParentCatalog().Cast<OpenduckCatalog>().RemoteName());
	}
	try {
		return catalog.GetClient()->OnOneExecutor(databases);
	} catch (std::exception &) {
		return false; // then it runs here
	}
}

//! Places the query of `statement`'s plan (at `target`) on the service whole, when it can
//! run there and should: the rules of the file's overview. Returns whether it did.
bool PlaceWhole(PlannerExtensionInput &input, BoundStatement &statement, unique_ptr<LogicalOperator> *target,
                bool explained, Source source, Placement placement, QueryReads &reads) {
	auto &context = input.context;
	auto catalog = reads.attachment;
	// (Of several attachments of the service, without copies: those go up into a session
	// on one executor, and a query across executors runs in none.)
	if (!catalog || reads.other || reads.remote_row_ids || (reads.several && !reads.local.empty())) {
		return false;
	}
	if (reads.several && !OnOneExecutor(*catalog, reads)) {
		return false;
	}
	if (reads.local.empty() && placement == Placement::AUTO && !Reduces(**target)) {
		return false;
	}
	// Copies are made in a transaction of their own, which would not see what this
	// session's transaction on the service wrote.
	if (!reads.local.empty() && (!reads.refusal.empty() || catalog->ClientFor(context, false) != catalog->GetClient())) {
		return false;
	}
	vector<Upload> uploads;
	for (auto &local : reads.local) {
		uploads.push_back(Upload {local.table, catalog->Copies().NameFor(local.table), local.columns});
	}
	std::string sql;
	try {
		CheckPlan(
		    "query", *catalog, **target, [&](TableCatalogEntry &table) { return reads.Local(table) != nullptr; },
		    context);
		bool star = false;
		(*target)->ResolveOperatorTypes();
		sql = ShippedText(context, *catalog, explained, source, (*target)->types, uploads, star);
		if (ReadsRetypedColumns(reads)) {
			return false;
		}
		if (star) {
			// Copy every column: a `*` may expand to all of one.
			for (auto &upload : uploads) {
				upload.columns.clear();
			}
		}
	} catch (std::exception &) {
		// It cannot run on the service exactly as here: it runs here, as DuckDB planned it.
		return false;
	}
	if (!uploads.empty()) {
		// It can run there: whether it should, when this session's tables must go up.
		reads.FindLocalFilters(**target);
		auto keep = KeepCopies(context);
		for (idx_t i = 0; i < uploads.size(); i++) {
			uploads[i].filters = reads.local[i].filters;
			uploads[i].kept = keep && catalog->Copies().Covers(uploads[i]);
			reads.local[i].kept = uploads[i].kept;
		}
		if (placement == Placement::AUTO && !CopyingUpIsFaster(context, *catalog, reads, **target)) {
			return false;
		}
		if (!catalog->MayCopyUp()) {
			return false;
		}
	}

	auto &planned = **target;
	planned.ResolveOperatorTypes();
	auto types = planned.types;
	vector<std::string> names;
	for (idx_t i = 0; i < types.size(); i++) {
		names.push_back(!explained && source == Source::SELECT && i < statement.names.size() ? statement.names[i]
		                                                                                   : "column" + to_string(i));
	}
	auto ordered = Holds(planned, {LogicalOperatorType::LOGICAL_ORDER_BY, LogicalOperatorType::LOGICAL_TOP_N});
	*target = ShippedQuery(input.binder, *catalog, std::move(sql), std::move(types), std::move(names), ordered,
	                       std::move(uploads));
	return true;
}

//! Whether a subquery of a query that runs here runs on the service of `catalog` (see
//! PlaceSubqueries): when it reads nothing but that attachment's tables and can run there
//! exactly as here, and, under 'auto', reduces what crosses (as a whole query must); a
//! FROM's tables regrouped into one join (`regrouped`, its SQL there) only when the
//! service estimates the join at no more rows than its tables hold: joined on a column of
//! few values, tables multiply their rows, and scans of them would move less.
bool SubqueryRunsThere(ClientContext &context, OpenduckCatalog &catalog, Placement placement, LogicalOperator &plan,
                       const std::string *regrouped) {
	auto reads = QueryReads::Of(context, plan);
	if (!reads.attachment || !catalog.Sibling(context, *reads.attachment) || reads.other || reads.remote_row_ids ||
	    !reads.local.empty() || (reads.several && !OnOneExecutor(catalog, reads))) {
		return false;
	}
	if (placement == Placement::AUTO && !Reduces(plan)) {
		return false;
	}
	try {
		CheckPlan("subquery", catalog, plan, nullptr, context);
	} catch (std::exception &) {
		return false;
	}
	if (ReadsRetypedColumns(reads)) {
		return false;
	}
	if (regrouped && placement == Placement::AUTO) {
		idx_t rows = 0;
		for (auto &read : reads.remote) {
			rows += read.rows;
		}
		optional_idx estimate;
		try {
			estimate = EstimatedRows(context, *catalog.GetClient(), *regrouped);
		} catch (std::exception &) {
			return false;
		}
		if (!estimate.IsValid() || estimate.GetIndex() > rows) {
			return false;
		}
	}
	return true;
}

//! `plan`'s rows as `types` (as many): cast where a type differs.
unique_ptr<LogicalOperator> CastTo(ClientContext &context, Binder &binder, unique_ptr<LogicalOperator> plan,
                                   const vector<LogicalType> &types) {
	if (plan->types == types) {
		return plan;
	}
	auto bindings = plan->GetColumnBindings();
	vector<unique_ptr<Expression>> columns;
	for (idx_t i = 0; i < types.size(); i++) {
		unique_ptr<Expression> column = make_uniq<BoundColumnRefExpression>(plan->types[i], bindings[i]);
		columns.push_back(BoundCastExpression::AddCastToType(context, std::move(column), types[i]));
	}
	auto projection = make_uniq<LogicalProjection>(binder.GenerateTableIndex(), std::move(columns));
	projection->children.push_back(std::move(plan));
	projection->ResolveOperatorTypes();
	return std::move(projection);
}

//! Places the subqueries of a SELECT (or of the SELECT an EXPLAIN explains, or of the
//! SELECT an INSERT into or a CREATE TABLE AS of a table here reads: `source`) that runs
//! here, and the joins of the service's tables in its FROMs: its plan (at `target`, its
//! columns named `names` for a SELECT unless explained) bound again with them replaced by
//! scans of their results.
void PlaceParts(PlannerExtensionInput &input, OpenduckCatalog &catalog, unique_ptr<LogicalOperator> *target,
                const vector<std::string> &names, bool explained, Source source, Placement placement) {
	auto &context = input.context;
	unique_ptr<LogicalOperator> plan;
	vector<std::string> placed_names;
	vector<LogicalType> select_types;
	// Binding the SELECT alone marks the statement as one that returns a query's rows: an
	// INSERT's or CREATE TABLE AS's must stay one that runs at once (the Python client
	// otherwise streams it, and drops it unrun when the next statement comes).
	auto &properties = input.binder.GetStatementProperties();
	auto return_type = properties.return_type;
	auto output_type = properties.output_type;
	auto restore = [&]() {
		properties.return_type = return_type;
		properties.output_type = output_type;
	};
	try {
		Parser parser(context.GetParserOptions());
		parser.ParseQuery(context.GetCurrentQuery());
		if (parser.statements.size() != 1) {
			return;
		}
		auto statement = std::move(parser.statements[0]);
		if (explained != (statement->type == StatementType::EXPLAIN_STATEMENT)) {
			return;
		}
		if (explained) {
			statement = std::move(statement->Cast<ExplainStatement>().stmt);
		}
		auto &select = SelectOf(*statement, source);
		if (source != Source::SELECT) {
			// What the SELECT alone gives, which the placed one must give too before its
			// rows are cast to the target's columns.
			auto copy = select.Copy();
			select_types = Binder::CreateBinder(context, &input.binder)->Bind(*copy).types;
		}
		plan = PlaceSubqueries(context, input.binder, select, catalog,
		                       [&](LogicalOperator &subquery, const std::string *regrouped) {
			                       return SubqueryRunsThere(context, catalog, placement, subquery, regrouped);
		                       },
		                       placed_names);
	} catch (std::exception &) {
		restore();
		return; // as DuckDB planned it: always exact
	}
	restore();
	if (!plan) {
		return;
	}
	(*target)->ResolveOperatorTypes();
	plan->ResolveOperatorTypes();
	if (source != Source::SELECT && plan->types == select_types && plan->types.size() == (*target)->types.size()) {
		// What an INSERT or CREATE TABLE AS writes: the SELECT's rows cast to the columns'
		// types, matched by position.
		plan = CastTo(context, input.binder, std::move(plan), (*target)->types);
	}
	if (plan->types != (*target)->types || (source == Source::SELECT && !explained && placed_names != names)) {
		return;
	}
	*target = std::move(plan);
}

} // namespace

void PlaceQuery(PlannerExtensionInput &input, BoundStatement &statement) {
	auto &context = input.context;
	if (!statement.plan) {
		return;
	}
	auto placement = CurrentPlacement(context);
	// Without a query running (a prepare through the C API), its text is not known here.
	if (placement == Placement::LOCAL || context.transaction.GetActiveQuery() == MAXIMUM_QUERY_ID) {
		return;
	}
	auto parameters = input.binder.GetParameters();
	if ((parameters && !parameters->GetParameters().empty()) || !SessionSharesMeaning(context)) {
		return;
	}
	auto *target = &statement.plan;
	auto explained = statement.plan->type == LogicalOperatorType::LOGICAL_EXPLAIN;
	if (explained) {
		target = &statement.plan->children[0];
	}
	auto source = SourceOf(target);
	auto reads = QueryReads::Of(context, **target);
	if (PlaceWhole(input, statement, target, explained, source, placement, reads)) {
		return;
	}
	if (reads.attachment) {
		// (Those over one service: of a query that reads two services, the subqueries over
		// the other one run here.)
		PlaceParts(input, *reads.attachment, target, statement.names, explained, source, placement);
	}
}

} // namespace openduck
