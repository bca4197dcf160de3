//! The gRPC service: arrow-flight's Flight SQL dispatcher, plus the calls it
//! leaves unimplemented — GetSchema (ADBC's `execute_schema`) and
//! PollFlightInfo.

use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::{Any, Command};
use arrow_flight::{
    Action, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, PollInfo, SchemaResult, Ticket,
};
use futures::{StreamExt, TryFutureExt};
use prost::Message;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::observe::{kind_of_action, kind_of_command, Call, PutKind};
use crate::service::OpenDuckFlightSql;

type Inner = OpenDuckFlightSql;

/// openduck's Flight service.
#[derive(Debug)]
pub(crate) struct OpenDuckFlight {
    inner: Inner,
}

impl OpenDuckFlight {
    pub(crate) fn new(inner: Inner) -> Self {
        OpenDuckFlight { inner }
    }

    /// The schema a statement or prepared statement would return.
    async fn schema_of(&self, request: &Request<FlightDescriptor>) -> Result<Option<arrow::datatypes::SchemaRef>> {
        let any = Any::decode(request.get_ref().cmd.clone())
            .map_err(|error| Error::InvalidRequest(format!("the descriptor holds no Flight SQL command: {error}")))?;
        let command = Command::try_from(any).map_err(|error| Error::InvalidRequest(error.to_string()))?;
        let (sql, transaction) = match command {
            Command::CommandStatementQuery(query) => (query.query, query.transaction_id),
            Command::CommandPreparedStatementQuery(query) => {
                (self.inner.prepared.get(&query.prepared_statement_handle)?.sql, None)
            }
            other => {
                return Err(Error::InvalidRequest(format!(
                    "GetSchema serves statement queries and prepared statements, not {}",
                    other.type_url()
                )))
            }
        };
        let scope = self.inner.scope(request, transaction.as_ref())?;
        let description = self.inner.coordinator.describe(&scope, &sql).await?;
        Ok(description.schema.as_ref().map(openduck_remote::for_client))
    }
}

#[tonic::async_trait]
impl FlightService for OpenDuckFlight {
    type HandshakeStream = <Inner as FlightService>::HandshakeStream;
    type ListFlightsStream = <Inner as FlightService>::ListFlightsStream;
    type DoGetStream = <Inner as FlightService>::DoGetStream;
    type DoPutStream = <Inner as FlightService>::DoPutStream;
    type DoActionStream = <Inner as FlightService>::DoActionStream;
    type ListActionsStream = <Inner as FlightService>::ListActionsStream;
    type DoExchangeStream = <Inner as FlightService>::DoExchangeStream;

    async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        measured(Call::start("Handshake", "handshake"), self.inner.handshake(request)).await
    }

    async fn list_flights(&self, request: Request<Criteria>) -> Result<Response<Self::ListFlightsStream>, Status> {
        self.inner.list_flights(request).await
    }

    async fn get_flight_info(&self, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        let call = Call::start("GetFlightInfo", kind_of_command(&request.get_ref().cmd));
        measured(call, self.inner.get_flight_info(request).map_err(malformed)).await
    }

    /// Queries are planned when asked, so the answer is final at once: a
    /// PollInfo with the FlightInfo and no descriptor to poll again.
    async fn poll_flight_info(&self, request: Request<FlightDescriptor>) -> Result<Response<PollInfo>, Status> {
        let call = Call::start("PollFlightInfo", kind_of_command(&request.get_ref().cmd));
        let info = measured(call, self.inner.get_flight_info(request).map_err(malformed))
            .await?
            .into_inner();
        Ok(Response::new(PollInfo {
            info: Some(info),
            flight_descriptor: None,
            progress: Some(1.0),
            expiration_time: None,
        }))
    }

    async fn get_schema(&self, request: Request<FlightDescriptor>) -> Result<Response<SchemaResult>, Status> {
        let call = Call::start("GetSchema", kind_of_command(&request.get_ref().cmd));
        let schema = async {
            let schema = self.schema_of(&request).await?.ok_or_else(|| {
                Error::InvalidRequest(
                    "the result schema depends on parameters not bound yet; bind them and execute".into(),
                )
            })?;
            let options = arrow::ipc::writer::IpcWriteOptions::default();
            let result =
                SchemaResult::try_from(arrow_flight::SchemaAsIpc::new(&schema, &options)).map_err(Error::from)?;
            Ok::<_, Status>(Response::new(result))
        };
        measured(call, schema).await
    }

    async fn do_get(&self, request: Request<Ticket>) -> Result<Response<Self::DoGetStream>, Status> {
        let call = Call::start("DoGet", "fetch");
        // Fetching rows continues the trace of the call that planned them,
        // as a ticket that verifies says (set before the span starts).
        if let Some(handle) = statement_handle(&request.get_ref().ticket) {
            openduck_telemetry::parent_from_text(call.span(), &self.inner.coordinator.trace_context(&handle));
        }
        let span = call.span().clone();
        match self.inner.do_get(request).map_err(malformed).instrument(span).await {
            Ok(response) => Ok(response.map(|stream| call.follow(stream).boxed())),
            Err(status) => {
                call.finish(status.code());
                Err(status)
            }
        }
    }

    async fn do_put(&self, request: Request<Streaming<FlightData>>) -> Result<Response<Self::DoPutStream>, Status> {
        // The command is inside the stream: the handler that decodes it names the kind.
        let kind = PutKind::default();
        let call_kind = kind.clone();
        let call = Call::start("DoPut", "put");
        let span = call.span().clone();
        let result = kind
            .scope(self.inner.do_put(request).map_err(malformed))
            .instrument(span)
            .await;
        call.with_kind(call_kind.get()).finish_with(&result);
        result
    }

    async fn do_action(&self, request: Request<Action>) -> Result<Response<Self::DoActionStream>, Status> {
        let call = Call::start("DoAction", kind_of_action(&request.get_ref().r#type));
        measured(call, self.inner.do_action(request).map_err(malformed)).await
    }

    async fn list_actions(&self, request: Request<Empty>) -> Result<Response<Self::ListActionsStream>, Status> {
        self.inner.list_actions(request).await
    }

    async fn do_exchange(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        self.inner.do_exchange(request).await
    }
}

/// The sender's fault as such: arrow-flight's dispatcher answers a command
/// whose `Any` value does not decode as the message its type names with
/// INTERNAL, though the request was malformed.
fn malformed(status: Status) -> Status {
    if status.code() == tonic::Code::Internal && status.message().contains("Unable to decode Any value") {
        Status::invalid_argument(format!("malformed Flight SQL command: {}", status.message()))
    } else {
        status
    }
}

/// Runs a unary call in its span and records how it ended.
async fn measured<T>(call: Call, handler: impl std::future::Future<Output = Result<T, Status>>) -> Result<T, Status> {
    let result = handler.instrument(call.span().clone()).await;
    call.finish_with(&result);
    result
}

/// The coordinator's ticket inside a Flight SQL DoGet ticket.
fn statement_handle(ticket: &[u8]) -> Option<bytes::Bytes> {
    Any::decode(ticket)
        .ok()?
        .unpack::<arrow_flight::sql::TicketStatementQuery>()
        .ok()
        .flatten()
        .map(|query| query.statement_handle)
}
