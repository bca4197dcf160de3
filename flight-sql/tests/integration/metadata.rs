//! Catalog metadata and SqlInfo.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Schema};
use arrow::ipc::convert::try_schema_from_ipc_buffer;
use arrow_flight::sql::{
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, SqlInfo,
};

use crate::fixture::{Options, TestServer};

fn strings(batches: &[RecordBatch], column: &str) -> Vec<String> {
    batches
        .iter()
        .flat_map(|batch| {
            let array = batch.column_by_name(column).unwrap().as_string::<i32>().clone();
            (0..array.len())
                .map(move |i| array.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

async fn setup() -> TestServer {
    let server = TestServer::start_with(Options {
        databases: vec!["mydb".into(), "other".into()],
        ..Options::default()
    })
    .await;
    server
        .update("CREATE TABLE orders (id BIGINT PRIMARY KEY, amount DECIMAL(12,2) NOT NULL, note VARCHAR); CREATE VIEW big_orders AS SELECT * FROM orders WHERE amount > 100; CREATE SCHEMA staging; CREATE TABLE staging.raw_orders (line VARCHAR); CREATE TABLE other.main.customers (id INT)")
        .await
        .unwrap();
    server
}

#[tokio::test]
async fn catalogs_and_schemas() {
    let server = setup().await;
    let catalogs = server
        .fetch(server.info(CommandGetCatalogs {}).await.unwrap())
        .await
        .unwrap();
    assert_eq!(strings(&catalogs, "catalog_name"), ["mydb", "other"]);

    let schemas = server
        .fetch(
            server
                .info(CommandGetDbSchemas {
                    catalog: Some("mydb".into()),
                    db_schema_filter_pattern: None,
                })
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(strings(&schemas, "db_schema_name"), ["main", "staging"]);
    assert!(strings(&schemas, "catalog_name").iter().all(|c| c == "mydb"));

    let filtered = server
        .fetch(
            server
                .info(CommandGetDbSchemas {
                    catalog: None,
                    db_schema_filter_pattern: Some("stag%".into()),
                })
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(strings(&filtered, "db_schema_name"), ["staging"]);
}

#[tokio::test]
async fn tables_with_patterns_types_and_schemas() {
    let server = setup().await;
    let command = CommandGetTables {
        catalog: Some("mydb".into()),
        db_schema_filter_pattern: None,
        table_name_filter_pattern: Some("%orders".into()),
        table_types: vec![],
        include_schema: true,
    };
    let tables = server.fetch(server.info(command).await.unwrap()).await.unwrap();
    assert_eq!(strings(&tables, "table_name"), ["big_orders", "orders", "raw_orders"]);
    assert_eq!(strings(&tables, "table_type"), ["VIEW", "TABLE", "TABLE"]);

    let batch = &tables[0];
    let schemas = batch.column_by_name("table_schema").unwrap().as_binary::<i32>();
    let orders: Schema = try_schema_from_ipc_buffer(schemas.value(1)).unwrap();
    let fields: Vec<(&str, &DataType, bool)> = orders
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type(), f.is_nullable()))
        .collect();
    // Nullability is the table's: a primary key and NOT NULL columns hold no NULL.
    assert_eq!(
        fields,
        [
            ("id", &DataType::Int64, false),
            ("amount", &DataType::Decimal128(12, 2), false),
            ("note", &DataType::Utf8, true)
        ]
    );

    let only_views = CommandGetTables {
        catalog: None,
        db_schema_filter_pattern: None,
        table_name_filter_pattern: None,
        table_types: vec!["VIEW".into()],
        include_schema: false,
    };
    let views = server.fetch(server.info(only_views).await.unwrap()).await.unwrap();
    assert_eq!(strings(&views, "table_name"), ["big_orders"]);
    assert!(views[0].column_by_name("table_schema").is_none());

    let everywhere = CommandGetTables {
        catalog: None,
        db_schema_filter_pattern: Some("main".into()),
        table_name_filter_pattern: Some("c_stomers".into()),
        table_types: vec![],
        include_schema: false,
    };
    let found = server.fetch(server.info(everywhere).await.unwrap()).await.unwrap();
    assert_eq!(strings(&found, "catalog_name"), ["other"]);
}

#[tokio::test]
async fn table_types_and_sql_info() {
    let server = TestServer::start().await;
    let types = server
        .fetch(server.info(CommandGetTableTypes {}).await.unwrap())
        .await
        .unwrap();
    assert_eq!(strings(&types, "table_type"), ["TABLE", "VIEW"]);

    let wanted = [
        SqlInfo::FlightSqlServerName,
        SqlInfo::FlightSqlServerVersion,
        SqlInfo::FlightSqlServerArrowVersion,
        SqlInfo::FlightSqlServerReadOnly,
        SqlInfo::SqlIdentifierQuoteChar,
        SqlInfo::FlightSqlServerTransaction,
    ];
    let command = CommandGetSqlInfo {
        info: wanted.iter().map(|info| *info as u32).chain([999_999]).collect(),
    };
    let info = server.fetch(server.info(command).await.unwrap()).await.unwrap();
    let batch = &info[0];
    assert_eq!(
        batch.num_rows(),
        wanted.len(),
        "unknown ids are ignored, known ones all answered"
    );
    let names = batch.column(0).as_primitive::<arrow::datatypes::UInt32Type>();
    let values = batch.column(1).as_union();
    let text = |id: SqlInfo| {
        let row = (0..batch.num_rows()).find(|&r| names.value(r) == id as u32).unwrap();
        let value = values.value(row);
        arrow::util::display::array_value_to_string(&value, 0).unwrap()
    };
    assert_eq!(text(SqlInfo::FlightSqlServerName), "openduck");
    assert_eq!(text(SqlInfo::FlightSqlServerVersion), env!("CARGO_PKG_VERSION"));
    assert_eq!(text(SqlInfo::FlightSqlServerArrowVersion), "58.4");
    assert_eq!(text(SqlInfo::FlightSqlServerReadOnly), "false");
    assert_eq!(text(SqlInfo::SqlIdentifierQuoteChar), "\"");
}
