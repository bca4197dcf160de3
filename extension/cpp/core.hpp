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

//! One connection to the service, shared by the catalog and every scan of an attachment.
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
	//! Runs `sql` on the service; rows stream as they are pulled. Interrupting `context`
	//! (Ctrl-C, con.interrupt()) stops the wait and cancels the query on the service.
	duckdb::unique_ptr<duckdb::ArrowArrayStreamWrapper> Query(const std::string &sql,
	                                                          duckdb::ClientContext &context) const;

private:
	OdClient *client;
};

} // namespace openduck
