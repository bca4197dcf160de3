//===----------------------------------------------------------------------===//
// Copies of this session's tables kept on the service between queries.
//
// A query placed on the service copies the local tables it reads up (bridge.hpp). Those
// copies are kept, in a session of the service of their own (one connection per
// attachment), so that the next query over the same table copies nothing: each table has
// one copy, named for it, holding the columns and rows the queries that used it needed.
// Before a query reads a kept copy, the table is read here again and its fingerprint
// compared (bridge.hpp): a table changed since (by anyone, committed or not) is copied
// anew, so a kept copy never answers with other rows than the table's. A copy that does
// not cover what a query needs is replaced by one covering both (more columns, fewer
// filters). Once a query is done with them, at most `openduck_kept_copies_limit` bytes of
// copies stay; the least recently used go first.
//===----------------------------------------------------------------------===//
#pragma once

#include "bridge.hpp"

#include <unordered_set>

namespace openduck {

class KeptCopies;

//! The settings `openduck_keep_copies` (true unless set false): whether copies are
//! kept, and `openduck_kept_copies_limit` ('1GiB'): how many bytes of them stay.
void RegisterKeptCopies(duckdb::DBConfig &config);
bool KeepCopies(duckdb::ClientContext &context);

//! One query's use of the kept copies: while it lives, no other query changes them.
class CopiesClaim {
public:
	explicit CopiesClaim(duckdb::shared_ptr<KeptCopies> copies) : copies(std::move(copies)) {
	}
	~CopiesClaim();
	CopiesClaim(const CopiesClaim &) = delete;
	CopiesClaim &operator=(const CopiesClaim &) = delete;

	//! Makes the session on the service hold a copy of each upload's table (reusing kept
	//! copies that hold what it needs, copying the others as `context`'s transaction sees
	//! them, in one transaction of the session), and returns the session to run the
	//! query in. Whether the kept copies' tables changed since, Verify tells.
	duckdb::shared_ptr<Client> Prepare(duckdb::ClientContext &context, const std::string &database,
	                                   const duckdb::vector<Upload> &uploads);
	//! Whether the kept copies Prepare reused still hold their tables' rows, as
	//! `context`'s transaction sees them (read again here, their fingerprints compared),
	//! which the service's query need not wait for. Those that do not are forgotten: a
	//! Prepare again copies them anew.
	bool Verify(duckdb::ClientContext &context);
	//! Whether `error`, of a query over the kept copies, came of the service's session
	//! losing them (it restarted, the connection broke): a copy is not found there, or
	//! the session does not answer.
	bool Lost(const duckdb::ErrorData &error);
	//! Forgets every kept copy and the session that held them.
	void Forget();

private:
	duckdb::shared_ptr<KeptCopies> copies;
	//! The setting's limit, as the query that holds the claim saw it.
	duckdb::idx_t limit = DEFAULT_LIMIT;
	//! Kept copies Prepare reused (their definitions and fingerprints), not verified
	//! yet; and the copies known to hold their tables' rows in this query's snapshot.
	duckdb::vector<std::pair<Upload, Fingerprint>> unverified;
	std::unordered_set<std::string> verified;

public:
	static constexpr duckdb::idx_t DEFAULT_LIMIT = 1024ULL * 1024 * 1024;
};

//! An attachment's kept copies.
class KeptCopies : public duckdb::enable_shared_from_this<KeptCopies> {
public:
	explicit KeptCopies(duckdb::shared_ptr<Client> attachment) : attachment(std::move(attachment)) {
	}

	//! The name of the copy of `table` on the service (`temp.main.<name>`), the same for
	//! every query.
	std::string NameFor(duckdb::TableCatalogEntry &table);
	//! Whether the copy kept of `upload`'s table holds every column and row it needs
	//! (whether it still holds the table's rows is known only when the query runs).
	bool Covers(const Upload &upload);
	//! The kept copies for one query, or null when another query uses them.
	duckdb::unique_ptr<CopiesClaim> TryClaim();

private:
	friend class CopiesClaim;

	//! A copy kept on the service.
	struct Kept {
		//! Whether its rows have a fingerprint (else it is copied anew for each query).
		bool printed = false;
		//! The table's columns copied (logical index, name, type) and the filters every
		//! row copied passed (over logical indexes).
		duckdb::vector<duckdb::idx_t> columns;
		duckdb::vector<std::string> names;
		duckdb::vector<duckdb::LogicalType> types;
		duckdb::vector<duckdb::shared_ptr<duckdb::Expression>> filters;
		Fingerprint print;
		//! The table's rows in storage when it was copied (a table grown since is not
		//! counted as kept when a query is placed).
		duckdb::idx_t table_rows = 0;
		//! When a query last used it (a counter), for eviction.
		duckdb::idx_t used = 0;
	};

	//! Drops copies beyond `limit` bytes (as read here), used longest ago first.
	void Trim(duckdb::idx_t limit);

	//! Whether `kept` has a fingerprint and its columns are still `table`'s.
	static bool Current(const Kept &kept, duckdb::TableCatalogEntry &table);
	//! Whether `kept` is Current and holds every column and row `upload` needs.
	static bool Holds(const Kept &kept, const Upload &upload);

	duckdb::shared_ptr<Client> attachment;
	std::mutex lock;
	//! The session holding the copies (null: none yet, or forgotten).
	duckdb::shared_ptr<Client> session;
	//! Copies by name, and names by table.
	std::unordered_map<std::string, Kept> kept;
	std::unordered_map<std::string, std::string> names;
	duckdb::idx_t uses = 0;
	bool claimed = false;
};

} // namespace openduck
