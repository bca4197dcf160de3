//! The executor's Flight service: what coordinators (and, for direct results,
//! clients holding a ticket) call on an executor.
//!
//! - `DoGet(ticket)` runs the fragment a signed ticket names and
//!   streams its rows. The ticket may come bare, as coordinators send it, or
//!   wrapped in Flight SQL's `TicketStatementQuery`, as a client redeeming a
//!   FlightInfo endpoint sends it.
//! - `DoAction("openduck.v1")` carries a signed [`ExecutorRequest`]: describe,
//!   update, cancel, sessions and transactions, catalog listings, table
//!   statistics, and transfers: fetching a fragment from another executor
//!   (with the ticket a coordinator signed for it) into a table here.
//! - `DoPut` whose descriptor command is a signed ingest request appends the
//!   streamed rows to a table.
//!
//! Nothing unsigned, forged or expired runs: those get `Unauthenticated`.

use std::sync::Arc;

use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::{Any, TicketStatementQuery};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, HandshakeResponse,
    PollInfo, PutResult, SchemaResult, Ticket,
};
use bytes::Bytes;
use futures::stream::{self, BoxStream, Peekable};
use futures::{StreamExt, TryStreamExt};
use openduck_api::{ExecutorApi, Source};
use openduck_proto::executor_request::Request as Req;
use openduck_proto::{self as pb, ExecutorRequest, Message};
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, info, info_span, Instrument, Span};

use crate::convert::{
    description_to_pb, filter_from_pb, ingest_from_pb, key_to_pb, statement_of, statistics_to_pb, table_name_from_pb,
    table_to_pb,
};
use crate::error::{Error, Result};
use crate::peers::Peer;
use crate::results::{encode_results, incoming_batches, Receiver};
use crate::signing::{TicketKind, TicketSigner};
use crate::tls::ClientTls;
use crate::transfer::PeerClients;

/// The action type of every coordinator request.
pub const ACTION: &str = "openduck.v1";

/// Serves one executor over Arrow Flight.
#[derive(Debug)]
pub struct ExecutorService {
    executor: Arc<dyn ExecutorApi>,
    signer: TicketSigner,
    peers: Option<PeerClients>,
}

impl ExecutorService {
    /// A service for `executor` that accepts what `signer`'s secret signed.
    /// It fetches from no other executor until [`ExecutorService::with_peers`].
    pub fn new(executor: Arc<dyn ExecutorApi>, signer: TicketSigner) -> Self {
        ExecutorService {
            executor,
            signer,
            peers: None,
        }
    }

    /// Fetches fragments from the other executors of the cluster when a
    /// coordinator asks: over TLS checked against `tls`'s CA (presenting its
    /// certificate), or in plain gRPC; messages up to `max_message_size`.
    pub fn with_peers(mut self, tls: Option<ClientTls>, max_message_size: usize) -> Self {
        self.peers = Some(PeerClients::new(self.signer.clone(), max_message_size, tls));
        self
    }

    /// The tonic service, with message limits fit for bulk data.
    pub fn into_server(self, max_message_size: usize) -> FlightServiceServer<Self> {
        FlightServiceServer::new(self)
            .max_decoding_message_size(max_message_size)
            .max_encoding_message_size(max_message_size)
    }

    /// A span for one call from a coordinator, in the coordinator's trace.
    /// Made once the call's ticket or request verified: the trace context
    /// of a caller without the cluster secret is never taken.
    fn call_span(&self, name: &'static str, metadata: &tonic::metadata::MetadataMap) -> Span {
        let span = self.span(name);
        openduck_telemetry::extract(&span, metadata);
        span
    }

    /// A span for one call, in no trace yet.
    fn span(&self, name: &'static str) -> Span {
        info_span!(
            "executor",
            otel.name = name,
            otel.kind = "server",
            openduck.executor = self.executor.id(),
        )
    }

