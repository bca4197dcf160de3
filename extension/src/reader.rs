//! The rows of a query: its FlightInfo's endpoints redeemed (at the executors the
//! service names, when the client may go there) and their batches read, one endpoint
//! after the other, or all at once for a result in parts.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{RecordBatch, RecordBatchReader};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::{FlightData, FlightInfo, Ticket};
use futures::{StreamExt, TryStreamExt};
use tokio::task::JoinHandle;

use crate::client::{interruptible, record_batches, runtime, Client, Interrupt};
use crate::parts::Parts;
use crate::Error;

/// The rows of one query, endpoint after endpoint (all at once when several), as an Arrow record batch reader (which
/// the C interface exports as an `ArrowArrayStream`).
#[derive(Debug)]
pub struct QueryReader {
    client: Client,
    /// Tickets still to redeem, each with its location (empty: none).
    tickets: VecDeque<(Ticket, String)>,
    current: Option<FlightRecordBatchStream>,
    schema: SchemaRef,
    first: Option<RecordBatch>,
    /// What the service said about the query: to cancel it by.
    info: FlightInfo,
    interrupt: Interrupt,
    /// The first ticket's DoGet, sent as soon as the query was planned (see
    /// [`QueryReader::redeem_first_early`]), with the ticket and its location.
    early: Option<(Ticket, String, EarlyDoGet)>,
    /// The parts of a result in several (a FlightInfo with several endpoints), read in
    /// parallel in place of `tickets`.
    parts: Option<Parts>,
    /// For the link: when its first DoGet was sent, and the bytes of the messages that
    /// arrived (as sent, not as decoded).
    sent: Option<Instant>,
    received: Arc<AtomicU64>,
}

/// A DoGet sent in the background: the stream of its rows once it is answered.
type EarlyDoGet = JoinHandle<Result<tonic::Streaming<FlightData>, Error>>;

impl Drop for QueryReader {
    fn drop(&mut self) {
        if let Some((_, _, call)) = self.early.take() {
            // Its stream, if it came, goes with the task: the service stops the query.
            call.abort();
        }
    }
}

impl QueryReader {
    fn next_batch(&mut self) -> Result<Option<RecordBatch>, Error> {
        let next = self.pull();
        if let Ok(None) = next {
            if let Some(sent) = self.sent.take() {
                self.client
                    .link
                    .received(self.received.load(Ordering::Relaxed), sent.elapsed());
            }
        }
        if let Err(Error::Interrupted) = next {
            self.current = None;
            self.parts = None;
            self.tickets.clear();
            if let Some((_, _, call)) = self.early.take() {
                call.abort();
            }
            self.client.cancel(self.info.clone());
        }
        next
    }

    /// Sends the first ticket's DoGet now, in the background, rather than when the first
    /// batch is wanted (see [`Client::query_started`]). One refused for its token, or at
    /// a location gone, is sent again as usual (with a renewed token, or through the
    /// service).
    fn redeem_first_early(&mut self) {
        let Some((ticket, location)) = self.tickets.pop_front() else {
            return;
        };
        self.sent.get_or_insert_with(Instant::now);
        let call = match self.client.location(&location) {
            Some(mut executor) => {
                let request = tonic::Request::new(ticket.clone());
                runtime().spawn(async move { Ok(executor.do_get(request).await?.into_inner()) })
            }
            None => {
                let mut flight = self.client.flight.clone();
                let request = self.client.request(ticket.clone());
                runtime().spawn(async move { Ok(flight.do_get(request).await?.into_inner()) })
            }
        };
        self.early = Some((ticket, location, call));
    }

    fn pull(&mut self) -> Result<Option<RecordBatch>, Error> {
        if let Some(batch) = self.first.take() {
            return Ok(Some(batch));
        }
        if let Some(parts) = &mut self.parts {
            return parts.next(&self.interrupt);
        }
        loop {
            if self.current.is_none() {
                if let Some((_, _, call)) = self.early.as_mut() {
                    // Awaited in place: an interrupt leaves it here, for next_batch to abort.
                    let answer = async {
                        call.await
                            .map_err(|error| Error::Protocol(format!("the DoGet sent early failed: {error}")))?
                    };
                    let answered = interruptible(answer, &self.interrupt);
                    if let Err(Error::Interrupted) = answered {
                        return Err(Error::Interrupted);
                    }
                    let (ticket, location, _) = self.early.take().expect("a DoGet was sent early");
                    let stream = match answered {
                        Ok(stream) => stream,
                        Err(Error::Status(status))
                            if matches!(status.code(), tonic::Code::Unauthenticated | tonic::Code::Unavailable) =>
                        {
                            tracing::debug!(%status, location, "the DoGet sent early was refused; sending it again");
                            if status.code() == tonic::Code::Unavailable && !location.is_empty() {
                                self.client.forget_location(&location);
                            }
                            self.redeem(ticket, &location)?
                        }
                        Err(error) => return Err(error),
                    };
                    self.current = Some(self.counted(stream));
                    continue;
                }
                let Some((ticket, location)) = self.tickets.pop_front() else {
                    return Ok(None);
                };
                self.sent.get_or_insert_with(Instant::now);
                let stream = self.redeem(ticket, &location)?;
                self.current = Some(self.counted(stream));
            }
            let stream = self.current.as_mut().expect("a stream was just opened");
            let next = async { stream.next().await.transpose().map_err(Error::from) };
            match interruptible(next, &self.interrupt)? {
                Some(batch) => return Ok(Some(batch)),
                None => self.current = None,
            }
        }
    }
}

