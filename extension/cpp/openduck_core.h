/* The C interface of the extension's Rust core (extension/src/ffi.rs).
 *
 * Each fallible function returns NULL on success or an OdError the caller frees with
 * od_error_free. No function calls back into DuckDB or lets a panic escape. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ArrowSchema;
struct ArrowArrayStream;

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
	OD_PERMISSION_DENIED = 7,
	OD_UNAUTHENTICATED = 16,
};

OdError *od_endpoint(const char *path, char **out);
void od_string_free(char *text);
OdError *od_connect(const char *path, const char *token, OdClient **out);
void od_client_free(OdClient *client);
const char *od_client_database(const OdClient *client);
const char *od_client_endpoint(const OdClient *client);

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

void od_error_free(OdError *error);

#ifdef __cplusplus
}
#endif
