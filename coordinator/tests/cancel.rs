//! Cancelling a query across executors: a running one ends with
//! `Cancelled` (never as if complete), one cancelled before it starts is
//! refused, and a query that is not cancelled is not disturbed.

mod common;

use common::cluster;
use futures::StreamExt;
use openduck_coordinator::{Cancelled, ErrorKind, Scope};

const ACROSS: &str = "SELECT b.x, c.y FROM sales.main.big b, crm.main.small c";

async fn with_tables() -> common::Cluster {
    let cluster = cluster().await;
    cluster
        .update("sales", "CREATE TABLE big AS SELECT range AS x FROM range(3000000)")
        .await;
    cluster.update("crm", "CREATE TABLE small AS SELECT 1 AS y").await;
    cluster
}

#[tokio::test]
async fn a_running_query_ends_with_cancelled() {
    let cluster = with_tables().await;
    let planned = cluster
        .coordinator
        .plan_query(&Scope::default(), ACROSS, None)
        .await
        .unwrap();
    let mut rows = cluster
        .coordinator
        .execute_ticket(&planned.endpoints[0].ticket)
        .await
        .unwrap();
    assert!(rows.next().await.unwrap().unwrap().num_rows() > 0);
    assert_eq!(
        cluster.coordinator.cancel(&planned.endpoints[0].ticket).await.unwrap(),
        Cancelled::Cancelled
    );
    let mut seen = 0;
    let error = loop {
        match rows.next().await {
            Some(Ok(batch)) => seen += batch.num_rows(),
            Some(Err(error)) => break error,
            None => panic!("the stream ended as if complete after {seen} more rows"),
        }
    };
    assert_eq!(error.kind(), ErrorKind::Cancelled, "{error}");
}

#[tokio::test]
async fn a_query_cancelled_before_it_starts_is_refused_and_others_run() {
    let cluster = with_tables().await;
    let planned = cluster
        .coordinator
        .plan_query(&Scope::default(), ACROSS, None)
        .await
        .unwrap();
    cluster.coordinator.cancel(&planned.endpoints[0].ticket).await.unwrap();
    let error = match cluster.coordinator.execute_ticket(&planned.endpoints[0].ticket).await {
        Ok(_) => panic!("a cancelled query started"),
        Err(error) => error,
    };
    assert_eq!(error.kind(), ErrorKind::Cancelled);

    let other = cluster
        .coordinator
        .plan_query(
            &Scope::default(),
            "SELECT count(*) FROM sales.main.big b, crm.main.small c",
            None,
        )
        .await
        .unwrap();
    let mut rows = cluster
        .coordinator
        .execute_ticket(&other.endpoints[0].ticket)
        .await
        .unwrap();
    let batch = rows.next().await.unwrap().unwrap();
    assert_eq!(batch.num_rows(), 1);
    assert!(rows.next().await.is_none());
}
