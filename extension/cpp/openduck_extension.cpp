//===----------------------------------------------------------------------===//
// openduck.duckdb_extension: `ATTACH 'openduck:mydb'` (or `od:mydb`) in a user's DuckDB.
//
// The entry point registers the storage extension behind ATTACH, openduck_query(), and the
// planner hooks that ship statements to the service (modify.hpp, placement.hpp).
// Everything DuckDB calls is here in C++; the Flight SQL client is the Rust core
// (openduck_core.h), called only as leaf functions that return errors as values.
//===----------------------------------------------------------------------===//
#include "catalog.hpp"
#include "limits.hpp"
#include "modify.hpp"
#include "placement.hpp"
#include "scan.hpp"
#include "subqueries.hpp"

#include "duckdb/main/attached_database.hpp"
#include "duckdb/main/database_manager.hpp"
#include "duckdb/main/extension/extension_loader.hpp"
#include "duckdb/main/secret/secret_manager.hpp"
#include "duckdb/parser/parsed_data/attach_info.hpp"
#include "duckdb/planner/operator/logical_simple.hpp"
#include "duckdb/storage/storage_extension.hpp"

namespace openduck {

using namespace duckdb;

void Throw(OdError *error) {
	std::string message = error->message ? error->message : "openduck: unknown error";
	auto code = error->code;
	od_error_free(error);
	switch (code) {
	case OD_CANCELLED:
		throw InterruptException();
	case OD_INVALID_ARGUMENT:
		throw InvalidInputException(message);
	case OD_NOT_FOUND:
	case OD_ALREADY_EXISTS:
		throw CatalogException(message);
	case OD_PERMISSION_DENIED:
	case OD_UNAUTHENTICATED:
		throw PermissionException(message);
	case OD_FAILED_PRECONDITION: // a constraint (NOT NULL, a key) refused it on the service
		throw ConstraintException(message);
	case OD_UNIMPLEMENTED:
		throw NotImplementedException(message);
	default:
		throw IOException(message);
	}
}

unique_ptr<ArrowArrayStreamWrapper> Client::Query(const std::string &sql, ClientContext &context,
                                                  bool started) const {
	auto stream = make_uniq<ArrowArrayStreamWrapper>();
	auto query = started ? od_query_started : od_query;
	Check(query(client, sql.c_str(), &context.interrupted, &stream->arrow_array_stream));
	stream->number_of_rows = -1;
	return stream;
}

namespace {

//! The text after the scheme: DuckDB hands over `mydb?...`, or the whole path.
std::string StripScheme(const std::string &path) {
	for (auto scheme : {"openduck:", "od:"}) {
		if (StringUtil::StartsWith(path, scheme)) {
			return path.substr(strlen(scheme));
		}
	}
	return path;
}

//! The options of an openduck secret.
const char *const SECRET_KEYS[] = {"token", "user", "password", "ca", "cert", "key"};

//! `CREATE SECRET (TYPE openduck, TOKEN '...', SCOPE 'grpc://host:port')`: how to connect to
//! the endpoints the scope covers (all of them without a scope): a TOKEN, or a USER and
//! PASSWORD of an account; for a grpc+tls:// endpoint its CA, and a client CERT and KEY for
//! mutual TLS. DuckDB redacts the token, the password and the key.
unique_ptr<BaseSecret> CreateOpenduckSecret(ClientContext &, CreateSecretInput &input) {
	auto secret = make_uniq<KeyValueSecret>(input.scope, input.type, input.provider, input.name);
	for (auto key : SECRET_KEYS) {
		auto value = input.options.find(key);
		if (value != input.options.end() && !value->second.IsNull()) {
			secret->secret_map[key] = value->second.ToString();
		}
	}
	auto has = [&](const char *key) {
		return secret->secret_map.count(key) > 0;
	};
	if (has("user") != has("password")) {
		throw InvalidInputException("an openduck secret with a USER needs its PASSWORD, and the other way round");
	}
	if (has("cert") != has("key")) {
		throw InvalidInputException("an openduck secret with a CERT needs its KEY, and the other way round");
	}
	if (!has("token") && !has("user") && !has("ca") && !has("cert")) {
		throw InvalidInputException("an openduck secret needs a TOKEN, a USER and PASSWORD, a CA, or a CERT and KEY");
	}
	secret->redact_keys = {"token", "password", "key"};
	return std::move(secret);
}

//! What the best-matching openduck secret for `endpoint` holds (empty if there is none).
struct Credentials {
	std::string token, user, password, ca, cert, key;

