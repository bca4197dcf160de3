//! The coordinator: decides where each statement runs and hands out tickets.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use openduck_executor::{
    BatchStream, CatalogFilter, Description, Executor, IngestTarget, Statement, TableEntry,
};
use openduck_proto::FragmentTicket;
use tracing::{debug, info};

use crate::error::{Error, Result};
use crate::held::HeldResults;
use crate::registry::EmbeddedRegistry;
use crate::route::databases_touched;
use crate::scope::{ClientSession, Scope};
use crate::ticket::TicketSigner;

/// What became of a request to cancel a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// The query was stopped, or will refuse to start.
    Cancelled,
    /// The statement already ran (it changed something when it was planned).
    NotCancellable,
}

/// A query planned to run as one fragment on one executor.
#[derive(Debug, Clone)]
pub struct PlannedQuery {
    /// The query id (also inside the ticket).
    pub query_id: String,
    /// The schema of the rows the ticket will stream; `None` when it is known
    /// only once the statement runs (types that depend on parameters).
    pub schema: Option<arrow::datatypes::SchemaRef>,
    /// The signed ticket to redeem with [`Coordinator::execute_ticket`].
    pub ticket: Vec<u8>,
    /// The executor that runs it.
    pub executor_id: String,
}

/// The rows of a redeemed ticket.
pub struct ResultStream {
    schema: SchemaRef,
    batches: BoxStream<'static, Result<RecordBatch>>,
}

impl std::fmt::Debug for ResultStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultStream").field("schema", &self.schema).finish_non_exhaustive()
    }
}

impl ResultStream {
    /// The schema of every batch.
    pub fn schema(&self) -> SchemaRef {
        SchemaRef::clone(&self.schema)
    }
}

impl Stream for ResultStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.batches.poll_next_unpin(cx)
    }
}

impl From<BatchStream> for ResultStream {
    fn from(stream: BatchStream) -> Self {
        ResultStream {
            schema: stream.schema(),
            batches: stream.map_err(Error::from).boxed(),
        }
    }
}

/// Routes statements to executors, signs tickets, and aggregates catalogs.
#[derive(Debug)]
pub struct Coordinator {
    registry: EmbeddedRegistry,
    signer: TicketSigner,
    held: HeldResults,
    default_database: String,
}

impl Coordinator {
    /// A coordinator over `registry`; statements that name no database run in
    /// `default_database`.
    pub fn new(registry: EmbeddedRegistry, signer: TicketSigner, default_database: String) -> Self {
        Coordinator {
            registry,
            held: HeldResults::new(signer.ttl()),
            signer,
            default_database,
        }
    }

    /// An embedded coordinator over one in-process executor, with a random
    /// ticket secret; the executor's first database is the default.
    pub fn embedded(executor: Executor, ticket_ttl: Duration) -> Self {
        let default = executor.databases()[0].clone();
        Coordinator::new(
            EmbeddedRegistry::new(vec![Arc::new(executor)]),
            TicketSigner::random(ticket_ttl),
            default,
        )
    }

    /// The database statements run in when the client names none.
    pub fn default_database(&self) -> &str {
        &self.default_database
    }

