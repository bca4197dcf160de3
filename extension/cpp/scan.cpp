#include "scan.hpp"

#include "catalog.hpp"
#include "copies.hpp"
#include "pushdown.hpp"

#include "duckdb/common/serializer/serializer.hpp"
#include "duckdb/execution/expression_executor.hpp"
#include "duckdb/function/table/arrow.hpp"
#include "duckdb/main/database_manager.hpp"
#include "duckdb/planner/expression/bound_conjunction_expression.hpp"
#include "duckdb/planner/expression/bound_reference_expression.hpp"
#include "duckdb/planner/binder.hpp"
#include "duckdb/planner/operator/logical_get.hpp"
#include "duckdb/common/vector_operations/vector_operations.hpp"
#include "duckdb/planner/filter/optional_filter.hpp"
#include "duckdb/planner/table_filter.hpp"

namespace openduck {

using namespace duckdb;

std::string QuoteIdentifier(const std::string &name) {
	std::string quoted = "\"";
	for (char c : name) {
		quoted += c;
		if (c == '"') {
			quoted += '"';
		}
	}
	return quoted + "\"";
}

std::string RemoteTable::ToSQL() const {
	return QuoteIdentifier(catalog) + "." + QuoteIdentifier(schema) + "." + QuoteIdentifier(name);
}

namespace {

//! What a scan needs beyond DuckDB's Arrow scan: where the rows come from.
struct ScanData : public ArrowScanFunctionData {
	ScanData() : ArrowScanFunctionData(nullptr, 0) {
	}
	shared_ptr<Client> client;
	//! A table scan: the table, whose columns and filters are chosen at init.
	RemoteTable table;
	optional_ptr<TableCatalogEntry> entry;
	//! Predicates taken over from DuckDB's filters at optimization (exact SQL).
	vector<std::string> pushed;
	//! A table scan under a LIMIT or a top-N (LimitScan): the rows asked for, and the
	//! ORDER BY keys they are the first of (SQL; empty: any rows).
	optional_idx limit;
	std::string order;
	//! The service's estimate of the table's rows.
	optional_idx rows;
	//! openduck_query: the SQL run verbatim.
	std::string sql;
	//! openduck_query: the stream opened at bind (its schema typed the result).
	unique_ptr<ArrowArrayStreamWrapper> pending;
	//! A shipped query: its attachment (the client is chosen as it runs, in its
	//! transaction), the types the user's DuckDB bound it to, and whether its rows come
	//! in an order to keep.
	optional_ptr<OpenduckCatalog> shipped_from;
	vector<LogicalType> expected;
	bool ordered = false;
	//! A shipped query that is a subquery of one that runs here.
	bool subquery = false;
	//! A shipped query: tables of this session it reads, copied up before it runs.
	vector<Upload> uploads;
	//! A shipped change with RETURNING: it runs in the transaction that writes through
	//! the attachment, and when `sql` is empty, `make_sql` makes it as it starts.
	bool writes = false;
	MakeSQL make_sql;
};

struct ScanGlobal : public ArrowScanGlobalState {
	~ScanGlobal() override {
		EndSession();
	}
	//! Rolls back the transaction that holds the copies, which the service's executor
	//! counts as a writer until then, or lets other queries use the kept copies: once
	//! the rows are all read, or when the scan goes.
	void EndSession() {
		if (session) {
			stream.reset(); // first: it runs in the transaction
			od_error_free(session->End(false));
			session = nullptr;
		}
		if (claim) {
			stream.reset();
			claim = nullptr;
		}
	}
	//! Pushed filters the service could not be sent; evaluated here on each chunk.
	unique_ptr<Expression> residual;
	//! No column is read (count(*)): only row counts matter.
	bool no_columns = false;
	//! The SQL sent to the service (EXPLAIN ANALYZE shows it).
	std::string sql;
	//! A shipped query: how its rows arrived (read with these, not the bind data's).
	ArrowSchemaWrapper arrived_schema;
	unique_ptr<ArrowTableSchema> arrived;
	//! Whether some column arrives as another type than the one DuckDB expects (the wire's
	//! for UUID, HUGEINT, ENUM: see Carries) and is cast; `read_types` are the types the
	//! output's columns arrive as.
	bool cast = false;
	vector<LogicalType> read_types;
	//! A shipped query with uploads: the transaction on the service that holds the
	//! copies, or the claim on the copies kept there.
	shared_ptr<Client> session;
	unique_ptr<CopiesClaim> claim;
};

//===--------------------------------------------------------------------===//
// The scan
//===--------------------------------------------------------------------===//

//! Fails clearly when the rows do not have the types the catalog promised, rather than
//! letting DuckDB read Arrow buffers of one type as another.
void CheckTypes(ArrowArrayStreamWrapper &stream, const ArrowSchema &expected, const vector<column_t> &column_ids,
                const std::string &what) {
	ArrowSchemaWrapper actual;
	stream.GetSchema(actual);
	for (idx_t i = 0; i < column_ids.size(); i++) {
		auto id = column_ids[i];
		if (id >= static_cast<idx_t>(expected.n_children)) {
			continue;
		}
		auto &want = *expected.children[id];
		if (i >= static_cast<idx_t>(actual.arrow_schema.n_children) ||
		    std::string(actual.arrow_schema.children[i]->format) != want.format) {
			throw IOException("openduck: column \"%s\" of %s arrived with another type than its catalog entry says; "
			                  "the table changed on the service: DETACH and ATTACH again",
			                  want.name ? want.name : "", what);
		}
	}
}

//! Runs a shipped query, and reads the types its rows arrive with.
void OpenShipped(ClientContext &context, ScanData &data, ScanGlobal &global) {
	global.sql = data.sql.empty() && data.make_sql ? data.make_sql(context) : data.sql;
	if (data.uploads.empty()) {
		// Written in DuckDB's dialect: the service runs it verbatim, or refuses it (its
		// databases no longer live on one executor).
		global.stream = data.shipped_from->ClientFor(context, data.writes)->OnOneExecutorOnly()->Query(global.sql, context);
	} else {
		if (data.shipped_from->ClientFor(context, false) != data.shipped_from->GetClient()) {
			// Planned before this transaction wrote through the attachment (a prepared
			// statement): copies in a transaction of their own would not see those writes.
			throw InvalidInputException("openduck: this statement was placed on the service with copies of local "
			                            "tables before the transaction wrote there; prepare it again, or SET "
			                            "openduck_placement = 'local'");
		}
		auto &catalog = *data.shipped_from;
		// Only copies whose rows have a fingerprint are kept: the others could not be
		// told current.
		if (KeepCopies(context) && std::all_of(data.uploads.begin(), data.uploads.end(), HasFingerprint)) {
			global.claim = catalog.Copies().TryClaim();
		}
		for (idx_t attempt = 0; global.claim && !global.stream; attempt++) {
			shared_ptr<Client> session;
			unique_ptr<ArrowArrayStreamWrapper> stream;
			try {
				session = global.claim->Prepare(context, catalog.RemoteName(), data.uploads);
				// The query starts there while the kept copies are checked here.
				stream = session->Query(global.sql, context, true);
			} catch (std::exception &exception) {
				stream = nullptr;
				ErrorData error(exception);
				if (attempt > 0 || error.Type() == ExceptionType::INTERRUPT || !global.claim->Lost(error)) {
					throw;
				}
				// The service lost the session that held them (it restarted, the
				// connection broke): copied again, into a new session.
				global.claim->Forget();
				continue;
			}
			// No row of the stream is read before the copies it reads are known current
			// (an error here drops it, stopping the query there).
			if (!global.claim->Verify(context)) {
				// A table changed since its copy: copied anew, and the query run again.
				stream = nullptr;
				session = global.claim->Prepare(context, catalog.RemoteName(), data.uploads);
				stream = session->Query(global.sql, context, true);
			}
			global.stream = std::move(stream);
		}
		if (!global.claim) {
			// Another query uses the kept copies (or none are kept): copies of its own, in
			// a transaction rolled back once the rows are read.
			global.session = catalog.GetClient()->Begin();
			for (auto &upload : data.uploads) {
				CopyUp(context, *global.session, catalog.RemoteName(), upload);
			}
			global.stream = global.session->Query(global.sql, context);
		}
	}
	global.stream->GetSchema(global.arrived_schema);
	global.arrived = make_uniq<ArrowTableSchema>();
	ArrowTableFunction::PopulateArrowTableSchema(context, *global.arrived, global.arrived_schema.arrow_schema);
	auto &arrived = global.arrived->GetTypes();
	if (arrived.size() != data.expected.size()) {
		throw IOException("openduck: the service answered a query with %llu columns where %llu were expected: %s",
		                  arrived.size(), data.expected.size(), global.sql);
	}
	global.read_types = arrived;
	for (idx_t i = 0; i < arrived.size(); i++) {
		if (arrived[i] == data.expected[i]) {
			continue;
		}
		if (!Carries(arrived[i], data.expected[i])) {
			throw IOException("openduck: column %llu of a query placed on the service arrived as %s where %s was "
			                  "expected; the tables changed on the service: DETACH and ATTACH again",
			                  i + 1, arrived[i].ToString(), data.expected[i].ToString());
		}
		global.cast = true;
	}
	if (data.ordered) {
		global.max_threads = 1;
	}
}

//! For a table scan: which of the columns read arrive as another type than the table's
//! catalog entry has (the wire's for UUID, HUGEINT, ENUM), to be cast back exactly.
void CastsNeeded(ScanData &data, const vector<column_t> &column_ids, ScanGlobal &global) {
	auto &arrow_types = data.arrow_table.GetTypes();
	for (auto id : column_ids) {
		auto real = id < arrow_types.size();
		auto wanted = real ? data.entry->GetColumn(LogicalIndex(id)).Type() : LogicalType(LogicalType::ROW_TYPE);
		auto arrives = real ? arrow_types[id] : wanted;
		// A collation (of a table made by this transaction) is no other type to read.
		auto collated = arrives.id() == LogicalTypeId::VARCHAR && wanted.id() == LogicalTypeId::VARCHAR;
		if (arrives != wanted && !collated) {
			if (!Carries(arrives, wanted)) {
				throw IOException("openduck: column \"%s\" of %s arrives as %s where %s is expected; the table "
				                  "changed on the service: DETACH and ATTACH again",
				                  data.entry->GetColumn(LogicalIndex(id)).Name(), data.table.ToSQL(),
				                  arrives.ToString(), wanted.ToString());
			}
			global.cast = true;
		}
		global.read_types.push_back(arrives);
	}
}

unique_ptr<GlobalTableFunctionState> InitScan(ClientContext &context, TableFunctionInitInput &input) {
	auto &data = input.bind_data->CastNoConst<ScanData>();
	auto result = make_uniq<ScanGlobal>();
	result->max_threads = context.db->NumberOfThreads();
	if (data.shipped_from) {
		OpenShipped(context, data, *result);
		return std::move(result);
	}
	if (!data.sql.empty()) {
		result->sql = data.sql;
		result->stream = data.pending ? std::move(data.pending) : data.client->Query(data.sql, context);
		return std::move(result);
	}

	auto &names = data.arrow_table.GetNames();
	std::string columns;
	result->no_columns = true;
	for (idx_t i = 0; i < input.column_ids.size(); i++) {
		auto id = input.column_ids[i];
		bool real = id < names.size();
		result->no_columns = result->no_columns && !real;
		// Placeholders keep each column at the position DuckDB expects it.
		columns += (i ? ", " : "") + (real ? QuoteIdentifier(names[id]) : std::string("NULL"));
	}
	if (columns.empty()) {
		columns = "NULL";
	}

	std::string where;
	for (auto &predicate : data.pushed) {
		where += (where.empty() ? " WHERE " : " AND ") + predicate;
	}
	vector<unique_ptr<Expression>> residual;
	if (input.filters) {
		for (auto &entry : input.filters->filters) {
			auto position = entry.first;
			auto id = input.column_ids[position];
			auto real = id < names.size();
			// (The column's type in the output: the catalog's, which a cast may have made it.)
			BoundReferenceExpression column(real ? data.entry->GetColumn(LogicalIndex(id)).Type()
			                                     : LogicalType(LogicalType::ROW_TYPE),
			                                position);
			std::vector<std::string> sent;
			std::vector<std::reference_wrapper<const TableFilter>> kept;
			auto sendable = real && !data.entry->Cast<OpenduckTable>().Retyped(id);
			SplitFilter(*entry.second, sendable ? QuoteIdentifier(names[id]) : std::string(), sent, kept);
			for (auto &predicate : sent) {
				where += (where.empty() ? " WHERE " : " AND ") + predicate;
			}
			for (auto &filter : kept) {
				residual.push_back(filter.get().ToExpression(column));
			}
		}
	}
	if (residual.size() == 1) {
		result->residual = std::move(residual[0]);
	} else if (residual.size() > 1) {
		auto conjunction = make_uniq<BoundConjunctionExpression>(ExpressionType::CONJUNCTION_AND);
		for (auto &expression : residual) {
			conjunction->children.push_back(std::move(expression));
		}
		result->residual = std::move(conjunction);
	}

	std::string limit;
	if (data.limit.IsValid() && !result->residual) {
		// Every filter applies there: its first rows are the first rows here.
		limit = (data.order.empty() ? "" : " ORDER BY " + data.order) + " LIMIT " + to_string(data.limit.GetIndex());
	}
	result->sql = "SELECT " + columns + " FROM " + data.table.ToSQL() + where + limit;
	result->stream = data.client->Query(result->sql, context);
	if (!result->no_columns) {
		CheckTypes(*result->stream, data.schema_root.arrow_schema, input.column_ids, data.table.ToSQL());
		CastsNeeded(data, input.column_ids, *result);
	}
	return std::move(result);
}

//! Runs `pull`, reporting a pull that ended because the user interrupted as DuckDB's
//! own interrupt (the stream can only say so in its error text).
template <class PULL>
auto Interruptible(ClientContext &context, PULL pull) -> decltype(pull()) {
	try {
		return pull();
	} catch (std::exception &) {
		if (context.interrupted) {
			throw InterruptException();
		}
		throw;
	}
}

unique_ptr<LocalTableFunctionState> InitLocal(ExecutionContext &context, TableFunctionInitInput &input,
                                              GlobalTableFunctionState *global) {
	auto local = Interruptible(context.client,
	                           [&]() { return ArrowTableFunction::ArrowScanInitLocal(context, input, global); });
	auto &scan = global->Cast<ScanGlobal>();
	if (local && scan.cast) {
		// Rows that need a cast are read into this chunk first (unused otherwise: the
		// scan never removes filter columns).
		local->Cast<ArrowScanLocalState>().all_columns.Initialize(context.client, scan.read_types);
	}
	return local;
}

void Scan(ClientContext &context, TableFunctionInput &input, DataChunk &output) {
	if (!input.local_state) {
		return;
	}
	auto &data = input.bind_data->CastNoConst<ScanData>();
	auto &state = input.local_state->Cast<ArrowScanLocalState>();
	auto &global = input.global_state->Cast<ScanGlobal>();
	while (true) {
		if (state.chunk_offset >= static_cast<idx_t>(state.chunk->arrow_array.length)) {
			auto more = Interruptible(context, [&]() {
				return ArrowTableFunction::ArrowScanParallelStateNext(context, input.bind_data.get(), state, global);
			});
			if (!more) {
				// Done (no thread reads the stream again): copies made for it can go now.
				lock_guard<mutex> guard(global.main_mutex);
				global.EndSession();
				// Nothing more: not the rows of a last chunk the residual filter dropped.
				output.SetCardinality(0);
				return;
			}
		}
		auto size = MinValue<idx_t>(STANDARD_VECTOR_SIZE,
		                            NumericCast<idx_t>(state.chunk->arrow_array.length) - state.chunk_offset);
		output.Reset();
		output.SetCardinality(size);
		auto &arrow_columns = global.arrived ? global.arrived->GetColumns() : data.arrow_table.GetColumns();
		if (global.cast) {
			state.all_columns.Reset();
			state.all_columns.SetCardinality(size);
			ArrowTableFunction::ArrowToDuckDB(state, arrow_columns, state.all_columns);
			for (idx_t i = 0; i < output.ColumnCount(); i++) {
				if (state.all_columns.data[i].GetType() == output.data[i].GetType()) {
					output.data[i].Reference(state.all_columns.data[i]);
				} else {
					VectorOperations::Cast(context, state.all_columns.data[i], output.data[i], size);
				}
			}
		} else if (!global.no_columns) {
			ArrowTableFunction::ArrowToDuckDB(state, arrow_columns, output);
		}
		// DuckDB's conversion skips row ids, leaving their vector unwritten: a table of
		// the service has none to give here.
		for (idx_t i = 0; i < state.column_ids.size() && i < output.ColumnCount(); i++) {
			if (state.column_ids[i] == COLUMN_IDENTIFIER_ROW_ID) {
				output.data[i].SetVectorType(VectorType::CONSTANT_VECTOR);
				ConstantVector::SetNull(output.data[i], true);
			}
		}
		state.chunk_offset += size;
		if (!global.residual) {
			return;
		}
		SelectionVector selection(STANDARD_VECTOR_SIZE);
		ExpressionExecutor executor(context, *global.residual);
		auto kept = executor.SelectExpression(output, selection);
		if (kept == size) {
			return;
		}
		if (kept > 0) {
			output.Slice(selection, kept);
			return;
		}
		// Nothing of this chunk passed: an empty chunk would end the scan, so read on.
	}
}

InsertionOrderPreservingMap<std::string> Describe(TableFunctionToStringInput &input) {
	InsertionOrderPreservingMap<std::string> result;
	auto &data = input.bind_data->Cast<ScanData>();
	result["Service"] = data.client->Endpoint();
	if (data.shipped_from) {
		result["Placement"] = data.subquery ? "remote: this subquery runs on the service"
		                                    : "remote: the whole query runs on the service";
		std::string copied;
		for (auto &upload : data.uploads) {
			auto &table = upload.table.get();
			copied += (copied.empty() ? "" : ", ") + table.catalog.GetName() + "." + table.schema.name + "." +
			          table.name + " as temp.main." + upload.name + (upload.kept ? " (kept there)" : "");
		}
		if (!copied.empty()) {
			result["Copied up"] = copied;
			uint64_t round_trip_us = 0;
			uint64_t rate = 0;
			data.client->Link(round_trip_us, rate);
			result["Link measured"] =
			    (round_trip_us ? StringUtil::Format("%.2f ms round trip", static_cast<double>(round_trip_us) / 1e3)
			                   : std::string("round trip not measured yet")) +
			    ", " +
			    (rate ? StringUtil::Format("%.0f MB/s", static_cast<double>(rate) / 1e6)
			          : std::string("throughput not measured yet"));
		}
		result["Remote SQL"] = data.sql;
	} else if (data.sql.empty()) {
		result["Table"] = data.table.ToSQL();
		if (data.limit.IsValid()) {
			result["Limit"] = (data.order.empty() ? "" : "ORDER BY " + data.order + " ") + "LIMIT " +
			                  to_string(data.limit.GetIndex()) + " (unless a filter stays here)";
		}
	}
	return result;
}

InsertionOrderPreservingMap<std::string> DescribeRun(TableFunctionDynamicToStringInput &input) {
	InsertionOrderPreservingMap<std::string> result;
	if (input.global_state) {
		result["Remote SQL"] = input.global_state->Cast<ScanGlobal>().sql;
	}
	return result;
}

unique_ptr<NodeStatistics> Cardinality(ClientContext &, const FunctionData *bind_data) {
	auto &data = bind_data->Cast<ScanData>();
	if (!data.rows.IsValid()) {
		return nullptr;
	}
	return make_uniq<NodeStatistics>(data.rows.GetIndex(), data.rows.GetIndex());
}

//! The batch a chunk came from: lets DuckDB insert in parallel and keep the order.
OperatorPartitionData Batch(ClientContext &, TableFunctionGetPartitionInput &input) {
	if (input.partition_info.RequiresPartitionColumns()) {
		throw InternalException("openduck: a scan has no partition columns");
	}
	return OperatorPartitionData(input.local_state->Cast<ArrowScanLocalState>().batch_index);
}

//! Names the service's columns behind the column ids of a table scan (see ColumnNamer).
ColumnNamer ColumnsOf(LogicalGet &get, ScanData &data) {
	return [&get, &data](idx_t index, std::string &quoted) {
		auto &names = data.arrow_table.GetNames();
		auto &column_ids = get.GetColumnIds();
		if (index >= column_ids.size() || column_ids[index].IsRowIdColumn()) {
			return false;
		}
		auto id = column_ids[index].GetPrimaryIndex();
		if (id >= names.size() || column_ids[index].HasChildren() || data.entry->Cast<OpenduckTable>().Retyped(id)) {
			return false;
		}
		quoted = QuoteIdentifier(names[id]);
		return true;
	};
}

//! Takes over every filter with an exact SQL rendering; the rest stay with DuckDB.
void PushdownFilters(ClientContext &, LogicalGet &get, FunctionData *bind_data,
                     vector<unique_ptr<Expression>> &filters) {
	auto &data = bind_data->Cast<ScanData>();
	auto column = ColumnsOf(get, data);
	for (idx_t i = 0; i < filters.size();) {
		std::string sql;
		if (ExpressionSQL(*filters[i], column, sql)) {
			data.pushed.push_back(std::move(sql));
			filters.erase_at(i);
		} else {
			i++;
		}
	}
}

BindInfo ScannedTable(const optional_ptr<FunctionData> bind_data) {
	auto &data = bind_data->CastNoConst<ScanData>();
	if (data.entry) {
		return BindInfo(*data.entry);
	}
	return BindInfo(ScanType::EXTERNAL);
}

//! What makes two scans the same: DuckDB compares serialized plans to share a subplan
//! between equal scans, so the table, the SQL and the predicates taken over must be part
//! of it (scans of one table with other pushed filters are different scans).
void Signature(Serializer &serializer, const optional_ptr<FunctionData> bind_data, const TableFunction &) {
	auto &data = bind_data->Cast<ScanData>();
	serializer.WriteProperty(100, "endpoint", data.client->Endpoint());
	serializer.WriteProperty(101, "table", data.table.ToSQL());
	serializer.WriteProperty(102, "sql", data.sql);
	serializer.WriteProperty(103, "pushed", data.pushed);
	serializer.WriteProperty(104, "limit", data.limit.IsValid() ? to_string(data.limit.GetIndex()) : std::string());
	serializer.WriteProperty(105, "order", data.order);
}

unique_ptr<FunctionData> NoDeserialize(Deserializer &, TableFunction &) {
	throw NotImplementedException("openduck: a scan of an attached openduck database cannot be deserialized");
}

bool AnyTypePushesDown(const FunctionData &, idx_t) {
	return true;
}

//===--------------------------------------------------------------------===//
// openduck_query
//===--------------------------------------------------------------------===//

unique_ptr<FunctionData> BindQuery(ClientContext &context, TableFunctionBindInput &input,
                                   vector<LogicalType> &return_types, vector<std::string> &names) {
	for (auto &value : input.inputs) {
		if (value.IsNull()) {
			throw BinderException("openduck_query: the attachment and the SQL must not be NULL");
		}
	}
	auto alias = input.inputs[0].GetValue<std::string>();
	auto &catalog = Catalog::GetCatalog(context, alias);
	if (catalog.GetCatalogType() != "openduck") {
		throw BinderException("openduck_query: \"%s\" is not an openduck attachment", alias);
	}
	auto data = make_uniq<ScanData>();
	data->client = catalog.Cast<OpenduckCatalog>().ClientFor(context, false);
	data->sql = input.inputs[1].GetValue<std::string>();
	data->pending = data->client->Query(data->sql, context);
	data->pending->GetSchema(data->schema_root);
	ArrowTableFunction::PopulateArrowTableSchema(context, data->arrow_table, data->schema_root.arrow_schema);
	names = data->arrow_table.GetNames();
	return_types = data->arrow_table.GetTypes();
	if (return_types.empty()) {
		throw BinderException("openduck_query: the statement returns no columns");
	}
	data->all_types = return_types;
	data->projection_pushdown_enabled = false;
	return std::move(data);
}

//===--------------------------------------------------------------------===//
// openduck_refresh
//===--------------------------------------------------------------------===//

struct Refreshed : public GlobalTableFunctionState {
	vector<std::string> databases;
	idx_t offset = 0;
};

unique_ptr<FunctionData> BindRefresh(ClientContext &, TableFunctionBindInput &, vector<LogicalType> &return_types,
                                     vector<std::string> &names) {
	names = {"database"};
	return_types = {LogicalType::VARCHAR};
	return make_uniq<TableFunctionData>();
}

//! Refreshes at each run (a prepared CALL refreshes every time it runs).
unique_ptr<GlobalTableFunctionState> RunRefresh(ClientContext &context, TableFunctionInitInput &) {
	auto result = make_uniq<Refreshed>();
	for (auto &database : DatabaseManager::Get(context).GetDatabases(context)) {
		auto &catalog = database->GetCatalog();
		if (catalog.GetCatalogType() == "openduck") {
			catalog.Cast<OpenduckCatalog>().Refresh();
			result->databases.push_back(catalog.GetName());
		}
	}
	return std::move(result);
}

void ListRefreshed(ClientContext &, TableFunctionInput &input, DataChunk &output) {
	auto &state = input.global_state->Cast<Refreshed>();
	idx_t count = 0;
	for (; state.offset < state.databases.size() && count < STANDARD_VECTOR_SIZE; state.offset++, count++) {
		output.SetValue(0, count, Value(state.databases[state.offset]));
	}
	output.SetCardinality(count);
}

} // namespace

TableFunction RefreshFunction() {
	return TableFunction("openduck_refresh", {}, ListRefreshed, BindRefresh, RunRefresh);
}

unique_ptr<FunctionData> BindTableScan(ClientContext &context, TableCatalogEntry &entry,
                                       const shared_ptr<Client> &client, RemoteTable table, ArrowSchemaWrapper &arrow,
                                       optional_idx rows) {
	auto data = make_uniq<ScanData>();
	data->rows = rows;
	data->entry = &entry;
	data->client = client;
	data->table = std::move(table);
	data->schema_root.arrow_schema = arrow.arrow_schema;
	arrow.arrow_schema.release = nullptr;
	ArrowTableFunction::PopulateArrowTableSchema(context, data->arrow_table, data->schema_root.arrow_schema);
	data->all_types = data->arrow_table.GetTypes();
	return std::move(data);
}

//! A table function whose rows come from the service through this file's scan: its
//! batches keep their order, and EXPLAIN shows the service and the SQL sent.
TableFunction RemoteRows(const std::string &name, vector<LogicalType> arguments, table_function_bind_t bind) {
	TableFunction function(name, std::move(arguments), Scan, bind, InitScan, InitLocal);
	function.get_partition_data = Batch;
	function.to_string = Describe;
	function.dynamic_to_string = DescribeRun;
	return function;
}

TableFunction TableScanFunction() {
	auto function = RemoteRows("openduck_scan", {}, nullptr);
	function.projection_pushdown = true;
	function.filter_pushdown = true;
	function.filter_prune = false;
	function.supports_pushdown_type = AnyTypePushesDown;
	function.pushdown_complex_filter = PushdownFilters;
	function.get_bind_info = ScannedTable;
	function.serialize = Signature;
	function.deserialize = NoDeserialize;
	function.cardinality = Cardinality;
	return function;
}

TableFunction ShippedRows(const std::string &name, vector<LogicalType> arguments, table_function_bind_t bind) {
	auto function = RemoteRows(name, std::move(arguments), bind);
	function.serialize = Signature;
	function.deserialize = NoDeserialize;
	return function;
}

//! The table function of a shipped query: never called by name (placement makes it).
TableFunction ShippedQueryFunction() {
	return ShippedRows("openduck_remote_query", {}, nullptr);
}

namespace {

//! Makes `data` the bind data of a shipped query of `catalog` typed `types`.
void Shipped(ScanData &data, OpenduckCatalog &catalog, const vector<LogicalType> &types) {
	data.client = catalog.GetClient();
	data.shipped_from = &catalog;
	data.expected = types;
	data.all_types = types;
	data.projection_pushdown_enabled = false;
}

unique_ptr<LogicalGet> ShippedScan(idx_t table_index, unique_ptr<ScanData> data, OpenduckCatalog &catalog,
                                   vector<LogicalType> types, vector<std::string> names) {
	Shipped(*data, catalog, types);
	auto get = make_uniq<LogicalGet>(table_index, ShippedQueryFunction(), std::move(data), types, names);
	for (idx_t i = 0; i < types.size(); i++) {
		get->AddColumnId(i);
	}
	return get;
}

} // namespace

unique_ptr<LogicalOperator> ShippedQuery(Binder &binder, OpenduckCatalog &catalog, std::string sql,
                                         vector<LogicalType> types, vector<std::string> names, bool ordered,
                                         vector<Upload> uploads) {
	auto data = make_uniq<ScanData>();
	data->sql = std::move(sql);
	data->ordered = ordered;
	data->uploads = std::move(uploads);
	return ShippedScan(binder.GenerateTableIndex(), std::move(data), catalog, std::move(types), std::move(names));
}

unique_ptr<FunctionData> ShippedQueryData(OpenduckCatalog &catalog, std::string sql, vector<LogicalType> types,
                                          bool ordered) {
	auto data = make_uniq<ScanData>();
	data->sql = std::move(sql);
	data->ordered = ordered;
	data->subquery = true;
	Shipped(*data, catalog, types);
	return std::move(data);
}

unique_ptr<LogicalOperator> ShippedChange(OpenduckCatalog &catalog, std::string sql, MakeSQL make_sql,
                                          vector<LogicalType> types, vector<std::string> names) {
	auto data = make_uniq<ScanData>();
	data->sql = std::move(sql);
	data->make_sql = std::move(make_sql);
	data->writes = true;
	// Run once, in the order the service returns the rows.
	data->ordered = true;
	// Planned on its own (the index is never bound to).
	auto get = ShippedScan(0, std::move(data), catalog, std::move(types), std::move(names));
	get->ResolveOperatorTypes();
	return std::move(get);
}

bool LimitScan(LogicalGet &get, idx_t rows, const vector<std::pair<idx_t, std::string>> &order) {
	if (get.function.name != "openduck_scan" || !get.bind_data) {
		return false;
	}
	auto &data = get.bind_data->Cast<ScanData>();
	auto column = ColumnsOf(get, data);
	std::string keys;
	for (auto &key : order) {
		std::string quoted;
		if (!column(key.first, quoted)) {
			return false;
		}
		keys += (keys.empty() ? "" : ", ") + quoted + key.second;
	}
	data.limit = rows;
	data.order = std::move(keys);
	return true;
}

TableFunction QueryFunction() {
	return RemoteRows("openduck_query", {LogicalType::VARCHAR, LogicalType::VARCHAR}, BindQuery);
}

} // namespace openduck