	static const char *OrNull(const std::string &value) {
		return value.empty() ? nullptr : value.c_str();
	}
};

Credentials CredentialsFor(ClientContext &context, const std::string &endpoint) {
	Credentials credentials;
	auto &secrets = SecretManager::Get(context);
	auto match = secrets.LookupSecret(CatalogTransaction::GetSystemCatalogTransaction(context), endpoint, "openduck");
	if (!match.HasMatch()) {
		return credentials;
	}
	auto &secret = static_cast<const KeyValueSecret &>(match.GetSecret());
	auto get = [&](const char *key) {
		auto value = secret.TryGetValue(key);
		return value.IsNull() ? std::string() : value.ToString();
	};
	credentials.token = get("token");
	credentials.user = get("user");
	credentials.password = get("password");
	credentials.ca = get("ca");
	credentials.cert = get("cert");
	credentials.key = get("key");
	return credentials;
}

//! Connects to what `path` (the text after the scheme) names, with the credentials of the
//! best-matching secret for its endpoint (or the environment's).
shared_ptr<Client> Connect(ClientContext &context, const std::string &path) {
	char *endpoint = nullptr;
	Check(od_endpoint(path.c_str(), &endpoint));
	auto credentials = CredentialsFor(context, endpoint);
	od_string_free(endpoint);
	OdClient *raw = nullptr;
	Check(od_connect(path.c_str(), Credentials::OrNull(credentials.token), Credentials::OrNull(credentials.user),
	                 Credentials::OrNull(credentials.password), Credentials::OrNull(credentials.ca),
	                 Credentials::OrNull(credentials.cert), Credentials::OrNull(credentials.key), &raw));
	return make_shared_ptr<Client>(raw);
}

//! The ATTACH option NameAttachment marks an attachment of the service with: whether it
//! was written without AS.
const char *const UNALIASED = "openduck_unaliased";

//! Whether `attached` is an attachment of `database` on the service at `endpoint`.
bool IsAttachmentOf(AttachedDatabase &attached, const std::string &endpoint, const std::string &database) {
	auto &catalog = attached.GetCatalog();
	if (catalog.GetCatalogType() != "openduck") {
		return false;
	}
	auto &client = *catalog.Cast<OpenduckCatalog>().GetClient();
	return client.Endpoint() == endpoint && client.Database() == database;
}

//! The databases of `service` an ATTACH can name, split into those not attached yet and
//! those attached from it already. Throws when another database holds one's name.
struct ServiceDatabases {
	std::vector<std::string> missing, attached;

