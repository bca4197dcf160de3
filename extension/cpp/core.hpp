//===----------------------------------------------------------------------===//
// The Rust core seen from C++: RAII owners and errors turned into DuckDB exceptions.
//===----------------------------------------------------------------------===//
#pragma once

#include "duckdb.hpp"
#include "openduck_core.h"

namespace openduck {

//! Throws the DuckDB exception that matches `error`'s gRPC code, and frees it.
[[noreturn]] void Throw(OdError *error);

//! Throws if a core call failed.
inline void Check(OdError *error) {
	if (error) {
		Throw(error);
	}
}

//! A connection to the service: the one an attachment's catalog and scans share, or one
//! that runs its statements in a transaction of the service (Begin).
class Client {
public:
	explicit Client(OdClient *client) : client(client) {
	}
	~Client() {
		od_client_free(client);
	}
	Client(const Client &) = delete;
	Client &operator=(const Client &) = delete;

	const OdClient *Get() const {
		return client;
	}
	std::string Database() const {
		return od_client_database(client);
	}
	std::string Endpoint() const {
		return od_client_endpoint(client);
	}
	//! Whether `other` reaches the same service as the same principal.
	bool SameService(const Client &other) const {
		return od_client_same_service(client, other.client);
	}
	//! Whether one executor of the service serves every one of `databases`.
	bool OnOneExecutor(const std::vector<std::string> &databases) const {
		std::vector<const char *> names;
		for (auto &database : databases) {
			names.push_back(database.c_str());
		}
		bool one = false;
		Check(od_client_on_one_executor(client, names.data(), names.size(), &one));
		return one;
	}
	//! A client like this one whose queries must run on one executor, verbatim.
	duckdb::shared_ptr<Client> OnOneExecutorOnly() const {
		return duckdb::make_shared_ptr<Client>(od_client_on_one_executor_only(client));
	}
	//! The link as measured: the shortest round trip (microseconds) and the rate of
	//! a large result (bytes per second); 0 for what was not measured yet.
	void Link(uint64_t &round_trip_us, uint64_t &bytes_per_second) const {
		od_client_link(client, &round_trip_us, &bytes_per_second);
	}
	//! For `ATTACH 'openduck:'`: the databases the service hosted when this client connected.
	std::vector<std::string> Hosted() const {
		std::vector<std::string> names;
		for (size_t i = 0; i < od_client_hosted_count(client); i++) {
			names.emplace_back(od_client_hosted(client, i));
		}
		return names;
	}
	//! A client whose statements all run in one new transaction of the service.
	duckdb::shared_ptr<Client> Begin() const {
		OdClient *raw = nullptr;
		Check(od_begin(client, &raw));
		return duckdb::make_shared_ptr<Client>(raw);
	}
	//! A client on a connection of its own whose session on the service keeps the
	//! temporary tables its committed transactions (Begin) make, until it is freed.
	duckdb::shared_ptr<Client> Session() const {
		OdClient *raw = nullptr;
		Check(od_session(client, &raw));
		return duckdb::make_shared_ptr<Client>(raw);
	}
	//! Commits or rolls back the transaction of a client from Begin; null on success.
	OdError *End(bool commit) const {
		return od_end(client, commit);
	}
	//! Runs `sql` on the service; rows stream as they are pulled. Interrupting `context`
	//! (Ctrl-C, con.interrupt()) stops the wait and cancels the query on the service.
	//! `started`: the service starts it at once, and works while the caller goes on (only
	//! for a query whose rows will be read, on a client outside a transaction).
	duckdb::unique_ptr<duckdb::ArrowArrayStreamWrapper> Query(const std::string &sql, duckdb::ClientContext &context,
	                                                          bool started = false) const;

private:
	OdClient *client;
};

} // namespace openduck
