//! DuckDB's dialect, as both sides of the executor interface write it:
//! quoting, type names, and the catalogs no database may take the name of.

use arrow::datatypes::{DataType, TimeUnit};

/// Quotes an identifier for DuckDB: `my "db"` becomes `"my ""db"""`.
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal for DuckDB: `it's` becomes `'it''s'`.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The catalog of an executor that holds openduck's own tables (`snapshots`).
pub const SYSTEM_CATALOG: &str = "openduck";

/// The catalogs every executor has: DuckDB's own, and openduck's, whose
/// `snapshots` table lists the snapshots in storage. No database takes
/// their names, and a table name qualified with one names no database.
pub const BUILT_IN_CATALOGS: [&str; 4] = ["memory", "system", "temp", SYSTEM_CATALOG];

/// The name of the DuckDB type that holds values of an Arrow type; `None`
/// when DuckDB has none (a 256-bit decimal, a union, ...).
pub fn duckdb_type_name(data_type: &DataType) -> Option<String> {
    Some(match data_type {
        DataType::Null => "INTEGER".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 => "UTINYINT".into(),
        DataType::UInt16 => "USMALLINT".into(),
        DataType::UInt32 => "UINTEGER".into(),
        DataType::UInt64 => "UBIGINT".into(),
        DataType::Float16 | DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => "BLOB".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        DataType::Timestamp(unit, tz) => match (unit, tz) {
            (_, Some(_)) => "TIMESTAMPTZ".into(),
            (TimeUnit::Second, None) => "TIMESTAMP_S".into(),
            (TimeUnit::Millisecond, None) => "TIMESTAMP_MS".into(),
            (TimeUnit::Microsecond, None) => "TIMESTAMP".into(),
            (TimeUnit::Nanosecond, None) => "TIMESTAMP_NS".into(),
        },
        DataType::Duration(_) | DataType::Interval(_) => "INTERVAL".into(),
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s) if *p <= 38 => {
            format!("DECIMAL({p}, {s})")
        }
        DataType::Dictionary(_, value) => duckdb_type_name(value)?,
        DataType::List(item) | DataType::LargeList(item) | DataType::ListView(item) | DataType::LargeListView(item) => {
            format!("{}[]", duckdb_type_name(item.data_type())?)
        }
        DataType::FixedSizeList(item, size) => format!("{}[{size}]", duckdb_type_name(item.data_type())?),
        DataType::Struct(fields) => {
            let members: Vec<String> = fields
                .iter()
                .map(|field| {
                    Some(format!(
                        "{} {}",
                        quote_identifier(field.name()),
                        duckdb_type_name(field.data_type())?
                    ))
                })
                .collect::<Option<_>>()?;
            format!("STRUCT({})", members.join(", "))
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "MAP({}, {})",
                duckdb_type_name(kv[0].data_type())?,
                duckdb_type_name(kv[1].data_type())?
            ),
            _ => return None,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::Field;

    use super::*;

    #[test]
    fn quotes_identifiers_and_literals() {
        assert_eq!(quote_identifier("t"), "\"t\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn names_nested_types_and_refuses_what_duckdb_lacks() {
        let item = Arc::new(Field::new("item", DataType::Int32, true));
        assert_eq!(duckdb_type_name(&DataType::List(item)).as_deref(), Some("INTEGER[]"));
        let wide = Arc::new(Field::new("item", DataType::Decimal256(60, 2), true));
        assert_eq!(duckdb_type_name(&DataType::List(wide)), None);
    }
}
