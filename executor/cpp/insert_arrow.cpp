// Inserts a stream of Arrow record batches into a table with DuckDB's own Arrow scan,
// `INSERT INTO <table> SELECT * FROM system.main.arrow_scan_dumb(<stream>)`: every thread of DuckDB
// converts batches and writes (compresses) row groups, and the rows keep the stream's
// order. The C API's appender does the same work on one thread, and its
// `duckdb_arrow_scan` registers a view in the user's database; neither fits.

#include "duckdb/main/capi/capi_internal.hpp"
#include "duckdb/common/arrow/arrow_wrapper.hpp"
#include "duckdb/function/table/arrow.hpp"
#include "duckdb/parser/expression/constant_expression.hpp"
#include "duckdb/parser/expression/function_expression.hpp"
#include "duckdb/parser/parser.hpp"
#include "duckdb/parser/query_node/select_node.hpp"
#include "duckdb/parser/statement/insert_statement.hpp"
#include "duckdb/parser/tableref/table_function_ref.hpp"

#include <cstdlib>
#include <cstring>

namespace {

// The stream stays the caller's: DuckDB's copy of it must not release it.
void KeepStream(ArrowArrayStream *stream) {
	stream->release = nullptr;
}

// The Arrow scan's stream factory: the caller's stream itself, read once. DuckDB pulls its
// batches one at a time under a lock and converts them on its threads.
duckdb::unique_ptr<duckdb::ArrowArrayStreamWrapper> Produce(uintptr_t factory, duckdb::ArrowStreamParameters &) {
	auto wrapper = duckdb::make_uniq<duckdb::ArrowArrayStreamWrapper>();
	wrapper->arrow_array_stream = *reinterpret_cast<ArrowArrayStream *>(factory);
	wrapper->arrow_array_stream.release = KeepStream;
	return wrapper;
}

// The schema is a new one of the stream's; DuckDB's wrapper of it releases it.
void GetSchema(ArrowArrayStream *stream, ArrowSchema &schema) {
	if (stream->get_schema(stream, &schema) != 0) {
		auto error = stream->get_last_error(stream);
		throw duckdb::InvalidInputException("cannot read the schema of the rows to insert: %s",
		                                    error ? error : "unknown error");
	}
}

char *Copy(const std::string &text) {
	auto copy = static_cast<char *>(std::malloc(text.size() + 1));
	if (copy) {
		std::memcpy(copy, text.c_str(), text.size() + 1);
	}
	return copy;
}

} // namespace

// Runs `insert`, one `INSERT INTO ... SELECT * FROM openduck_arrow_stream()`, on
// `connection` (in its open transaction, if any), its rows read from `stream`, and
// stores the rows inserted in `*rows`. Returns 0, or -1 with the error (DuckDB's
// message, "<Type> Error: ...") in `*error`, allocated with malloc for the caller to
// free with duckdb_free (NULL if even that failed).
extern "C" int openduck_insert_arrow(duckdb_connection connection, const char *insert, ArrowArrayStream *stream,
                                     uint64_t *rows, char **error) noexcept {
	*error = nullptr;
	try {
		auto conn = reinterpret_cast<duckdb::Connection *>(connection);
		duckdb::Parser parser(conn->context->GetParserOptions());
		parser.ParseQuery(insert);
		if (parser.statements.size() != 1 || parser.statements[0]->type != duckdb::StatementType::INSERT_STATEMENT) {
			*error = Copy("Internal Error: not one INSERT statement");
			return -1;
		}
		auto &statement = parser.statements[0]->Cast<duckdb::InsertStatement>();
		if (!statement.select_statement ||
		    statement.select_statement->node->type != duckdb::QueryNodeType::SELECT_NODE) {
			*error = Copy("Internal Error: the INSERT has no SELECT");
			return -1;
		}
		auto &select = statement.select_statement->node->Cast<duckdb::SelectNode>();
		if (!select.from_table || select.from_table->type != duckdb::TableReferenceType::TABLE_FUNCTION) {
			*error = Copy("Internal Error: the INSERT does not read a table function");
			return -1;
		}
		duckdb::vector<duckdb::unique_ptr<duckdb::ParsedExpression>> pointers;
		pointers.push_back(duckdb::make_uniq<duckdb::ConstantExpression>(
		    duckdb::Value::POINTER(reinterpret_cast<uintptr_t>(stream))));
		pointers.push_back(duckdb::make_uniq<duckdb::ConstantExpression>(
		    duckdb::Value::POINTER(reinterpret_cast<uintptr_t>(&Produce))));
		pointers.push_back(duckdb::make_uniq<duckdb::ConstantExpression>(
		    duckdb::Value::POINTER(reinterpret_cast<uintptr_t>(&GetSchema))));
		auto scan = duckdb::make_uniq<duckdb::TableFunctionRef>();
		// DuckDB's own function, whatever a user named a macro of theirs; the variant that
		// takes no projection or filters (the stream hands over every column as it is).
		scan->function = duckdb::make_uniq<duckdb::FunctionExpression>(SYSTEM_CATALOG, DEFAULT_SCHEMA,
		                                                                "arrow_scan_dumb", std::move(pointers));
		select.from_table = std::move(scan);

		auto result = conn->Query(std::move(parser.statements[0]));
		if (result->HasError()) {
			*error = Copy(result->GetError());
			return -1;
		}
		auto &materialized = result->Cast<duckdb::MaterializedQueryResult>();
		*rows = materialized.RowCount() == 0 ? 0 : materialized.GetValue(0, 0).GetValue<uint64_t>();
		return 0;
	} catch (std::exception &exception) {
		*error = Copy(duckdb::ErrorData(exception).Message());
		return -1;
	} catch (...) {
		*error = Copy("Internal Error: inserting the rows failed");
		return -1;
	}
}
