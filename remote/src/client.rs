//! The coordinator's side: an executor in another process, reached over
//! Arrow Flight with signed tickets and requests.

use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::{Action, FlightDescriptor, Ticket};
use futures::future::{self, Either};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use openduck_executor::{CatalogFilter, Description, IngestTarget, KeyColumn, Statement, TableEntry};
use openduck_proto::executor_request::Request as Req;
use openduck_proto::{self as pb, ExecutorRequest, Message};
use tokio::sync::oneshot;
use tonic::transport::{Channel, Endpoint};
use tracing::debug;

use crate::convert::{description_from_pb, filter_to_pb, ingest_to_pb, key_from_pb, table_from_pb, ticket_of};
use crate::error::{Error, Result};
use crate::server::ACTION;
use crate::signing::{TicketKind, TicketSigner};

/// How long a connection attempt to an executor may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP/2 keep-alive pings find a dead executor within a few seconds, even in
/// the middle of a stream that sends nothing.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(4);
/// How long one request (not a stream) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// An executor in another process.
#[derive(Debug, Clone)]
pub struct RemoteExecutor {
    id: String,
    endpoint: String,
    client: FlightServiceClient<Channel>,
    signer: TicketSigner,
}

/// Rows streamed from an executor.
pub type RemoteRows = BoxStream<'static, Result<RecordBatch>>;

