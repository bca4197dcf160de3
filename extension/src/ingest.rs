//! Rows written from the user's DuckDB into a table of the service, through Flight SQL
//! bulk ingest (one DoPut streaming Arrow batches), never row by row.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::{CompressionContext, DictionaryTracker, IpcDataGenerator, IpcWriteOptions};
use arrow_flight::sql::{
    CommandStatementIngest, ProstMessageExt, TableDefinitionOptions, TableExistsOption, TableNotExistOption,
};
use arrow_flight::{FlightData, FlightDescriptor};
use prost::Message;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::CancellationHandle;

use crate::client::{block_on, runtime, update_count};
use crate::{Client, Error};

/// Encoded frames in flight between the writer and the network: backpressure beyond this.
const QUEUED_FRAMES: usize = 8;

/// The table an ingest appends to.
#[derive(Debug, Clone)]
pub struct IngestTarget {
    pub catalog: String,
    pub schema: String,
    pub table: String,
    /// A temporary table of the client's session (its transaction's) on the service;
    /// `catalog` then only says which database's executor holds the session.
    pub temporary: bool,
}

/// One ingest in progress: batches pushed here stream to the service as they come.
/// Dropped before [`Ingest::finish`], the upload is cancelled and the service keeps
/// nothing of it.
#[derive(Debug)]
pub struct Ingest {
    schema: SchemaRef,
    encoder: IpcDataGenerator,
    dictionaries: DictionaryTracker,
    compression: CompressionContext,
    options: IpcWriteOptions,
    frames: Option<mpsc::Sender<FlightData>>,
    upload: Option<JoinHandle<Result<i64, Error>>>,
    /// Resets the upload's HTTP/2 stream: the service then rolls the ingest back, where
    /// a stream that merely ended would be committed.
    cancel: Option<CancellationHandle>,
}

impl Client {
    /// Starts appending rows of `schema` to `target`, an existing table.
    pub fn ingest(&self, target: IngestTarget, schema: SchemaRef) -> Result<Ingest, Error> {
        let command = CommandStatementIngest {
            table_definition_options: Some(TableDefinitionOptions {
                if_not_exist: TableNotExistOption::Fail as i32,
                if_exists: TableExistsOption::Append as i32,
            }),
            table: target.table,
            schema: Some(target.schema),
            catalog: Some(target.catalog),
            temporary: target.temporary,
            transaction_id: self.transaction.clone(),
            options: Default::default(),
        };
        let options = IpcWriteOptions::default();
        let encoder = IpcDataGenerator::default();
        // The schema message assigns the dictionary ids later batches refer to.
        let mut dictionaries = DictionaryTracker::new(false);
        let mut first: FlightData = encoder
            .schema_to_bytes_with_dictionary_tracker(&schema, &mut dictionaries, &options)
            .into();
        first.flight_descriptor = Some(FlightDescriptor::new_cmd(command.as_any().encode_to_vec()));

        let (sender, receiver) = mpsc::channel::<FlightData>(QUEUED_FRAMES);
        sender
            .try_send(first)
            .map_err(|_| Error::Panic("a new ingest queue is full".into()))?;
        let mut flight = self.flight.clone();
        let mut request = self.request(frames_of(receiver));
        let cancel = request.cancellation_handle();
        let upload =
            runtime().spawn(async move { Ok(update_count(flight.do_put(request).await?.into_inner()).await?) });
        Ok(Ingest {
            schema,
            encoder,
            dictionaries,
            compression: CompressionContext::default(),
            options,
            frames: Some(sender),
            upload: Some(upload),
            cancel: Some(cancel),
        })
    }
}

impl Ingest {
    /// The columns every pushed batch has.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Encodes and queues one batch; waits while the network is behind. Fails with the
    /// service's error once the upload has failed.
    pub fn push(&mut self, batch: RecordBatch) -> Result<(), Error> {
        let (dictionaries, batch) =
            self.encoder
                .encode(&batch, &mut self.dictionaries, &self.options, &mut self.compression)?;
        for frame in dictionaries.into_iter().chain(std::iter::once(batch)) {
            let Some(sender) = self.frames.as_ref() else {
                return Err(Error::Status(tonic::Status::aborted("the ingest already ended")));
            };
            if sender.blocking_send(frame.into()).is_err() {
                // The upload ended early: its error says why.
                self.frames = None;
                return Err(self
                    .wait()
                    .err()
                    .unwrap_or_else(|| Error::Status(tonic::Status::aborted("the service ended the ingest early"))));
            }
        }
        Ok(())
    }

    /// Ends the upload and returns the rows the service wrote.
    pub fn finish(mut self) -> Result<i64, Error> {
        self.cancel = None;
        self.frames = None;
        self.wait()
    }

    fn wait(&mut self) -> Result<i64, Error> {
        match self.upload.take() {
            Some(upload) => block_on(upload).map_err(|error| Error::Panic(error.to_string()))?,
            None => Err(Error::Status(tonic::Status::aborted("the ingest already ended"))),
        }
    }
}

impl Drop for Ingest {
    /// Unfinished, the upload is reset before its queue closes, so the service never
    /// sees it end normally and keeps none of its rows.
    fn drop(&mut self) {
        if let Some(cancel) = self.cancel.take() {
            cancel.cancel();
        }
        self.frames = None;
    }
}

fn frames_of(mut receiver: mpsc::Receiver<FlightData>) -> impl futures::Stream<Item = FlightData> {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}
