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
	~IngestState() override {
		od_ingest_free(ingest);
	}
	OdIngest *ingest = nullptr;
	ClientProperties properties;
	int64_t written = 0;
};

} // namespace

OpenduckInsert::OpenduckInsert(PhysicalPlan &plan, OpenduckCatalog &catalog, RemoteTable target, std::string create,
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
	state->properties = context.GetClientProperties();
	if (!create.empty()) {
		catalog.Execute(context, create);
	}
	ArrowSchema schema;
	ArrowConverter::ToArrowSchema(&schema, types, names, state->properties);
	Check(od_ingest_begin(catalog.ClientFor(context, true)->Get(), target.catalog.c_str(), target.schema.c_str(),
	                      target.name.c_str(), &schema, &state->ingest));
	return std::move(state);
}

SinkResultType OpenduckInsert::Sink(ExecutionContext &context, DataChunk &chunk, OperatorSinkInput &input) const {
	auto &state = input.global_state.Cast<IngestState>();
	ArrowArray array;
	ArrowConverter::ToArrowArray(chunk, &array, state.properties, {});
	Check(od_ingest_push(state.ingest, &array));
	return SinkResultType::NEED_MORE_INPUT;
}

SinkFinalizeType OpenduckInsert::Finalize(Pipeline &, Event &, ClientContext &context,
                                          OperatorSinkFinalizeInput &input) const {
	auto &state = input.global_state.Cast<IngestState>();
	auto ingest = state.ingest;
	state.ingest = nullptr; // od_ingest_finish frees it, whatever the outcome
	Check(od_ingest_finish(ingest, &state.written));
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