    /// Runs the fragment a verified ticket names; its rows as Flight data
    /// for `receiver`.
    async fn fragment(
        &self,
        ticket: TicketKind,
        receiver: Receiver,
    ) -> Result<BoxStream<'static, Result<FlightData, Status>>, Status> {
        let ticket = match ticket {
            TicketKind::Fragment(fragment) => fragment,
            TicketKind::Held(_) | TicketKind::Distributed(_) => return Err(Error::CoordinatorTicket.into()),
        };
        if ticket.executor_id != self.executor.id() {
            return Err(Error::WrongExecutor(ticket.executor_id).into());
        }
        let query_id = ticket.query_id.clone();
        let statement = statement_of(ticket).map_err(Error::from)?;
        debug!(%query_id, database = %statement.database, "running fragment");
        let rows = self.executor.query(statement).await.map_err(Error::from)?;
        Ok(encode_results(rows.schema, rows.batches.map_err(Error::from), receiver))
    }

    /// The verified ingest request a DoPut's descriptor carries.
    async fn ingest_request(&self, data: &mut Peekable<Streaming<FlightData>>) -> Result<pb::Ingest, Status> {
        let descriptor = match std::pin::Pin::new(data).peek().await {
            Some(Ok(first)) => first.flight_descriptor.clone(),
            Some(Err(status)) => return Err(status.clone()),
            None => None,
        };
        let command = descriptor
            .map(|descriptor| descriptor.cmd)
            .ok_or_else(|| Error::Protocol("a DoPut must carry a descriptor".into()))?;
        let request = self.signer.verify_request(&command).map_err(Error::from)?;
        match request.request {
            Some(Req::Ingest(ingest)) => Ok(ingest),
            _ => Err(Error::Protocol("a DoPut carries an ingest request".into()).into()),
        }
    }

    /// Appends the rows of a verified ingest; how many.
    async fn ingest(&self, ingest: pb::Ingest, data: Peekable<Streaming<FlightData>>) -> Result<u64, Status> {
        let (schema, batches) = incoming_batches(data)
            .await
            .map_err(Error::from)?
            .ok_or_else(|| Error::Protocol("an ingest must send the schema of its rows".into()))?;
        let batches = batches.map_err(|error| Error::from(error).into()).boxed();
        Ok(self
            .executor
            .ingest(ingest_from_pb(ingest), schema, batches)
            .await
            .map_err(Error::from)?)
    }

    /// Answers one verified request that arrived from `peer`.
    async fn handle(&self, request: Req, peer: Option<&Peer>) -> Result<Vec<u8>> {
        let executor = &self.executor;
        Ok(match request {
            Req::Describe(ticket) => {
                let description = executor.describe(&statement_of(ticket)?).await?;
                description_to_pb(&description)?.encode_to_vec()
            }
            Req::Update(ticket) => {
                let rows = executor.update(statement_of(ticket)?).await?;
                pb::UpdateResult { rows }.encode_to_vec()
            }
            Req::CancelQueryId(query_id) => {
                let was_running = executor.cancel(&query_id).await?;
                info!(%query_id, was_running, "query cancelled");
                pb::CancelResult { was_running }.encode_to_vec()
            }
            Req::OpenSession(_) => {
                let session_id = executor.open_session().await?;
                if let Some(peer) = peer {
                    peer.named(&session_id);
                }
                pb::SessionOpened { session_id }.encode_to_vec()
            }
            Req::CloseSession(id) => {
                executor.close_session(&id).await?;
                if let Some(peer) = peer {
                    peer.closed(&id);
                }
                Vec::new()
            }
            Req::Begin(id) => {
                executor.begin(&id, false).await?;
                Vec::new()
            }
            Req::BeginReadOnly(id) => {
                executor.begin(&id, true).await?;
                Vec::new()
            }
            Req::Commit(id) => {
                executor.commit(&id).await?;
                Vec::new()
            }
            Req::Rollback(id) => {
                executor.rollback(&id).await?;
                Vec::new()
            }
            Req::AttachSnapshot(name) => {
                executor.attach_snapshot(&name).await?;
                Vec::new()
            }
            Req::ListSchemas(filter) => {
                let schemas = executor.schemas(&filter_from_pb(filter)).await?;
                pb::SchemaList {
                    schemas: schemas
                        .into_iter()
                        .map(|(catalog, schema)| pb::SchemaName { catalog, schema })
                        .collect(),
                }
                .encode_to_vec()
            }
            Req::ListTables(list) => {
                let filter = filter_from_pb(list.filter.unwrap_or_default());
                let tables = executor.tables(&filter, list.with_schemas).await?;
                pb::TableList {
                    tables: tables.iter().map(table_to_pb).collect::<Result<_, _>>()?,
                }
                .encode_to_vec()
            }
            Req::ListKeys(_) => pb::KeyList {
                columns: executor.keys().await?.iter().map(key_to_pb).collect(),
            }
            .encode_to_vec(),
            Req::TableStatistics(name) => {
                statistics_to_pb(executor.table_statistics(&table_name_from_pb(name)).await?).encode_to_vec()
            }
            Req::IngestFrom(request) => {
                let target = request
                    .target
                    .ok_or_else(|| Error::Protocol("a transfer must name its target".into()))?;
                let source = Source {
                    executor: request.source_executor,
                    endpoint: request.source_endpoint,
                    ticket: request.ticket,
                };
                let peers = self
                    .peers
                    .as_ref()
                    .ok_or_else(|| Error::Unsupported("this executor does not fetch from other executors".into()))?;
                let transferred = peers.ingest(executor.as_ref(), ingest_from_pb(target), source).await?;
                pb::Transferred {
                    rows: transferred.rows,
                    bytes: transferred.bytes,
                }
                .encode_to_vec()
            }
            Req::Ingest(_) => return Err(Error::Protocol("an ingest is a DoPut, not an action".into())),
        })
    }
}

