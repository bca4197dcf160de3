#include "copies.hpp"

#include "scan.hpp"

#include "duckdb/catalog/catalog_entry/duck_table_entry.hpp"
#include "duckdb/main/client_context.hpp"
#include "duckdb/main/config.hpp"

namespace openduck {

using namespace duckdb;

namespace {

const char *const SETTING = "openduck_keep_copies";
const char *const LIMIT_SETTING = "openduck_kept_copies_limit";

//! The logical indexes of the columns `upload` copies.
vector<idx_t> ColumnsOf(const Upload &upload) {
	if (!upload.columns.empty()) {
		return upload.columns;
	}
	vector<idx_t> all;
	for (auto &column : upload.table.get().GetColumns().Logical()) {
		all.push_back(column.Logical().index);
	}
	return all;
}

bool Contains(const vector<idx_t> &columns, idx_t column) {
	return std::find(columns.begin(), columns.end(), column) != columns.end();
}

//! The rows `table` holds in storage (deleted ones included, until vacuumed).
idx_t StoredRows(TableCatalogEntry &table) {
	return table.Cast<DuckTableEntry>().GetStorage().GetTotalRows();
}

//! Drops the copy `name` in `transaction` (a transaction of the copies' session).
void DropCopy(const Client &transaction, const std::string &name, const void *interrupted) {
	auto drop = "DROP TABLE IF EXISTS temp.main." + QuoteIdentifier(name);
	Check(od_execute(transaction.Get(), drop.c_str(), interrupted));
}

bool HasEqual(const vector<shared_ptr<Expression>> &filters, const Expression &filter) {
	return std::any_of(filters.begin(), filters.end(),
	                   [&](const shared_ptr<Expression> &other) { return Expression::Equals(*other, filter); });
}

} // namespace

void RegisterKeptCopies(DBConfig &config) {
	config.AddExtensionOption(SETTING,
	                          "Whether copies of local tables made for queries placed on an openduck service stay "
	                          "there for the next query (each is read again here, and copied anew if it changed)",
	                          LogicalType::BOOLEAN, Value::BOOLEAN(true));
	config.AddExtensionOption(LIMIT_SETTING,
	                          "How many bytes of copies of local tables stay on an openduck service once a query is "
	                          "done with them (the least recently used go first)",
	                          LogicalType::VARCHAR, Value("1GiB"), [](ClientContext &, SetScope, Value &value) {
		                          DBConfig::ParseMemoryLimit(value.ToString()); // throws on a bad size
	                          });
}

bool KeepCopies(ClientContext &context) {
	Value value;
	return !context.TryGetCurrentSetting(SETTING, value) || value.IsNull() || value.GetValue<bool>();
}

std::string KeptCopies::NameFor(TableCatalogEntry &table) {
	auto key = table.ParentCatalog().GetName() + '\x1f' + table.ParentSchema().name + '\x1f' + table.name;
	std::lock_guard<std::mutex> guard(lock);
	auto found = names.find(key);
	if (found != names.end()) {
		return found->second;
	}
	auto name = "openduck_upload_" + to_string(names.size());
	names.emplace(key, name);
	return name;
}

bool KeptCopies::Current(const Kept &kept, TableCatalogEntry &table) {
	if (!kept.printed) {
		return false;
	}
	// Its columns are still the table's (a column dropped, renamed or retyped since is not).
	auto &columns = table.GetColumns();
	for (idx_t i = 0; i < kept.columns.size(); i++) {
		if (kept.columns[i] >= columns.LogicalColumnCount()) {
			return false;
		}
		auto &column = columns.GetColumn(LogicalIndex(kept.columns[i]));
		if (column.Name() != kept.names[i] || column.Type() != kept.types[i]) {
			return false;
		}
	}
	return true;
}

bool KeptCopies::Holds(const Kept &kept, const Upload &upload) {
	if (!Current(kept, upload.table.get())) {
		return false;
	}
	for (auto column : ColumnsOf(upload)) {
		if (!Contains(kept.columns, column)) {
			return false;
		}
	}
	// Every row the query needs passed its filters.
	for (auto &filter : kept.filters) {
		if (!HasEqual(upload.filters, *filter)) {
			return false;
		}
	}
	return true;
}

bool KeptCopies::Covers(const Upload &upload) {
	std::lock_guard<std::mutex> guard(lock);
	auto found = kept.find(upload.name);
	// A table that grew since is copied again (how much, the cost rule must weigh).
	return found != kept.end() && Holds(found->second, upload) &&
	       found->second.table_rows == StoredRows(upload.table.get());
}

unique_ptr<CopiesClaim> KeptCopies::TryClaim() {
	std::lock_guard<std::mutex> guard(lock);
	if (claimed) {
		return nullptr;
	}
	claimed = true;
	return make_uniq<CopiesClaim>(shared_from_this());
}

CopiesClaim::~CopiesClaim() {
	copies->Trim(limit);
	std::lock_guard<std::mutex> guard(copies->lock);
	copies->claimed = false;
}

void KeptCopies::Trim(idx_t limit) {
	// Called as a claim ends (a destructor): nothing may leave.
	try {
		vector<std::pair<idx_t, std::string>> by_use;
		idx_t bytes = 0;
		shared_ptr<Client> holder;
		{
			std::lock_guard<std::mutex> guard(lock);
			for (auto &entry : kept) {
				bytes += entry.second.print.bytes;
				by_use.emplace_back(entry.second.used, entry.first);
			}
			holder = session;
		}
		if (bytes <= limit || !holder) {
			return;
		}
		std::sort(by_use.begin(), by_use.end());
		vector<std::string> dropped;
		auto transaction = holder->Begin();
		for (auto &entry : by_use) {
			if (bytes <= limit) {
				break;
			}
			DropCopy(*transaction, entry.second, nullptr);
			std::lock_guard<std::mutex> guard(lock);
			bytes -= kept[entry.second].print.bytes;
			dropped.push_back(entry.second);
		}
		Check(transaction->End(true));
		std::lock_guard<std::mutex> guard(lock);
		for (auto &name : dropped) {
			kept.erase(name);
		}
	} catch (...) {
		// The session is in doubt (a drop or the commit failed): closing its connection
		// rolls its transaction back and drops every copy it holds.
		std::lock_guard<std::mutex> guard(lock);
		kept.clear();
		session = nullptr;
	}
}

bool CopiesClaim::Lost(const ErrorData &error) {
	if (error.Type() == ExceptionType::CATALOG && StringUtil::Contains(error.RawMessage(), "openduck_upload_")) {
		return true;
	}
	shared_ptr<Client> session;
	std::string name;
	{
		std::lock_guard<std::mutex> guard(copies->lock);
		session = copies->session;
		if (!copies->kept.empty()) {
			name = copies->kept.begin()->first;
		}
	}
	if (!session || name.empty()) {
		return false;
	}
	// A session that answers and still holds a copy lost nothing: the error was the query's.
	auto probe = "SELECT 1 FROM temp.main." + QuoteIdentifier(name) + " LIMIT 0";
	auto failed = od_execute(session->Get(), probe.c_str(), nullptr);
	od_error_free(failed);
	return failed != nullptr;
}

bool CopiesClaim::Verify(ClientContext &context) {
	auto current = true;
	for (auto &copy : unverified) {
		if (FingerprintOf(context, copy.first) == copy.second) {
			verified.insert(copy.first.name);
			continue;
		}
		current = false;
		std::lock_guard<std::mutex> guard(copies->lock);
		copies->kept.erase(copy.first.name);
	}
	unverified.clear();
	return current;
}

void CopiesClaim::Forget() {
	shared_ptr<Client> session;
	{
		std::lock_guard<std::mutex> guard(copies->lock);
		copies->kept.clear();
		session = std::move(copies->session);
	}
	// Dropped outside the lock: it closes the connection, and the service the session.
}

shared_ptr<Client> CopiesClaim::Prepare(ClientContext &context, const std::string &database,
                                        const vector<Upload> &uploads) {
	auto &store = *copies;
	Value setting;
	if (context.TryGetCurrentSetting(LIMIT_SETTING, setting) && !setting.IsNull()) {
		limit = DBConfig::ParseMemoryLimit(setting.ToString());
	}
	// Only the claim's holder changes the session and the copies; planning reads them.
	shared_ptr<Client> session;
	{
		std::lock_guard<std::mutex> guard(store.lock);
		session = store.session;
	}
	if (!session) {
		session = store.attachment->Session();
		std::lock_guard<std::mutex> guard(store.lock);
		store.session = session;
	}

	// Which copies are kept (to Verify), and what to copy for the others.
	unverified.clear();
	vector<Upload> stale;
	for (auto &upload : uploads) {
		KeptCopies::Kept current;
		bool have = false;
		{
			std::lock_guard<std::mutex> guard(store.lock);
			auto found = store.kept.find(upload.name);
			if (found != store.kept.end()) {
				have = true;
				current = found->second;
			}
		}
		if (have && KeptCopies::Holds(current, upload)) {
			// Whether its rows are still the table's, Verify tells while the query runs.
			if (!verified.count(upload.name)) {
				unverified.emplace_back(upload, current.print);
				unverified.back().first.columns = current.columns;
				unverified.back().first.filters = current.filters;
			}
			std::lock_guard<std::mutex> guard(store.lock);
			store.kept[upload.name].used = ++store.uses;
			continue;
		}
		auto copy = upload;
		if (have && KeptCopies::Current(current, upload.table.get())) {
			// The copy it replaces served other queries: cover theirs too (its columns,
			// and only the filters both passed).
			if (!copy.columns.empty()) {
				for (auto column : current.columns) {
					if (!Contains(copy.columns, column)) {
						copy.columns.push_back(column);
					}
				}
				std::sort(copy.columns.begin(), copy.columns.end());
			}
			vector<shared_ptr<Expression>> both;
			for (auto &filter : upload.filters) {
				if (HasEqual(current.filters, *filter)) {
					both.push_back(filter);
				}
			}
			copy.filters = std::move(both);
		}
		stale.push_back(std::move(copy));
	}
	if (stale.empty()) {
		return session;
	}

	// Copied anew in one transaction of the session: until it commits, the service holds
	// the old copies, and these are not known to be current.
	{
		std::lock_guard<std::mutex> guard(store.lock);
		for (auto &upload : stale) {
			store.kept.erase(upload.name);
		}
	}
	vector<std::pair<std::string, KeptCopies::Kept>> made;
	auto transaction = session->Begin();
	try {
		for (auto &upload : stale) {
			DropCopy(*transaction, upload.name, &context.interrupted);
			KeptCopies::Kept kept;
			kept.printed = HasFingerprint(upload);
			kept.table_rows = StoredRows(upload.table.get());
			kept.print = CopyUp(context, *transaction, database, upload);
			kept.columns = ColumnsOf(upload);
			for (auto column : kept.columns) {
				auto &definition = upload.table.get().GetColumn(LogicalIndex(column));
				kept.names.push_back(definition.Name());
				kept.types.push_back(definition.Type());
			}
			kept.filters = upload.filters;
			made.emplace_back(upload.name, std::move(kept));
		}
		Check(transaction->End(true));
	} catch (...) {
		auto failed = transaction->End(false);
		if (failed) {
			// Its rollback did not go through: the session may still hold the transaction.
			od_error_free(failed);
			Forget();
		}
		throw;
	}
	std::lock_guard<std::mutex> guard(store.lock);
	for (auto &entry : made) {
		entry.second.used = ++store.uses;
		verified.insert(entry.first);
		store.kept[entry.first] = std::move(entry.second);
	}
	return session;
}

} // namespace openduck
