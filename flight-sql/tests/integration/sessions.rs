//! Sessions, transactions, GetSchema and PollFlightInfo through raw Flight
//! calls, with the status codes a client gets for misuse.

use arrow_flight::sql::{
    ActionBeginTransactionRequest, ActionEndTransactionRequest, Any, CommandGetCatalogs, CommandStatementQuery,
    ProstMessageExt,
};
use arrow_flight::{Action, FlightDescriptor};
use openduck_proto::flight_session::{
    session_option_value, set_session_options_result, GetSessionOptionsResult, SessionOptionValue,
    SetSessionOptionsRequest, SetSessionOptionsResult,
};
use prost::Message;
use tonic::Code;

use crate::fixture::TestServer;

fn string(value: &str) -> SessionOptionValue {
    SessionOptionValue {
        option_value: Some(session_option_value::OptionValue::StringValue(value.into())),
    }
}

async fn action(server: &TestServer, kind: &str, body: Vec<u8>) -> Result<Vec<u8>, tonic::Status> {
    let mut flight = server.flight();
    let action = Action::new(kind, body);
    let mut results = flight.do_action(server.request(action)).await?.into_inner();
    let first = results
        .message()
        .await?
        .map(|result| result.body.to_vec())
        .unwrap_or_default();
    Ok(first)
}

#[tokio::test]
async fn session_options_are_set_one_by_one() {
    let server = TestServer::start().await;
    let request = SetSessionOptionsRequest {
        session_options: [
            ("schema".to_string(), string("reports")),
            ("catalog".to_string(), string("no_such_db")),
            ("colour".to_string(), string("blue")),
            (
                "catalog_flag".to_string(),
                SessionOptionValue {
                    option_value: Some(session_option_value::OptionValue::BoolValue(true)),
                },
            ),
        ]
        .into(),
    };
    let body = action(&server, "SetSessionOptions", request.encode_to_vec())
        .await
        .unwrap();
    let result = SetSessionOptionsResult::decode(body.as_slice()).unwrap();
    let code = |name: &str| result.errors.get(name).map(|error| error.value);
    use set_session_options_result::ErrorValue;
    assert_eq!(code("schema"), None, "schema was set");
    assert_eq!(code("catalog"), Some(ErrorValue::InvalidValue as i32));
    assert_eq!(code("colour"), Some(ErrorValue::InvalidName as i32));
    assert_eq!(code("catalog_flag"), Some(ErrorValue::InvalidName as i32));

    // The channel is one HTTP/2 connection, so the option stuck to it.
    let body = action(&server, "GetSessionOptions", Vec::new()).await.unwrap();
    let options = GetSessionOptionsResult::decode(body.as_slice())
        .unwrap()
        .session_options;
    assert_eq!(options["schema"], string("reports"));
    assert_eq!(options["catalog"], string("mydb"));

    // CloseSession forgets the options: the defaults come back.
    let body = action(&server, "CloseSession", Vec::new()).await.unwrap();
    let closed = openduck_proto::flight_session::CloseSessionResult::decode(body.as_slice()).unwrap();
    assert_eq!(
        closed.status,
        openduck_proto::flight_session::close_session_result::Status::Closed as i32
    );
    let body = action(&server, "GetSessionOptions", Vec::new()).await.unwrap();
    let options = GetSessionOptionsResult::decode(body.as_slice())
        .unwrap()
        .session_options;
    assert_eq!(options["schema"], string("main"));

    let malformed = action(&server, "SetSessionOptions", vec![0xff, 0xff])
        .await
        .unwrap_err();
    assert_eq!(malformed.code(), Code::InvalidArgument, "{malformed}");
    let unknown = action(&server, "NoSuchAction", Vec::new()).await.unwrap_err();
    assert_eq!(unknown.code(), Code::Unimplemented, "{unknown}");
    server.stop().await;
}

#[tokio::test]
async fn transactions_refuse_unknown_ids_and_roll_back() {
    let server = TestServer::start().await;
    server.update("CREATE TABLE t (x INTEGER)").await.unwrap();
    let begin = ActionBeginTransactionRequest {};
    let body = action(&server, "BeginTransaction", begin.as_any().encode_to_vec())
        .await
        .unwrap();
    let id = Any::decode(body.as_slice())
        .unwrap()
        .unpack::<arrow_flight::sql::ActionBeginTransactionResult>()
        .unwrap()
        .unwrap()
        .transaction_id;

    let insert = || "INSERT INTO t VALUES (1)".to_string();
    let mut client = server.sql_client();
    let forged = client
        .execute_update(insert(), Some(bytes::Bytes::from_static(b"tx-forged")))
        .await
        .map_err(crate::fixture::to_status)
        .unwrap_err();
    assert_eq!(forged.code(), Code::NotFound, "{forged}");

    client.execute_update(insert(), Some(id.clone())).await.unwrap();
    let end = ActionEndTransactionRequest {
        transaction_id: id.clone(),
        action: 2,
    };
    action(&server, "EndTransaction", end.as_any().encode_to_vec())
        .await
        .unwrap();
    assert_eq!(server.scalar("SELECT count(*) FROM t").await, "0", "rolled back");
    let again = action(&server, "EndTransaction", end.as_any().encode_to_vec())
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::NotFound, "{again}");
    server.stop().await;
}

#[tokio::test]
async fn get_schema_and_poll_flight_info() {
    let server = TestServer::start().await;
    let mut flight = server.flight();
    let query = CommandStatementQuery {
        query: "SELECT 1::INTEGER AS one, 'x' AS s".into(),
        transaction_id: None,
    };
    let descriptor = FlightDescriptor::new_cmd(query.as_any().encode_to_vec());
    let schema = flight
        .get_schema(server.request(descriptor.clone()))
        .await
        .unwrap()
        .into_inner();
    let schema = arrow::datatypes::Schema::try_from(&schema).unwrap();
    assert_eq!(schema.field(0).name(), "one");
    assert_eq!(schema.field(1).data_type(), &arrow::datatypes::DataType::Utf8);

    let poll = flight
        .poll_flight_info(server.request(descriptor))
        .await
        .unwrap()
        .into_inner();
    assert!(poll.flight_descriptor.is_none(), "complete at once");
    let info = poll.info.expect("the FlightInfo");
    assert_eq!(crate::fixture::total_rows(&server.fetch(info).await.unwrap()), 1);

    let catalogs = FlightDescriptor::new_cmd(CommandGetCatalogs {}.as_any().encode_to_vec());
    let refused = flight.get_schema(server.request(catalogs)).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused}");
    let garbage = FlightDescriptor::new_cmd(vec![1, 2, 3]);
    let refused = flight.get_schema(server.request(garbage)).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused}");
    server.stop().await;
}
