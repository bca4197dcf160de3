#include "write.hpp"

#include "catalog.hpp"

#include "duckdb/common/arrow/arrow_converter.hpp"
#include "duckdb/main/client_context.hpp"

namespace openduck {

using namespace duckdb;

namespace {

//! An ingest under way, in the statement's transaction on the service; freed unfinished
//! (the statement failed), it is cancelled, and the transaction rolls back with DuckDB's.
struct IngestState : public GlobalSinkState {
	unique_ptr<Ingest> ingest;
	int64_t written = 0;
};

} // namespace

Ingest::Ingest(ClientContext &context, const Client &client, const RemoteTable &target, bool temporary,
               const vector<std::string> &names, const vector<LogicalType> &types)
    : properties(context.GetClientProperties()) {
	ArrowSchema schema;
	ArrowConverter::ToArrowSchema(&schema, types, names, properties);
	Check(od_ingest_begin(client.Get(), target.catalog.c_str(), target.schema.c_str(), target.name.c_str(), temporary,
	                      &schema, &ingest));
}

Ingest::~Ingest() {
	od_ingest_free(ingest);
}

void Ingest::Push(DataChunk &chunk) {
	ArrowArray array;
	ArrowConverter::ToArrowArray(chunk, &array, properties, {});
	Check(od_ingest_push(ingest, &array));
}

int64_t Ingest::Finish() {
	auto finishing = ingest;
	ingest = nullptr; // od_ingest_finish frees it, whatever the outcome
	int64_t rows = 0;
	Check(od_ingest_finish(finishing, &rows));
	return rows;
}

OpenduckInsert::OpenduckInsert(PhysicalPlan &plan, OpenduckCatalog &catalog, RemoteTable target,
                               unique_ptr<CreateTableInfo> create,
                               vector<std::string> names, vector<LogicalType> types, idx_t estimated_cardinality)
    : PhysicalOperator(plan, PhysicalOperatorType::EXTENSION, {LogicalType::BIGINT}, estimated_cardinality),
      catalog(catalog), target(std::move(target)), create(std::move(create)), names(std::move(names)),
      types(std::move(types)) {
}

InsertionOrderPreservingMap<std::string> OpenduckInsert::ParamsToString() const {
	InsertionOrderPreservingMap<std::string> result;
	result["Table"] = target.ToSQL();
	result["Service"] = catalog.GetClient()->Endpoint();
	return result;
}

unique_ptr<GlobalSinkState> OpenduckInsert::GetGlobalSinkState(ClientContext &context) const {
	auto state = make_uniq<IngestState>();
	if (create) {
		catalog.MakeTable(context, target.schema, *create);
	}
	state->ingest = make_uniq<Ingest>(context, *catalog.ClientFor(context, true), target, false, names, types);
	return std::move(state);
}

SinkResultType OpenduckInsert::Sink(ExecutionContext &context, DataChunk &chunk, OperatorSinkInput &input) const {
	input.global_state.Cast<IngestState>().ingest->Push(chunk);
	return SinkResultType::NEED_MORE_INPUT;
}

SinkFinalizeType OpenduckInsert::Finalize(Pipeline &, Event &, ClientContext &context,
                                          OperatorSinkFinalizeInput &input) const {
	auto &state = input.global_state.Cast<IngestState>();
	state.written = state.ingest->Finish();
	return SinkFinalizeType::READY;
}

SourceResultType OpenduckInsert::GetDataInternal(ExecutionContext &context, DataChunk &chunk,
                                                 OperatorSourceInput &input) const {
	auto &state = sink_state->Cast<IngestState>();
	chunk.SetCardinality(1);
	chunk.SetValue(0, 0, Value::BIGINT(state.written));
	return SourceResultType::FINISHED;
}

} // namespace openduck
