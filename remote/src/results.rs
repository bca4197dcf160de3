//! Results as they leave a server, and rows as they arrive at one.
//!
//! Result types every client can read: Arrow's view types (Utf8View,
//! BinaryView, ListView) are cast to their classic forms at the boundary,
//! since older drivers (the Flight SQL JDBC driver before v19,
//! flightsql-dbapi) cannot decode them. The Flight SQL front end and an
//! executor serving a client directly encode results the same way.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::{DictionaryHandling, FlightDataEncoderBuilder};
use arrow_flight::error::FlightError;
use arrow_flight::FlightData;
use futures::stream::{self, BoxStream};
use futures::{future, Stream, StreamExt, TryStreamExt};
use tonic::Status;

/// The type a client receives for `data_type`.
fn client_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::ListView(item) | DataType::List(item) => DataType::List(client_field(item)),
        DataType::LargeListView(item) | DataType::LargeList(item) => DataType::LargeList(client_field(item)),
        DataType::FixedSizeList(item, size) => DataType::FixedSizeList(client_field(item), *size),
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(client_field).collect::<Fields>()),
        DataType::Map(entries, sorted) => DataType::Map(client_field(entries), *sorted),
        DataType::Dictionary(key, value) => DataType::Dictionary(key.clone(), Box::new(client_type(value))),
        other => other.clone(),
    }
}

fn client_field(field: &FieldRef) -> FieldRef {
    Arc::new(Field::clone(field).with_data_type(client_type(field.data_type())))
}

/// `schema` as clients receive it; `None` when it needs no change.
fn client_schema(schema: &Schema) -> Option<SchemaRef> {
    let fields: Fields = schema.fields().iter().map(client_field).collect();
    (fields != *schema.fields()).then(|| Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())))
}

/// `schema` as clients receive it, changed or not. Every schema that leaves
/// the server (FlightInfo, prepared statements, GetSchema, streams) goes
/// through here, so announced and streamed schemas always agree.
pub fn for_client(schema: &SchemaRef) -> SchemaRef {
    client_schema(schema).unwrap_or_else(|| SchemaRef::clone(schema))
}

/// Streams rows of `schema` to a client as Flight data, in the types
/// [`for_client`] announces; an error in the middle of the stream becomes the
/// same status as one before it. Dictionaries (DuckDB's ENUM) travel as
/// dictionaries, as DuckDB produces them.
/// The rows and bytes sent count in `openduck_rows_streamed` and
/// `openduck_bytes_streamed`, by who receives them.
pub fn encode_results<S, E>(
    schema: SchemaRef,
    batches: S,
    receiver: Receiver,
) -> BoxStream<'static, Result<FlightData, Status>>
where
    S: Stream<Item = Result<RecordBatch, E>> + Send + 'static,
    E: Into<Status> + 'static,
{
    let target = for_client(&schema);
    let cast_target = SchemaRef::clone(&target);
    let batches = batches.map(move |batch| {
        let batch = batch.map_err(|error| FlightError::Tonic(Box::new(error.into())))?;
        crate::metrics::rows_streamed(receiver, batch.num_rows());
        Ok(cast_batch(&batch, &cast_target)?)
    });
    FlightDataEncoderBuilder::new()
        .with_schema(target)
        .with_dictionary_handling(DictionaryHandling::Resend)
        .build(batches)
        .map_ok(move |data| {
            crate::metrics::bytes_streamed(receiver, data.data_header.len() + data.data_body.len());
            data
        })
        .map_err(Status::from)
        .boxed()
}

/// Who receives a stream of results, as metrics tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receiver {
    /// A Flight SQL client of the front end.
    Client,
    /// A coordinator, from an executor.
    Coordinator,
}

/// The schema and rows of an incoming Flight data stream (a DoPut).
/// Messages without an IPC header (a first message that carries only the
/// descriptor, as some clients send) hold no data and are skipped. `None`
/// when the stream ends without a schema.
pub async fn incoming_batches<S>(
    data: S,
) -> Result<Option<(SchemaRef, BoxStream<'static, Result<RecordBatch, FlightError>>)>, FlightError>
where
    S: Stream<Item = Result<FlightData, Status>> + Send + 'static,
{
    let data = data
        .try_filter(|data| future::ready(!data.data_header.is_empty()))
        .map_err(|status| FlightError::Tonic(Box::new(status)));
    let mut batches = FlightRecordBatchStream::new_from_flight_data(data);
    let first = batches.next().await.transpose()?;
    let Some(schema) = batches.schema().cloned() else {
        return Ok(None);
    };
    Ok(Some((schema, stream::iter(first.map(Ok)).chain(batches).boxed())))
}

fn cast_batch(batch: &RecordBatch, target: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    if batch.schema_ref().fields() == target.fields() {
        return Ok(batch.clone());
    }
    let columns = batch
        .columns()
        .iter()
        .zip(target.fields())
        .map(|(column, field)| cast(column, field.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(SchemaRef::clone(target), columns)
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, StringViewArray};

    use super::*;

    #[test]
    fn view_types_become_classic_types() {
        let schema = Schema::new(vec![
            Field::new("s", DataType::Utf8View, true),
            Field::new("b", DataType::BinaryView, true),
            Field::new_list("l", Field::new("item", DataType::Utf8View, true), true),
            Field::new("i", DataType::Int32, false),
        ]);
        let client = client_schema(&schema).expect("changed");
        let types: Vec<DataType> = client.fields().iter().map(|f| f.data_type().clone()).collect();
        assert_eq!(types[0], DataType::Utf8);
        assert_eq!(types[1], DataType::Binary);
        assert_eq!(
            types[2],
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
        );
        assert_eq!(types[3], DataType::Int32);

        let plain = Schema::new(vec![Field::new("i", DataType::Int32, false)]);
        assert!(client_schema(&plain).is_none());
    }

    #[test]
    fn casts_batches_to_the_client_schema() {
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8View, true)]));
        let batch = RecordBatch::try_new(
            SchemaRef::clone(&schema),
            vec![Arc::new(StringViewArray::from(vec![
                Some("a long string beyond twelve bytes"),
                None,
            ]))],
        )
        .unwrap();
        let target = client_schema(&schema).unwrap();
        let cast = cast_batch(&batch, &target).unwrap();
        assert_eq!(cast.column(0).data_type(), &DataType::Utf8);
        assert_eq!(cast.column(0).null_count(), 1);
    }
}
