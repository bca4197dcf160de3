//! The Flight SQL service: protocol in, coordinator calls out.

use std::pin::Pin;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::SqlInfoData;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionBeginTransactionRequest, ActionBeginTransactionResult, ActionCancelQueryRequest, ActionCancelQueryResult,
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult,
    ActionEndTransactionRequest, Any, CommandGetCatalogs, CommandGetCrossReference, CommandGetDbSchemas,
    CommandGetExportedKeys, CommandGetImportedKeys, CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes,
    CommandGetTables, CommandGetXdbcTypeInfo, CommandPreparedStatementQuery, CommandPreparedStatementUpdate,
    CommandStatementIngest, CommandStatementQuery, CommandStatementUpdate, DoPutPreparedStatementResult,
    ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    Action, ActionType, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage,
    SchemaAsIpc, Ticket,
};
use bytes::Bytes;
use futures::{stream, Stream, TryStreamExt};
use openduck_coordinator::{CatalogFilter, Coordinator, PlannedQuery, Principal, Recording, ResultStream, Scope};
use openduck_proto::{CATALOG_METADATA, ENDPOINTS_METADATA, EVERY_ENDPOINT, ONE_EXECUTOR_METADATA, REQUIRED};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use crate::actions;
use crate::auth::Credentials;
use crate::connection::client_of;
use crate::error::{Error, Result};
use crate::history::{self, Tallied};
use crate::ingest::{ingest_statement, ingest_target};
use crate::metadata::{self, TableRef};
use crate::prepared::PreparedStatements;
use crate::session::ClientSessions;
use crate::sql_info::sql_info;
use openduck_remote::{encode_results, for_client, incoming_batches, Receiver};

use crate::observe::note_put_kind;

type DoGetStream = <OpenDuckFlightSql as FlightService>::DoGetStream;
type HandshakeStream = Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>;

/// Most prepared statements open at once, over all clients.
const MAX_PREPARED_STATEMENTS: usize = 10_000;
/// The table types openduck reports.
const TABLE_TYPES: [&str; 2] = ["TABLE", "VIEW"];

/// openduck's Flight SQL service.
pub(crate) struct OpenDuckFlightSql {
    pub(crate) coordinator: Arc<Coordinator>,
    credentials: Credentials,
    pub(crate) prepared: PreparedStatements,
    pub(crate) sessions: Arc<ClientSessions>,
    sql_info: SqlInfoData,
    xdbc_types: arrow_flight::sql::metadata::XdbcTypeInfoData,
}

impl std::fmt::Debug for OpenDuckFlightSql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenDuckFlightSql")
            .field("credentials", &self.credentials)
            .field("prepared", &self.prepared)
            .finish_non_exhaustive()
    }
}

impl OpenDuckFlightSql {
    pub(crate) fn new(coordinator: Arc<Coordinator>, credentials: Credentials, sessions: Arc<ClientSessions>) -> Self {
        OpenDuckFlightSql {
            coordinator,
            credentials,
            prepared: PreparedStatements::new(MAX_PREPARED_STATEMENTS),
            sessions,
            sql_info: sql_info(),
            xdbc_types: metadata::xdbc_type_info(),
        }
    }

    fn statement_info(&self, planned: PlannedQuery, descriptor: FlightDescriptor) -> Result<FlightInfo> {
        // Without a known schema the field stays empty; clients then take the
        // schema from the stream.
        let mut info = match &planned.schema {
            Some(schema) => FlightInfo::new().try_with_schema(&for_client(schema))?,
            None => FlightInfo::new(),
        };
        // Several endpoints are parts of a UNION ALL: no order across them.
        let ordered = planned.endpoints.len() == 1;
        for planned in planned.endpoints {
            let ticket = TicketStatementQuery {
                statement_handle: planned.ticket.into(),
            };
            let mut endpoint = FlightEndpoint::new().with_ticket(Ticket::new(ticket.as_any().encode_to_vec()));
            if let Some(location) = &planned.location {
                // The executor that runs it serves it directly; a client
                // that ignores locations redeems the ticket here instead.
                endpoint = endpoint.with_location(location);
            }
            info = info.with_endpoint(endpoint);
        }
        Ok(info.with_descriptor(descriptor).with_ordered(ordered))
    }

    /// Plans a query of `kind`, recorded in the query history.
    async fn plan(
        &self,
        scope: &Scope,
        kind: &'static str,
        sql: &str,
        parameters: Option<&RecordBatch>,
    ) -> Result<PlannedQuery> {
        let recording = self.record(scope, kind, sql);
        match self.coordinator.plan_query(scope, sql, parameters).await {
            Ok(planned) => {
                recording.planned(&planned.query_id, planned.ran, planned.past_coordinator());
                Ok(planned)
            }
            Err(error) => {
                let error = Error::from(error);
                recording.failed(&error, None, None);
                Err(error)
            }
        }
    }

