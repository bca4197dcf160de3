//! Table statistics: row count and, per column, NULLs, distinct values and
//! bounds, measured by DuckDB in one scan of the table.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, UInt64Type};
use futures::TryStreamExt;
use openduck_api::{ColumnStatistics, TableName, TableStatistics};

use crate::error::{Error, Result};
use crate::executor::{Executor, Statement};
use crate::sql::{quote_identifier, quote_literal};

impl Executor {
    /// Statistics of a table or view: its rows, and per column the NULLs, an
    /// estimate of the distinct values and the smallest and largest value.
    /// Scans the table once.
    pub async fn table_statistics(&self, name: &TableName) -> Result<TableStatistics> {
        let columns = self.column_names(name).await?;
        if columns.is_empty() {
            return Err(Error::UnknownTable(format!(
                "{}.{}.{}",
                name.database, name.schema, name.table
            )));
        }
        let mut select = vec!["count(*)::UBIGINT".to_string()];
        for column in &columns {
            let column = quote_identifier(column);
            select.push(format!(
                "count({column})::UBIGINT, approx_count_distinct({column})::UBIGINT, \
                 min({column})::VARCHAR, max({column})::VARCHAR"
            ));
        }
        let sql = format!(
            "SELECT {} FROM {}.{}.{}",
            select.join(", "),
            quote_identifier(&name.database),
            quote_identifier(&name.schema),
            quote_identifier(&name.table)
        );
        let batches = self.rows_of(&name.database, sql).await?;
        let row = batches
            .iter()
            .find(|batch| batch.num_rows() > 0)
            .ok_or_else(|| Error::TaskFailed("a table's statistics came back without a row".into()))?;
        let rows = number(row.column(0))?;
        let columns = columns
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                let at = 1 + 4 * i;
                Ok(ColumnStatistics {
                    name,
                    null_count: rows - number(row.column(at))?,
                    distinct_estimate: number(row.column(at + 1))?,
                    min: text(row.column(at + 2))?,
                    max: text(row.column(at + 3))?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(TableStatistics { rows, columns })
    }

    /// The columns of a table or view, in order; none when it does not exist.
    async fn column_names(&self, name: &TableName) -> Result<Vec<String>> {
        let sql = format!(
            "SELECT column_name FROM duckdb_columns() \
             WHERE database_name = {} AND schema_name = {} AND table_name = {} ORDER BY column_index",
            quote_literal(&name.database),
            quote_literal(&name.schema),
            quote_literal(&name.table)
        );
        let mut names = Vec::new();
        for batch in self.rows_of(&name.database, sql).await? {
            let column = cast(batch.column(0), &DataType::Utf8)?;
            names.extend(column.as_string::<i32>().iter().flatten().map(str::to_string));
        }
        Ok(names)
    }

    async fn rows_of(&self, database: &str, sql: String) -> Result<Vec<RecordBatch>> {
        self.query(Statement::new(database, sql)).await?.try_collect().await
    }
}

/// The first value of a `UBIGINT` column.
fn number(column: &ArrayRef) -> Result<u64> {
    let column = cast(column, &DataType::UInt64)?;
    Ok(column.as_primitive::<UInt64Type>().value(0))
}

/// The first value of a `VARCHAR` column; `None` for NULL.
fn text(column: &ArrayRef) -> Result<Option<String>> {
    let column = cast(column, &DataType::Utf8)?;
    let column = column.as_string::<i32>();
    Ok(column.is_valid(0).then(|| column.value(0).to_string()))
}
