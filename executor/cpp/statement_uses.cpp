// What a prepared statement will touch, as DuckDB recorded it while binding and
// planning it: the databases it reads and changes (views expanded, sequences and
// table functions that scan tables included), the table functions it calls, the files
// it writes and the instance-wide settings it sets. The C API does not tell; the
// executor needs it to hold statements to a user's grants and to keep SQL off its own
// files. Also what a transaction changed: a database, or temporary objects only.

#include "duckdb/main/capi/capi_internal.hpp"
#include "duckdb/main/client_context_state.hpp"
#include "duckdb/main/client_data.hpp"
#include "duckdb/main/prepared_statement_data.hpp"
#include "duckdb/execution/physical_plan_generator.hpp"
#include "duckdb/execution/operator/helper/physical_reset.hpp"
#include "duckdb/execution/operator/helper/physical_set.hpp"
#include "duckdb/execution/operator/persistent/physical_batch_copy_to_file.hpp"
#include "duckdb/execution/operator/persistent/physical_copy_to_file.hpp"
#include "duckdb/execution/operator/persistent/physical_export.hpp"
#include "duckdb/execution/operator/projection/physical_tableinout_function.hpp"
#include "duckdb/execution/operator/scan/physical_table_scan.hpp"
#include "duckdb/execution/operator/schema/physical_attach.hpp"
#include "duckdb/execution/operator/schema/physical_detach.hpp"
#include "duckdb/transaction/duck_transaction.hpp"
#include "duckdb/transaction/meta_transaction.hpp"

