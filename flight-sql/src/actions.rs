//! Flight actions beyond what the Flight SQL dispatcher knows:
//! CancelFlightInfo, the session options (SetSessionOptions,
//! GetSessionOptions, CloseSession), and openduck's own: whether one executor
//! serves a set of databases (`openduck.on_one_executor`).

use std::collections::HashMap;

use arrow_flight::sql::{Any, Command, TicketStatementQuery};
use arrow_flight::{Action, ActionType, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, FlightInfo};
use bytes::Bytes;
use openduck_coordinator::{Cancelled, Coordinator, Principal};
use openduck_proto::flight_session::{
    close_session_result, session_option_value, set_session_options_result, CloseSessionResult,
    GetSessionOptionsResult, SessionOptionValue, SetSessionOptionsRequest, SetSessionOptionsResult,
};
use openduck_proto::ON_ONE_EXECUTOR;
use prost::Message;
use tonic::Request;

use crate::connection::client_of;
use crate::error::{Error, Result};
use crate::service::{principal_of, OpenDuckFlightSql};
use crate::session::ConnectionId;

const CANCEL_FLIGHT_INFO: &str = "CancelFlightInfo";
const SET_SESSION_OPTIONS: &str = "SetSessionOptions";
const GET_SESSION_OPTIONS: &str = "GetSessionOptions";
const CLOSE_SESSION: &str = "CloseSession";

/// The session option naming the current catalog (database).
const CATALOG: &str = "catalog";
/// The session option naming the current schema.
const SCHEMA: &str = "schema";

/// The actions served here, as ListActions reports them.
pub(crate) fn custom_actions() -> Vec<ActionType> {
    let action = |name: &str, description: &str| ActionType {
        r#type: name.into(),
        description: description.into(),
    };
    vec![
        action(CANCEL_FLIGHT_INFO, "Cancel the query of a FlightInfo"),
        action(SET_SESSION_OPTIONS, "Set session options: catalog, schema"),
        action(GET_SESSION_OPTIONS, "Get the session options"),
        action(CLOSE_SESSION, "Close the session, rolling back an open transaction"),
        action(
            ON_ONE_EXECUTOR,
            "Whether one executor serves every database named (one per line): true or false",
        ),
    ]
}

/// Runs one of [`custom_actions`] and returns its encoded result.
pub(crate) async fn do_action(service: &OpenDuckFlightSql, request: &Request<Action>) -> Result<Bytes> {
    let action = request.get_ref();
    let invalid =
        |error: prost::DecodeError| Error::InvalidRequest(format!("malformed {} body: {error}", action.r#type));
    match action.r#type.as_str() {
        CANCEL_FLIGHT_INFO => {
            let cancel = CancelFlightInfoRequest::decode(action.body.clone()).map_err(invalid)?;
            let info = cancel
                .info
                .ok_or_else(|| Error::InvalidRequest("CancelFlightInfo needs the FlightInfo to cancel".into()))?;
            let status = cancel_flight_info(&service.coordinator, &info).await?;
            Ok(CancelFlightInfoResult { status: status as i32 }.encode_to_vec().into())
        }
        SET_SESSION_OPTIONS => {
            let options = SetSessionOptionsRequest::decode(action.body.clone()).map_err(invalid)?;
            let client = session_client(request)?;
            let principal = principal_of(request);
            Ok(set_session_options(service, client, &principal, options)
                .encode_to_vec()
                .into())
        }
        GET_SESSION_OPTIONS => {
            let client = session_client(request)?;
            let (_, schema) = service.sessions.options(client);
            let catalog = service
                .current_catalog(request)?
                .unwrap_or_else(|| service.default_database(request));
            let schema = schema.unwrap_or_else(|| "main".to_string());
            let session_options = HashMap::from([
                (CATALOG.to_string(), string_value(catalog)),
                (SCHEMA.to_string(), string_value(schema)),
            ]);
            Ok(GetSessionOptionsResult { session_options }.encode_to_vec().into())
        }
        CLOSE_SESSION => {
            let client = session_client(request)?;
            service.sessions.close(client);
            let status = close_session_result::Status::Closed as i32;
            Ok(CloseSessionResult { status }.encode_to_vec().into())
        }
        ON_ONE_EXECUTOR => {
            let names = std::str::from_utf8(&action.body)
                .map_err(|_| Error::InvalidRequest(format!("{ON_ONE_EXECUTOR} takes UTF-8 database names")))?;
            let databases: Vec<String> = names.lines().map(str::to_string).collect();
            let principal = principal_of(request);
            let one = service.coordinator.on_one_executor(&principal, &databases);
            Ok(Bytes::from_static(if one { b"true" } else { b"false" }))
        }
        other => Err(Error::UnknownAction(other.to_string())),
    }
}

fn session_client(request: &Request<Action>) -> Result<ConnectionId> {
    client_of(request).ok_or(Error::NoSession)
}

fn string_value(value: String) -> SessionOptionValue {
    SessionOptionValue {
        option_value: Some(session_option_value::OptionValue::StringValue(value)),
    }
}

/// Applies each option on its own; the result names those that failed.
fn set_session_options(
    service: &OpenDuckFlightSql,
    client: ConnectionId,
    principal: &Principal,
    request: SetSessionOptionsRequest,
) -> SetSessionOptionsResult {
    use set_session_options_result::ErrorValue;
    let mut errors = HashMap::new();
    for (name, value) in request.session_options {
        let value = match value.option_value {
            None => Ok(None),
            Some(session_option_value::OptionValue::StringValue(text)) => Ok(Some(text)),
            Some(_) => Err(ErrorValue::InvalidValue),
        };
        let outcome = match (name.as_str(), value) {
            (CATALOG | SCHEMA, Err(error)) => Err(error),
            (CATALOG, Ok(catalog)) => match catalog {
                // One not granted is as good as unknown to this principal.
                Some(name) if !service.coordinator.catalogs().contains(&name) || !principal.may_use(&name) => {
                    Err(ErrorValue::InvalidValue)
                }
                catalog => {
                    service.sessions.set_catalog(client, catalog);
                    Ok(())
                }
            },
            (SCHEMA, Ok(schema)) => {
                service.sessions.set_schema(client, schema);
                Ok(())
            }
            _ => Err(ErrorValue::InvalidName),
        };
        if let Err(value) = outcome {
            errors.insert(name, set_session_options_result::Error { value: value as i32 });
        }
    }
    SetSessionOptionsResult { errors }
}

/// Cancels the query behind a FlightInfo's tickets.
pub(crate) async fn cancel_flight_info(coordinator: &Coordinator, info: &FlightInfo) -> Result<CancelStatus> {
    let mut status = CancelStatus::Unspecified;
    for endpoint in &info.endpoint {
        let Some(ticket) = &endpoint.ticket else { continue };
        let any = Any::decode(ticket.ticket.clone()).map_err(|error| Error::InvalidRequest(error.to_string()))?;
        let Ok(Command::TicketStatementQuery(TicketStatementQuery { statement_handle })) = Command::try_from(any)
        else {
            return Err(Error::InvalidRequest(
                "the FlightInfo holds no statement ticket of this server".into(),
            ));
        };
        status = match coordinator.cancel(&statement_handle).await? {
            Cancelled::Cancelled => CancelStatus::Cancelled,
            Cancelled::NotCancellable => CancelStatus::NotCancellable,
        };
    }
    if status == CancelStatus::Unspecified {
        return Err(Error::InvalidRequest("the FlightInfo has no ticket to cancel".into()));
    }
    Ok(status)
}
