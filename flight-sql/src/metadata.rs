//! Result sets of the metadata commands arrow-flight has no builder for
//! (primary, imported and exported keys, cross references), and the XDBC
//! type info for every type openduck returns.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Builder, RecordBatch, StringBuilder, UInt8Builder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::sql::metadata::{XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder};
use arrow_flight::sql::{Nullable, Searchable, XdbcDataType, XdbcDatetimeSubcode};
use openduck_coordinator::KeyColumn;

use crate::error::Result;

/// JDBC's `importedKeyNoAction`: DuckDB's foreign keys neither cascade nor
/// set anything on update or delete.
const NO_ACTION: u8 = 3;

/// The schema of GetPrimaryKeys, as the Flight SQL specification gives it.
pub(crate) fn primary_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_sequence", DataType::Int32, false),
        Field::new("key_name", DataType::Utf8, true),
    ]))
}

/// The schema of GetImportedKeys, GetExportedKeys and GetCrossReference.
pub(crate) fn foreign_keys_schema() -> SchemaRef {
    let utf8 = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        utf8("pk_catalog_name", true),
        utf8("pk_db_schema_name", true),
        utf8("pk_table_name", false),
        utf8("pk_column_name", false),
        utf8("fk_catalog_name", true),
        utf8("fk_db_schema_name", true),
        utf8("fk_table_name", false),
        utf8("fk_column_name", false),
        Field::new("key_sequence", DataType::Int32, false),
        utf8("fk_key_name", true),
        utf8("pk_key_name", true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ]))
}

/// Whether `value` matches an optional exact filter.
fn matches(filter: Option<&str>, value: &str) -> bool {
    filter.is_none_or(|wanted| wanted == value)
}

/// A table named by a metadata command: catalog and schema optional.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TableRef<'a> {
    pub(crate) catalog: Option<&'a str>,
    pub(crate) schema: Option<&'a str>,
    pub(crate) table: &'a str,
}

impl<'a> TableRef<'a> {
    /// A table as the key commands name it: optional catalog and schema.
    pub(crate) fn new(catalog: &'a Option<String>, schema: &'a Option<String>, table: &'a str) -> Self {
        TableRef {
            catalog: catalog.as_deref(),
            schema: schema.as_deref(),
            table,
        }
    }

    fn is(&self, catalog: &str, schema: &str, table: &str) -> bool {
        matches(self.catalog, catalog) && matches(self.schema, schema) && self.table == table
    }
}

/// The primary key columns of `table`.
pub(crate) fn primary_keys(keys: &[KeyColumn], table: TableRef<'_>) -> Result<RecordBatch> {
    let mut columns: [StringBuilder; 5] = Default::default();
    let mut sequence = Int32Builder::new();
    for key in keys
        .iter()
        .filter(|k| k.references.is_none() && table.is(&k.catalog, &k.schema, &k.table))
    {
        for (builder, value) in columns
            .iter_mut()
            .zip([&key.catalog, &key.schema, &key.table, &key.column, &key.name])
        {
            builder.append_value(value);
        }
        sequence.append_value(key.sequence);
    }
    let [catalog, schema, name, column, key_name] = columns.map(|mut b| Arc::new(b.finish()) as ArrayRef);
    Ok(RecordBatch::try_new(
        primary_keys_schema(),
        vec![catalog, schema, name, column, Arc::new(sequence.finish()), key_name],
    )?)
}

/// Foreign key columns whose referenced (primary) table matches `pk` and
/// whose own table matches `fk`.
pub(crate) fn foreign_keys(
    keys: &[KeyColumn],
    pk: Option<TableRef<'_>>,
    fk: Option<TableRef<'_>>,
) -> Result<RecordBatch> {
    let mut text: [StringBuilder; 11] = Default::default();
    let mut sequence = Int32Builder::new();
    let (mut update_rule, mut delete_rule) = (UInt8Builder::new(), UInt8Builder::new());
    for key in keys {
        let Some((pk_table, pk_column)) = &key.references else {
            continue;
        };
        let pk_matches = pk.is_none_or(|pk| pk.is(&key.catalog, &key.schema, pk_table));
        let fk_matches = fk.is_none_or(|fk| fk.is(&key.catalog, &key.schema, &key.table));
        if !(pk_matches && fk_matches) {
            continue;
        }
        let pk_name = keys
            .iter()
            .find(|k| {
                k.references.is_none() && k.catalog == key.catalog && k.schema == key.schema && &k.table == pk_table
            })
            .map(|k| k.name.as_str());
        let values = [
            Some(key.catalog.as_str()),
            Some(key.schema.as_str()),
            Some(pk_table.as_str()),
            Some(pk_column.as_str()),
            Some(key.catalog.as_str()),
            Some(key.schema.as_str()),
            Some(key.table.as_str()),
            Some(key.column.as_str()),
            Some(key.name.as_str()),
            pk_name,
        ];
        for (builder, value) in text.iter_mut().zip(values) {
            builder.append_option(value);
        }
        sequence.append_value(key.sequence);
        update_rule.append_value(NO_ACTION);
        delete_rule.append_value(NO_ACTION);
    }
    let mut columns: Vec<ArrayRef> = text
        .into_iter()
        .take(10)
        .map(|mut b| Arc::new(b.finish()) as ArrayRef)
        .collect();
    columns.insert(8, Arc::new(sequence.finish()));
    columns.push(Arc::new(update_rule.finish()));
    columns.push(Arc::new(delete_rule.finish()));
    Ok(RecordBatch::try_new(foreign_keys_schema(), columns)?)
}

