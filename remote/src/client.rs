//! The coordinator's side: an executor in another process, reached over
//! Arrow Flight with signed tickets and requests.

use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::{Action, FlightDescriptor, Ticket};
use futures::future::{self, Either};
use futures::{StreamExt, TryStreamExt};
use openduck_api::{
    Batches, CatalogFilter, Description, ExecutorApi, IngestTarget, KeyColumn, Rows, Source, Statement, TableEntry,
    TableName, TableStatistics, Transferred,
};
use openduck_proto::executor_request::Request as Req;
use openduck_proto::{self as pb, ExecutorRequest, Message};
use tokio::sync::oneshot;
use tonic::transport::{Channel, Endpoint};
use tracing::{debug, info_span, Instrument, Span};

use crate::convert::{
    description_from_pb, filter_to_pb, ingest_to_pb, key_from_pb, statistics_from_pb, table_from_pb, table_name_to_pb,
    ticket_of,
};
use crate::error::{Error, Result};
use crate::results::{checked, first_batch, Contained};
use crate::server::{request_name, ACTION};
use crate::signing::{TicketKind, TicketSigner};
use crate::tls::ClientTls;

/// How long a connection attempt to an executor may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP/2 keep-alive pings find a dead executor within a few seconds, even in
/// the middle of a stream that sends nothing.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(4);
/// How long one request (not a stream, nor a statement: the executor's
/// --statement-timeout bounds those) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// An executor in another process.
#[derive(Debug, Clone)]
pub struct RemoteExecutor {
    id: String,
    endpoint: String,
    client: FlightServiceClient<Channel>,
    signer: TicketSigner,
}

impl RemoteExecutor {
    /// A client for executor `id` at `endpoint` (`grpc://host:port`, or
    /// `grpc+tls://host:port` for one that serves TLS, reached with `tls`).
    /// With `tls`, a plain endpoint is refused: a coordinator configured for
    /// TLS never sends tickets in the clear. Connects lazily: an executor
    /// that is down fails the first request, not this call.
    pub fn connect(
        id: &str,
        endpoint: &str,
        signer: TicketSigner,
        max_message_size: usize,
        tls: Option<&ClientTls>,
    ) -> Result<Self> {
        let refused = |reason: String| Error::Endpoint {
            executor: id.to_string(),
            reason,
        };
        let (secure, address) = match endpoint.split_once("://") {
            Some(("grpc" | "grpc+tcp" | "http", address)) => (false, address),
            Some(("grpc+tls" | "https", address)) => (true, address),
            _ => return Err(refused(format!("unsupported endpoint {endpoint:?}"))),
        };
        let channel = Endpoint::from_shared(format!("{}://{address}", if secure { "https" } else { "http" }))
            .map_err(|error| refused(format!("invalid endpoint {endpoint:?}: {error}")))?;
        let channel = match (secure, tls) {
            (true, Some(tls)) => channel
                .tls_config(tls.client_config())
                .map_err(|error| refused(format!("TLS for {endpoint}: {error}")))?,
            (false, None) => channel,
            (false, Some(_)) => {
                return Err(refused(format!(
                    "it serves plain gRPC ({endpoint}) and this coordinator reaches executors over TLS only: \
                     give the executor --cluster-tls-cert and --cluster-tls-key"
                )))
            }
            (true, None) => {
                return Err(refused(format!(
                    "it serves TLS ({endpoint}): give this coordinator the CA of the cluster's certificates \
                     (--cluster-tls-ca)"
                )))
            }
        };
        let channel = channel
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true)
            .tcp_nodelay(true)
            .connect_lazy();
        let client = FlightServiceClient::new(channel)
            .max_decoding_message_size(max_message_size)
            .max_encoding_message_size(max_message_size);
        Ok(RemoteExecutor {
            id: id.to_string(),
            endpoint: endpoint.to_string(),
            client,
            signer,
        })
    }

    /// A signed ticket that runs `statement` on this executor, to hand to a
    /// client (direct results).
    pub fn ticket(&self, statement: &Statement) -> Result<Vec<u8>> {
        Ok(self.signer.sign(TicketKind::Fragment(ticket_of(statement, &self.id)?)))
    }

    /// Streams the rows of a signed ticket this executor runs.
    pub(crate) async fn fetch(&self, ticket: Vec<u8>) -> Result<Rows> {
        let (request, span) = self.traced("DoGet", Ticket::new(ticket));
        let response = self
            .client
            .clone()
            .do_get(request)
            .instrument(span.clone())
            .await
            .map_err(|status| Error::remote(&self.id, &status))?;
        let executor = self.id.clone();
        let data = response
            .into_inner()
            .map_err(|status| FlightError::Tonic(Box::new(status)))
            .and_then(|data| future::ready(checked(data)));
        let mut batches = FlightRecordBatchStream::new_from_flight_data(data);
        // The schema comes first; an empty result has nothing else.
        let first = first_batch(&mut batches)
            .await
            .map_err(|error| flight_error(&executor, error))?;
        let schema = batches
            .schema()
            .cloned()
            .ok_or_else(|| Error::Protocol(format!("executor {executor:?} sent no schema")))?;
        // Polled in the call's span, which so lasts as long as its rows come.
        let batches = futures::stream::iter(first.map(Ok))
            .chain(Contained::new(batches).map_err(move |error| flight_error(&executor, error).into()));
        let batches = openduck_telemetry::in_span(batches, span).boxed();
        Ok(Rows { schema, batches })
    }

    /// `message` as a request in a new client span of this executor, with
    /// the span's trace context in its metadata.
    fn traced<T>(&self, name: &'static str, message: T) -> (tonic::Request<T>, Span) {
        let span = info_span!(
            "executor_call",
            otel.name = name,
            otel.kind = "client",
            openduck.executor = %self.id,
        );
        let mut request = tonic::Request::new(message);
        span.in_scope(|| openduck_telemetry::inject(request.metadata_mut()));
        (request, span)
    }

    async fn call(&self, request: Req) -> Result<bytes::Bytes> {
        let name = request_name(&request);
        let statement = matches!(request, Req::Update(_) | Req::IngestFrom(_));
        let request = ExecutorRequest { request: Some(request) };
        let (mut action, span) = self.traced(name, Action::new(ACTION, self.signer.sign_request(&request)));
        if !statement {
            action.set_timeout(REQUEST_TIMEOUT);
        }
        let mut client = self.client.clone();
        async move {
            let mut results = client
                .do_action(action)
                .await
                .map_err(|status| Error::remote(&self.id, &status))?
                .into_inner();
            let result = results
                .message()
                .await
                .map_err(|status| Error::remote(&self.id, &status))?;
            Ok(result.map(|result| result.body).unwrap_or_default())
        }
        .instrument(span)
        .await
    }
}