impl RemoteExecutor {
    /// A client for executor `id` at `endpoint` (`grpc://host:port` or
    /// `http://host:port`). Connects lazily: an executor that is down fails
    /// the first request, not this call.
    pub fn connect(id: &str, endpoint: &str, signer: TicketSigner, max_message_size: usize) -> Result<Self> {
        let uri = endpoint
            .replacen("grpc://", "http://", 1)
            .replacen("grpc+tcp://", "http://", 1);
        let channel = Endpoint::from_shared(uri)
            .map_err(|error| Error::Protocol(format!("invalid endpoint {endpoint:?} of executor {id:?}: {error}")))?
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

    /// The executor's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where it is reached, as it advertised it.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A signed ticket that runs `statement` on this executor, to hand to a
    /// client (direct results) or to redeem with [`RemoteExecutor::query`].
    pub fn ticket(&self, statement: &Statement) -> Result<Vec<u8>> {
        Ok(self.signer.sign(TicketKind::Fragment(ticket_of(statement, &self.id)?)))
    }

    /// Runs `statement` and streams its rows.
    pub async fn query(&self, statement: &Statement) -> Result<(SchemaRef, RemoteRows)> {
        let ticket = self.ticket(statement)?;
        self.redeem(ticket).await
    }

    /// Streams the rows of a ticket this executor runs.
    pub async fn redeem(&self, ticket: Vec<u8>) -> Result<(SchemaRef, RemoteRows)> {
        let response = self
            .client
            .clone()
            .do_get(Ticket::new(ticket))
            .await
            .map_err(|status| Error::remote(&self.id, &status))?;
        let executor = self.id.clone();
        let data = response
            .into_inner()
            .map_err(|status| FlightError::Tonic(Box::new(status)));
        let mut batches = FlightRecordBatchStream::new_from_flight_data(data);
        // The schema comes first; an empty result has nothing else.
        let first = batches
            .next()
            .await
            .transpose()
            .map_err(|error| flight_error(&executor, error))?;
        let schema = batches
            .schema()
            .cloned()
            .ok_or_else(|| Error::Protocol(format!("executor {executor:?} sent no schema")))?;
        let rows = futures::stream::iter(first.map(Ok))
            .chain(batches.map_err(move |error| flight_error(&executor, error)))
            .boxed();
        Ok((schema, rows))
    }

    /// Result and parameter schemas of `statement`, without running it.
    pub async fn describe(&self, statement: &Statement) -> Result<Description> {
        let body = self.call(Req::Describe(ticket_of(statement, &self.id)?)).await?;
        Ok(description_from_pb(decode(&self.id, &body)?)?)
    }

    /// Runs a statement whose rows are not wanted; the rows changed.
    pub async fn update(&self, statement: &Statement) -> Result<Option<u64>> {
        let body = self.call(Req::Update(ticket_of(statement, &self.id)?)).await?;
        Ok(decode::<pb::UpdateResult>(&self.id, &body)?.rows)
    }

    /// Stops a query by id; whether it was running.
    pub async fn cancel(&self, query_id: &str) -> Result<bool> {
        let body = self.call(Req::CancelQueryId(query_id.to_string())).await?;
        Ok(decode::<pb::CancelResult>(&self.id, &body)?.was_running)
    }

    /// Sets a connection aside for one client; its session id.
    pub async fn open_session(&self) -> Result<String> {
        let body = self.call(Req::OpenSession(pb::OpenSession {})).await?;
        Ok(decode::<pb::SessionOpened>(&self.id, &body)?.session_id)
    }

    /// Closes a session, rolling back what it left open.
    pub async fn close_session(&self, session_id: &str) -> Result<()> {
        self.call(Req::CloseSession(session_id.to_string())).await.map(drop)
    }

    /// Starts a transaction in a session.
    pub async fn begin(&self, session_id: &str) -> Result<()> {
        self.call(Req::Begin(session_id.to_string())).await.map(drop)
    }

    /// Commits the transaction of a session.
    pub async fn commit(&self, session_id: &str) -> Result<()> {
        self.call(Req::Commit(session_id.to_string())).await.map(drop)
    }

    /// Attaches a snapshot read-only as catalog `database@snapshot`.
    pub async fn attach_snapshot(&self, name: &str) -> Result<()> {
        self.call(Req::AttachSnapshot(name.to_string())).await.map(drop)
    }

    /// Rolls the transaction of a session back.
    pub async fn rollback(&self, session_id: &str) -> Result<()> {
        self.call(Req::Rollback(session_id.to_string())).await.map(drop)
    }

    /// `(database, schema)` pairs matching `filter`.
    pub async fn schemas(&self, filter: &CatalogFilter) -> Result<Vec<(String, String)>> {
        let body = self.call(Req::ListSchemas(filter_to_pb(filter))).await?;
        let list: pb::SchemaList = decode(&self.id, &body)?;
        Ok(list.schemas.into_iter().map(|s| (s.catalog, s.schema)).collect())
    }

    /// Tables and views matching `filter`.
    pub async fn tables(&self, filter: &CatalogFilter, with_schemas: bool) -> Result<Vec<TableEntry>> {
        let request = pb::ListTables {
            filter: Some(filter_to_pb(filter)),
            with_schemas,
        };
        let body = self.call(Req::ListTables(request)).await?;
        let list: pb::TableList = decode(&self.id, &body)?;
        Ok(list.tables.into_iter().map(table_from_pb).collect::<Result<_, _>>()?)
    }

    /// Every column of every primary and foreign key.
    pub async fn keys(&self) -> Result<Vec<KeyColumn>> {
        let body = self.call(Req::ListKeys(pb::Empty {})).await?;
        let list: pb::KeyList = decode(&self.id, &body)?;
        Ok(list.columns.into_iter().map(key_from_pb).collect())
    }

    /// Appends a stream of record batches of `schema` to a table; the rows appended.
    pub async fn ingest<S, E>(&self, target: &IngestTarget, schema: SchemaRef, batches: S) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<RecordBatch, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let request = ExecutorRequest {
            request: Some(Req::Ingest(ingest_to_pb(target))),
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
        let mut client = self.client.clone();
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
        let rows = decode::<pb::UpdateResult>(&self.id, &result.app_metadata)?
            .rows
            .unwrap_or(0);
        debug!(executor = %self.id, rows, "ingested");
        Ok(rows)
    }

    async fn call(&self, request: Req) -> Result<bytes::Bytes> {
        let request = ExecutorRequest { request: Some(request) };
        let mut action = tonic::Request::new(Action::new(ACTION, self.signer.sign_request(&request)));
        action.set_timeout(REQUEST_TIMEOUT);
        let mut results = self
            .client
            .clone()
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
