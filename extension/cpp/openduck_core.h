/* The C interface of the extension's Rust core (extension/src/ffi.rs).
 *
 * Each fallible function returns NULL on success or an OdError the caller frees with
 * od_error_free. No function calls back into DuckDB or lets a panic escape. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ArrowSchema;
struct ArrowArrayStream;
struct ArrowArray;

typedef struct OdError {
	int32_t code; /* a gRPC status code */
	char *message;
} OdError;

typedef struct OdClient OdClient;
typedef struct OdCatalog OdCatalog;

/* gRPC codes the C++ layer tells apart. */
enum {
	OD_CANCELLED = 1,
	OD_INVALID_ARGUMENT = 3,
	OD_NOT_FOUND = 5,
	OD_ALREADY_EXISTS = 6,
	OD_PERMISSION_DENIED = 7,
	OD_FAILED_PRECONDITION = 9,
	OD_UNIMPLEMENTED = 12,
	OD_UNAUTHENTICATED = 16,
};

OdError *od_endpoint(const char *path, char **out);
void od_string_free(char *text);
/* Each credential may be NULL (then from OPENDUCK_TOKEN, OPENDUCK_USER/PASSWORD, OPENDUCK_CA,
 * OPENDUCK_CERT/KEY). */
OdError *od_connect(const char *path, const char *token, const char *user, const char *password, const char *ca,
                    const char *cert, const char *key, OdClient **out);
void od_client_free(OdClient *client);
const char *od_client_database(const OdClient *client);
/* A client whose statements run in one new transaction on the service; od_end ends it. */
OdError *od_begin(const OdClient *client, OdClient **out);
OdError *od_end(const OdClient *client, bool commit);
/* A client on a connection of its own, for which the service keeps a session: temporary
 * tables its (committed) transactions make stay there for its statements to read until it
 * is freed. od_begin of it begins on that connection. */
OdError *od_session(const OdClient *client, OdClient **out);
const char *od_client_endpoint(const OdClient *client);
/* Whether two clients reach the same service as the same principal: one statement sent
 * through either may read the tables of both. */
bool od_client_same_service(const OdClient *client, const OdClient *other);
/* Whether one executor of the service serves every one of the `count` databases `names`
 * holds (asked at most every few seconds), into `out`. */
OdError *od_client_on_one_executor(const OdClient *client, const char *const *names, size_t count, bool *out);
/* A client like `client` whose queries must run on one executor, verbatim in its DuckDB
 * (the service refuses one whose databases live on several); free with od_client_free. */
OdClient *od_client_on_one_executor_only(const OdClient *client);
/* The link the client measured: its shortest round trip (microseconds) and the rate of
 * a large result (bytes per second); 0 for what was not measured yet. */
void od_client_link(const OdClient *client, uint64_t *round_trip_us, uint64_t *bytes_per_second);
/* ATTACH 'openduck:': the databases the service hosted when the client connected. */
size_t od_client_hosted_count(const OdClient *client);
const char *od_client_hosted(const OdClient *client, size_t index);

OdError *od_catalog_load(const OdClient *client, const char *database, OdCatalog **out);
void od_catalog_free(OdCatalog *catalog);
size_t od_catalog_schema_count(const OdCatalog *catalog);
const char *od_catalog_schema(const OdCatalog *catalog, size_t index);
size_t od_catalog_table_count(const OdCatalog *catalog);
void od_catalog_table(const OdCatalog *catalog, size_t index, const char **schema, const char **name,
                      const char **kind, int64_t *rows);
OdError *od_catalog_table_arrow(const OdCatalog *catalog, size_t index, struct ArrowSchema *out);

/* `interrupted` (may be NULL) is DuckDB's std::atomic<bool> interrupt flag of the client
 * context running the query; it must outlive the stream. */
OdError *od_query(const OdClient *client, const char *sql, const void *interrupted, struct ArrowArrayStream *out);
/* As od_query, and redeems the first ticket at once, in the background, so the service works
 * while the caller does: only for a query whose rows will be read, outside a transaction. */
OdError *od_query_started(const OdClient *client, const char *sql, const void *interrupted,
                          struct ArrowArrayStream *out);

OdError *od_execute(const OdClient *client, const char *sql, const void *interrupted);

/* Runs a statement that changes rows (UPDATE, DELETE); `rows` gets how many it changed. */
OdError *od_update(const OdClient *client, const char *sql, const void *interrupted, int64_t *rows);

/* Bulk ingest into an existing table (`temporary`: a temporary table of the client's
 * transaction on the service, whose executor `catalog` names). The schema and arrays are
 * taken over (moved out of and released by the core). An ingest freed without
 * od_ingest_finish is cancelled: the service keeps none of its rows. */
typedef struct OdIngest OdIngest;
OdError *od_ingest_begin(const OdClient *client, const char *catalog, const char *schema_name, const char *table,
                         bool temporary, struct ArrowSchema *schema, OdIngest **out);
OdError *od_ingest_push(OdIngest *ingest, struct ArrowArray *array);
OdError *od_ingest_finish(OdIngest *ingest, int64_t *rows);
void od_ingest_free(OdIngest *ingest);

void od_error_free(OdError *error);

#ifdef __cplusplus
}
#endif