/// The session a request runs in or acts on, if any (a session's closing
/// aside).
fn session_named(request: &Req) -> Option<&str> {
    match request {
        Req::Describe(ticket) | Req::Update(ticket) => Some(ticket.session_id.as_str()),
        Req::Begin(id) | Req::BeginReadOnly(id) | Req::Commit(id) | Req::Rollback(id) => Some(id.as_str()),
        Req::IngestFrom(request) => request.target.as_ref().map(|target| target.session_id.as_str()),
        _ => None,
    }
}

/// The signed ticket in a DoGet, and who sent it: a client wraps it in
/// Flight SQL's `TicketStatementQuery`, a coordinator sends it bare.
fn signed_ticket(bytes: &Bytes) -> (Bytes, Receiver) {
    Any::decode(bytes.as_ref())
        .ok()
        .and_then(|any| any.unpack::<TicketStatementQuery>().ok().flatten())
        .map_or_else(
            || (bytes.clone(), Receiver::Coordinator),
            |query| (query.statement_handle, Receiver::Client),
        )
}

type Stream<T> = BoxStream<'static, Result<T, Status>>;

#[tonic::async_trait]
impl FlightService for ExecutorService {
    type HandshakeStream = Stream<HandshakeResponse>;
    type ListFlightsStream = Stream<FlightInfo>;
    type DoGetStream = Stream<FlightData>;
    type DoPutStream = Stream<PutResult>;
    type DoActionStream = Stream<arrow_flight::Result>;
    type ListActionsStream = Stream<ActionType>;
    type DoExchangeStream = Stream<FlightData>;

    async fn do_get(&self, request: Request<Ticket>) -> Result<Response<Self::DoGetStream>, Status> {
        let header = request
            .metadata()
            .get("traceparent")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let peer = Peer::of(request.extensions());
        let (bytes, receiver) = signed_ticket(&request.into_inner().ticket);
        let (ticket, trace) = self.signer.verify_traced(&bytes).map_err(Error::from)?;
        // A coordinator's fetch names its session; a client fetching
        // directly holds none here.
        if let (Some(peer), TicketKind::Fragment(fragment), Receiver::Coordinator) = (&peer, &ticket, &receiver) {
            peer.named(&fragment.session_id);
        }
        // Clients redeem fragment tickets too (direct results): a caller's
        // span is taken as the parent only inside the trace signed into the
        // ticket at planning, so no one can put a fragment into another trace.
        let span = self.span("DoGet");
        let within = trace_id(&trace).is_some() && trace_id(&header) == trace_id(&trace);
        openduck_telemetry::parent_from_text(&span, if within { &header } else { &trace });
        let rows = self.fragment(ticket, receiver).instrument(span.clone()).await?;
        // Polled in the span, which so lasts for the fragment's whole run.
        Ok(Response::new(openduck_telemetry::in_span(rows, span).boxed()))
    }

