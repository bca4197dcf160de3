//! Bulk ingest: a stream of Arrow record batches into a table, inserted as it
//! arrives (never held whole) by DuckDB's parallel Arrow scan, in one transaction.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use arrow::array::{RecordBatch, RecordBatchReader};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::error::ArrowError;
use parking_lot::Mutex;
use tokio::sync::mpsc;

pub use openduck_api::{duckdb_type_name, IngestMode, IngestTarget};

use crate::error::{Error, Result};
use crate::pool::PooledConnection;
use crate::sql::quote_identifier;

/// `(catalog, schema)` where the table of `target` lives.
pub(crate) fn location(target: &IngestTarget) -> (&str, &str) {
    if target.temporary {
        ("temp", "main")
    } else {
        (target.database.as_str(), target.schema.as_deref().unwrap_or("main"))
    }
}

/// The statement that prepares the table of `target` for appending, if any.
pub(crate) fn prepare_sql(target: &IngestTarget, schema: &Schema) -> Result<Option<String>> {
    let (catalog, db_schema) = location(target);
    let name = if target.temporary {
        quote_identifier(&target.table)
    } else {
        format!(
            "{}.{}.{}",
            quote_identifier(catalog),
            quote_identifier(db_schema),
            quote_identifier(&target.table)
        )
    };
    let temp = if target.temporary { "TEMPORARY " } else { "" };
    let create = match target.mode {
        IngestMode::Append => return Ok(None),
        IngestMode::Create => format!("CREATE {temp}TABLE {name}"),
        IngestMode::Replace => format!("CREATE OR REPLACE {temp}TABLE {name}"),
        IngestMode::CreateOrAppend => format!("CREATE {temp}TABLE IF NOT EXISTS {name}"),
    };
    Ok(Some(format!("{create} ({})", column_definitions(schema)?)))
}

/// What the network side hands the insert. Only [`Feed::End`] ends an ingest
/// well: a feed that stops without it (its sender dropped because the client
/// reset the stream or the request was cancelled) is cut off, and nothing of it
/// may be committed.
#[derive(Debug)]
pub(crate) enum Feed {
    Batch(RecordBatch),
    Failed(String),
    /// The client sent nothing for this long.
    Idle(std::time::Duration),
    End,
}

/// Prepares the table and inserts every batch `batches` delivers, in one
/// transaction unless the session has one open. Blocking.
pub(crate) fn append_all(
    conn: &PooledConnection,
    target: &IngestTarget,
    schema: &SchemaRef,
    batches: mpsc::Receiver<Feed>,
) -> Result<u64> {
    let own_transaction = !conn.conn().in_transaction();
    if own_transaction {
        conn.conn().begin()?;
    }
    let append = || -> Result<u64> {
        if let Some(sql) = prepare_sql(target, schema)? {
            conn.conn().execute_batch(&sql)?;
        }
        let (catalog, db_schema) = location(target);
        let failure = Arc::default();
        let reader = FeedReader {
            schema: Arc::clone(schema),
            feed: batches,
            failure: Arc::clone(&failure),
            ended: false,
        };
        let inserted = conn
            .conn()
            .insert_batches(catalog, db_schema, &target.table, Box::new(reader));
        // The feed's own error, rather than DuckDB's retelling of it.
        inserted.map_err(|error| failure.lock().take().unwrap_or(error))
    };
    let appended = append();
    if !own_transaction {
        return appended;
    }
    match appended {
        // A commit that fails is over, rolled back.
        Ok(rows) => conn.conn().commit().map(|()| rows),
        Err(error) => {
            if conn.conn().rollback().is_err() {
                // Closing the connection ends whatever transaction it still has.
                conn.discard();
            }
            Err(error)
        }
    }
}

/// The batches the network side feeds, as a reader that DuckDB's threads pull
/// from (one at a time). Each batch is checked against the ingest's schema
/// before DuckDB reads its buffers.
struct FeedReader {
    schema: SchemaRef,
    feed: mpsc::Receiver<Feed>,
    /// Why the feed stopped short, once it did.
    failure: Arc<Mutex<Option<Error>>>,
    ended: bool,
}

impl Iterator for FeedReader {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    /// Called by DuckDB, from C++: nothing may unwind out of it.
    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        let received = std::panic::catch_unwind(AssertUnwindSafe(|| self.receive()));
        let failure = match received {
            Ok(Ok(batch)) => return batch.map(Ok),
            Ok(Err(failure)) => failure,
            Err(_) => Error::TaskFailed("reading the ingest stream panicked".into()),
        };
        self.ended = true;
        // Handed to DuckDB as a C string.
        let message = failure.to_string().replace('\0', " ");
        *self.failure.lock() = Some(failure);
        Some(Err(ArrowError::ExternalError(message.into())))
    }
}

