//! Running DuckDB work off the async runtime, and streaming query results
//! with backpressure.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::datatypes::{Schema, SchemaRef};
use futures::Stream;
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use crate::durable::Durability;
use crate::engine::{Interrupter, Prepared, QueryResult, StatementKind};
use crate::error::{Error, Result};
use crate::executor::{after_statement, check_parameters_fit, guard_kind, Statement, Writing};
use crate::pool::{Lease, PooledConnection};
use crate::running::{Registration, RunningQueries};

/// Batches handed to clients hold at least this many rows (unless the result
/// ends first or they reach `TARGET_BYTES`): DuckDB produces 2048-row vectors,
/// and sending each on its own costs a message per vector.
const TARGET_ROWS: usize = 65_536;
const TARGET_BYTES: usize = 8 << 20;
/// Batches buffered between DuckDB and the consumer.
const CHANNEL_DEPTH: usize = 2;

/// Interrupts a running statement when dropped before being disarmed.
#[derive(Debug)]
struct InterruptOnDrop(Option<Interrupter>);

impl InterruptOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for InterruptOnDrop {
    fn drop(&mut self) {
        if let Some(interrupter) = self.0.take() {
            interrupter.interrupt();
        }
    }
}

/// Runs `work` with the connection on a blocking thread. Dropping the returned
/// future interrupts the statement the work is running.
pub(crate) async fn run_blocking<T, F>(conn: Lease, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&PooledConnection) -> Result<T> + Send + 'static,
{
    run_timed(conn, None, work).await
}

/// [`run_blocking`], stopping the work's statement once it ran `timeout`.
pub(crate) async fn run_timed<T, F>(conn: Lease, timeout: Option<Duration>, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&PooledConnection) -> Result<T> + Send + 'static,
{
    let interrupter = conn.begin_query();
    let timer = StatementTimer::arm(&interrupter, timeout);
    let guard = InterruptOnDrop(Some(interrupter));
    let outcome = tokio::task::spawn_blocking(move || work(&conn)).await;
    drop(timer);
    guard.disarm();
    outcome.map_err(|join| Error::TaskFailed(join.to_string()))?
}

/// Stops a statement that runs longer than its timeout (it then fails with
/// `DeadlineExceeded`); disarmed when dropped.
struct StatementTimer(Option<tokio::task::JoinHandle<()>>);

impl StatementTimer {
    fn arm(interrupter: &Interrupter, timeout: Option<Duration>) -> Self {
        StatementTimer(timeout.map(|limit| {
            let interrupter = interrupter.clone();
            tokio::spawn(async move {
                tokio::time::sleep(limit).await;
                interrupter.time_out(limit);
            })
        }))
    }
}

impl Drop for StatementTimer {
    fn drop(&mut self) {
        if let Some(timer) = self.0.take() {
            timer.abort();
        }
    }
}

/// A stream of record batches from a running query. Dropping it interrupts
/// the query.
#[derive(Debug)]
pub struct BatchStream {
    schema: SchemaRef,
    batches: mpsc::Receiver<Result<RecordBatch>>,
    _interrupt: InterruptOnDrop,
    _registration: Option<Registration>,
}

impl BatchStream {
    /// A stream of no rows.
    pub(crate) fn empty(schema: SchemaRef) -> Self {
        let (_, batches) = mpsc::channel(1);
        BatchStream {
            schema,
            batches,
            _interrupt: InterruptOnDrop(None),
            _registration: None,
        }
    }

    /// The schema of every batch.
    pub fn schema(&self) -> SchemaRef {
        SchemaRef::clone(&self.schema)
    }
}

impl Stream for BatchStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.batches.poll_recv(cx)
    }
}

/// A statement's permission to write, and what makes its write durable
/// before its stream ends.
#[derive(Debug)]
pub(crate) struct Publisher {
    writing: Writing,
    durability: Option<Arc<Durability>>,
    runtime: tokio::runtime::Handle,
}

