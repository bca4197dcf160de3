//===----------------------------------------------------------------------===//
// Writing through an attachment: INSERT INTO and CREATE TABLE AS stream their rows to
// the service through Flight SQL bulk ingest, chunk by chunk as DuckDB produces them.
//===----------------------------------------------------------------------===//
#pragma once

#include "scan.hpp"

#include "duckdb/execution/physical_operator.hpp"
#include "duckdb/parser/parsed_data/create_table_info.hpp"

namespace openduck {

class OpenduckCatalog;

//! One bulk ingest under way: chunks pushed here stream to the service as Arrow. Freed
//! before Finish (a statement failed), it is cancelled and the service keeps nothing.
class Ingest {
public:
	//! Starts appending rows of `types` (named `names`) to `target`, through `client`;
	//! `temporary`: a temporary table of the client's transaction.
	Ingest(duckdb::ClientContext &context, const Client &client, const RemoteTable &target, bool temporary,
	       const duckdb::vector<std::string> &names, const duckdb::vector<duckdb::LogicalType> &types);
	~Ingest();
	Ingest(const Ingest &) = delete;
	Ingest &operator=(const Ingest &) = delete;

	void Push(duckdb::DataChunk &chunk);
	//! Ends the upload; the rows the service wrote.
	int64_t Finish();

private:
	OdIngest *ingest = nullptr;
	duckdb::ClientProperties properties;
};

//! Sinks rows into a table of the service; as a source, yields the number written.
class OpenduckInsert : public duckdb::PhysicalOperator {
public:
	//! `create` (may be null) is the table to make first (CREATE TABLE AS).
	OpenduckInsert(duckdb::PhysicalPlan &plan, OpenduckCatalog &catalog, RemoteTable target,
	               duckdb::unique_ptr<duckdb::CreateTableInfo> create,
	               duckdb::vector<std::string> names, duckdb::vector<duckdb::LogicalType> types,
	               duckdb::idx_t estimated_cardinality);

	std::string GetName() const override {
		return "OPENDUCK_INSERT";
	}
	duckdb::InsertionOrderPreservingMap<std::string> ParamsToString() const override;

	// Sink: the rows to write, in order, from one thread.
	duckdb::unique_ptr<duckdb::GlobalSinkState> GetGlobalSinkState(duckdb::ClientContext &context) const override;
	duckdb::SinkResultType Sink(duckdb::ExecutionContext &context, duckdb::DataChunk &chunk,
	                            duckdb::OperatorSinkInput &input) const override;
	duckdb::SinkFinalizeType Finalize(duckdb::Pipeline &pipeline, duckdb::Event &event, duckdb::ClientContext &context,
	                                  duckdb::OperatorSinkFinalizeInput &input) const override;
	bool IsSink() const override {
		return true;
	}
	bool ParallelSink() const override {
		return false;
	}
	bool SinkOrderDependent() const override {
		return true;
	}

	// Source: one row, the count written.
	duckdb::SourceResultType GetDataInternal(duckdb::ExecutionContext &context, duckdb::DataChunk &chunk,
	                                         duckdb::OperatorSourceInput &input) const override;
	bool IsSource() const override {
		return true;
	}

private:
	OpenduckCatalog &catalog;
	RemoteTable target;
	duckdb::unique_ptr<duckdb::CreateTableInfo> create;
	duckdb::vector<std::string> names;
	duckdb::vector<duckdb::LogicalType> types;
};

} // namespace openduck