impl QueryReader {
    fn counted(&self, stream: tonic::Streaming<FlightData>) -> FlightRecordBatchStream {
        counted(stream, &self.received)
    }

    fn redeem(&self, ticket: Ticket, location: &str) -> Result<tonic::Streaming<FlightData>, Error> {
        redeem(&self.client, ticket, location, &self.interrupt)
    }
}

/// The batches of `stream`, its messages' bytes counted into `received`.
pub(crate) fn counted(stream: tonic::Streaming<FlightData>, received: &Arc<AtomicU64>) -> FlightRecordBatchStream {
    let received = Arc::clone(received);
    record_batches(stream.inspect_ok(move |data| {
        let bytes = data.data_header.len() + data.data_body.len();
        received.fetch_add(bytes as u64, Ordering::Relaxed);
    }))
}

/// Redeems `ticket` at `location`, the executor that runs the query, when `client` may
/// go there: its rows then skip the hop through the service. Otherwise, or when the
/// location cannot be reached or refuses, at the service, which serves every ticket it
/// signed.
pub(crate) fn redeem(
    client: &Client,
    ticket: Ticket,
    location: &str,
    interrupt: &Interrupt,
) -> Result<tonic::Streaming<FlightData>, Error> {
    if let Some(mut executor) = client.location(location) {
        // No credentials: the service names locations only when it takes none, and a
        // token is only ever sent to the endpoint it was given for.
        let request = tonic::Request::new(ticket.clone());
        let call = async move { Ok(executor.do_get(request).await?.into_inner()) };
        match interruptible(call, interrupt) {
            Ok(stream) => return Ok(stream),
            Err(Error::Interrupted) => return Err(Error::Interrupted),
            Err(error) => {
                if matches!(&error, Error::Status(status) if status.code() == tonic::Code::Unavailable) {
                    // Gone from there: later results of this client are read through the service.
                    client.forget_location(location);
                }
                tracing::debug!(%error, location, "a location refused its ticket; asking the service")
            }
        }
    }
    client.renewing(|| {
        let mut flight = client.flight.clone();
        let request = client.request(ticket.clone());
        let call = async move { Ok(flight.do_get(request).await?.into_inner()) };
        interruptible(call, interrupt)
    })
}

impl Iterator for QueryReader {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch()
            .map_err(|error| ArrowError::ExternalError(Box::new(error)))
            .transpose()
    }
}

impl RecordBatchReader for QueryReader {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}

impl QueryReader {
    /// The reader of the query `info` describes, on `client`; `started`: see
    /// [`Client::query_started`].
    pub(crate) fn open(
        client: Client,
        info: FlightInfo,
        interrupt: Interrupt,
        started: bool,
    ) -> Result<QueryReader, Error> {
        // Each endpoint's ticket, with where to redeem it: its first location, if any.
        let tickets = info
            .endpoint
            .iter()
            .filter_map(|endpoint| {
                let location = endpoint.location.first().map(|location| location.uri.clone());
                Some((endpoint.ticket.clone()?, location.unwrap_or_default()))
            })
            .collect();
        let declared = (!info.schema.is_empty())
            .then(|| info.clone().try_decode_schema())
            .transpose()?;
        let mut reader = QueryReader {
            client: client.clone(),
            tickets,
            current: None,
            schema: Arc::new(declared.unwrap_or_else(Schema::empty)),
            first: None,
            info,
            interrupt,
            early: None,
            parts: None,
            sent: None,
            received: Arc::default(),
        };
        if reader.tickets.len() > 1 && !reader.info.ordered {
            // Parts of a result in no order across them (never of a transaction's query):
            // all read at once, now. (Not timed for the link: several executors stream at
            // once.) Ordered endpoints are read one after the other.
            let tickets = reader.tickets.drain(..).collect();
            reader.parts = Some(Parts::start(&client, tickets, &reader.received));
        }
        if reader.schema.fields().is_empty() {
            // The service did not declare a schema: take it from the first batch.
            reader.first = reader.next_batch()?;
            if let Some(batch) = &reader.first {
                reader.schema = batch.schema();
            }
        } else if started && reader.parts.is_none() {
            reader.redeem_first_early();
        }
        Ok(reader)
    }
}