impl Publisher {
    /// Must be called inside the Tokio runtime.
    pub(crate) fn new(durability: &Option<Arc<Durability>>, writing: Writing) -> Self {
        Publisher {
            writing,
            durability: durability.clone(),
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// After the statement ran (and its connection went back): lets go of
    /// the write gate and publishes what it wrote on its own.
    fn finish(self, wrote: bool) -> Result<()> {
        let (Writing::Autocommit(access), Some(durability)) = (self.writing, self.durability) else {
            return Ok(());
        };
        drop(access);
        if !wrote {
            return Ok(());
        }
        self.runtime.block_on(durability.publish())
    }
}

/// How a statement started.
#[derive(Debug)]
pub(crate) enum Started {
    /// It runs; its rows stream.
    Running(BatchStream),
    /// It writes, and was started without write access: nothing ran. It
    /// must start again with a [`Publisher`].
    NeedsWriteAccess(Statement),
}

/// What the task running a statement says first.
enum Begun {
    Schema(SchemaRef),
    NeedsWriteAccess(Statement),
}

/// Starts `statement` on `conn`; resolves once its result schema is known.
/// A statement with a query id is registered in `running` so that it can be
/// cancelled. Without `publisher` the statement may only read; with one,
/// when the statement changed something, its stream ends only once the
/// change is durable (or with the error that it could not be made so).
pub(crate) async fn start_query(
    conn: Lease,
    statement: Statement,
    running: Arc<RunningQueries>,
    publisher: Option<Publisher>,
    timeout: Option<Duration>,
) -> Result<Started> {
    let interrupter = conn.begin_query();
    let timer = StatementTimer::arm(&interrupter, timeout);
    let registration = match &statement.query_id {
        Some(id) => Some(running.register(id, interrupter.clone())?),
        None => None,
    };
    let interrupt = InterruptOnDrop(Some(interrupter));
    let (schema_tx, schema_rx) = oneshot::channel();
    let (batch_tx, batches) = mpsc::channel(CHANNEL_DEPTH);
    tokio::task::spawn_blocking(move || {
        let mut sink = Sink {
            schema: Some(schema_tx),
            promised: None,
            batches: batch_tx,
            sent: 0,
            limit: statement.result_limit,
        };
        let access = match &publisher {
            None => Access::ReadOnly,
            Some(publisher) => match publisher.durability.as_ref().and_then(|d| d.fenced_because()) {
                Some(reason) => Access::Fenced(reason),
                None => Access::Write,
            },
        };
        let mut wrote = false;
        let produced = produce(&conn, &statement, &mut sink, access, &mut wrote);
        // The statement is over: its timeout with it.
        drop(timer);
        if let Ok(Produced::NeedsWriteAccess) = produced {
            return sink.needs_write_access(statement);
        }
        // The connection goes back first: nothing waits for it. What
        // committed is published, also when a later part failed.
        drop(conn);
        let published = match publisher {
            Some(publisher) => publisher.finish(wrote),
            None => Ok(()),
        };
        if let Err(error) = produced.and(published) {
            sink.fail(error);
        }
    });
    let begun = schema_rx
        .await
        .map_err(|_| Error::TaskFailed("the query task ended before it started".into()))??;
    let schema = match begun {
        Begun::Schema(schema) => schema,
        Begun::NeedsWriteAccess(statement) => return Ok(Started::NeedsWriteAccess(statement)),
    };
    Ok(Started::Running(BatchStream {
        schema,
        batches,
        _interrupt: interrupt,
        _registration: registration,
    }))
}

/// What a statement may do.
enum Access {
    /// Only read: a write stops before it runs.
    ReadOnly,
    /// Read and write.
    Write,
    /// Only read: this executor lost the right to write, for this reason.
    Fenced(String),
}

/// Where a running query's output goes.
struct Sink {
    schema: Option<oneshot::Sender<Result<Begun>>>,
    promised: Option<SchemaRef>,
    batches: mpsc::Sender<Result<RecordBatch>>,
    /// Bytes sent so far, and the most that may be (the statement's
    /// [`Statement::result_limit`]).
    sent: u64,
    limit: Option<u64>,
}

/// Whether the consumer still wants rows.
#[derive(PartialEq)]
enum Flow {
    Continue,
    Stop,
}

impl Sink {
    /// Promises the stream's schema; the first call wins, later ones do nothing.
    fn start(&mut self, schema: SchemaRef) {
        if let Some(sender) = self.schema.take() {
            self.promised = Some(SchemaRef::clone(&schema));
            let _ = sender.send(Ok(Begun::Schema(schema)));
        }
    }

    /// Sends a batch under the schema promised at the start (the same
    /// columns; DuckDB's result carries the same types), or fails clearly if
    /// they ever disagree rather than sending batches a client cannot decode.
    /// Fails when the batch would take the result beyond its limit.
    fn send(&mut self, batch: RecordBatch) -> Result<Flow> {
        // Counted only under a limit: weighing every batch of every query
        // would cost for nothing.
        if let Some(limit) = self.limit {
            self.sent += openduck_api::result_bytes(&batch) as u64;
            if self.sent > limit {
                return Err(Error::ResultTooLarge { limit });
            }
        }
        let batch = match &self.promised {
            Some(schema) if batch.schema() != *schema => {
                RecordBatch::try_new(SchemaRef::clone(schema), batch.columns().to_vec()).map_err(Error::from)
            }
            _ => Ok(batch),
        };
        Ok(match self.batches.blocking_send(batch) {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Stop,
        })
    }

    /// Nothing ran: the statement writes and must start again with write access.
    fn needs_write_access(mut self, statement: Statement) {
        match self.schema.take() {
            Some(sender) => {
                let _ = sender.send(Ok(Begun::NeedsWriteAccess(statement)));
            }
            None => self.fail(Error::TaskFailed("a write was refused after its result started".into())),
        }
    }

    fn fail(mut self, error: Error) {
        match self.schema.take() {
            Some(sender) => {
                let _ = sender.send(Err(error));
            }
            None => {
                let _ = self.batches.blocking_send(Err(error));
            }
        }
    }
}

/// How a statement ran.
enum Produced {
    /// To the end.
    Done,
    /// Not at all: it may write (a text of several statements, or one that
    /// is not a query), and it has no write access.
    NeedsWriteAccess,
}

/// Runs the statement into `sink`, setting `wrote` once a statement that
/// may have changed data ran (before the last of a text, which commit on
/// their own) or committed (the last), so that it is published even if a
/// later part fails.
fn produce(
    conn: &PooledConnection,
    statement: &Statement,
    sink: &mut Sink,
    access: Access,
    wrote: &mut bool,
) -> Result<Produced> {
    let statements = conn.conn().statements(&statement.sql)?;
    check_parameters_fit(statement, statements.len())?;
    if statement.read_only && statements.len() > 1 {
        return Err(Error::read_only());
    }
    let last = statements.len() - 1;
    if last > 0 && matches!(access, Access::ReadOnly) {
        return Ok(Produced::NeedsWriteAccess);
    }
    let writes = |kind: StatementKind| -> Result<bool> {
        if kind == StatementKind::Query {
            return Ok(false);
        }
        if statement.read_only {
            return Err(Error::read_only());
        }
        match &access {
            Access::Fenced(reason) => Err(Error::Fenced(reason.clone())),
            Access::ReadOnly | Access::Write => Ok(true),
        }
    };
    for index in 0..last {
        let transaction = conn.conn().statement_transaction(statement.read_only)?;
        let admitted = conn.conn().admit(statement.grants.as_ref());
        let prepared = statements.prepare(index)?;
        let kind = guard_kind(conn, prepared.kind())?;
        *wrote |= writes(kind)?;
        prepared.execute()?;
        drop(prepared);
        drop(admitted);
        transaction.commit()?;
        after_statement(conn, kind)?;
    }
    // Declared before the statement, so dropped after it (rolling back
    // when the statement fails or its consumer goes away).
    let mut transaction = conn.conn().statement_transaction(statement.read_only)?;
    let admitted = conn.conn().admit(statement.grants.as_ref());
    let prepared = statements.prepare(last)?;
    let kind = guard_kind(conn, prepared.kind())?;
    let last_writes = writes(kind)?;
    if last_writes && matches!(access, Access::ReadOnly) {
        return Ok(Produced::NeedsWriteAccess);
    }
    let ran = run(conn, &prepared, statement, sink);
    // A write that failed once it ran (its result beyond its limit, say) or
    // whose consumer went away is undone in a client's transaction too.
    if last_writes && !matches!(ran, Ok(Flow::Continue)) {
        transaction.undo_on_drop();
    }
    drop(prepared);
    drop(admitted);
    if ran? == Flow::Stop {
        return Ok(Produced::Done);
    }
    transaction.commit()?;
    *wrote |= last_writes;
    after_statement(conn, kind)?;
    Ok(Produced::Done)
}

/// Executes `prepared` (once per parameter row) into `sink`; whether its
/// consumer still wanted rows at the end.
fn run(conn: &PooledConnection, prepared: &Prepared<'_>, statement: &Statement, sink: &mut Sink) -> Result<Flow> {
    let mut out = Coalescer::default();
    match &statement.parameters {
        None => {
            // The schema is known before DuckDB runs anything, so the stream
            // starts now: a query that computes for a long time before its
            // first row (a big aggregation) can be cancelled meanwhile.
            if let Some(schema) = prepared.result_schema()? {
                sink.start(schema);
            }
            let mut result = prepared.execute_streaming()?;
            sink.start(result.schema());
            if drain(&mut result, &mut out, sink)? == Flow::Stop {
                abandon(conn);
                return Ok(Flow::Stop);
            }
        }
        Some(rows) if rows.num_rows() == 0 => {
            prepared.check_parameters(rows)?;
            let schema = prepared.result_schema()?;
            sink.start(schema.unwrap_or_else(|| Arc::new(Schema::empty())));
        }
        Some(rows) => {
            for row in 0..rows.num_rows() {
                prepared.bind_row(rows, row)?;
                let mut result = prepared.execute_streaming()?;
                // The executed result knows the types that depend on parameters.
                sink.start(result.schema());
                if drain(&mut result, &mut out, sink)? == Flow::Stop {
                    abandon(conn);
                    return Ok(Flow::Stop);
                }
            }
        }
    }
    if let Some(batch) = out.flush()? {
        // The work is done: a consumer that left now does not undo it.
        sink.send(batch)?;
    }
    Ok(Flow::Continue)
}

/// The consumer went away: stop DuckDB's worker threads before the result
/// is dropped, so that the connection's next statement does not wait for them.
fn abandon(conn: &PooledConnection) {
    debug!("consumer went away; stopping the query");
    conn.conn().interrupt_own_query();
}

fn drain(result: &mut QueryResult<'_>, out: &mut Coalescer, sink: &mut Sink) -> Result<Flow> {
    while let Some(batch) = result.next_batch()? {
        if let Some(full) = out.push(batch)? {
            if sink.send(full)? == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
    }
    Ok(Flow::Continue)
}

/// Gathers DuckDB's small vectors into batches of about `TARGET_ROWS` rows.
#[derive(Default)]
struct Coalescer {
    pending: Vec<RecordBatch>,
    rows: usize,
    bytes: usize,
}

impl Coalescer {
    fn push(&mut self, batch: RecordBatch) -> Result<Option<RecordBatch>> {
        self.rows += batch.num_rows();
        self.bytes += batch.get_array_memory_size();
        self.pending.push(batch);
        if self.rows >= TARGET_ROWS || self.bytes >= TARGET_BYTES {
            self.flush()
        } else {
            Ok(None)
        }
    }

    fn flush(&mut self) -> Result<Option<RecordBatch>> {
        let pending = std::mem::take(&mut self.pending);
        self.rows = 0;
        self.bytes = 0;
        match pending.len() {
            0 => Ok(None),
            1 => Ok(pending.into_iter().next()),
            _ => Ok(Some(concat_batches(&pending[0].schema(), &pending)?)),
        }
    }
}
