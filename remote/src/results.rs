//! Results as they leave a server, and rows as they arrive at one.
//!
//! Arrow IPC that arrives is checked before arrow decodes it: arrow's reader
//! trusts a batch header's buffer offsets and lengths, and panics slicing a
//! body shorter than they claim.
//!
//! Result types every client can read: Arrow's view types (Utf8View,
//! BinaryView, ListView) are cast to their classic forms at the boundary,
//! since older drivers (the Flight SQL JDBC driver before v19,
//! flightsql-dbapi) cannot decode them. The Flight SQL front end and an
//! executor serving a client directly encode results the same way.

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow::array::RecordBatch;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::MessageHeader;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::{DictionaryHandling, FlightDataEncoderBuilder};
use arrow_flight::error::FlightError;
use arrow_flight::FlightData;
use futures::stream::{self, BoxStream};
use futures::{future, FutureExt, Stream, StreamExt, TryStreamExt};
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
/// descriptor, as some clients send) hold no data and are skipped, and
/// every other is [`checked`]. `None` when the stream ends without a schema.
pub async fn incoming_batches<S>(
    data: S,
) -> Result<Option<(SchemaRef, BoxStream<'static, Result<RecordBatch, FlightError>>)>, FlightError>
where
    S: Stream<Item = Result<FlightData, Status>> + Send + 'static,
{
    let data = data
        .try_filter(|data| future::ready(!data.data_header.is_empty()))
        .map_err(|status| FlightError::Tonic(Box::new(status)))
        .and_then(|data| future::ready(checked(data)));
    let mut batches = FlightRecordBatchStream::new_from_flight_data(data);
    let first = AssertUnwindSafe(batches.next())
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| Some(Err(damaged(&panic))))
        .transpose()?;
    let Some(schema) = batches.schema().cloned() else {
        return Ok(None);
    };
    let rows = stream::iter(first.map(Ok)).chain(Contained {
        inner: batches,
        done: false,
    });
    Ok(Some((schema, rows.boxed())))
}

/// Rows that arrow's IPC reader decodes, which trusts more of a message
/// than [`checked`] can verify without its schema: a panic while decoding
/// one batch ends the stream with that batch's error, not the server.
pub(crate) struct Contained<S> {
    inner: S,
    done: bool,
}

impl<S> Contained<S> {
    pub(crate) fn new(inner: S) -> Self {
        Contained { inner, done: false }
    }
}

impl<S: Stream<Item = Result<RecordBatch, FlightError>> + Unpin> Stream for Contained<S> {
    type Item = Result<RecordBatch, FlightError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.poll_next_unpin(cx))) {
            Ok(polled) => polled,
            Err(panic) => {
                self.done = true;
                Poll::Ready(Some(Err(damaged(&panic))))
            }
        }
    }
}

/// The first batch of `batches` (which also reads the schema before it), a
/// panic while decoding it being its error.
pub(crate) async fn first_batch(batches: &mut FlightRecordBatchStream) -> Result<Option<RecordBatch>, FlightError> {
    AssertUnwindSafe(batches.next())
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| Some(Err(damaged(&panic))))
        .transpose()
}

/// The error of Arrow IPC data whose decoding panicked.
fn damaged(panic: &Box<dyn std::any::Any + Send>) -> FlightError {
    let reason = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("it does not decode");
    FlightError::DecodeError(format!("damaged Arrow IPC data: {reason}"))
}

