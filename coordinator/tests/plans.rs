//! A query across executors runs the plan its FlightInfo described: rows
//! come in the schema the client was given, even when a table changed
//! between planning and fetching.

mod common;

use common::cluster;
use openduck_coordinator::Scope;

#[tokio::test]
async fn rows_come_in_the_schema_planned_even_after_the_table_changed() {
    let cluster = cluster().await;
    cluster.update("sales", "CREATE TABLE t AS SELECT 1 AS x").await;
    cluster.update("crm", "CREATE TABLE c AS SELECT 2 AS y").await;
    let planned = cluster
        .coordinator
        .plan_query(&Scope::default(), "SELECT * FROM sales.main.t, crm.main.c", None)
        .await
        .unwrap();
    let schema = planned.schema.clone().unwrap();
    assert_eq!(schema.fields().len(), 2);

    // Planned again now, `*` would be three columns.
    cluster.update("sales", "ALTER TABLE t ADD COLUMN z INTEGER").await;
    let batches = cluster.redeem(&planned.endpoints[0].ticket).await.unwrap();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].schema(), schema);
    assert_eq!(batches[0].num_rows(), 1);
}