impl FeedReader {
    /// The next batch (`None` at the feed's end), or why the feed stopped short.
    fn receive(&mut self) -> Result<Option<RecordBatch>> {
        // Not in an async context: on the blocking thread or one of DuckDB's.
        match self.feed.blocking_recv() {
            Some(Feed::Batch(batch)) => {
                check_batch(&self.schema, &batch)?;
                Ok(Some(batch))
            }
            Some(Feed::End) => {
                self.ended = true;
                Ok(None)
            }
            Some(Feed::Failed(message)) => Err(Error::Refused(format!("the ingest stream failed: {message}"))),
            Some(Feed::Idle(limit)) => Err(Error::IngestIdle(limit)),
            None => Err(Error::Refused("the ingest stream was cut off before its end".into())),
        }
    }
}

impl RecordBatchReader for FeedReader {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}

/// `"name" TYPE, ...` for a table that holds batches of `schema`.
pub(crate) fn column_definitions(schema: &Schema) -> Result<String> {
    let columns: Vec<String> = schema
        .fields()
        .iter()
        .map(|field| {
            Ok(format!(
                "{} {}",
                quote_identifier(field.name()),
                duckdb_type(field.data_type())?
            ))
        })
        .collect::<Result<_>>()?;
    Ok(columns.join(", "))
}

/// The DuckDB type that holds values of an Arrow type.
pub(crate) fn duckdb_type(data_type: &DataType) -> Result<String> {
    duckdb_type_name(data_type).ok_or_else(|| unsupported(data_type))
}

fn unsupported(data_type: &DataType) -> Error {
    Error::Refused(format!(
        "cannot ingest a column of Arrow type {data_type}: DuckDB has no matching type"
    ))
}

/// Checks that a batch has the schema the ingest started with.
pub(crate) fn check_batch(expected: &SchemaRef, batch: &RecordBatch) -> Result<()> {
    let fields = batch.schema();
    let same = fields.fields().len() == expected.fields().len()
        && fields
            .fields()
            .iter()
            .zip(expected.fields())
            .all(|(got, want)| got.data_type() == want.data_type());
    if same {
        Ok(())
    } else {
        Err(Error::Refused(
            "every batch of an ingest must have the schema of the first".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{Field, Fields, TimeUnit};

    use super::*;

    fn target(mode: IngestMode, temporary: bool) -> IngestTarget {
        IngestTarget {
            database: "db".into(),
            schema: Some("s".into()),
            table: "t\"x".into(),
            mode,
            temporary,
            session_id: None,
            in_transaction: false,
            from_query: false,
        }
    }

    #[test]
    fn maps_arrow_types_to_duckdb() {
        let point = DataType::Struct(Fields::from(vec![
            Field::new("x", DataType::Float64, false),
            Field::new("label", DataType::Utf8View, true),
        ]));
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("amount", DataType::Decimal128(18, 3), true),
            Field::new_list("tags", Field::new("item", DataType::Utf8, true), true),
            Field::new("p", point, true),
        ]);
        assert_eq!(
            column_definitions(&schema).unwrap(),
            r#""id" BIGINT, "at" TIMESTAMPTZ, "amount" DECIMAL(18, 3), "tags" VARCHAR[], "p" STRUCT("x" DOUBLE, "label" VARCHAR)"#
        );
        assert!(duckdb_type(&DataType::Decimal256(60, 2)).is_err());
    }

    #[test]
    fn prepares_the_table_by_mode() {
        let schema = Schema::new(vec![Field::new("a", DataType::Int32, true)]);
        assert_eq!(prepare_sql(&target(IngestMode::Append, false), &schema).unwrap(), None);
        assert_eq!(
            prepare_sql(&target(IngestMode::Create, false), &schema)
                .unwrap()
                .unwrap(),
            r#"CREATE TABLE "db"."s"."t""x" ("a" INTEGER)"#
        );
        assert_eq!(
            prepare_sql(&target(IngestMode::Replace, true), &schema)
                .unwrap()
                .unwrap(),
            r#"CREATE OR REPLACE TEMPORARY TABLE "t""x" ("a" INTEGER)"#
        );
        assert_eq!(
            prepare_sql(&target(IngestMode::CreateOrAppend, false), &schema)
                .unwrap()
                .unwrap(),
            r#"CREATE TABLE IF NOT EXISTS "db"."s"."t""x" ("a" INTEGER)"#
        );
        assert_eq!(location(&target(IngestMode::Create, true)), ("temp", "main"));
    }

    #[test]
    fn refuses_batches_of_another_schema() {
        let expected: SchemaRef = Arc::new(Schema::new(vec![Field::new("a", DataType::Int32, true)]));
        let other =
            RecordBatch::try_from_iter([("a", Arc::new(arrow::array::Int64Array::from(vec![1])) as _)]).unwrap();
        assert!(check_batch(&expected, &other).is_err());
    }
}