    /// Records a statement of `kind` in the query history as it arrives.
    fn record(&self, scope: &Scope, kind: &'static str, sql: &str) -> Recording {
        let database = scope
            .database
            .clone()
            .unwrap_or_else(|| self.coordinator.default_database_of(&scope.principal));
        self.coordinator
            .history()
            .record(&scope.principal, &database, kind, sql)
    }

    /// What a request's statements run in (its connection's session), and
    /// who sends them.
    pub(crate) fn scope<T>(&self, request: &Request<T>, transaction: Option<&Bytes>) -> Result<Scope> {
        let mut scope = self.sessions.scope(client_of(request), transaction)?;
        scope.principal = principal_of(request);
        scope.reads_every_endpoint = request
            .metadata()
            .get(ENDPOINTS_METADATA)
            .is_some_and(|value| value.as_bytes() == EVERY_ENDPOINT.as_bytes());
        scope.one_executor = request
            .metadata()
            .get(ONE_EXECUTOR_METADATA)
            .is_some_and(|value| value.as_bytes() == REQUIRED.as_bytes());
        if let Some(catalog) = named_catalog(request)? {
            scope.database = Some(catalog);
        }
        Ok(scope)
    }

    /// The database a request's unqualified names resolve in, when its
    /// client chose one: in the request ([`CATALOG_METADATA`]) or, failing
    /// that, for its connection (the `catalog` session option).
    pub(crate) fn current_catalog<T>(&self, request: &Request<T>) -> Result<Option<String>> {
        Ok(named_catalog(request)?.or_else(|| client_of(request).and_then(|client| self.sessions.options(client).0)))
    }

    /// The primary and foreign key columns of the tables the request's
    /// principal may see.
    async fn keys<T>(&self, request: &Request<T>) -> Result<Vec<openduck_api::KeyColumn>> {
        let principal = principal_of(request);
        let mut keys = self.coordinator.keys().await?;
        // A foreign key references a table of its own database.
        keys.retain(|key| lists(&principal, &key.catalog));
        Ok(keys)
    }

    /// The database a request's unqualified names resolve in when its
    /// client chose none.
    pub(crate) fn default_database<T>(&self, request: &Request<T>) -> String {
        self.coordinator.default_database_of(&principal_of(request))
    }
}

/// The database a request names in its metadata ([`CATALOG_METADATA`]);
/// one its principal may not use is refused, as SetSessionOptions refuses it.
fn named_catalog<T>(request: &Request<T>) -> Result<Option<String>> {
    let Some(value) = request.metadata().get_bin(CATALOG_METADATA) else {
        return Ok(None);
    };
    let name = value
        .to_bytes()
        .ok()
        .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
        .ok_or_else(|| Error::InvalidRequest(format!("{CATALOG_METADATA} is not a UTF-8 database name")))?;
    if name.is_empty() {
        return Ok(None);
    }
    let principal = principal_of(request);
    match principal.grants() {
        Some(grants) if !principal.may_use(&name) => Err(openduck_coordinator::Error::NotGranted {
            database: name,
            grants: grants.to_string(),
        }
        .into()),
        _ => Ok(Some(name)),
    }
}

/// Who sends a request, as authentication established it.
pub(crate) fn principal_of<T>(request: &Request<T>) -> Principal {
    request.extensions().get::<Principal>().cloned().unwrap_or_default()
}

/// Whether a listing filtered to one catalog is of one `principal` may not
/// see: answered with nothing, not even a snapshot attached for it.
fn hidden(principal: &Principal, filter: &CatalogFilter) -> bool {
    filter
        .catalog
        .as_ref()
        .is_some_and(|catalog| !lists(principal, catalog))
}

/// Whether `principal` may see `catalog` in listings.
fn lists(principal: &Principal, catalog: &str) -> bool {
    principal.may_use(catalog)
}

/// A FlightInfo whose one endpoint's ticket is the metadata command itself.
fn metadata_info(command: Any, schema: &Schema, descriptor: FlightDescriptor) -> Result<Response<FlightInfo>> {
    let endpoint = FlightEndpoint::new().with_ticket(Ticket::new(command.encode_to_vec()));
    Ok(Response::new(
        FlightInfo::new()
            .try_with_schema(schema)?
            .with_endpoint(endpoint)
            .with_descriptor(descriptor),
    ))
}