#[async_trait::async_trait]
impl ExecutorApi for RemoteExecutor {
    fn id(&self) -> &str {
        &self.id
    }

    fn endpoint(&self) -> Option<&str> {
        Some(&self.endpoint)
    }

    async fn query(&self, statement: Statement) -> openduck_api::Result<Rows> {
        Ok(self.fetch(self.ticket(&statement)?).await?)
    }

    /// Forwards the ticket as the coordinator signed it.
    async fn redeem(&self, signed: &[u8], _statement: Statement) -> openduck_api::Result<Rows> {
        Ok(self.fetch(signed.to_vec()).await?)
    }

    /// Result and parameter schemas of `statement`, without running it.
    async fn describe(&self, statement: &Statement) -> openduck_api::Result<Description> {
        let body = self
            .call(Req::Describe(ticket_of(statement, &self.id).map_err(Error::from)?))
            .await?;
        Ok(description_from_pb(decode(&self.id, &body)?).map_err(Error::from)?)
    }

    /// Runs a statement whose rows are not wanted; the rows changed.
    async fn update(&self, statement: Statement) -> openduck_api::Result<Option<u64>> {
        let body = self
            .call(Req::Update(ticket_of(&statement, &self.id).map_err(Error::from)?))
            .await?;
        Ok(decode::<pb::UpdateResult>(&self.id, &body)?.rows)
    }

    /// This executor's endpoint and a ticket for `statement` there.
    fn source(&self, statement: &Statement) -> Option<openduck_api::Result<Source>> {
        Some(self.ticket(statement).map_err(Into::into).map(|ticket| Source {
            executor: self.id.clone(),
            endpoint: self.endpoint.clone(),
            ticket,
        }))
    }

    /// Asks this executor to fetch `source` from its executor and append it.
    async fn ingest_from(&self, target: IngestTarget, source: Source) -> openduck_api::Result<Transferred> {
        let request = pb::IngestFrom {
            target: Some(ingest_to_pb(&target)),
            source_executor: source.executor,
            source_endpoint: source.endpoint,
            ticket: source.ticket,
        };
        let body = self.call(Req::IngestFrom(request)).await?;
        let transferred: pb::Transferred = decode(&self.id, &body)?;
        Ok(Transferred {
            rows: transferred.rows,
            bytes: transferred.bytes,
        })
    }

    /// Stops a query by id; whether it was running.
    async fn cancel(&self, query_id: &str) -> openduck_api::Result<bool> {
        let body = self.call(Req::CancelQueryId(query_id.to_string())).await?;
        Ok(decode::<pb::CancelResult>(&self.id, &body)?.was_running)
    }

    /// Sets a connection aside for one client; its session id.
    async fn open_session(&self) -> openduck_api::Result<String> {
        let body = self.call(Req::OpenSession(pb::OpenSession {})).await?;
        Ok(decode::<pb::SessionOpened>(&self.id, &body)?.session_id)
    }

    /// Closes a session, rolling back what it left open.
    async fn close_session(&self, session_id: &str) -> openduck_api::Result<()> {
        self.call(Req::CloseSession(session_id.to_string())).await?;
        Ok(())
    }

