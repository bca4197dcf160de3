//! EXPLAIN of TPC-H queries with the tables spread over three in-process
//! executors: snapshots of where the cut falls (which operators are LOCAL,
//! which run REMOTE as one fragment per executor, and the SQL each runs).
//! The tables are empty: planning needs only their schemas.

mod common;

use common::{cluster, Q3};

#[tokio::test]
async fn tpch_q3_joins_two_executors_locally() {
    let cluster = cluster().await;
    let plan = cluster.explain(Q3).await;
    insta::assert_snapshot!(plan);
}

/// With rows in the tables, the estimates say one segment's customers are
/// few and the orders with their lineitems many: the customers are shipped
/// to the executor of orders and lineitem, and the whole query runs there.
#[tokio::test]
async fn tpch_q3_ships_the_few_customers_to_orders_and_lineitem() {
    let cluster = cluster().await;
    cluster.fill_q3_tables().await;
    let plan = cluster.explain(Q3).await;
    insta::assert_snapshot!(plan);
}

#[tokio::test]
async fn tpch_q5_sends_each_executor_its_joins() {
    let cluster = cluster().await;
    let plan = cluster.explain("SELECT n_name, sum(l_extendedprice * (1 - l_discount)) AS revenue
         FROM crm.main.customer, sales.main.orders, sales.main.lineitem, parts.main.supplier, crm.main.nation, crm.main.region
         WHERE c_custkey = o_custkey AND l_orderkey = o_orderkey AND l_suppkey = s_suppkey
           AND c_nationkey = s_nationkey AND s_nationkey = n_nationkey AND n_regionkey = r_regionkey
           AND r_name = 'ASIA' AND o_orderdate >= CAST('1994-01-01' AS date) AND o_orderdate < CAST('1995-01-01' AS date)
         GROUP BY n_name
         ORDER BY revenue DESC",
    )
    .await;
    insta::assert_snapshot!(plan);
}

#[tokio::test]
async fn tpch_q12_pushes_filters_and_projections_into_fragments() {
    let cluster = cluster().await;
    let plan = cluster
        .explain(
            "SELECT l_shipmode, count(*) AS n
         FROM sales.main.orders o JOIN sales.main.lineitem l ON o.o_orderkey = l.l_orderkey
         JOIN crm.main.customer c ON c.c_custkey = o.o_custkey
         WHERE l_shipmode IN ('MAIL', 'SHIP') AND l_receiptdate >= CAST('1994-01-01' AS date)
         GROUP BY l_shipmode ORDER BY l_shipmode",
        )
        .await;
    insta::assert_snapshot!(plan);
}

#[tokio::test]
async fn tpch_q15_cuts_inside_scalar_subqueries_too() {
    let cluster = cluster().await;
    let plan = cluster
        .explain(
            "WITH revenue AS (
            SELECT l_suppkey AS supplier_no, sum(l_extendedprice * (1 - l_discount)) AS total_revenue
            FROM sales.main.lineitem
            WHERE l_shipdate >= CAST('1996-01-01' AS date) AND l_shipdate < CAST('1996-04-01' AS date)
            GROUP BY supplier_no)
         SELECT s_suppkey, s_name, s_address, s_phone, total_revenue
         FROM parts.main.supplier, revenue
         WHERE s_suppkey = supplier_no AND total_revenue = (SELECT max(total_revenue) FROM revenue)
         ORDER BY s_suppkey",
        )
        .await;
    insta::assert_snapshot!(plan);
}

#[tokio::test]
async fn tpch_q18_filters_orders_with_a_semi_join_on_their_executor() {
    let cluster = cluster().await;
    let plan = cluster.explain("SELECT c_name, c_custkey, o_orderkey, o_orderdate, o_totalprice, sum(l_quantity)
         FROM crm.main.customer, sales.main.orders, sales.main.lineitem
         WHERE o_orderkey IN (SELECT l_orderkey FROM sales.main.lineitem GROUP BY l_orderkey HAVING sum(l_quantity) > 300)
           AND c_custkey = o_custkey AND o_orderkey = l_orderkey
         GROUP BY c_name, c_custkey, o_orderkey, o_orderdate, o_totalprice
         ORDER BY o_totalprice DESC, o_orderdate
         LIMIT 100",
    )
    .await;
    insta::assert_snapshot!(plan);
}