namespace {

using duckdb::PhysicalOperatorType;

// What `visit` is told about (the values `StatementUse` in Rust reads).
enum Use : int {
	READS_DATABASE = 0,
	CHANGES_DATABASE = 1,
	CALLS_TABLE_FUNCTION = 2,
	WRITES_FILE = 3,
	SETS_GLOBAL = 4,
	DETACHES = 5,
	NAMES_FILES_BY_PATTERN = 6,
};

using Visit = void (*)(void *context, const char *name, size_t length, int use);

void Tell(Visit visit, void *context, const std::string &name, Use use) {
	visit(context, name.data(), name.size(), use);
}

// Whether a statement acts on whole databases or on the instance (ATTACH, DETACH,
// COPY FROM DATABASE, EXPORT DATABASE, LOAD, UPDATE EXTENSIONS, and the PRAGMAs left
// after DuckDB turned those that are queries into SQL, such as `PRAGMA
// force_checkpoint`): the binder records no table reads for those.
bool ActsOnDatabases(duckdb::StatementType type) {
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

// Whether SET or RESET of `name` in `scope` changes the setting for the whole instance
// (an extension's setting counts as such: its scope is not known here).
bool SetsGlobally(const duckdb::String &name, duckdb::SetScope scope) {
	if (scope == duckdb::SetScope::GLOBAL) {
		return true;
	}
	auto option = duckdb::DBConfig::GetOptionByName(name);
	return !option || duckdb::PhysicalSet::GetSettingScope(*option, scope) == duckdb::SetScope::GLOBAL;
}

// A file name as DuckDB opens it for `client`: `~` as its home directory (which a
// session may set), a `file:` URL as its path.
std::string Expanded(const std::string &path, duckdb::ClientContext *client) {
	auto opener = client ? duckdb::ClientData::Get(*client).file_opener.get() : nullptr;
	return duckdb::FileSystem::ExpandPath(path, opener);
}

// A COPY that writes several files names them after a pattern and an extension,
// inside its directory unless a part of either names directories itself.
void TellCopy(Visit visit, void *context, const duckdb::PhysicalCopyToFile &copy, duckdb::ClientContext *client) {
	Tell(visit, context, Expanded(copy.file_path, client), WRITES_FILE);
	if (copy.use_tmp_file && client) {
		// Written as tmp_<name>, then moved over <name>.
		Tell(visit, context, Expanded(duckdb::PhysicalCopyToFile::GetNonTmpFile(*client, copy.file_path), client),
		     WRITES_FILE);
	}
	if (!(copy.partition_output || copy.per_thread_output || copy.rotate)) {
		return;
	}
	auto names_directories = [](const std::string &text) {
		return text.find('/') != std::string::npos || text.find('\\') != std::string::npos;
	};
	std::string pattern;
	for (auto &segment : copy.filename_pattern.SerializeSegments()) {
		pattern += segment.type == duckdb::FileNameSegmentType::LITERAL ? segment.data : std::string("{}");
	}
	if (names_directories(pattern) || names_directories(copy.file_extension)) {
		Tell(visit, context, pattern + "." + copy.file_extension, NAMES_FILES_BY_PATTERN);
	}
}

void Walk(const duckdb::PhysicalOperator &op, Visit visit, void *context, duckdb::ClientContext *client) {
	switch (op.type) {
	case PhysicalOperatorType::TABLE_SCAN:
		Tell(visit, context, op.Cast<duckdb::PhysicalTableScan>().function.name, CALLS_TABLE_FUNCTION);
		break;
	case PhysicalOperatorType::INOUT_FUNCTION: {
		// Its function is private; its parameters name it unless the function
		// describes itself (then it goes by no name, which no allowance covers).
		auto params = op.ParamsToString();
		auto name = params.find("Name");
		Tell(visit, context, name != params.end() ? name->second : std::string(), CALLS_TABLE_FUNCTION);
		break;
	}
	case PhysicalOperatorType::COPY_TO_FILE:
		TellCopy(visit, context, op.Cast<duckdb::PhysicalCopyToFile>(), client);
		break;
	case PhysicalOperatorType::BATCH_COPY_TO_FILE: {
		auto &copy = op.Cast<duckdb::PhysicalBatchCopyToFile>();
		Tell(visit, context, Expanded(copy.file_path, client), WRITES_FILE);
		if (copy.use_tmp_file && client) {
			Tell(visit, context,
			     Expanded(duckdb::PhysicalCopyToFile::GetNonTmpFile(*client, copy.file_path), client), WRITES_FILE);
		}
		break;
	}
	case PhysicalOperatorType::EXPORT:
		Tell(visit, context, Expanded(op.Cast<duckdb::PhysicalExport>().info->file_path, client), WRITES_FILE);
		break;
	case PhysicalOperatorType::ATTACH: {
		auto &info = *op.Cast<duckdb::PhysicalAttach>().info;
		Tell(visit, context, Expanded(info.path, client), WRITES_FILE);
		if (info.on_conflict == duckdb::OnCreateConflict::REPLACE_ON_CONFLICT) {
			// ATTACH OR REPLACE detaches what has the name first.
			Tell(visit, context, info.name, DETACHES);
		}
		break;
	}
	case PhysicalOperatorType::DETACH:
		Tell(visit, context, op.Cast<duckdb::PhysicalDetach>().info->name, DETACHES);
		break;
	case PhysicalOperatorType::SET: {
		auto &set = op.Cast<duckdb::PhysicalSet>();
		if (SetsGlobally(set.name, set.scope)) {
			Tell(visit, context, set.name.ToStdString(), SETS_GLOBAL);
		}
		break;
	}
	case PhysicalOperatorType::RESET: {
		auto &reset = op.Cast<duckdb::PhysicalReset>();
		if (SetsGlobally(reset.name, reset.scope)) {
			Tell(visit, context, reset.name.ToStdString(), SETS_GLOBAL);
		}
		break;
	}
	default:
		break;
	}
	for (auto &child : op.GetChildren()) {
		Walk(child.get(), visit, context, client);
	}
}

// Asked about every statement a guarded connection prepares: returns why it may not
// run, or null. The text stays valid until the next call.
using Check = const char *(*)(void *policy, const duckdb::PreparedStatementData *prepared,
                              duckdb::ClientContext *client);

// Holds a connection's statements to a policy: DuckDB calls OnFinalizePrepare for each
// statement it prepares, and again when it binds a prepared statement anew to run it
// (its parameters' types were not known, or the catalog changed meanwhile), which the
// prepared statement a client holds never shows.
class Guard final : public duckdb::ClientContextState {
public:
	Guard(Check check, void *policy) : check(check), policy(policy) {
	}

	bool CanRequestRebind() override {
		return true; // the only way to be called with each statement prepared
	}

	duckdb::RebindQueryInfo OnFinalizePrepare(duckdb::ClientContext &client, duckdb::PreparedStatementData &prepared,
	                                          duckdb::PreparedStatementMode) override {
		auto refusal = check(policy, &prepared, &client);
		if (refusal) {
			throw duckdb::PermissionException(std::string(refusal));
		}
		return duckdb::RebindQueryInfo::DO_NOT_REBIND;
	}

private:
	Check check;
	void *policy;
};

} // namespace

// Guards a connection: `check` is asked about each statement it prepares, with
// `policy`, which must outlive the connection. Returns 0, or -1 when DuckDB throws.
extern "C" int openduck_guard_connection(duckdb_connection connection, Check check, void *policy) noexcept {
	try {
		auto conn = reinterpret_cast<duckdb::Connection *>(connection);
		conn->context->registered_state->Insert("openduck_guard", duckdb::make_shared_ptr<Guard>(check, policy));
		return 0;
	} catch (...) {
		return -1;
	}
}

// The statement data of a prepared statement, or null when it did not prepare.
extern "C" const void *openduck_prepared_data(duckdb_prepared_statement prepared) noexcept {
	auto wrapper = reinterpret_cast<duckdb::PreparedStatementWrapper *>(prepared);
	if (!wrapper || !wrapper->statement || wrapper->statement->HasError()) {
		return nullptr;
	}
	return wrapper->statement->data.get();
}

// Tells `visit` what a prepared statement (its `PreparedStatementData`) of connection
// `client` (its ClientContext, or null: file names are then not expanded) touches (see
// `Use`), and sets `whole` when it acts on whole databases (see ActsOnDatabases). What
// its physical plan holds is told only once it has one (DuckDB plans a statement whose
// parameters' types are not known yet when it binds it to run). Returns 0, or -1 when
// DuckDB throws. `visit` must not unwind; no exception leaves this function.
extern "C" int openduck_statement_uses(const void *prepared, void *client, Visit visit, void *context,
                                       bool *whole) noexcept {
	try {
		if (!prepared) {
			return -1;
		}
		auto &data = *static_cast<const duckdb::PreparedStatementData *>(prepared);
		*whole = ActsOnDatabases(data.statement_type);
		for (auto &read : data.properties.read_databases) {
			Tell(visit, context, read.first, READS_DATABASE);
		}
		for (auto &changed : data.properties.modified_databases) {
			Tell(visit, context, changed.first, CHANGES_DATABASE);
		}
		if (data.physical_plan) {
			Walk(data.physical_plan->Root(), visit, context, static_cast<duckdb::ClientContext *>(client));
		}
		return 0;
	} catch (...) {
		return -1;
	}
}

// Whether the transaction open on `connection` changed a database (not only temporary
// objects, which live and die with the connection): 1 when it did, 0 when it did not,
// -1 when no transaction is open or DuckDB throws (then the caller assumes it did).
extern "C" int openduck_transaction_changes_databases(duckdb_connection connection) noexcept {
	try {
		auto &context = *reinterpret_cast<duckdb::Connection *>(connection)->context;
		if (!context.transaction.HasActiveTransaction()) {
			return -1;
		}
		auto &meta = duckdb::MetaTransaction::Get(context);
		if (meta.ModifiedDatabase()) {
			return 1;
		}
		// DuckDB records the one database a transaction writes as statements run; its
		// transactions' own records of changes are asked too, in case one was missed.
		for (auto &database : meta.OpenedTransactions()) {
			auto &attached = database.get();
			if (attached.IsSystem() || attached.IsTemporary()) {
				continue;
			}
			auto transaction = meta.TryGetTransaction(attached);
			if (!transaction) {
				continue;
			}
			if (!transaction->IsDuckTransaction() || transaction->Cast<duckdb::DuckTransaction>().ChangesMade()) {
				return 1;
			}
		}
		return 0;
	} catch (...) {
		return -1;
	}
}