/// The `ARROW:FLIGHT:SQL:*` column metadata of a table's fields, as GetTables
/// with `include_schema` returns them and the JDBC driver reads them.
pub(crate) fn with_column_metadata(
    schema: &Schema,
    catalog: &str,
    db_schema: &str,
    table: &str,
    read_only: bool,
) -> Schema {
    let flag = |value: bool| if value { "1" } else { "0" }.to_string();
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| {
            let data_type = field.data_type();
            let mut metadata = field.metadata().clone();
            let mut put = |key: &str, value: String| {
                metadata.insert(format!("ARROW:FLIGHT:SQL:{key}"), value);
            };
            put("CATALOG_NAME", catalog.into());
            put("SCHEMA_NAME", db_schema.into());
            put("TABLE_NAME", table.into());
            if let Some(name) = openduck_coordinator::duckdb_type_name(data_type) {
                put("TYPE_NAME", name);
            }
            if let DataType::Decimal128(precision, scale) = data_type {
                put("PRECISION", precision.to_string());
                put("SCALE", scale.to_string());
            }
            put("IS_AUTO_INCREMENT", flag(false));
            put(
                "IS_CASE_SENSITIVE",
                flag(matches!(data_type, DataType::Utf8 | DataType::LargeUtf8)),
            );
            put("IS_READ_ONLY", flag(read_only));
            put("IS_SEARCHABLE", flag(true));
            put("REMARKS", String::new());
            Field::clone(field).with_metadata(metadata)
        })
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

/// One XDBC type.
fn xdbc(name: &str, data_type: XdbcDataType, column_size: Option<i32>) -> XdbcTypeInfo {
    let text = matches!(data_type, XdbcDataType::XdbcVarchar);
    let numeric = matches!(
        data_type,
        XdbcDataType::XdbcTinyint
            | XdbcDataType::XdbcSmallint
            | XdbcDataType::XdbcInteger
            | XdbcDataType::XdbcBigint
            | XdbcDataType::XdbcFloat
            | XdbcDataType::XdbcReal
            | XdbcDataType::XdbcDouble
            | XdbcDataType::XdbcDecimal
    );
    XdbcTypeInfo {
        type_name: name.into(),
        data_type,
        column_size,
        literal_prefix: text.then(|| "'".into()),
        literal_suffix: text.then(|| "'".into()),
        create_params: None,
        nullable: Nullable::NullabilityNullable,
        case_sensitive: text,
        searchable: if text { Searchable::Full } else { Searchable::Basic },
        unsigned_attribute: numeric.then_some(false),
        fixed_prec_scale: false,
        auto_increment: numeric.then_some(false),
        local_type_name: Some(name.into()),
        minimum_scale: None,
        maximum_scale: None,
        sql_data_type: data_type,
        datetime_subcode: None,
        num_prec_radix: numeric.then_some(10),
        interval_precision: None,
    }
}