/// Streams query results as Flight data, mapping a failure in the middle of
/// the stream to the same status codes as failures before it. Dictionaries
/// (DuckDB's ENUM) travel as dictionaries, as DuckDB produces them.
fn encode_stream(batches: ResultStream) -> DoGetStream {
    let schema = batches.schema();
    encode_results(schema, batches.map_err(Error::from), Receiver::Client)
}

fn encode_batch(batch: RecordBatch) -> DoGetStream {
    let schema = batch.schema();
    let batches = stream::iter([Ok(batch)]);
    Box::pin(
        FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(Status::from),
    )
}

fn schema_bytes(schema: &Schema) -> Result<Bytes> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default()).try_into()?;
    Ok(bytes)
}

/// Reads the parameter rows a client sent with DoPut; `None` when it sent none.
/// Messages without an IPC header (a first message that carries only the
/// descriptor, as some clients send) hold no data and are skipped.
async fn read_parameters(request: Request<PeekableFlightDataStream>) -> Result<Option<RecordBatch>> {
    let Some((_, batches)) = incoming_batches(request.into_inner()).await? else {
        return Ok(None);
    };
    let collected: Vec<RecordBatch> = batches.try_collect().await?;
    match collected.as_slice() {
        [] => Ok(None),
        [single] => Ok(Some(single.clone())),
        [first, ..] => Ok(Some(arrow::compute::concat_batches(&first.schema(), &collected)?)),
    }
}

fn update_count(changed: Option<u64>) -> i64 {
    changed.map_or(-1, |rows| i64::try_from(rows).unwrap_or(i64::MAX))
}

#[tonic::async_trait]
impl FlightSqlService for OpenDuckFlightSql {
    type FlightService = OpenDuckFlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<HandshakeStream>, Status> {
        let header = request.metadata().get("authorization").map(|value| value.as_bytes());
        let bearer = self
            .credentials
            .login(header)
            .await
            .map_err(|()| Error::Unauthenticated("invalid credentials"))?;
        let reply: HandshakeStream = Box::pin(stream::iter([Ok(HandshakeResponse {
            protocol_version: 0,
            payload: Bytes::new(),
        })]));
        let mut response = Response::new(reply);
        if let Some(token) = bearer {
            let bearer = MetadataValue::try_from(format!("Bearer {token}"))
                .map_err(|_| Error::Config("the token is not a valid header value".into()))?;
            response.metadata_mut().insert("authorization", bearer);
        }
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let scope = self.scope(&request, query.transaction_id.as_ref())?;
        let planned = self.plan(&scope, "query", &query.query, None).await?;
        Ok(Response::new(self.statement_info(planned, request.into_inner())?))
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let prepared = self.prepared.get(&query.prepared_statement_handle)?;
        let scope = self.scope(&request, None)?;
        let planned = self
            .plan(&scope, "prepared_query", &prepared.sql, prepared.parameters.as_ref())
            .await?;
        Ok(Response::new(self.statement_info(planned, request.into_inner())?))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let recording = match self.coordinator.query_id(&ticket.statement_handle) {
            Some(query_id) => self.coordinator.history().find(&query_id),
            None => Recording::none(),
        };
        match self.coordinator.execute_ticket(&ticket.statement_handle).await {
            Ok(batches) => Ok(Response::new(Box::pin(Tallied::new(encode_stream(batches), recording)))),
            Err(error) => {
                let error = Error::from(error);
                recording.failed(&error, None, None);
                Err(error.into())
            }
        }
    }

