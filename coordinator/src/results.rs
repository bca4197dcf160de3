//! The rows of a statement as the coordinator hands them on: from one
//! executor, from a plan across executors, or held from planning.

use std::pin::Pin;
use std::task::{Context, Poll};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};

use crate::error::{Error, Result};

/// The rows of a redeemed ticket.
pub struct ResultStream {
    schema: SchemaRef,
    batches: BoxStream<'static, Result<RecordBatch>>,
}

impl std::fmt::Debug for ResultStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultStream")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl ResultStream {
    pub(crate) fn new(schema: SchemaRef, batches: BoxStream<'static, Result<RecordBatch>>) -> Self {
        ResultStream { schema, batches }
    }

    /// The schema of every batch.
    pub fn schema(&self) -> SchemaRef {
        SchemaRef::clone(&self.schema)
    }

    /// The same rows, keeping `held` (a session they are read in) until
    /// they are all read or dropped.
    pub(crate) fn holding<T: Send + 'static>(self, held: T) -> Self {
        let batches = self
            .batches
            .map(move |batch| {
                let _held = &held;
                batch
            })
            .boxed();
        ResultStream {
            schema: self.schema,
            batches,
        }
    }
}

impl Stream for ResultStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.batches.poll_next_unpin(cx)
    }
}

impl From<openduck_api::Rows> for ResultStream {
    fn from(rows: openduck_api::Rows) -> Self {
        ResultStream {
            schema: rows.schema,
            batches: rows.batches.map_err(Error::from).boxed(),
        }
    }
}