/// The XDBC types of the SQL types openduck returns.
pub(crate) fn xdbc_type_info() -> XdbcTypeInfoData {
    use XdbcDataType as X;
    let mut builder = XdbcTypeInfoDataBuilder::new();
    builder.append(xdbc("BOOLEAN", X::XdbcBit, Some(1)));
    builder.append(xdbc("TINYINT", X::XdbcTinyint, Some(3)));
    builder.append(xdbc("SMALLINT", X::XdbcSmallint, Some(5)));
    builder.append(xdbc("INTEGER", X::XdbcInteger, Some(10)));
    builder.append(xdbc("BIGINT", X::XdbcBigint, Some(19)));
    builder.append(xdbc("HUGEINT", X::XdbcDecimal, Some(38)));
    builder.append(xdbc("FLOAT", X::XdbcReal, Some(7)));
    builder.append(xdbc("DOUBLE", X::XdbcDouble, Some(15)));
    builder.append(XdbcTypeInfo {
        create_params: Some(vec!["precision".into(), "scale".into()]),
        minimum_scale: Some(0),
        maximum_scale: Some(38),
        ..xdbc("DECIMAL", X::XdbcDecimal, Some(38))
    });
    builder.append(xdbc("VARCHAR", X::XdbcVarchar, None));
    builder.append(xdbc("BLOB", X::XdbcVarbinary, None));
    let datetime = |name: &str, data_type, subcode, size| XdbcTypeInfo {
        literal_prefix: Some(format!("{name} '")),
        literal_suffix: Some("'".into()),
        sql_data_type: X::XdbcDatetime,
        datetime_subcode: Some(subcode),
        ..xdbc(name, data_type, Some(size))
    };
    builder.append(datetime("DATE", X::XdbcDate, XdbcDatetimeSubcode::XdbcSubcodeYear, 10));
    builder.append(datetime("TIME", X::XdbcTime, XdbcDatetimeSubcode::XdbcSubcodeTime, 15));
    builder.append(datetime(
        "TIMESTAMP",
        X::XdbcTimestamp,
        XdbcDatetimeSubcode::XdbcSubcodeTimestamp,
        26,
    ));
    builder.append(datetime(
        "TIMESTAMP WITH TIME ZONE",
        X::XdbcTimestamp,
        XdbcDatetimeSubcode::XdbcSubcodeTimestampWithTimezone,
        32,
    ));
    builder.append(xdbc("INTERVAL", X::XdbcInterval, None));
    builder.append(xdbc("UUID", X::XdbcVarchar, Some(36)));
    builder.build().expect("static XDBC type info is valid")
}

#[cfg(test)]
mod tests {
    use arrow::array::AsArray;
    use arrow::datatypes::Int32Type;

    use super::*;

    fn key(table: &str, column: &str, sequence: i32, references: Option<(&str, &str)>) -> KeyColumn {
        KeyColumn {
            catalog: "db".into(),
            schema: "main".into(),
            table: table.into(),
            column: column.into(),
            sequence,
            name: format!("{table}_key"),
            references: references.map(|(t, c)| (t.to_string(), c.to_string())),
        }
    }

    fn keys() -> Vec<KeyColumn> {
        vec![
            key("orders", "id", 1, None),
            key("lines", "order_id", 1, Some(("orders", "id"))),
            key("notes", "order_id", 1, Some(("orders", "id"))),
        ]
    }

    fn table(name: &str) -> TableRef<'_> {
        TableRef {
            catalog: None,
            schema: Some("main"),
            table: name,
        }
    }

    #[test]
    fn lists_primary_keys_of_one_table() {
        let batch = primary_keys(&keys(), table("orders")).unwrap();
        assert_eq!(batch.schema(), primary_keys_schema());
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(batch.column(3).as_string::<i32>().value(0), "id");
        assert_eq!(batch.column(4).as_primitive::<Int32Type>().value(0), 1);
        assert_eq!(primary_keys(&keys(), table("lines")).unwrap().num_rows(), 0);
    }

    #[test]
    fn lists_imported_exported_and_cross_references() {
        let exported = foreign_keys(&keys(), Some(table("orders")), None).unwrap();
        assert_eq!(exported.schema(), foreign_keys_schema());
        let fk_tables: Vec<&str> = exported.column(6).as_string::<i32>().iter().flatten().collect();
        assert_eq!(fk_tables, ["lines", "notes"]);
        assert_eq!(exported.column(10).as_string::<i32>().value(0), "orders_key");

        let imported = foreign_keys(&keys(), None, Some(table("lines"))).unwrap();
        assert_eq!(imported.num_rows(), 1);
        assert_eq!(imported.column(2).as_string::<i32>().value(0), "orders");

        let cross = foreign_keys(&keys(), Some(table("orders")), Some(table("notes"))).unwrap();
        assert_eq!(cross.num_rows(), 1);
        assert_eq!(foreign_keys(&keys(), Some(table("lines")), None).unwrap().num_rows(), 0);
    }

    #[test]
    fn xdbc_type_info_covers_the_returned_types() {
        let info = xdbc_type_info();
        let batch = info.record_batch(None).unwrap();
        let names: Vec<&str> = batch.column(0).as_string::<i32>().iter().flatten().collect();
        for wanted in [
            "BOOLEAN",
            "BIGINT",
            "DECIMAL",
            "VARCHAR",
            "BLOB",
            "DATE",
            "TIMESTAMP",
            "INTERVAL",
        ] {
            assert!(names.contains(&wanted), "{wanted} missing from {names:?}");
        }
    }
}