    async fn do_action(&self, request: Request<Action>) -> Result<Response<Self::DoActionStream>, Status> {
        let metadata = request.metadata().clone();
        let peer = Peer::of(request.extensions());
        let action = request.into_inner();
        if action.r#type != ACTION {
            return Err(Status::unimplemented(format!("unknown action {:?}", action.r#type)));
        }
        let request: ExecutorRequest = self.signer.verify_request(&action.body).map_err(Error::from)?;
        let request = request.request.ok_or_else(|| {
            Error::Unsupported("an empty or unknown request: is this executor older than its coordinator?".into())
        })?;
        if let (Some(peer), Some(session)) = (&peer, session_named(&request)) {
            peer.named(session);
        }
        let span = self.call_span(request_name(&request), &metadata);
        let body = self.handle(request, peer.as_ref()).instrument(span).await?;
        let result = arrow_flight::Result { body: body.into() };
        Ok(Response::new(stream::iter([Ok(result)]).boxed()))
    }

    async fn do_put(&self, request: Request<Streaming<FlightData>>) -> Result<Response<Self::DoPutStream>, Status> {
        let metadata = request.metadata().clone();
        let peer = Peer::of(request.extensions());
        let mut data = request.into_inner().peekable();
        let ingest = self.ingest_request(&mut data).await?;
        if let Some(peer) = &peer {
            peer.named(&ingest.session_id);
        }
        let span = self.call_span("ingest", &metadata);
        let rows = self.ingest(ingest, data).instrument(span).await?;
        let result = PutResult {
            app_metadata: pb::UpdateResult { rows: Some(rows) }.encode_to_vec().into(),
        };
        Ok(Response::new(stream::iter([Ok(result)]).boxed()))
    }
    async fn list_actions(&self, _request: Request<Empty>) -> Result<Response<Self::ListActionsStream>, Status> {
        let action = ActionType {
            r#type: ACTION.into(),
            description: "a signed openduck.v1.ExecutorRequest from a coordinator".into(),
        };
        Ok(Response::new(stream::iter([Ok(action)]).boxed()))
    }

    async fn handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        Err(Status::unimplemented("executors take signed tickets, not credentials"))
    }

    async fn list_flights(&self, _request: Request<Criteria>) -> Result<Response<Self::ListFlightsStream>, Status> {
        Err(Status::unimplemented("an executor lists no flights"))
    }

    async fn get_flight_info(&self, _request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        Err(Status::unimplemented("plan queries on the coordinator"))
    }

    async fn poll_flight_info(&self, _request: Request<FlightDescriptor>) -> Result<Response<PollInfo>, Status> {
        Err(Status::unimplemented("plan queries on the coordinator"))
    }

    async fn get_schema(&self, _request: Request<FlightDescriptor>) -> Result<Response<SchemaResult>, Status> {
        Err(Status::unimplemented("plan queries on the coordinator"))
    }

    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        Err(Status::unimplemented("an executor does not exchange"))
    }
}

/// The trace id of a `traceparent` value (`00-<trace id>-<span id>-<flags>`).
fn trace_id(traceparent: &str) -> Option<&str> {
    traceparent.split('-').nth(1).filter(|id| id.len() == 32)
}

/// The name of an executor request, in spans (client and server side).
pub(crate) fn request_name(request: &Req) -> &'static str {
    match request {
        Req::Describe(_) => "describe",
        Req::Update(_) => "update",
        Req::CancelQueryId(_) => "cancel",
        Req::OpenSession(_) => "open_session",
        Req::CloseSession(_) => "close_session",
        Req::Begin(_) | Req::BeginReadOnly(_) => "begin",
        Req::Commit(_) => "commit",
        Req::Rollback(_) => "rollback",
        Req::ListSchemas(_) => "list_schemas",
        Req::ListTables(_) => "list_tables",
        Req::ListKeys(_) => "list_keys",
        Req::Ingest(_) => "ingest",
        Req::IngestFrom(_) => "ingest_from",
        Req::AttachSnapshot(_) => "attach_snapshot",
        Req::TableStatistics(_) => "table_statistics",
    }
}
