#include "copies.hpp"

#include "scan.hpp"

#include "duckdb/main/client_context.hpp"
#include "duckdb/main/config.hpp"

namespace openduck {

using namespace duckdb;

namespace {

const char *const SETTING = "openduck_keep_copies";

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
	return found != kept.end() && Holds(found->second, upload);
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
	std::lock_guard<std::mutex> guard(copies->lock);
	copies->claimed = false;
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

	// Which copies are current, and what to copy for the others.
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
			Upload definition {upload.table, upload.name, current.columns, current.filters};
			if (FingerprintOf(context, definition) == current.print) {
				std::lock_guard<std::mutex> guard(store.lock);
				store.kept[upload.name].used = ++store.uses;
				continue;
			}
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
	vector<std::string> evicted;
	auto transaction = session->Begin();
	try {
		for (auto &upload : stale) {
			auto drop = "DROP TABLE IF EXISTS temp.main." + QuoteIdentifier(upload.name);
			Check(od_execute(transaction->Get(), drop.c_str(), &context.interrupted));
			KeptCopies::Kept kept;
			kept.printed = HasFingerprint(upload);
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
		// Room for them: the copies used longest ago go, but none this query reads.
		vector<std::pair<idx_t, std::string>> others;
		idx_t bytes = 0;
		{
			std::lock_guard<std::mutex> guard(store.lock);
			for (auto &entry : store.kept) {
				bytes += entry.second.print.bytes;
				auto read = std::any_of(uploads.begin(), uploads.end(),
				                        [&](const Upload &upload) { return upload.name == entry.first; });
				if (!read) {
					others.emplace_back(entry.second.used, entry.first);
				}
			}
		}
		for (auto &entry : made) {
			bytes += entry.second.print.bytes;
		}
		std::sort(others.begin(), others.end());
		for (auto &other : others) {
			if (bytes <= KeptCopies::KEPT_BYTES) {
				break;
			}
			auto drop = "DROP TABLE IF EXISTS temp.main." + QuoteIdentifier(other.second);
			Check(od_execute(transaction->Get(), drop.c_str(), &context.interrupted));
			std::lock_guard<std::mutex> guard(store.lock);
			bytes -= store.kept[other.second].print.bytes;
			evicted.push_back(other.second);
		}
		Check(transaction->End(true));
	} catch (...) {
		od_error_free(transaction->End(false));
		throw;
	}
	std::lock_guard<std::mutex> guard(store.lock);
	for (auto &name : evicted) {
		store.kept.erase(name);
	}
	for (auto &entry : made) {
		entry.second.used = ++store.uses;
		store.kept[entry.first] = std::move(entry.second);
	}
	return session;
}

} // namespace openduck