/// `data` when its IPC header parses and every buffer a (dictionary) batch
/// claims lies within its body; a clear error otherwise, before arrow's
/// reader slices the body where the header says.
pub(crate) fn checked(data: FlightData) -> Result<FlightData, FlightError> {
    let message = arrow::ipc::root_as_message(&data.data_header)
        .map_err(|error| FlightError::DecodeError(format!("invalid Arrow IPC message header: {error}")))?;
    let batch = match message.header_type() {
        MessageHeader::RecordBatch => message.header_as_record_batch(),
        MessageHeader::DictionaryBatch => message
            .header_as_dictionary_batch()
            .and_then(|dictionary| dictionary.data()),
        _ => None,
    };
    let body = data.data_body.len() as u64;
    let damaged = |what: String| Err(FlightError::DecodeError(format!("damaged Arrow IPC batch: {what}")));
    if let Some(batch) = batch {
        if batch.length() < 0 {
            return damaged(format!("{} rows", batch.length()));
        }
        // Which buffer is whose validity depends on the schema (a Null
        // column counts every value null and has no buffer; a compressed
        // body is smaller than its bitmaps): what remains for arrow's reader
        // to trust is caught by `Contained`.
        for node in batch.nodes().into_iter().flatten() {
            let (length, nulls) = (node.length(), node.null_count());
            if length < 0 || nulls < 0 || nulls > length {
                return damaged(format!("a column of {length} values, {nulls} of them null"));
            }
        }
    }
    for buffer in batch.and_then(|batch| batch.buffers()).into_iter().flatten() {
        let (offset, length) = (buffer.offset(), buffer.length());
        let end = u64::try_from(offset)
            .ok()
            .zip(u64::try_from(length).ok())
            .and_then(|(offset, length)| offset.checked_add(length));
        if end.is_none_or(|end| end > body) {
            return Err(FlightError::DecodeError(format!(
                "an Arrow IPC buffer at offset {offset} of {length} bytes lies beyond the message body \
                 ({body} bytes): a truncated or damaged batch"
            )));
        }
    }
    Ok(data)
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
    use arrow::array::{Array, Int64Array, StringViewArray};

    use super::*;

    /// A panic while decoding is the stream's last error, not the server's end.
    #[tokio::test]
    async fn a_panic_while_decoding_ends_the_stream_with_an_error() {
        let mut polls = 0;
        let panicking = stream::poll_fn(move |_| -> Poll<Option<Result<RecordBatch, FlightError>>> {
            polls += 1;
            assert!(polls < 2, "polled again after it panicked");
            panic!("a buffer that is not there")
        });
        let contained = Contained::new(panicking.boxed());
        let items: Vec<_> = contained.collect().await;
        let [Err(error)] = &items[..] else {
            panic!("one error: {items:?}")
        };
        assert!(error.to_string().contains("a buffer that is not there"), "{error}");
    }

    /// A batch's body cut short is refused before arrow's reader slices it
    /// (which panics); the whole message passes.
    #[tokio::test]
    async fn a_batch_whose_body_is_shorter_than_its_header_says_is_refused() {
        let batch = RecordBatch::try_from_iter([("i", Arc::new(Int64Array::from_iter_values(0..100)) as _)]).unwrap();
        let messages: Vec<FlightData> = FlightDataEncoderBuilder::new()
            .build(stream::iter([Ok(batch)]))
            .try_collect()
            .await
            .unwrap();
        let [schema, rows] = &messages[..] else {
            panic!("a schema and one batch: {messages:?}")
        };
        assert!(checked(schema.clone()).is_ok());
        assert!(checked(rows.clone()).is_ok());
        let mut cut = rows.clone();
        cut.data_body = cut.data_body.slice(..cut.data_body.len() / 2);
        let refused = checked(cut).unwrap_err().to_string();
        assert!(refused.contains("lies beyond the message body"), "{refused}");
        let mut garbage = rows.clone();
        garbage.data_header = vec![0xff; 16].into();
        assert!(checked(garbage).is_err());
    }

    /// A Null column counts every value null and has no buffer at all: it
    /// passes, alone and beside other columns, and so do sparse nulls.
    #[tokio::test]
    async fn null_columns_pass() {
        let nulls = Arc::new(arrow::array::NullArray::new(1000)) as _;
        let sparse = Arc::new(Int64Array::from_iter(
            (0..100_000).map(|i| (i % 1000 == 0).then_some(i)),
        )) as _;
        let batches = [
            RecordBatch::try_from_iter([("n", Arc::clone(&nulls))]).unwrap(),
            RecordBatch::try_from_iter([
                ("n", nulls),
                ("i", Arc::new(Int64Array::from_iter_values(0..1000)) as _),
            ])
            .unwrap(),
            RecordBatch::try_from_iter([("sparse", sparse)]).unwrap(),
        ];
        for (index, batch) in batches.into_iter().enumerate() {
            let messages: Vec<FlightData> = FlightDataEncoderBuilder::new()
                .build(stream::iter([Ok(batch.clone())]))
                .try_collect()
                .await
                .unwrap();
            let incoming = stream::iter(messages.into_iter().map(Ok));
            let (_, rows) = incoming_batches(incoming).await.unwrap().expect("a schema");
            let decoded: Vec<RecordBatch> = rows.try_collect().await.unwrap();
            assert_eq!(decoded, vec![batch], "batch {index}");
        }
    }

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
