//! Prepared statements with parameters bound through DoPut.

use std::sync::Arc;

use arrow::array::{AsArray, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult,
    Any, CommandPreparedStatementQuery, ProstMessageExt,
};
use arrow_flight::Action;
use prost::Message;

use crate::fixture::{total_rows, TestServer};

fn rows(ids: Vec<i32>, names: Vec<&str>) -> RecordBatch {
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("name", DataType::Utf8, false),
        ])),
        vec![Arc::new(Int32Array::from(ids)), Arc::new(StringArray::from(names))],
    )
    .unwrap()
}

#[tokio::test]
async fn executemany_runs_every_parameter_row() {
    let server = TestServer::start().await;
    server
        .update("CREATE TABLE people (id INTEGER, name VARCHAR)")
        .await
        .unwrap();
    let mut client = server.sql_client();
    let mut insert = client
        .prepare("INSERT INTO people VALUES (?, ?)".into(), None)
        .await
        .unwrap();
    assert_eq!(insert.parameter_schema().unwrap().fields().len(), 2);
    insert
        .set_parameters(rows(vec![1, 2, 3], vec!["ann", "bob", "cid"]))
        .unwrap();
    assert_eq!(insert.execute_update().await.unwrap(), 3);
    insert.close().await.unwrap();
    assert_eq!(
        server
            .scalar("SELECT string_agg(name, ',' ORDER BY id) FROM people")
            .await,
        "ann,bob,cid"
    );
}

#[tokio::test]
async fn prepared_queries_bind_parameters() {
    let server = TestServer::start().await;
    server
        .update("CREATE TABLE n AS SELECT range AS i FROM range(100)")
        .await
        .unwrap();
    let mut client = server.sql_client();
    let mut query = client
        .prepare("SELECT count(*) AS c FROM n WHERE i < ?".into(), None)
        .await
        .unwrap();
    assert_eq!(query.dataset_schema().unwrap().field(0).name(), "c");
    let bound = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("$1", DataType::Int64, false)])),
        vec![Arc::new(Int64Array::from(vec![10]))],
    )
    .unwrap();
    query.set_parameters(bound).unwrap();
    let info = query.execute().await.unwrap();
    let batches = server.fetch(info).await.unwrap();
    assert_eq!(batches[0].column(0).as_primitive::<Int64Type>().value(0), 10);
}

#[tokio::test]
async fn a_closed_or_forged_handle_is_not_found() {
    let server = TestServer::start().await;
    let create = Action::new(
        "CreatePreparedStatement",
        ActionCreatePreparedStatementRequest {
            query: "SELECT 1".into(),
            transaction_id: None,
        }
        .as_any()
        .encode_to_vec(),
    );
    let mut results = server
        .flight()
        .do_action(server.request(create))
        .await
        .unwrap()
        .into_inner();
    let body = results.message().await.unwrap().expect("one result").body;
    let created: ActionCreatePreparedStatementResult = Any::decode(body).unwrap().unpack().unwrap().unwrap();
    let handle = created.prepared_statement_handle;
    let query = CommandPreparedStatementQuery {
        prepared_statement_handle: handle.clone(),
    };
    assert_eq!(
        total_rows(&server.fetch(server.info(query.clone()).await.unwrap()).await.unwrap()),
        1
    );

    let close = Action::new(
        "ClosePreparedStatement",
        ActionClosePreparedStatementRequest {
            prepared_statement_handle: handle,
        }
        .as_any()
        .encode_to_vec(),
    );
    server.flight().do_action(server.request(close)).await.unwrap();
    let status = server.info(query).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "{status}");

    let forged = CommandPreparedStatementQuery {
        prepared_statement_handle: "not-a-handle".into(),
    };
    assert_eq!(server.info(forged).await.unwrap_err().code(), tonic::Code::NotFound);
    // The server keeps serving.
    assert_eq!(total_rows(&server.query("SELECT 1").await.unwrap()), 1);
}
