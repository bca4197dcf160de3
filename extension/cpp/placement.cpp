#include "placement.hpp"

#include "bridge.hpp"
#include "catalog.hpp"
#include "scan.hpp"
#include "shipping.hpp"

#include "duckdb/main/client_context.hpp"
#include "duckdb/main/config.hpp"
#include "duckdb/parser/parser.hpp"
#include "duckdb/parser/statement/explain_statement.hpp"
#include "duckdb/parser/statement/select_statement.hpp"
#include "duckdb/planner/binder.hpp"
#include "duckdb/planner/bound_parameter_map.hpp"
#include "duckdb/planner/operator/logical_get.hpp"
#include "duckdb/storage/table_storage_info.hpp"

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

//! Bytes a value of `type` takes on the wire, roughly (strings and nested values: a guess).
idx_t Width(const LogicalType &type) {
	if (type.IsNested() || type.InternalType() == PhysicalType::VARCHAR) {
		return 32;
	}
	return GetTypeIdSize(type.InternalType());
}

//! What a plan reads: the scans of one attachment, with the bytes they would bring here,
//! and the tables of this session, with the bytes they would take up.
struct Sources {
	optional_ptr<OpenduckCatalog> attachment;
	//! Another attachment, or a source that is no table (a table function, Python data).
	bool other = false;
	idx_t remote_bytes = 0;
	//! Tables of this session, each once, in the order met.
	vector<reference<TableCatalogEntry>> local;
	idx_t local_bytes = 0;
	std::string refusal;

	void Read(ClientContext &context, LogicalOperator &op) {
		if (op.type == LogicalOperatorType::LOGICAL_GET) {
			Get(context, op.Cast<LogicalGet>());
		}
		for (auto &child : op.children) {
			Read(context, *child);
		}
	}

	bool IsLocal(TableCatalogEntry &table) const {
		for (auto &known : local) {
			if (&known.get() == &table) {
				return true;
			}
		}
		return false;
	}

private:
	void Get(ClientContext &context, LogicalGet &get) {
		auto table = get.GetTable();
		if (table && get.function.name == "openduck_scan") {
			auto &catalog = table->ParentCatalog().Cast<OpenduckCatalog>();
			other = other || (attachment && attachment.get() != &catalog);
			attachment = &catalog;
			auto rows = table->GetStorageInfo(context).cardinality;
			idx_t width = 0;
			for (auto &column : get.GetColumnIds()) {
				width += column.IsRowIdColumn() ? 8 : Width(get.GetColumnType(column));
			}
			remote_bytes += (rows.IsValid() ? rows.GetIndex() : 1000000) * MaxValue<idx_t>(width, 1);
		} else if (table && get.function.name == "seq_scan") {
			if (IsLocal(*table)) {
				return;
			}
			auto why = UploadRefusal(*table);
			if (!why.empty()) {
				refusal = why;
			}
			local.push_back(*table);
			auto rows = table->GetStorageInfo(context).cardinality;
			idx_t width = 0;
			for (auto &column : table->GetColumns().Physical()) {
				width += Width(column.Type());
			}
			local_bytes += (rows.IsValid() ? rows.GetIndex() : 0) * width;
		} else {
			other = true;
		}
	}
};

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

//! The text of the statement being planned, rewritten for the service: a SELECT, or the
//! SELECT an EXPLAIN explains (`explained`), with the tables of this session named as
//! their `uploads`. Throws CannotShip.
std::string ShippedText(ClientContext &context, OpenduckCatalog &catalog, bool explained,
                        const vector<Upload> &uploads) {
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
	if (placement == Placement::LOCAL) {
		return;
	}
	auto *target = &statement.plan;
	auto explained = statement.plan->type == LogicalOperatorType::LOGICAL_EXPLAIN;
	if (explained) {
		target = &statement.plan->children[0];
	}
	Sources sources;
	sources.Read(context, **target);
	auto catalog = sources.attachment;
	if (!catalog || sources.other) {
		return;
	}
	auto parameters = input.binder.GetParameters();
	if ((parameters && !parameters->GetParameters().empty()) || !SessionSharesMeaning(context)) {
		return;
	}
	vector<Upload> uploads;
	if (sources.local.empty()) {
		if (placement == Placement::AUTO && !Reduces(**target)) {
			return;
		}
	} else {
		// Tables of this session go up when that moves fewer bytes than bringing the
		// service's here (its result still comes down: at least half must be saved).
		if (!sources.refusal.empty() || (placement == Placement::AUTO && sources.local_bytes * 2 > sources.remote_bytes)) {
			return;
		}
		// Copies are made in a transaction of their own, which would not see what this
		// session's transaction on the service wrote.
		if (catalog->ClientFor(context, false) != catalog->GetClient() || !catalog->MayCopyUp(context)) {
			return;
		}
		for (auto &table : sources.local) {
			uploads.push_back(Upload {table, "openduck_upload_" + to_string(uploads.size())});
		}
	}
	std::string sql;
	try {
		CheckPlan("query", *catalog, **target,
		          [&](TableCatalogEntry &table) { return sources.IsLocal(table); });
		sql = ShippedText(context, *catalog, explained, uploads);
	} catch (std::exception &) {
		// It cannot run on the service exactly as here: it runs here, as DuckDB planned it.
		return;
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
