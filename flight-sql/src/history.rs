//! What the front end writes into the coordinator's query history: each
//! statement as it arrives, and, as its result streams out, the rows and
//! bytes sent and how the stream ended.

use std::pin::Pin;
use std::task::{Context, Poll};

use arrow_flight::FlightData;
use futures::Stream;
use openduck_coordinator::Recording;
use tonic::Status;

/// Records the outcome of a call that answers at once.
pub(crate) fn finish<T, E: std::fmt::Display>(
    recording: &Recording,
    result: &Result<T, E>,
    rows: impl FnOnce(&T) -> Option<u64>,
) {
    match result {
        Ok(value) => recording.succeeded(rows(value), None),
        Err(error) => recording.failed(error, None, None),
    }
}

/// A result stream of Flight data whose rows and bytes are counted into a
/// [`Recording`]: it succeeds at the stream's end, fails with the stream's
/// first error, and is cancelled when the client drops the stream first.
pub(crate) struct Tallied<S> {
    inner: S,
    recording: Option<Recording>,
    rows: u64,
    bytes: u64,
}

impl<S> Tallied<S> {
    pub(crate) fn new(inner: S, recording: Recording) -> Self {
        recording.fetching();
        Tallied {
            inner,
            recording: Some(recording),
            rows: 0,
            bytes: 0,
        }
    }
}

impl<S> Stream for Tallied<S>
where
    S: Stream<Item = Result<FlightData, Status>> + Unpin,
{
    type Item = Result<FlightData, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let next = Pin::new(&mut this.inner).poll_next(cx);
        match &next {
            Poll::Ready(Some(Ok(data))) => {
                this.rows += rows_in(&data.data_header);
                this.bytes += (data.data_header.len() + data.data_body.len() + data.app_metadata.len()) as u64;
            }
            Poll::Ready(Some(Err(status))) => {
                if let Some(recording) = this.recording.take() {
                    if status.code() == tonic::Code::Cancelled {
                        recording.cancelled(Some(this.rows), Some(this.bytes));
                    } else {
                        recording.failed(&status.message(), Some(this.rows), Some(this.bytes));
                    }
                }
            }
            Poll::Ready(None) => {
                if let Some(recording) = this.recording.take() {
                    recording.succeeded(Some(this.rows), Some(this.bytes));
                }
            }
            Poll::Pending => {}
        }
        next
    }
}

impl<S> Drop for Tallied<S> {
    fn drop(&mut self) {
        if let Some(recording) = self.recording.take() {
            recording.cancelled(Some(self.rows), Some(self.bytes));
        }
    }
}

/// The rows of a record batch message (0 for schemas and dictionaries, and
/// for headers that do not parse: the client's decoder will say so).
fn rows_in(header: &[u8]) -> u64 {
    arrow::ipc::root_as_message(header)
        .ok()
        .and_then(|message| message.header_as_record_batch())
        .map_or(0, |batch| u64::try_from(batch.length()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch};
    use arrow_flight::encode::FlightDataEncoderBuilder;
    use futures::{StreamExt, TryStreamExt};
    use openduck_coordinator::{HistoryStatus, Principal, QueryHistory};

    use super::*;

    #[tokio::test]
    async fn counts_the_rows_in_record_batch_messages_only() {
        let batch = RecordBatch::try_from_iter([("n", Arc::new(Int64Array::from_iter_values(0..1000)) as _)]).unwrap();
        let data: Vec<FlightData> = FlightDataEncoderBuilder::new()
            .build(futures::stream::iter([Ok(batch.clone()), Ok(batch.slice(0, 10))]))
            .try_collect()
            .await
            .unwrap();
        assert_eq!(data.len(), 3, "a schema and two batches");
        let rows: Vec<u64> = data.iter().map(|data| rows_in(&data.data_header)).collect();
        assert_eq!(rows, [0, 1000, 10]);
        assert_eq!(rows_in(b"not a flatbuffer"), 0);
        assert_eq!(rows_in(&[]), 0);
        // Counting streams them through unchanged.
        let through: Vec<FlightData> = Tallied::new(
            futures::stream::iter(data.clone().into_iter().map(Ok)),
            Recording::none(),
        )
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
        assert_eq!(through.len(), data.len());
    }

    #[tokio::test]
    async fn a_stream_read_to_its_end_succeeds_and_one_dropped_early_is_cancelled() {
        let history = QueryHistory::new(10, std::time::Duration::from_secs(60));
        let batch = RecordBatch::try_from_iter([("n", Arc::new(Int64Array::from_iter_values(0..100)) as _)]).unwrap();
        let data: Vec<FlightData> = FlightDataEncoderBuilder::new()
            .build(futures::stream::iter([Ok(batch.clone()), Ok(batch)]))
            .try_collect()
            .await
            .unwrap();
        let bytes: u64 = data
            .iter()
            .map(|data| (data.data_header.len() + data.data_body.len()) as u64)
            .sum();

        let whole = history.record(&Principal::Token, "db", "query", "SELECT whole");
        let stream = Tallied::new(futures::stream::iter(data.clone().into_iter().map(Ok)), whole.clone());
        assert_eq!(stream.count().await, 3);
        assert_eq!(whole.status(), Some((HistoryStatus::Succeeded, Some(200), Some(bytes))));

        let part = history.record(&Principal::Token, "db", "query", "SELECT part");
        let mut stream = Tallied::new(futures::stream::iter(data.clone().into_iter().map(Ok)), part.clone());
        stream.next().await.unwrap().unwrap();
        stream.next().await.unwrap().unwrap();
        drop(stream);
        assert_eq!(part.status().unwrap().0, HistoryStatus::Cancelled);
        assert_eq!(part.status().unwrap().1, Some(100));

        let failing = history.record(&Principal::Token, "db", "query", "SELECT failing");
        let items = vec![Ok(data[0].clone()), Err(Status::internal("disk on fire"))];
        let stream = Tallied::new(futures::stream::iter(items), failing.clone());
        assert_eq!(stream.count().await, 2);
        assert_eq!(failing.status().unwrap().0, HistoryStatus::Failed);
    }
}
