//! A result in several parts (a FlightInfo with several endpoints: the service's parts
//! of a UNION ALL across executors), read in parallel: one thread per part redeems its
//! ticket (at its executor, when the client may go there), receives and decodes its
//! batches; the reader takes them as they come, in no order across parts.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow_flight::Ticket;
use futures::StreamExt;

use crate::client::{interruptible, Client, Interrupt, INTERRUPT_POLL};
use crate::reader::{counted, redeem};
use crate::Error;

/// Batches decoded ahead of the reader, per part.
const AHEAD: usize = 2;

/// The parts of one result, being read.
#[derive(Debug)]
pub(crate) struct Parts {
    batches: Receiver<Result<RecordBatch, Error>>,
    /// Tells the threads to stop: the reader is gone, or the user interrupted.
    stop: Arc<AtomicBool>,
    /// How many parts there are, and how many were read to their end.
    parts: usize,
    ended: Arc<AtomicUsize>,
}

impl Parts {
    /// Starts reading every part, each `(ticket, location)` in a thread of its own; the
    /// bytes of their messages are counted into `received`.
    pub(crate) fn start(client: &Client, tickets: Vec<(Ticket, String)>, received: &Arc<AtomicU64>) -> Parts {
        let (sender, batches) = sync_channel(AHEAD * tickets.len());
        let stop = Arc::new(AtomicBool::new(false));
        let ended = Arc::new(AtomicUsize::new(0));
        let parts = tickets.len();
        for (ticket, location) in tickets {
            let (client, sender, received) = (client.clone(), sender.clone(), Arc::clone(received));
            let ended = Arc::clone(&ended);
            // Not the user's interrupt: that reads DuckDB's state, which need not outlive
            // the reader. The threads hold nothing of DuckDB's: they may end after it.
            let stopped = Arc::clone(&stop);
            let stop = Interrupt::when(move || stopped.load(Ordering::Relaxed));
            let spawned = std::thread::Builder::new().name("openduck-part".into()).spawn(move || {
                if read_part(&client, ticket, &location, &stop, &received, &sender) {
                    ended.fetch_add(1, Ordering::Relaxed);
                }
            });
            if let Err(error) = spawned {
                // Its sender went with the closure: the part counts as not read to its end.
                tracing::debug!(%error, "cannot start a thread to read a part of a result");
            }
        }
        Parts {
            batches,
            stop,
            parts,
            ended,
        }
    }

    /// The next batch of any part; `None` once every part has ended. Waits, looking at
    /// `interrupt` (the user's) as it does.
    pub(crate) fn next(&mut self, interrupt: &Interrupt) -> Result<Option<RecordBatch>, Error> {
        loop {
            match self.batches.recv_timeout(INTERRUPT_POLL) {
                Ok(batch) => return batch.map(Some),
                // Every thread is gone: the result is whole only if each read its part to
                // the end (one that panicked, or never started, did not).
                Err(RecvTimeoutError::Disconnected) if self.ended.load(Ordering::Relaxed) == self.parts => {
                    return Ok(None)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(Error::Protocol(format!(
                        "{} of the {} parts of the result ended before their rows did",
                        self.parts - self.ended.load(Ordering::Relaxed),
                        self.parts
                    )))
                }
                Err(RecvTimeoutError::Timeout) if interrupt.is_set() => return Err(Error::Interrupted),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }
}

impl Drop for Parts {
    fn drop(&mut self) {
        // The threads see the stop within INTERRUPT_POLL (or once a connection attempt
        // ends), and one waiting to hand over a batch sees the receiver gone; they are not
        // waited for. Their streams go with them: the service stops what they read.
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Reads one part into `sender` until it ends (true), fails, or the reader is gone.
fn read_part(
    client: &Client,
    ticket: Ticket,
    location: &str,
    stop: &Interrupt,
    received: &Arc<AtomicU64>,
    sender: &SyncSender<Result<RecordBatch, Error>>,
) -> bool {
    let mut stream = match redeem(client, ticket, location, stop) {
        Ok(stream) => counted(stream, received),
        Err(error) => {
            let _ = sender.send(Err(error));
            return false;
        }
    };
    loop {
        let next = interruptible(async { stream.next().await.transpose().map_err(Error::from) }, stop);
        let batch = match next {
            Ok(Some(batch)) => Ok(batch),
            Ok(None) => return true,
            Err(error) => Err(error),
        };
        let failed = batch.is_err();
        if sender.send(batch).is_err() || failed {
            return false;
        }
    }
}
