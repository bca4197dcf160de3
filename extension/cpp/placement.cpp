#include "placement.hpp"

#include "bridge.hpp"
#include "catalog.hpp"
#include "cost.hpp"
#include "scan.hpp"
#include "shipping.hpp"

#include "duckdb/main/client_context.hpp"
#include "duckdb/main/config.hpp"
#include "duckdb/parser/parser.hpp"
#include "duckdb/parser/statement/explain_statement.hpp"
#include "duckdb/parser/statement/select_statement.hpp"
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

//! Bytes-equivalent of the round trips and the statement a copy costs beyond its rows.
const idx_t COPY_OVERHEAD = 1 << 20;

//! Whether copying this session's tables up moves less than bringing the service's down:
//! the copies with their overhead, against the service's scans under their filters (the
//! service counts them when the unfiltered estimate alone would copy). The result comes
//! down either way when it runs there, and is small next to either for most analytics.
bool CopyingUpMovesLess(ClientContext &context, QueryReads &reads, LogicalOperator &plan) {
	auto up = reads.LocalBytes() + COPY_OVERHEAD * reads.local.size();
	if (up >= reads.RemoteBytes()) {
		return false;
	}
	try {
		reads.ProbeRemote(context, plan);
	} catch (std::exception &) {
		return false; // no answer: placed here, which is always exact
	}
	return up < reads.RemoteBytes();
}

//! The text of the statement being planned, rewritten for the service: a SELECT, or the
//! SELECT an EXPLAIN explains (`explained`), with the tables of this session named as
//! their `uploads`; `star`: whether it holds a `*` (or COLUMNS), which may expand to every
//! column of a table. Throws CannotShip.
std::string ShippedText(ClientContext &context, OpenduckCatalog &catalog, bool explained,
                        const vector<Upload> &uploads, bool &star) {
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
	if (statement->type != StatementType::SELECT_STATEMENT) {
		CannotShip("query", "it is not the statement being run");
	}
	auto &select = statement->Cast<SelectStatement>();
	Rewriter rewriter(context, catalog, "query");
	rewriter.strict = true;
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
	return select.ToString();
}

} // namespace

void RegisterPlacement(DBConfig &config) {
	config.AddExtensionOption(SETTING,
	                          "Where queries over openduck attachments run: 'auto' (a query over one attachment's "
	                          "tables runs on the service when that moves less), 'remote' (always when it can), "
	                          "'local' (never: remote tables are scanned)",
	                          LogicalType::VARCHAR, Value("auto"), ValidatePlacement);
}

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
	auto *target = &statement.plan;
	auto explained = statement.plan->type == LogicalOperatorType::LOGICAL_EXPLAIN;
	if (explained) {
		target = &statement.plan->children[0];
	}
	auto reads = QueryReads::Of(context, **target);
	auto catalog = reads.attachment;
	if (!catalog || reads.other || reads.remote_row_ids) {
		return;
	}
	auto parameters = input.binder.GetParameters();
	if ((parameters && !parameters->GetParameters().empty()) || !SessionSharesMeaning(context)) {
		return;
	}
	if (reads.local.empty() && placement == Placement::AUTO && !Reduces(**target)) {
		return;
	}
	// Copies are made in a transaction of their own, which would not see what this
	// session's transaction on the service wrote.
	if (!reads.local.empty() && (!reads.refusal.empty() || catalog->ClientFor(context, false) != catalog->GetClient())) {
		return;
	}
	vector<Upload> uploads;
	for (auto &local : reads.local) {
		uploads.push_back(Upload {local.table, "openduck_upload_" + to_string(uploads.size()), local.columns});
	}
	std::string sql;
	try {
		CheckPlan("query", *catalog, **target, [&](TableCatalogEntry &table) { return reads.Local(table) != nullptr; });
		bool star = false;
		sql = ShippedText(context, *catalog, explained, uploads, star);
		if (ReadsRetypedColumns(reads)) {
			return;
		}
		if (star) {
			// Copy every column: a `*` may expand to all of one.
			for (auto &upload : uploads) {
				upload.columns.clear();
			}
		}
	} catch (std::exception &) {
		// It cannot run on the service exactly as here: it runs here, as DuckDB planned it.
		return;
	}
	if (!uploads.empty()) {
		// It can run there: whether it should, when this session's tables must go up.
		reads.FindLocalFilters(**target);
		if (placement == Placement::AUTO && !CopyingUpMovesLess(context, reads, **target)) {
			return;
		}
		if (!catalog->MayCopyUp()) {
			return;
		}
		for (idx_t i = 0; i < uploads.size(); i++) {
			uploads[i].filters = reads.local[i].filters;
		}
	}

	auto &planned = **target;
	planned.ResolveOperatorTypes();
	auto types = planned.types;
	vector<std::string> names;
	for (idx_t i = 0; i < types.size(); i++) {
		names.push_back(!explained && i < statement.names.size() ? statement.names[i] : "column" + to_string(i));
	}
	auto ordered = Holds(planned, {LogicalOperatorType::LOGICAL_ORDER_BY, LogicalOperatorType::LOGICAL_TOP_N});
	*target = ShippedQuery(input.binder, *catalog, std::move(sql), std::move(types), std::move(names), ordered,
	                       std::move(uploads));
}

} // namespace openduck