    /// The executor that must run `sql` in `scope`, and the database it runs in.
    fn route_in<'s>(&'s self, scope: &'s Scope, sql: &str) -> Result<(&'s Arc<Executor>, &'s str)> {
        let database = scope.database.as_deref().unwrap_or(&self.default_database);
        let executor = self.route(database, sql)?;
        scope.check_executor(executor.id())?;
        Ok((executor, database))
    }

    /// The executor that must run `sql` with `database` as its default.
    fn route(&self, database: &str, sql: &str) -> Result<&Arc<Executor>> {
        let known = self.registry.databases();
        let touched = databases_touched(sql, &known, database);
        let mut executors = touched.iter().map(|db| {
            self.registry
                .executor_for(db)
                .ok_or_else(|| Error::NoExecutor(db.clone()))
        });
        let first = executors.next().unwrap_or_else(|| Err(Error::NoExecutor(database.into())))?;
        for other in executors {
            if other?.id() != first.id() {
                return Err(Error::SpansExecutors(
                    touched.iter().cloned().collect::<Vec<_>>().join(", "),
                ));
            }
        }
        Ok(first)
    }

    /// Result and parameter schemas of `sql`, without running it.
    pub async fn describe(&self, scope: &Scope, sql: &str) -> Result<Description> {
        let (executor, database) = self.route_in(scope, sql)?;
        Ok(executor.describe(&scope.statement(database, sql)).await?)
    }

    /// Plans a query: checks it prepares, learns its schema, and signs a ticket
    /// that runs it (with `parameters`, one execution per row) when redeemed.
    ///
    /// A statement that changes something (anything but a single read-only
    /// query) runs right here instead, so that it takes effect even if the
    /// client never fetches its result; the ticket then redeems the held result.
    pub async fn plan_query(
        &self,
        scope: &Scope,
        sql: &str,
        parameters: Option<&RecordBatch>,
    ) -> Result<PlannedQuery> {
        let (executor, database) = self.route_in(scope, sql)?;
        let description = executor.describe(&scope.statement(database, sql)).await?;
        let query_id = uuid::Uuid::new_v4().to_string();
        let mut ticket = FragmentTicket {
            query_id: query_id.clone(),
            executor_id: executor.id().to_string(),
            database: database.to_string(),
            schema: scope.schema.clone().unwrap_or_default(),
            session_id: scope.session_id().unwrap_or_default(),
            ..FragmentTicket::default()
        };
        let schema = if description.is_query {
            ticket.sql = sql.to_string();
            ticket.parameters = parameters.map(encode_parameters).transpose()?.unwrap_or_default();
            debug!(%query_id, executor = executor.id(), database, "planned single-site query");
            description.schema
        } else {
            let mut statement = scope.statement(database, sql);
            statement.parameters = parameters.cloned();
            let rows = executor.query(statement).await?;
            let result_schema = rows.schema();
            let batches: Vec<RecordBatch> = rows.try_collect().await?;
            self.held.put(&query_id, SchemaRef::clone(&result_schema), batches);
            ticket.held_result = true;
            debug!(%query_id, executor = executor.id(), database, "ran a changing statement at planning");
            Some(result_schema)
        };
        Ok(PlannedQuery {
            query_id,
            schema,
            ticket: self.signer.sign(ticket),
            executor_id: executor.id().to_string(),
        })
    }

    /// Verifies a ticket and streams its rows.
    pub async fn execute_ticket(&self, ticket: &[u8]) -> Result<ResultStream> {
        let ticket = self.signer.verify(ticket)?;
        if ticket.held_result {
            let (schema, batches) = self
                .held
                .take(&ticket.query_id)
                .ok_or_else(|| Error::ResultGone(ticket.query_id.clone()))?;
            return Ok(ResultStream {
                schema,
                batches: futures::stream::iter(batches.into_iter().map(Ok)).boxed(),
            });
        }
        let executor = self
            .registry
            .executor(&ticket.executor_id)
            .ok_or_else(|| Error::UnknownExecutor(ticket.executor_id.clone()))?;
        let mut statement = Statement::new(ticket.database, ticket.sql);
        statement.schema = Some(ticket.schema).filter(|schema| !schema.is_empty());
        statement.session_id = Some(ticket.session_id).filter(|id| !id.is_empty());
        statement.query_id = Some(ticket.query_id.clone());
        if !ticket.parameters.is_empty() {
            statement = statement.with_parameters(decode_parameters(&ticket.parameters)?);
        }
        info!(query_id = %ticket.query_id, executor = executor.id(), "executing fragment");
        Ok(executor.query(statement).await?.into())
    }

    /// Runs a statement whose rows are not wanted; returns the rows changed
    /// (`None` for statements that are not DML).
    pub async fn execute_update(
        &self,
        scope: &Scope,
        sql: &str,
        parameters: Option<RecordBatch>,
    ) -> Result<Option<u64>> {
        let (executor, database) = self.route_in(scope, sql)?;
        let mut statement = scope.statement(database, sql);
        statement.parameters = parameters;
        Ok(executor.update(statement).await?)
    }

    /// Cancels the query a ticket runs: interrupts it if it runs and refuses
    /// to run it later.
    pub fn cancel(&self, ticket: &[u8]) -> Result<Cancelled> {
        let ticket = self.signer.verify(ticket)?;
        if ticket.held_result {
            return Ok(Cancelled::NotCancellable);
        }
        let executor = self
            .registry
            .executor(&ticket.executor_id)
            .ok_or_else(|| Error::UnknownExecutor(ticket.executor_id.clone()))?;
        let was_running = executor.cancel(&ticket.query_id);
        info!(query_id = %ticket.query_id, was_running, "query cancelled");
        Ok(Cancelled::Cancelled)
    }

    /// Opens a session on the executor that hosts `database` (the default
    /// when `None`).
    pub fn open_session(&self, database: Option<&str>) -> Result<ClientSession> {
        let database = database.unwrap_or(&self.default_database);
        let executor = self
            .registry
            .executor_for(database)
            .ok_or_else(|| Error::NoExecutor(database.to_string()))?;
        Ok(ClientSession {
            executor_id: executor.id().to_string(),
            session: executor.open_session()?,
        })
    }

    /// Starts a transaction in `session`.
    pub async fn begin(&self, session: &ClientSession) -> Result<()> {
        Ok(self.session_executor(session)?.begin(session.session.id()).await?)
    }

    /// Commits the transaction of `session`.
    pub async fn commit(&self, session: &ClientSession) -> Result<()> {
        Ok(self.session_executor(session)?.commit(session.session.id()).await?)
    }

    /// Rolls the transaction of `session` back.
    pub async fn rollback(&self, session: &ClientSession) -> Result<()> {
        Ok(self.session_executor(session)?.rollback(session.session.id()).await?)
    }

    /// Appends a stream of record batches to a table on the executor that
    /// hosts `target.database`; returns the rows appended.
    pub async fn ingest<S, E>(&self, scope: &Scope, mut target: IngestTarget, schema: SchemaRef, batches: S) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<RecordBatch, E>> + Unpin,
        E: std::fmt::Display,
    {
        let executor = self
            .registry
            .executor_for(&target.database)
            .ok_or_else(|| Error::NoExecutor(target.database.clone()))?;
        scope.check_executor(executor.id())?;
        target.session_id = scope.session_id();
        Ok(executor.ingest(target, schema, batches).await?)
    }

    fn session_executor(&self, session: &ClientSession) -> Result<&Arc<Executor>> {
        self.registry
            .executor(&session.executor_id)
            .ok_or_else(|| Error::UnknownExecutor(session.executor_id.clone()))
    }

    /// Every database, sorted.
    pub fn catalogs(&self) -> Vec<String> {
        let mut names = self.registry.databases();
        names.sort();
        names
    }

    /// `(database, schema)` pairs matching `filter`, over all executors.
    pub async fn schemas(&self, filter: &CatalogFilter) -> Result<Vec<(String, String)>> {
        let mut all = Vec::new();
        for executor in self.executors_for(filter) {
            all.extend(executor.schemas(filter).await?);
        }
        all.sort();
        Ok(all)
    }

    /// Tables and views matching `filter`, over all executors.
    pub async fn tables(&self, filter: &CatalogFilter, with_schemas: bool) -> Result<Vec<TableEntry>> {
        let mut all = Vec::new();
        for executor in self.executors_for(filter) {
            all.extend(executor.tables(filter, with_schemas).await?);
        }
        all.sort_by(|a, b| (&a.catalog, &a.schema, &a.name).cmp(&(&b.catalog, &b.schema, &b.name)));
        Ok(all)
    }

    /// Every column of every primary and foreign key, over all executors.
    pub async fn keys(&self) -> Result<Vec<openduck_executor::KeyColumn>> {
        let mut all = Vec::new();
        for executor in self.registry.executors() {
            all.extend(executor.keys().await?);
        }
        Ok(all)
    }

    /// Shuts every executor down: running statements are interrupted and the
    /// databases checkpointed.
    pub async fn shutdown(&self, grace: Duration) -> Result<()> {
        for executor in self.registry.executors() {
            executor.shutdown(grace).await?;
        }
        Ok(())
    }

    fn executors_for<'a>(&'a self, filter: &'a CatalogFilter) -> impl Iterator<Item = &'a Arc<Executor>> {
        self.registry.executors().iter().filter(move |executor| match &filter.catalog {
            Some(catalog) => executor.hosts(catalog),
            None => true,
        })
    }
}

fn encode_parameters(batch: &RecordBatch) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut writer = StreamWriter::try_new(&mut bytes, &batch.schema()).map_err(Error::Parameters)?;
    writer.write(batch).map_err(Error::Parameters)?;
    writer.finish().map_err(Error::Parameters)?;
    drop(writer);
    Ok(bytes)
}

fn decode_parameters(bytes: &[u8]) -> Result<RecordBatch> {
    let reader = StreamReader::try_new(bytes, None).map_err(Error::Parameters)?;
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader.collect::<std::result::Result<_, _>>().map_err(Error::Parameters)?;
    arrow::compute::concat_batches(&schema, &batches).map_err(Error::Parameters)
}
