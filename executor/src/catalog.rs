//! Listing what the hosted databases hold: catalogs, schemas, tables, views.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

pub use openduck_api::{CatalogFilter, KeyColumn, TableEntry, TableKind};

use crate::error::Result;
use crate::executor::{Executor, Statement};
use crate::pool::PooledConnection;
use crate::sql::quote_identifier;
use crate::stream::run_blocking;

const KEYS_SQL: &str = r"
SELECT database_name, schema_name, table_name, constraint_column_names[i], i,
       constraint_name, constraint_type, coalesce(referenced_table, ''),
       coalesce(referenced_column_names[i], '')
FROM (
    SELECT *, generate_subscripts(constraint_column_names, 1) AS i
    FROM duckdb_constraints()
    WHERE constraint_type IN ('PRIMARY KEY', 'FOREIGN KEY')
)
ORDER BY ALL";

const SCHEMAS_SQL: &str = r"
SELECT database_name, schema_name FROM duckdb_schemas()
WHERE schema_name NOT IN ('information_schema', 'pg_catalog')
  AND (CAST($1 AS VARCHAR) IS NULL OR database_name = $1)
  AND (CAST($2 AS VARCHAR) IS NULL OR schema_name LIKE $2 ESCAPE '\')
ORDER BY database_name, schema_name";

const TABLES_SQL: &str = r"
SELECT database_name, schema_name, table_name, table_type, estimated_rows FROM (
    SELECT database_name, schema_name, table_name, 'TABLE' AS table_type, CAST(estimated_size AS VARCHAR) AS estimated_rows
    FROM duckdb_tables() WHERE NOT temporary AND NOT internal
    UNION ALL
    SELECT database_name, schema_name, view_name, 'VIEW', ''
    FROM duckdb_views() WHERE NOT temporary AND NOT internal
)
WHERE (CAST($1 AS VARCHAR) IS NULL OR database_name = $1)
  AND (CAST($2 AS VARCHAR) IS NULL OR schema_name LIKE $2 ESCAPE '\')
  AND (CAST($3 AS VARCHAR) IS NULL OR table_name LIKE $3 ESCAPE '\')
ORDER BY database_name, schema_name, table_name";

/// The columns that hold no NULL (NOT NULL, or part of a primary key) of the
/// tables `TABLES_SQL` lists with the same parameters.
const NOT_NULL_SQL: &str = r"
SELECT database_name, schema_name, table_name, column_name FROM duckdb_columns()
WHERE NOT is_nullable AND NOT internal
  AND (CAST($1 AS VARCHAR) IS NULL OR database_name = $1)
  AND (CAST($2 AS VARCHAR) IS NULL OR schema_name LIKE $2 ESCAPE '\')
  AND (CAST($3 AS VARCHAR) IS NULL OR table_name LIKE $3 ESCAPE '\')";

impl Executor {
    /// The hosted databases, sorted by name.
    pub fn catalogs(&self) -> Vec<String> {
        let mut names = self.databases().to_vec();
        names.sort();
        names
    }

    /// `(database, schema)` pairs that match `filter` (its table pattern is ignored).
    pub async fn schemas(&self, filter: &CatalogFilter) -> Result<Vec<(String, String)>> {
        let params = [filter.catalog.clone(), filter.schema_pattern.clone()];
        let rows = self.string_rows(SCHEMAS_SQL, &params).await?;
        Ok(rows
            .into_iter()
            .filter(|row| self.hosts(&row[0]))
            .map(|mut row| {
                let schema = row.pop().unwrap_or_default();
                (row.pop().unwrap_or_default(), schema)
            })
            .collect())
    }

    /// Tables and views that match `filter`, with their Arrow schemas when
    /// `with_schemas` is set.
    pub async fn tables(&self, filter: &CatalogFilter, with_schemas: bool) -> Result<Vec<TableEntry>> {
        let params = [
            filter.catalog.clone(),
            filter.schema_pattern.clone(),
            filter.table_pattern.clone(),
        ];
        let default = self.databases()[0].clone();
        // Hosted databases, and the snapshots of them attached (`mydb@1a2b3c`).
        let mut hosted: Vec<String> = self.databases().to_vec();
        hosted.extend(self.snapshots.lock().iter().cloned());
        let conn = self.lease(&Statement::new(default, "")).await?;
        run_blocking(conn, move |conn| {
            let rows = string_rows(conn, TABLES_SQL, &params)?;
            let not_null: HashSet<Vec<String>> = if with_schemas {
                string_rows(conn, NOT_NULL_SQL, &params)?.into_iter().collect()
            } else {
                HashSet::new()
            };
            let mut entries = Vec::with_capacity(rows.len());
            for row in rows {
                let [catalog, schema, name, kind, estimated_rows] = <[String; 5]>::try_from(row).unwrap_or_default();
                if !hosted.contains(&catalog) {
                    continue;
                }
                let arrow_schema = if with_schemas {
                    let columns = table_schema(conn, &catalog, &schema, &name)?;
                    let key = |column: &str| vec![catalog.clone(), schema.clone(), name.clone(), column.to_string()];
                    Some(with_not_null(&columns, |column| not_null.contains(&key(column))))
                } else {
                    None
                };
                entries.push(TableEntry {
                    kind: if kind == "VIEW" {
                        TableKind::View
                    } else {
                        TableKind::Table
                    },
                    catalog,
                    schema,
                    name,
                    arrow_schema,
                    estimated_rows: estimated_rows.parse().ok(),
                });
            }
            Ok(entries)
        })
        .await
    }

    /// Every column of every primary and foreign key of the hosted databases.
    pub async fn keys(&self) -> Result<Vec<KeyColumn>> {
        let rows = self.string_rows(KEYS_SQL, &[]).await?;
        Ok(rows
            .into_iter()
            .filter(|row| self.hosts(&row[0]))
            .filter_map(|row| {
                let [catalog, schema, table, column, sequence, name, kind, ref_table, ref_column] =
                    <[String; 9]>::try_from(row).ok()?;
                Some(KeyColumn {
                    catalog,
                    schema,
                    table,
                    column,
                    sequence: sequence.parse().ok()?,
                    name,
                    references: (kind == "FOREIGN KEY").then_some((ref_table, ref_column)),
                })
            })
            .collect())
    }

    async fn string_rows(&self, sql: &'static str, params: &[Option<String>]) -> Result<Vec<Vec<String>>> {
        let conn = self.lease(&Statement::new(self.databases()[0].clone(), "")).await?;
        let params = params.to_vec();
        run_blocking(conn, move |conn| string_rows(conn, sql, &params)).await
    }
}

/// Runs `sql` with string parameters and reads every column as text.
fn string_rows(conn: &PooledConnection, sql: &str, params: &[Option<String>]) -> Result<Vec<Vec<String>>> {
    let statements = conn.conn().statements(sql)?;
    let prepared = statements.prepare(0)?;
    if !params.is_empty() {
        bind_strings(&prepared, params)?;
    }
    let mut result = prepared.execute()?;
    let mut rows = Vec::new();
    while let Some(batch) = result.next_batch()? {
        let columns: Vec<StringArray> = batch
            .columns()
            .iter()
            .map(|column| arrow::compute::cast(column, &DataType::Utf8).map(|c| c.as_string::<i32>().clone()))
            .collect::<std::result::Result<_, _>>()?;
        for row in 0..batch.num_rows() {
            rows.push(columns.iter().map(|column| column.value(row).to_string()).collect());
        }
    }
    Ok(rows)
}

fn bind_strings(prepared: &crate::engine::Prepared<'_>, params: &[Option<String>]) -> Result<()> {
    let fields: Vec<Field> = (0..params.len())
        .map(|index| Field::new(format!("${}", index + 1), DataType::Utf8, true))
        .collect();
    let columns: Vec<Arc<dyn Array>> = params
        .iter()
        .map(|value| Arc::new(StringArray::from(vec![value.clone()])) as Arc<dyn Array>)
        .collect();
    let bound = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
    prepared.bind_row(&bound, 0)
}

/// `schema` with the columns `not_null` names marked non-nullable: a query's
/// result schema says every column may be NULL.
fn with_not_null(schema: &SchemaRef, not_null: impl Fn(&str) -> bool) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| {
            let nullable = field.is_nullable() && !not_null(field.name());
            field.as_ref().clone().with_nullable(nullable)
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The Arrow schema of a table's rows, from preparing `SELECT *` on it. A view
/// that no longer binds (its base table was dropped) has an empty schema.
fn table_schema(conn: &PooledConnection, catalog: &str, schema: &str, table: &str) -> Result<SchemaRef> {
    let sql = format!(
        "SELECT * FROM {}.{}.{}",
        quote_identifier(catalog),
        quote_identifier(schema),
        quote_identifier(table)
    );
    let statements = conn.conn().statements(&sql)?;
    match statements.prepare(0) {
        Ok(prepared) => Ok(prepared.result_schema()?.unwrap_or_else(|| Arc::new(Schema::empty()))),
        Err(error) => {
            tracing::debug!(%error, catalog, schema, table, "table schema unavailable");
            Ok(Arc::new(Schema::empty()))
        }
    }
}