	ServiceDatabases(ClientContext &context, const Client &service) {
		auto endpoint = service.Endpoint();
		auto &databases = DatabaseManager::Get(context);
		for (auto &database : service.Hosted()) {
			if (database.find_first_of("?@&/") != std::string::npos) {
				continue; // no ATTACH path can name it (openduck_query reads it)
			}
			auto existing = databases.GetDatabase(context, database);
			if (!existing) {
				missing.push_back(database);
			} else if (IsAttachmentOf(*existing, endpoint, database)) {
				attached.push_back(database);
			} else {
				throw BinderException("openduck: cannot attach the service's database \"%s\": another database of "
				                      "that name is attached. Attach it under another name: ATTACH 'openduck:%s' AS ...",
				                      database, database);
			}
		}
	}
};

//! `ATTACH 'openduck:'`: every database the service hosts, each under its own name, as
//! `md:` does. `db` (this ATTACH's attachment) becomes the first database not attached yet;
//! the others are attached next to it, in this statement's transaction, so that a failure
//! leaves none attached. Databases already attached from this service are skipped, so
//! running it again attaches the databases made since. Returns `db`'s database.
std::string AttachEveryDatabase(ClientContext &context, AttachedDatabase &db, const Client &service,
                                const AttachOptions &options) {
	auto endpoint = service.Endpoint();
	ServiceDatabases found(context, service);
	auto &missing = found.missing;
	if (missing.empty() && found.attached.empty()) {
		throw BinderException("openduck: the service at %s hosts no database an ATTACH can name", endpoint);
	}
	if (missing.empty()) {
		throw BinderException("openduck: every database of %s is attached already", endpoint);
	}
	db.SetName(missing[0]);
	auto &databases = DatabaseManager::Get(context);
	for (idx_t i = 1; i < missing.size(); i++) {
		AttachInfo info;
		info.name = missing[i];
		info.path = missing[i] + "?endpoint=" + endpoint;
		info.on_conflict = OnCreateConflict::ERROR_ON_CONFLICT;
		info.options[UNALIASED] = Value::BOOLEAN(false); // named already
		AttachOptions each(info.options, options.access_mode);
		each.db_type = "openduck";
		databases.AttachDatabase(context, info, each);
	}
	return missing[0];
}

//! For `ATTACH IF NOT EXISTS 'openduck:'`: the name to look for, the first of the service's
//! databases not attached from it (AttachEveryDatabase names the attachment so too), or when
//! every one is, the first (so that the ATTACH finds it and does nothing); empty when the
//! service hosts none an ATTACH can name.
std::string WorkspaceName(ClientContext &context, const std::string &path) {
	ServiceDatabases found(context, *Connect(context, path));
	if (!found.missing.empty()) {
		return found.missing[0];
	}
	return found.attached.empty() ? std::string() : found.attached[0];
}

//! The name an ATTACH of `path` (the text after the scheme) without AS gets: the database's
//! (or `mydb@snapshot`); for `ATTACH 'openduck:'`, WORKSPACE until the service is asked.
const char *const WORKSPACE = "openduck";
std::string DefaultName(const std::string &path) {
	auto database = path.substr(0, path.find('?'));
	return database.empty() ? WORKSPACE : database;
}

//! Names an ATTACH of the service written without AS (post-bind, when the extension is
//! loaded already), so that `IF NOT EXISTS` and `OR REPLACE` look for the right name;
//! DuckDB would name it as a file from its path (`127` for `mydb?endpoint=grpc://127.0.0.1:7878`).
//! `ATTACH IF NOT EXISTS 'openduck:'` asks the service which databases it hosts: it is named
//! after the first not attached yet, or, when all are, after one of them, and does nothing.
void NameAttachment(PlannerExtensionInput &input, BoundStatement &statement) {
	if (!statement.plan || statement.plan->type != LogicalOperatorType::LOGICAL_ATTACH) {
		return;
	}
	auto &info = statement.plan->Cast<LogicalSimple>().info->Cast<AttachInfo>();
	auto path = StripScheme(info.path);
	if (path == info.path) {
		return; // not an attachment of the service
	}
	// Tells Attach whether AS was written (its own guess is for an ATTACH that loads the
	// extension, which this hook does not see).
	info.options[UNALIASED] = Value::BOOLEAN(info.name.empty());
	if (info.name.empty()) {
		info.name = DefaultName(path);
		auto every = path.substr(0, path.find('?')).empty(); // 'openduck:' names no database
		if (every && info.on_conflict == OnCreateConflict::IGNORE_ON_CONFLICT) {
			auto name = WorkspaceName(input.context, path);
			if (!name.empty()) {
				info.name = name;
			}
			// What is attached may differ when a prepared ATTACH runs.
			input.binder.GetStatementProperties().always_require_rebind = true;
		}
	}
}

unique_ptr<Catalog> Attach(optional_ptr<StorageExtensionInfo>, ClientContext &context, AttachedDatabase &db,
                           const std::string &name, AttachInfo &info, AttachOptions &options) {
	auto path = StripScheme(info.path);
	// Written without AS: named by NameAttachment, or (when this ATTACH loaded the extension)
	// by DuckDB from the path as a file; either way it is named after the database here.
	bool aliased;
	auto marked = options.options.find(UNALIASED);
	if (marked != options.options.end()) {
		aliased = !BooleanValue::Get(marked->second);
		options.options.erase(marked);
	} else {
		aliased = name != AttachedDatabase::ExtractDatabaseName(path, FileSystem::GetFileSystem(context));
	}
	auto client = Connect(context, path);
	if (client->Database().empty()) {
		if (aliased) {
			throw BinderException("openduck: ATTACH 'openduck:' attaches every database of the service under its "
			                      "own name; to name one, ATTACH 'openduck:mydb' AS %s",
			                      name);
		}
		auto first = AttachEveryDatabase(context, db, *client, options);
		client = Connect(context, first + "?endpoint=" + client->Endpoint());
	} else if (!aliased) {
		db.SetName(client->Database());
	}
	if (client->Database().find('@') != std::string::npos) {
		// A snapshot never changes: attached read-only, whatever was asked.
		db.SetReadOnlyDatabase();
		options.access_mode = AccessMode::READ_ONLY;
	}
	return make_uniq<OpenduckCatalog>(db, std::move(client), options.access_mode);
}

unique_ptr<TransactionManager> CreateTransactionManager(optional_ptr<StorageExtensionInfo>, AttachedDatabase &db,
                                                        Catalog &) {
	return make_uniq<OpenduckTransactionManager>(db);
}

void Load(ExtensionLoader &loader) {
	auto &config = DBConfig::GetConfig(loader.GetDatabaseInstance());
	auto storage = make_shared_ptr<StorageExtension>();
	storage->attach = Attach;
	storage->create_transaction_manager = CreateTransactionManager;
	StorageExtension::Register(config, "openduck", storage);
	StorageExtension::Register(config, "od", storage);
	PlannerExtension naming;
	naming.post_bind_function = NameAttachment;
	PlannerExtension::Register(config, naming);
	PlannerExtension shipping;
	shipping.post_bind_function = CheckShipping;
	PlannerExtension::Register(config, shipping);
	PlannerExtension placing;
	placing.post_bind_function = PlaceQuery;
	PlannerExtension::Register(config, placing);
	OptimizerExtension limits;
	limits.optimize_function = PushLimits;
	OptimizerExtension::Register(config, limits);
	RegisterPlacement(config);
	RegisterKeptCopies(config);
	loader.RegisterFunction(QueryFunction());
	loader.RegisterFunction(RefreshFunction());
	loader.RegisterFunction(PlacedSubqueryFunction());

	SecretType secret_type;
	secret_type.name = "openduck";
	secret_type.deserializer = KeyValueSecret::Deserialize<KeyValueSecret>;
	secret_type.default_provider = "config";
	secret_type.extension = "openduck";
	loader.RegisterSecretType(secret_type);
	CreateSecretFunction secret = {"openduck", "config", CreateOpenduckSecret, {}};
	for (auto key : SECRET_KEYS) {
		secret.named_parameters[key] = LogicalType::VARCHAR;
	}
	loader.RegisterFunction(secret);
	loader.SetDescription("Attach databases of an openduck service (Arrow Flight SQL)");
}

} // namespace

} // namespace openduck

extern "C" {
DUCKDB_CPP_EXTENSION_ENTRY(openduck, loader) {
	openduck::Load(loader);
}
}
