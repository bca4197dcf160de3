// Which databases a prepared statement reads and which it changes, as
// DuckDB's binder recorded them while binding it (views expanded, sequences
// and table functions that scan tables included). The C API does not tell;
// the executor needs it to hold a user to the databases they were granted.

#include "duckdb/main/capi/capi_internal.hpp"

namespace {

using Visit = void (*)(void *context, const char *name, size_t length, bool changed);

} // namespace

// Whether a statement acts on whole databases or on the instance (ATTACH,
// DETACH, COPY FROM DATABASE, EXPORT DATABASE, LOAD, UPDATE EXTENSIONS, and
// the PRAGMAs left after DuckDB turned those that are queries into SQL, such
// as `PRAGMA force_checkpoint`): the binder records no table reads for those.
static bool acts_on_databases(duckdb::StatementType type) {
	switch (type) {
	case duckdb::StatementType::ATTACH_STATEMENT:
	case duckdb::StatementType::DETACH_STATEMENT:
	case duckdb::StatementType::COPY_DATABASE_STATEMENT:
	case duckdb::StatementType::EXPORT_STATEMENT:
	case duckdb::StatementType::LOAD_STATEMENT:
	case duckdb::StatementType::UPDATE_EXTENSIONS_STATEMENT:
	case duckdb::StatementType::PRAGMA_STATEMENT:
		return true;
	default:
		return false;
	}
}

// Calls `visit` once per database the statement reads (changed false) and
// once per database it changes (changed true), and sets `whole` when it acts
// on whole databases (see above). Returns 0, or -1 when the statement is not
// a successfully prepared one or DuckDB throws. `visit` must not unwind; no
// exception leaves this function.
extern "C" int openduck_statement_databases(duckdb_prepared_statement prepared, Visit visit, void *context,
                                            bool *whole) noexcept {
	try {
		auto wrapper = reinterpret_cast<duckdb::PreparedStatementWrapper *>(prepared);
		if (!wrapper || !wrapper->statement || wrapper->statement->HasError()) {
			return -1;
		}
		*whole = acts_on_databases(wrapper->statement->GetStatementType());
		auto properties = wrapper->statement->GetStatementProperties();
		for (auto &read : properties.read_databases) {
			visit(context, read.first.data(), read.first.size(), false);
		}
		for (auto &changed : properties.modified_databases) {
			visit(context, changed.first.data(), changed.first.size(), true);
		}
		return 0;
	} catch (...) {
		return -1;
	}
}