    async fn do_put_statement_update(
        &self,
        command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        note_put_kind("update");
        let scope = self.scope(&request, command.transaction_id.as_ref())?;
        let recording = self.record(&scope, "update", &command.query);
        let changed = self.coordinator.execute_update(&scope, &command.query, None).await;
        history::finish(&recording, &changed, |changed| *changed);
        Ok(update_count(changed.map_err(Error::from)?))
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        note_put_kind("bind");
        let parameters = read_parameters(request).await?;
        self.prepared.bind(&query.prepared_statement_handle, parameters)?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(query.prepared_statement_handle),
        })
    }

    async fn do_put_prepared_statement_update(
        &self,
        query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        note_put_kind("prepared_update");
        let prepared = self.prepared.get(&query.prepared_statement_handle)?;
        let scope = self.scope(&request, None)?;
        let parameters = read_parameters(request).await?.or(prepared.parameters);
        let recording = self.record(&scope, "prepared_update", &prepared.sql);
        let changed = self.coordinator.execute_update(&scope, &prepared.sql, parameters).await;
        history::finish(&recording, &changed, |changed| *changed);
        Ok(update_count(changed.map_err(Error::from)?))
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let scope = self.scope(&request, query.transaction_id.as_ref())?;
        let description = match self.coordinator.describe(&scope, &query.query).await {
            Ok(description) => description,
            Err(error) => {
                // Its executions are recorded; one that never prepared is too.
                let error = Error::from(error);
                self.record(&scope, "prepare", &query.query).failed(&error, None, None);
                return Err(error.into());
            }
        };
        let handle = self.prepared.create(query.query)?;
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle,
            dataset_schema: match &description.schema {
                Some(schema) => schema_bytes(&for_client(schema))?,
                None => Bytes::new(),
            },
            parameter_schema: schema_bytes(&description.parameters)?,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        Ok(self.prepared.close(&query.prepared_statement_handle)?)
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        Ok(metadata_info(query.as_any(), &schema, request.into_inner())?)
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let principal = principal_of(&request);
        let mut builder = query.into_builder();
        for catalog in self.coordinator.catalogs() {
            if lists(&principal, &catalog) {
                builder.append(catalog);
            }
        }
        Ok(Response::new(encode_batch(builder.build().map_err(Error::from)?)))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        Ok(metadata_info(query.as_any(), &schema, request.into_inner())?)
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let principal = principal_of(&request);
        let filter = CatalogFilter {
            catalog: query.catalog.clone(),
            schema_pattern: query.db_schema_filter_pattern.clone(),
            table_pattern: None,
        };
        let schemas = if hidden(&principal, &filter) {
            Vec::new()
        } else {
            self.coordinator.schemas(&filter).await.map_err(Error::from)?
        };
        let mut builder = query.into_builder();
        for (catalog, schema) in schemas.into_iter().filter(|(catalog, _)| lists(&principal, catalog)) {
            builder.append(catalog, schema);
        }
        Ok(Response::new(encode_batch(builder.build().map_err(Error::from)?)))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        Ok(metadata_info(query.as_any(), &schema, request.into_inner())?)
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let principal = principal_of(&request);
        let filter = CatalogFilter {
            catalog: query.catalog.clone(),
            schema_pattern: query.db_schema_filter_pattern.clone(),
            table_pattern: query.table_name_filter_pattern.clone(),
        };
        let wanted_types = query.table_types.clone();
        let tables = if hidden(&principal, &filter) {
            Vec::new()
        } else {
            self.coordinator
                .tables(&filter, query.include_schema)
                .await
                .map_err(Error::from)?
        };
        let mut builder = query.into_builder();
        let empty = Schema::empty();
        for table in tables.into_iter().filter(|table| lists(&principal, &table.catalog)) {
            let kind = table.kind.as_str();
            if !wanted_types.is_empty() && !wanted_types.iter().any(|wanted| wanted == kind) {
                continue;
            }
            let schema = table.arrow_schema.as_deref().unwrap_or(&empty);
            let read_only = table.kind == openduck_coordinator::TableKind::View;
            let schema = metadata::with_column_metadata(schema, &table.catalog, &table.schema, &table.name, read_only);
            builder
                .append(&table.catalog, &table.schema, &table.name, kind, &schema)
                .map_err(Error::from)?;
        }
        Ok(Response::new(encode_batch(builder.build().map_err(Error::from)?)))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        Ok(metadata_info(query.as_any(), &schema, request.into_inner())?)
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let mut builder = query.into_builder();
        for table_type in TABLE_TYPES {
            builder.append(table_type);
        }
        Ok(Response::new(encode_batch(builder.build().map_err(Error::from)?)))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&self.sql_info).schema();
        Ok(metadata_info(query.as_any(), &schema, request.into_inner())?)
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let batch = query.into_builder(&self.sql_info).build().map_err(Error::from)?;
        Ok(Response::new(encode_batch(batch)))
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Ok(metadata_info(
            query.as_any(),
            &metadata::primary_keys_schema(),
            request.into_inner(),
        )?)
    }

    async fn do_get_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let keys = self.keys(&request).await?;
        let table = TableRef::new(&query.catalog, &query.db_schema, &query.table);
        Ok(Response::new(encode_batch(metadata::primary_keys(&keys, table)?)))
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Ok(metadata_info(
            query.as_any(),
            &metadata::foreign_keys_schema(),
            request.into_inner(),
        )?)
    }

    async fn do_get_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let keys = self.keys(&request).await?;
        let pk = TableRef::new(&query.catalog, &query.db_schema, &query.table);
        Ok(Response::new(encode_batch(metadata::foreign_keys(
            &keys,
            Some(pk),
            None,
        )?)))
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Ok(metadata_info(
            query.as_any(),
            &metadata::foreign_keys_schema(),
            request.into_inner(),
        )?)
    }

    async fn do_get_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let keys = self.keys(&request).await?;
        let fk = TableRef::new(&query.catalog, &query.db_schema, &query.table);
        Ok(Response::new(encode_batch(metadata::foreign_keys(
            &keys,
            None,
            Some(fk),
        )?)))
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Ok(metadata_info(
            query.as_any(),
            &metadata::foreign_keys_schema(),
            request.into_inner(),
        )?)
    }

    async fn do_get_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let keys = self.keys(&request).await?;
        let pk = TableRef::new(&query.pk_catalog, &query.pk_db_schema, &query.pk_table);
        let fk = TableRef::new(&query.fk_catalog, &query.fk_db_schema, &query.fk_table);
        Ok(Response::new(encode_batch(metadata::foreign_keys(
            &keys,
            Some(pk),
            Some(fk),
        )?)))
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder(&self.xdbc_types).schema();
        Ok(metadata_info(query.as_any(), &schema, request.into_inner())?)
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let batch = query.into_builder(&self.xdbc_types).build().map_err(Error::from)?;
        Ok(Response::new(encode_batch(batch)))
    }

    async fn do_put_statement_ingest(
        &self,
        command: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        note_put_kind("ingest");
        let client = client_of(&request);
        let default = self
            .current_catalog(&request)?
            .unwrap_or_else(|| self.default_database(&request));
        let mut target = ingest_target(&command, &default)?;
        if target.temporary {
            // A temporary table lives on the connection that creates it.
            self.sessions
                .pin(client, async {
                    Ok(self.coordinator.open_session(Some(&target.database)).await?)
                })
                .await?;
        }
        let scope = self.scope(&request, command.transaction_id.as_ref())?;
        target.in_transaction = self.sessions.in_transaction(client);
        let (schema, rows) = incoming_batches(request.into_inner())
            .await
            .map_err(Error::from)?
            .ok_or_else(|| Error::InvalidRequest("an ingest must send the schema of its rows".into()))?;
        let recording = self.record(&scope, "ingest", &ingest_statement(&target));
        let appended = self.coordinator.ingest(&scope, target, schema, rows).await;
        history::finish(&recording, &appended, |appended| Some(*appended));
        Ok(update_count(Some(appended.map_err(Error::from)?)))
    }

    async fn do_action_begin_transaction(
        &self,
        _query: ActionBeginTransactionRequest,
        request: Request<Action>,
    ) -> Result<ActionBeginTransactionResult, Status> {
        let client = client_of(&request);
        // The transaction lives on the executor of the client's current
        // catalog (in a cluster, databases live on different executors).
        let catalog = self
            .current_catalog(&request)?
            .unwrap_or_else(|| self.default_database(&request));
        let session = self
            .sessions
            .pin(client, async {
                Ok(self.coordinator.open_session(Some(&catalog)).await?)
            })
            .await?;
        let id = self.sessions.start_transaction(client)?;
        if let Err(error) = self.coordinator.begin(&session, &principal_of(&request)).await {
            let _ = self.sessions.end_transaction(client, &id);
            return Err(Error::from(error).into());
        }
        Ok(ActionBeginTransactionResult { transaction_id: id })
    }

    async fn do_action_end_transaction(
        &self,
        query: ActionEndTransactionRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let client = client_of(&request);
        let scope = self.scope(&request, Some(&query.transaction_id))?;
        let session = scope.session.ok_or(Error::UnknownTransaction)?;
        // The transaction is over whatever the outcome: a failed commit rolls back.
        self.sessions.end_transaction(client, &query.transaction_id)?;
        match query.action() {
            arrow_flight::sql::EndTransaction::Commit => self.coordinator.commit(&session).await,
            arrow_flight::sql::EndTransaction::Rollback => self.coordinator.rollback(&session).await,
            arrow_flight::sql::EndTransaction::Unspecified => {
                let _ = self.coordinator.rollback(&session).await;
                return Err(Error::InvalidRequest("EndTransaction needs an action: commit or rollback".into()).into());
            }
        }
        .map_err(Error::from)?;
        Ok(())
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        _request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let info = FlightInfo::decode(query.info).map_err(|error| Error::InvalidRequest(error.to_string()))?;
        let status = actions::cancel_flight_info(&self.coordinator, &info).await?;
        Ok(ActionCancelQueryResult { result: status as i32 })
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        let body = actions::do_action(self, &request).await?;
        Ok(Response::new(Box::pin(stream::iter([Ok(arrow_flight::Result {
            body,
        })]))))
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<ActionType, Status>>> {
        Some(actions::custom_actions().into_iter().map(Ok).collect())
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
