//! DuckDB types reach clients as the Arrow types DuckDB itself produces.

use arrow::datatypes::{DataType, IntervalUnit, TimeUnit};

use crate::fixture::TestServer;

#[tokio::test]
async fn duckdb_types_map_to_arrow() {
    let server = TestServer::start().await;
    server
        .update("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')")
        .await
        .unwrap();
    let sql = r"SELECT
        1::TINYINT AS i8, 1::SMALLINT AS i16, 1::INTEGER AS i32, 1::BIGINT AS i64,
        1::UTINYINT AS u8, 1::USMALLINT AS u16, 1::UINTEGER AS u32, 1::UBIGINT AS u64,
        -12345678901234567890123456789012345678::HUGEINT AS huge,
        1.5::DECIMAL(4,1) AS d4, 1.5::DECIMAL(18,3) AS d18, 1.5::DECIMAL(38,10) AS d38,
        'NaN'::FLOAT AS f32, '-inf'::DOUBLE AS f64,
        'grüße, 世界'::VARCHAR AS text, '\xAA\x00'::BLOB AS bytes, true AS flag,
        DATE '2024-02-29' AS day, TIME '12:34:56.789' AS clock,
        TIMESTAMP '2024-01-01 00:00:00.123456' AS ts, TIMESTAMP_S '2024-01-01' AS ts_s,
        TIMESTAMP_MS '2024-01-01' AS ts_ms, TIMESTAMP_NS '2024-01-01' AS ts_ns,
        TIMESTAMPTZ '2024-01-01 00:00:00+00' AS tstz, INTERVAL 1 MONTH + INTERVAL 2 DAY AS span,
        uuid() AS id, 'ok'::mood AS feeling, [1, NULL, 3] AS list, {'a': 1, 'b': 'x'} AS rec,
        MAP {'k': 1} AS dict, NULL::INTEGER AS nothing";
    let batches = server.query(sql).await.unwrap();
    let schema = batches[0].schema();
    let type_of = |name: &str| schema.field_with_name(name).unwrap().data_type().clone();
    assert_eq!(type_of("i8"), DataType::Int8);
    assert_eq!(type_of("u64"), DataType::UInt64);
    assert_eq!(type_of("huge"), DataType::Decimal128(38, 0));
    assert_eq!(type_of("d4"), DataType::Decimal128(4, 1));
    assert_eq!(type_of("d38"), DataType::Decimal128(38, 10));
    assert_eq!(type_of("f32"), DataType::Float32);
    assert_eq!(type_of("text"), DataType::Utf8);
    assert_eq!(type_of("bytes"), DataType::Binary);
    assert_eq!(type_of("day"), DataType::Date32);
    assert_eq!(type_of("clock"), DataType::Time64(TimeUnit::Microsecond));
    assert_eq!(type_of("ts"), DataType::Timestamp(TimeUnit::Microsecond, None));
    assert_eq!(type_of("ts_s"), DataType::Timestamp(TimeUnit::Second, None));
    assert_eq!(type_of("ts_ns"), DataType::Timestamp(TimeUnit::Nanosecond, None));
    assert!(matches!(
        type_of("tstz"),
        DataType::Timestamp(TimeUnit::Microsecond, Some(_))
    ));
    assert_eq!(type_of("span"), DataType::Interval(IntervalUnit::MonthDayNano));
    assert!(matches!(type_of("feeling"), DataType::Dictionary(_, _)));
    assert!(matches!(type_of("list"), DataType::List(_)));
    assert!(matches!(type_of("rec"), DataType::Struct(_)));
    assert!(matches!(type_of("dict"), DataType::Map(_, _)));

    let batch = &batches[0];
    let text =
        |name: &str| arrow::util::display::array_value_to_string(batch.column_by_name(name).unwrap(), 0).unwrap();
    assert_eq!(text("huge"), "-12345678901234567890123456789012345678");
    assert_eq!(text("f32"), "NaN");
    assert_eq!(text("f64"), "-inf");
    assert_eq!(text("text"), "grüße, 世界");
    assert_eq!(text("day"), "2024-02-29");
    assert_eq!(text("feeling"), "ok");
    assert!(batch.column_by_name("nothing").unwrap().is_null(0));
}