    /// Starts a transaction in a session.
    async fn begin(&self, session_id: &str, read_only: bool) -> openduck_api::Result<()> {
        let id = session_id.to_string();
        self.call(if read_only {
            Req::BeginReadOnly(id)
        } else {
            Req::Begin(id)
        })
        .await?;
        Ok(())
    }

    /// Commits the transaction of a session.
    async fn commit(&self, session_id: &str) -> openduck_api::Result<()> {
        self.call(Req::Commit(session_id.to_string())).await?;
        Ok(())
    }

    /// Attaches a snapshot read-only as catalog `database@snapshot`.
    async fn attach_snapshot(&self, name: &str) -> openduck_api::Result<()> {
        self.call(Req::AttachSnapshot(name.to_string())).await?;
        Ok(())
    }

    /// Rolls the transaction of a session back.
    async fn rollback(&self, session_id: &str) -> openduck_api::Result<()> {
        self.call(Req::Rollback(session_id.to_string())).await?;
        Ok(())
    }

    /// `(database, schema)` pairs matching `filter`.
    async fn schemas(&self, filter: &CatalogFilter) -> openduck_api::Result<Vec<(String, String)>> {
        let body = self.call(Req::ListSchemas(filter_to_pb(filter))).await?;
        let list: pb::SchemaList = decode(&self.id, &body)?;
        Ok(list.schemas.into_iter().map(|s| (s.catalog, s.schema)).collect())
    }

    /// Tables and views matching `filter`.
    async fn tables(&self, filter: &CatalogFilter, with_schemas: bool) -> openduck_api::Result<Vec<TableEntry>> {
        let request = pb::ListTables {
            filter: Some(filter_to_pb(filter)),
            with_schemas,
        };
        let body = self.call(Req::ListTables(request)).await?;
        let list: pb::TableList = decode(&self.id, &body)?;
        let tables = list.tables.into_iter().map(table_from_pb).collect::<Result<_, _>>();
        Ok(tables.map_err(Error::from)?)
    }

    /// Every column of every primary and foreign key.
    async fn keys(&self) -> openduck_api::Result<Vec<KeyColumn>> {
        let body = self.call(Req::ListKeys(pb::Empty {})).await?;
        let list: pb::KeyList = decode(&self.id, &body)?;
        Ok(list.columns.into_iter().map(key_from_pb).collect())
    }

    async fn table_statistics(&self, table: &TableName) -> openduck_api::Result<TableStatistics> {
        let body = self.call(Req::TableStatistics(table_name_to_pb(table))).await?;
        Ok(statistics_from_pb(decode(&self.id, &body)?))
    }

    /// Appends a stream of record batches of `schema` to a table; the rows appended.
    async fn ingest(&self, target: IngestTarget, schema: SchemaRef, batches: Batches) -> openduck_api::Result<u64> {
        let request = ExecutorRequest {
            request: Some(Req::Ingest(ingest_to_pb(&target))),
        };
        let descriptor = FlightDescriptor::new_cmd(self.signer.sign_request(&request));
        let batches = batches.map_err(|error| FlightError::ExternalError(error.to_string().into()));
        // When the incoming stream fails, the upload must not look finished to
        // the executor (it would commit what it got): the stream stalls, and
        // the call is dropped, which resets it and rolls the ingest back.
        let (failed, mut failure) = oneshot::channel::<String>();
        let mut failed = Some(failed);
        let data = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .with_flight_descriptor(Some(descriptor))
            .build(batches)
            .then(move |data| match data {
                Ok(data) => Either::Left(future::ready(data)),
                Err(error) => {
                    if let Some(failed) = failed.take() {
                        let _ = failed.send(error.to_string());
                    }
                    Either::Right(future::pending())
                }
            });
        let (data, span) = self.traced("ingest", data);
        let mut client = self.client.clone();
        let rows = async move {
            let put = client.do_put(data);
            let response = tokio::select! {
                response = put => response.map_err(|status| Error::remote(&self.id, &status))?,
                Ok(message) = &mut failure => return Err(Error::IngestAborted(message)),
            };
            let mut results = response.into_inner();
            let result = results
                .message()
                .await
                .map_err(|status| Error::remote(&self.id, &status))?
                .ok_or_else(|| Error::Protocol(format!("executor {:?} sent no ingest result", self.id)))?;
            Ok::<_, Error>(
                decode::<pb::UpdateResult>(&self.id, &result.app_metadata)?
                    .rows
                    .unwrap_or(0),
            )
        }
        .instrument(span)
        .await?;
        debug!(executor = %self.id, rows, "ingested");
        Ok(rows)
    }
}

fn decode<M: Message + Default>(executor: &str, body: &[u8]) -> Result<M> {
    M::decode(body).map_err(|error| Error::Protocol(format!("executor {executor:?} sent an invalid answer: {error}")))
}

fn flight_error(executor: &str, error: FlightError) -> Error {
    match error {
        FlightError::Tonic(status) => Error::remote(executor, &status),
        other => Error::Protocol(format!("executor {executor:?}: {other}")),
    }
}
