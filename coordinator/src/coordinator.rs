//! The coordinator: decides where each statement runs and hands out tickets.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::{Stream, StreamExt, TryStreamExt};
use openduck_api::{Description, ErrorKind, ExecutorApi, IngestTarget};
use openduck_proto::{DistributedQuery, FragmentTicket, HeldResult};
use openduck_remote::{batch_to_bytes, TicketKind, TicketSigner};
use tracing::{debug, info, info_span, warn, Instrument};

use crate::distributed::{DistributedPlan, DistributedPlanner, RunningQueries};
use crate::error::{Error, Result};
use crate::held::Held;
use crate::history::QueryHistory;
use crate::registry::Registry;
use crate::results::ResultStream;
use crate::route::{analyse, Analysis};
use crate::scope::{ClientSession, Principal, Scope};
use crate::site::Site;
use crate::started::Started;

mod parts;

mod listing;

/// What became of a request to cancel a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// The query was stopped, or will refuse to start.
    Cancelled,
    /// The statement already ran (it changed something when it was planned).
    NotCancellable,
}

/// A query planned: where its rows are fetched.
#[derive(Debug, Clone)]
pub struct PlannedQuery {
    /// The query id (also inside the tickets).
    pub query_id: String,
    /// The schema of the rows the tickets will stream; `None` when it is
    /// known only once the statement runs (types that depend on parameters).
    pub schema: Option<arrow::datatypes::SchemaRef>,
    /// Where its rows are fetched: one endpoint, or, for a client that
    /// reads every endpoint ([`Scope::reads_every_endpoint`]), one per part
    /// of a result that executors compute in parts (a UNION ALL across
    /// them). The rows are those of every endpoint, in no order across
    /// endpoints when there are several.
    pub endpoints: Vec<PlannedEndpoint>,
    /// The executor that runs it (the first part's, when in parts; empty
    /// when the coordinator answers it).
    pub executor_id: String,
    /// Whether it ran already (it changed something): the ticket redeems
    /// its held result.
    pub ran: bool,
}

/// One endpoint of a [`PlannedQuery`].
#[derive(Debug, Clone)]
pub struct PlannedEndpoint {
    /// The signed ticket to redeem with [`Coordinator::execute_ticket`].
    pub ticket: Vec<u8>,
    /// Where the client may redeem the ticket directly (the executor's
    /// endpoint), so rows do not pass through the coordinator; `None` when
    /// only the coordinator can. The coordinator redeems it either way.
    pub location: Option<String>,
}

impl PlannedQuery {
    /// Whether some rows may be fetched past the coordinator (an endpoint
    /// names its executor), or in several parts: the coordinator then does
    /// not see the whole result go out.
    pub fn past_coordinator(&self) -> bool {
        self.endpoints.len() > 1 || self.endpoints.iter().any(|endpoint| endpoint.location.is_some())
    }
}

/// Most results of statements that ran at planning held at once.
const HELD_RESULTS: usize = 10_000;
/// Most bytes of one result a statement that changes data may return (it
/// is held until its ticket is redeemed), unless told otherwise.
pub const DEFAULT_HELD_RESULT: u64 = 64 << 20;
/// Most bytes of results held at once: the oldest go first.
const HELD_BYTES: usize = 1 << 30;
/// Statements kept in `openduck.main.query_history` unless told otherwise.
pub const DEFAULT_HISTORY: usize = 10_000;
/// Most plans of queries across executors held at once (a client that asks
/// for a FlightInfo and never redeems it leaves one behind).
const HELD_PLANS: usize = 1_000;

/// How long a query started at planning waits for its ticket before it is
/// stopped (a later DoGet runs it from the ticket). A client redeems it one
/// round trip later; meanwhile the query may hold a pooled connection and a
/// transaction that holds back checkpoints.
const STARTED_WAIT: Duration = Duration::from_secs(1);

/// Routes statements to executors, signs tickets, and aggregates catalogs.
#[derive(Debug)]
pub struct Coordinator {
    registry: Registry,
    signer: TicketSigner,
    /// Results of statements that ran when they were planned.
    held: Held<(SchemaRef, Vec<RecordBatch>)>,
    /// The most bytes of rows one of those may return.
    held_result_limit: u64,
    /// Plans of queries across executors, until their ticket is redeemed here.
    plans: Held<DistributedPlan>,
    default_database: Option<String>,
    direct_results: bool,
    planner: DistributedPlanner,
    distributed: Arc<RunningQueries>,
    history: QueryHistory,
    /// Queries on executors in this process, started when planned.
    started: Started,
}

/// Where a statement runs.
enum Route {
    /// Verbatim on one executor.
    Site(Site),
    /// Across executors, planned by DataFusion: a query, or an EXPLAIN of one.
    Spanning { explain: bool, query: String },
    /// Here, over `openduck.main.query_history`.
    History,
}

impl Coordinator {
    /// A coordinator over `registry`. Statements that name no database run
    /// in `default_database`, or when that is `None` in the first database
    /// (by name) any executor serves.
    pub fn new(registry: Registry, signer: TicketSigner, default_database: Option<String>) -> Self {
        Coordinator {
            registry,
            held: Held::new(signer.ttl(), HELD_RESULTS, HELD_BYTES),
            held_result_limit: DEFAULT_HELD_RESULT,
            plans: Held::new(signer.ttl(), HELD_PLANS, usize::MAX),
            history: QueryHistory::new(DEFAULT_HISTORY, signer.ttl()),
            signer,
            default_database,
            direct_results: false,
            planner: DistributedPlanner::default(),
            distributed: Arc::default(),
            started: Started::new(0, STARTED_WAIT),
        }
    }

    /// Starts queries on executors in this process when they are planned,
    /// at most `slots` waiting for their ticket at once (0, the default:
    /// never). A waiting query may hold one of the executor's pooled
    /// connections, so `slots` should leave some of them free.
    ///
    /// A query without parameters, on a client connection without a session,
    /// and on an executor without replicas (whose lease would hold back the
    /// replica's swap) then starts when its FlightInfo is asked for instead of
    /// when its ticket is redeemed: DuckDB prepares it once instead of twice,
    /// and works while the FlightInfo and the DoGet travel.
    pub fn with_early_start(mut self, slots: usize) -> Self {
        self.started = Started::new(slots, STARTED_WAIT);
        self
    }

    /// Ships a join's small side to the executor of its large side, when
    /// their inputs live on two executors and pulling the large side to the
    /// coordinator would move at least `threshold` values (rows times
    /// columns, estimated from the tables' rows); `None` never ships, and
    /// both sides are pulled. Default: [`crate::DEFAULT_SHIPPING_THRESHOLD`].
    pub fn with_join_shipping(mut self, threshold: Option<u64>) -> Self {
        self.planner = DistributedPlanner::with_shipping(threshold);
        self
    }

    /// Keeps the newest `capacity` statements in `openduck.main.query_history`
    /// (0: keeps none).
    pub fn with_query_history(mut self, capacity: usize) -> Self {
        self.history = QueryHistory::new(capacity, self.signer.ttl());
        self
    }

    /// Lets a statement that changes data (which runs when it is planned,
    /// its result held for the client) return at most `bytes` of rows (0:
    /// no limit): one that returns more fails with `ResourceExhausted`, and
    /// is undone.
    pub fn with_held_result_limit(mut self, bytes: u64) -> Self {
        let budget = HELD_BYTES.max(usize::try_from(bytes).unwrap_or(usize::MAX));
        self.held = Held::new(self.signer.ttl(), HELD_RESULTS, budget);
        self.held_result_limit = bytes;
        self
    }

    /// The statements this coordinator received, for the front end to record them in.
    pub fn history(&self) -> &QueryHistory {
        &self.history
    }

    /// Whether FlightInfo endpoints send clients straight to the executor
    /// that runs a single-site query (off: every row passes through here).
    pub fn with_direct_results(mut self, direct: bool) -> Self {
        self.direct_results = direct;
        self
    }

    /// An embedded coordinator over one in-process executor, with a random
    /// ticket secret; the first database it hosts is the default.
    pub fn embedded(executor: Arc<dyn ExecutorApi>, ticket_ttl: Duration) -> Self {
        let default = executor
            .hosting()
            .and_then(|hosting| hosting.databases.into_iter().next());
        Coordinator::new(
            Registry::embedded(vec![executor]),
            TicketSigner::random(ticket_ttl),
            default,
        )
    }

    /// The database statements run in when the client names none.
    pub fn default_database(&self) -> String {
        match &self.default_database {
            Some(database) => database.clone(),
            None => self.registry.databases().into_iter().next().unwrap_or_default(),
        }
    }

    /// The database unqualified names resolve in for `principal` when its
    /// client chose none: [`Coordinator::default_database`], or when that was
    /// not granted to it, the first granted database that exists.
    pub fn default_database_of(&self, principal: &Principal) -> String {
        let default = self.default_database();
        match principal.grants() {
            Some(grants) if !grants.may_change(&default) => {
                let known = self.registry.databases();
                let granted = grants.databases();
                granted
                    .iter()
                    .find_map(|database| known.iter().find(|name| name.eq_ignore_ascii_case(database)))
                    .or(granted.first())
                    .cloned()
                    .unwrap_or(default)
            }
            _ => default,
        }
    }

    /// Where `sql` runs in `scope`, and the database it runs in. Snapshots
    /// it names (`"mydb@1a2b3c"`) are attached on their executor first.
    async fn route_in(&self, scope: &Scope, sql: &str) -> Result<(Route, String)> {
        let (route, database, _) = self.route_query(scope, sql).await?;
        Ok((route, database))
    }

    /// [`Coordinator::route_in`], and whether `sql` is one read-only query
    /// (not an EXPLAIN) as far as sqlparser can tell.
    async fn route_query(&self, scope: &Scope, sql: &str) -> Result<(Route, String, bool)> {
        let mut database = scope
            .database
            .clone()
            .unwrap_or_else(|| self.default_database_of(&scope.principal));
        let analysis = analyse(sql, &self.registry.known_databases(), &database);
        // A read-only user's SQL must be one query (that sqlparser reads).
        scope.check_writes(analysis.query.is_some())?;
        if analysis.history > 0 {
            // Read once, by itself: joined with itself, it grows without bound.
            return match (&analysis.query, analysis.names_tables, analysis.history) {
                (Some(_), false, 1) => Ok((Route::History, database, false)),
                _ => Err(Error::HistoryAlone),
            };
        }
        if scope.principal.grants().is_some() {
            // Not even attached, the snapshot of a database it was not granted.
            for snapshot in analysis.snapshots() {
                scope.check_granted(snapshot)?;
            }
        }
        let preferred = scope.session.as_ref().map(|session| session.executor_id.as_str());
        let route = self.route(&database, &analysis, preferred)?;
        if let Route::Spanning { .. } = route {
            // Planned here, its columns would be described before any executor
            // checks a fragment (each still does).
            for touched in &analysis.touched {
                scope.check_granted(touched)?;
            }
        }
        if let Route::Site(site) = &route {
            for snapshot in analysis.snapshots() {
                site.executor().attach_snapshot(snapshot).await?;
            }
            database = Self::database_on(site, &database, &analysis);
        }
        match (&route, &scope.session) {
            (Route::Site(site), _) => scope.check_executor(site.id())?,
            (Route::Spanning { .. }, Some(session)) => {
                return Err(Error::OutsideSession {
                    executor: "several executors".into(),
                    session_executor: session.executor_id.clone(),
                })
            }
            (Route::Spanning { .. }, None) | (Route::History, _) => {}
        }
        let one_query = matches!(analysis.query, Some((false, _)));
        Ok((route, database, one_query))
    }

    /// The executor that must run `sql` in `scope`: refuses statements
    /// that span executors.
    async fn site_in(&self, scope: &Scope, sql: &str) -> Result<(Site, String)> {
        match self.route_in(scope, sql).await? {
            (Route::Site(site), database) => Ok((site, database)),
            (Route::History, _) => Err(Error::HistoryAlone),
            (Route::Spanning { .. }, _) => Err(Error::Distributed {
                kind: ErrorKind::InvalidArgument,
                message: "a query across executors must run as a query (its rows are its result), not as an update"
                    .into(),
            }),
        }
    }

    /// Where a statement runs with `database` as its default: the one
    /// executor that serves every database it touches, or, for a query,
    /// across them. When there are replicas, a read-only query goes to any
    /// executor that serves all its databases, the writers and their
    /// replicas at random (`preferred`, the executor of the client's session,
    /// when it can).
    fn route(&self, database: &str, analysis: &Analysis, preferred: Option<&str>) -> Result<Route> {
        let touched = &analysis.touched;
        if self.registry.has_replicas() && analysis.query.is_some() {
            if let Some(site) = self.registry.reader_for(touched.iter(), preferred) {
                return Ok(Route::Site(site));
            }
        }
        let mut sites = touched.iter().map(|db| self.site_for(db));
        let first = sites
            .next()
            .unwrap_or_else(|| Err(Error::NoExecutor(database.into())))?;
        for other in sites {
            if other?.id() != first.id() {
                return match &analysis.query {
                    Some((explain, query)) => Ok(Route::Spanning {
                        explain: *explain,
                        query: query.clone(),
                    }),
                    None => Err(Error::SpansExecutors(
                        touched.iter().cloned().collect::<Vec<_>>().join(", "),
                    )),
                };
            }
        }
        Ok(Route::Site(first))
    }

    /// The database a statement on `site` runs in: the client's, when the
    /// site hosts it (it names unqualified tables), or else one the
    /// statement names (all its tables are qualified then).
    fn database_on(site: &Site, database: &str, analysis: &Analysis) -> String {
        if site.serves(database) {
            return database.to_string();
        }
        analysis
            .touched
            .iter()
            .find(|db| site.serves(db))
            .cloned()
            .unwrap_or_else(|| database.to_string())
    }

    fn site_for(&self, database: &str) -> Result<Site> {
        self.registry.site_for(database).ok_or_else(|| {
            if database.is_empty() && self.registry.databases().is_empty() {
                Error::NoDatabases
            } else if self.registry.known_databases().iter().any(|known| known == database) {
                Error::NoExecutor(database.to_string())
            } else {
                Error::UnknownDatabase(database.to_string())
            }
        })
    }

    fn site(&self, id: &str) -> Result<Site> {
        self.registry
            .site(id)
            .ok_or_else(|| Error::UnknownExecutor(id.to_string()))
    }

    /// Result and parameter schemas of `sql`, without running it.
    pub async fn describe(&self, scope: &Scope, sql: &str) -> Result<Description> {
        match self.route_in(scope, sql).await? {
            (Route::Site(site), database) => {
                let describe = |site: Site, database: String| async move {
                    Ok(site.executor().describe(&scope.statement(&database, sql)).await?)
                };
                // Describing has no effects: it may move wherever the route goes.
                Ok(self.at_reachable(scope, sql, site, database, true, describe).await?.0)
            }
            (Route::Spanning { explain, query }, database) => {
                let schema = if explain {
                    explain_schema()
                } else {
                    let sites = self.registry.sites();
                    self.planner
                        .plan(
                            (&sites, self.registry.catalog_epoch()),
                            &database,
                            scope.schema.as_deref(),
                            &query,
                        )
                        .await?
                        .schema()
                };
                Ok(Description {
                    schema: Some(schema),
                    parameters: arrow::datatypes::Schema::empty(),
                    is_query: true,
                })
            }
            (Route::History, _) => Ok(Description {
                schema: Some(self.history.describe(sql).await?),
                parameters: arrow::datatypes::Schema::empty(),
                is_query: true,
            }),
        }
    }

    /// Plans a query: checks it prepares, learns its schema, and signs a ticket
    /// that runs it (with `parameters`, one execution per row) when redeemed;
    /// or, with [`Coordinator::with_early_start`], starts it now and signs a
    /// ticket that takes its rows (or runs it again, once they are gone).
    ///
    /// A statement that changes something (anything but a single read-only
    /// query) runs right here instead, so that it takes effect even if the
    /// client never fetches its result; the ticket then redeems the held result.
    pub async fn plan_query(&self, scope: &Scope, sql: &str, parameters: Option<&RecordBatch>) -> Result<PlannedQuery> {
        let routed = self.route_query(scope, sql).instrument(info_span!("route")).await?;
        let (site, database, one_query) = match routed {
            (Route::Site(site), database, one_query) => (site, database, one_query),
            (Route::Spanning { .. }, _, _) if scope.one_executor => {
                let touched = analyse(sql, &self.registry.known_databases(), &self.default_database()).touched;
                return Err(Error::NotOnOneExecutor(
                    touched.into_iter().collect::<Vec<_>>().join(", "),
                ));
            }
            (Route::Spanning { explain, query }, database, _) => {
                return self
                    .plan_spanning(scope, &database, sql, explain, &query, parameters)
                    .await;
            }
            (Route::History, ..) => return self.plan_history(scope, sql, parameters).await,
        };
        let query_id = uuid::Uuid::new_v4().to_string();
        let startable = one_query
            && parameters.is_none()
            && scope.session.is_none()
            && site.endpoint().is_none()
            && !self.registry.has_replicas();
        let describe = |site: Site, database: String| {
            let query_id = &query_id;
            async move {
                self.describe_at(&site, scope, &database, sql, query_id, startable)
                    .await
            }
        };
        // A read (started or not) may move to another executor serving its data.
        let (description, site, database) = self
            .at_reachable(scope, sql, site, database, one_query, describe)
            .await?;
        scope.check_writes(description.is_query)?;
        let mut location = None;
        let (schema, ticket) = if description.is_query {
            let fragment = FragmentTicket {
                query_id: query_id.clone(),
                executor_id: site.id().to_string(),
                database: database.clone(),
                sql: sql.to_string(),
                parameters: parameters
                    .map(batch_to_bytes)
                    .transpose()
                    .map_err(Error::Parameters)?
                    .unwrap_or_default(),
                session_id: scope.session_id().unwrap_or_default(),
                schema: scope.schema.clone().unwrap_or_default(),
                read_only: scope.principal.is_read_only(),
                result_limit: 0,
                grants: scope.principal.grants().map(openduck_remote::grants_to_pb),
            };
            if self.direct_results {
                location = site.endpoint().map(str::to_string);
            }
            debug!(%query_id, executor = site.id(), database, "planned single-site query");
            (description.schema, TicketKind::Fragment(fragment))
        } else {
            let mut statement = scope.statement(&database, sql);
            statement.parameters = parameters.cloned();
            statement.result_limit = Some(self.held_result_limit).filter(|limit| *limit > 0);
            let rows = site.query(statement).await?;
            self.planner.invalidate();
            self.registry.refresh_local();
            let result_schema = rows.schema();
            let batches: Vec<RecordBatch> = rows.try_collect().await?;
            debug!(%query_id, executor = site.id(), database, "ran a changing statement at planning");
            (
                Some(SchemaRef::clone(&result_schema)),
                self.hold(&query_id, result_schema, batches),
            )
        };
        Ok(PlannedQuery {
            query_id,
            schema,
            ran: !description.is_query,
            endpoints: vec![PlannedEndpoint {
                ticket: self.signer.sign(ticket),
                location,
            }],
            executor_id: site.id().to_string(),
        })
    }

    /// `call` on `site` (with `database`), and where it ran. When it cannot
    /// reach the executor and the statement may run elsewhere (`movable`,
    /// outside a session), the executor is noted as unreachable and `call`
    /// runs once more where `sql` is routed now, if that is elsewhere (a
    /// replica of the same data).
    async fn at_reachable<T, F, Fut>(
        &self,
        scope: &Scope,
        sql: &str,
        site: Site,
        database: String,
        movable: bool,
        call: F,
    ) -> Result<(T, Site, String)>
    where
        F: Fn(Site, String) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        match call(site.clone(), database.clone()).await {
            Err(error) if movable && scope.session.is_none() && error.kind() == ErrorKind::Unavailable => {
                self.registry.unreachable(site.id(), &error);
                match self.route_in(scope, sql).await {
                    Ok((Route::Site(other), database)) if other.id() != site.id() => {
                        let value = call(other.clone(), database.clone()).await?;
                        Ok((value, other, database))
                    }
                    _ => Err(error),
                }
            }
            done => Ok((done?, site, database)),
        }
    }

    /// What `sql` returns when run on `site`: described there, or, when
    /// `startable` and a slot is free, started there already (its rows wait
    /// for the ticket of `query_id`).
    async fn describe_at(
        &self,
        site: &Site,
        scope: &Scope,
        database: &str,
        sql: &str,
        query_id: &str,
        startable: bool,
    ) -> Result<Description> {
        let Some(slot) = startable.then(|| self.started.reserve()).flatten() else {
            return Ok(site.executor().describe(&scope.statement(database, sql)).await?);
        };
        let mut statement = scope.statement(database, sql);
        statement.query_id = Some(query_id.to_string());
        let rows = site.query(statement).await?;
        let schema = rows.schema();
        self.started.keep(query_id, rows, slot);
        Ok(Description {
            schema: Some(schema),
            parameters: arrow::datatypes::Schema::empty(),
            is_query: true,
        })
    }

    /// Runs a query over the query history now, and holds its result for the
    /// ticket (the history changes with every statement).
    async fn plan_history(&self, scope: &Scope, sql: &str, parameters: Option<&RecordBatch>) -> Result<PlannedQuery> {
        if parameters.is_some() {
            return Err(Error::Distributed {
                kind: openduck_api::ErrorKind::Unimplemented,
                message: "parameters are not supported in queries of openduck.main.query_history".into(),
            });
        }
        let (schema, batches) = self.history.query(&scope.principal, sql).await?;
        let query_id = uuid::Uuid::new_v4().to_string();
        let ticket = self.hold(&query_id, SchemaRef::clone(&schema), batches);
        Ok(self.planned_here(query_id, schema, ticket))
    }

    /// A query this coordinator answers itself (no executor runs it as a
    /// whole, and nothing ran that changed data).
    fn planned_here(&self, query_id: String, schema: SchemaRef, ticket: TicketKind) -> PlannedQuery {
        PlannedQuery {
            query_id,
            schema: Some(schema),
            endpoints: vec![PlannedEndpoint {
                ticket: self.signer.sign(ticket),
                location: None,
            }],
            executor_id: String::new(),
            ran: false,
        }
    }

    /// Holds a result computed at planning under `query_id`, for the ticket
    /// this returns to redeem once.
    fn hold(&self, query_id: &str, schema: SchemaRef, batches: Vec<RecordBatch>) -> TicketKind {
        let bytes = batches.iter().map(openduck_api::result_bytes).sum();
        self.held.put(query_id, (schema, batches), bytes);
        TicketKind::Held(HeldResult {
            query_id: query_id.to_string(),
        })
    }

    /// The query id inside a ticket, if the ticket verifies.
    pub fn query_id(&self, ticket: &[u8]) -> Option<String> {
        let id = match self.signer.verify(ticket).ok()? {
            TicketKind::Held(held) => held.query_id,
            TicketKind::Distributed(query) => query.query_id,
            TicketKind::Fragment(fragment) => fragment.query_id,
        };
        Some(id)
    }

    /// Plans a query across executors. The plan waits here for the ticket;
    /// the ticket carries the SQL too, so that any coordinator can redeem it.
    async fn plan_spanning(
        &self,
        scope: &Scope,
        database: &str,
        sql: &str,
        explain: bool,
        query: &str,
        parameters: Option<&RecordBatch>,
    ) -> Result<PlannedQuery> {
        if parameters.is_some() {
            return Err(Error::Distributed {
                kind: openduck_api::ErrorKind::Unimplemented,
                message: "parameters are not supported yet in queries across executors".into(),
            });
        }
        let sites = self.registry.sites();
        let plan = self
            .planner
            .plan(
                (&sites, self.registry.catalog_epoch()),
                database,
                scope.schema.as_deref(),
                query,
            )
            .instrument(info_span!("plan", openduck.database = database))
            .await?;
        let query_id = uuid::Uuid::new_v4().to_string();
        let (schema, ticket) = if explain {
            let lines = plan.explain().await?;
            let schema = explain_schema();
            let column = arrow::array::StringArray::from(lines);
            let batch =
                RecordBatch::try_new(SchemaRef::clone(&schema), vec![Arc::new(column)]).map_err(Error::Parameters)?;
            (SchemaRef::clone(&schema), self.hold(&query_id, schema, vec![batch]))
        } else if let Some(planned) = self.planned_in_parts(scope, &query_id, &plan).await? {
            return Ok(planned);
        } else {
            let query = DistributedQuery {
                query_id: query_id.clone(),
                database: database.to_string(),
                schema: scope.schema.clone().unwrap_or_default(),
                sql: sql.to_string(),
                grants: scope.principal.grants().map(openduck_remote::grants_to_pb),
            };
            let schema = plan.schema();
            self.plans.put(&query_id, plan, 0);
            (schema, TicketKind::Distributed(query))
        };
        debug!(%query_id, database, "planned a query across executors");
        Ok(self.planned_here(query_id, schema, ticket))
    }

    /// The trace context of the call that planned a ticket, if the ticket
    /// verifies (empty otherwise): fetching its rows joins that trace.
    pub fn trace_context(&self, ticket: &[u8]) -> String {
        self.signer
            .verify_traced(ticket)
            .map(|(_, trace)| trace)
            .unwrap_or_default()
    }

    /// Verifies a ticket and streams its rows. A fragment's ticket goes
    /// to its executor as it is.
    pub async fn execute_ticket(&self, ticket: &[u8]) -> Result<ResultStream> {
        match self.signer.verify(ticket)? {
            TicketKind::Held(held) => {
                let (schema, batches) = self
                    .held
                    .take(&held.query_id)
                    .ok_or_else(|| Error::ResultGone(held.query_id.clone()))?;
                Ok(ResultStream::new(
                    schema,
                    futures::stream::iter(batches.into_iter().map(Ok)).boxed(),
                ))
            }
            TicketKind::Distributed(query) => {
                // Planned here: the plan whose schema the client was given.
                // Planned elsewhere: planned again from the ticket's SQL.
                let plan = match self.plans.take(&query.query_id) {
                    Some(plan) => plan,
                    None => {
                        let sites = self.registry.sites();
                        let schema = Some(query.schema.as_str()).filter(|schema| !schema.is_empty());
                        let catalogs = (&sites[..], self.registry.catalog_epoch());
                        self.planner.plan(catalogs, &query.database, schema, &query.sql).await?
                    }
                };
                info!(query_id = %query.query_id, "executing a query across executors");
                let grants = openduck_remote::grants_of(query.grants);
                self.distributed.track(&query.query_id, plan.execute(grants).await?)
            }
            TicketKind::Fragment(fragment) => {
                if let Some(rows) = self.started.take(&fragment.query_id) {
                    info!(query_id = %fragment.query_id, "streaming a query started at planning");
                    return Ok(rows);
                }
                let Some(site) = self.registry.site(&fragment.executor_id) else {
                    return self.reroute(fragment).await;
                };
                info!(query_id = %fragment.query_id, executor = site.id(), "executing fragment");
                match site.redeem(ticket, fragment.clone()).await {
                    // A read whose executor cannot be reached: another
                    // executor serving its data runs it.
                    Err(error) if error.kind() == ErrorKind::Unavailable && self.reads_only(&fragment) => {
                        self.registry.unreachable(site.id(), &error);
                        match self.rerouted(&fragment).await {
                            Ok((other, statement)) if other.id() != site.id() => {
                                warn!(query_id = %fragment.query_id, unreachable = site.id(), executor = other.id(), "running a read on another executor");
                                other.query(statement).await
                            }
                            _ => Err(error),
                        }
                    }
                    redeemed => redeemed,
                }
            }
        }
    }

    /// Whether `fragment` is one read-only query outside any session, which
    /// another executor serving its data (a replica) answers alike.
    fn reads_only(&self, fragment: &FragmentTicket) -> bool {
        fragment.session_id.is_empty()
            && self.registry.has_replicas()
            && analyse(&fragment.sql, &self.registry.known_databases(), &fragment.database)
                .query
                .is_some()
    }

    /// Runs a fragment planned for an executor that has left since (drained
    /// in a rolling update, say) where its databases are served now, as it
    /// would be routed today. It never ran (a fragment runs when fetched),
    /// and it is a query, which any executor serving them answers alike (a
    /// lagging replica as it would have if routed there at planning). One
    /// bound to a session cannot move (the session lived on the executor
    /// that left).
    async fn reroute(&self, fragment: FragmentTicket) -> Result<ResultStream> {
        let gone = fragment.executor_id.clone();
        if !fragment.session_id.is_empty() {
            return Err(Error::UnknownExecutor(gone));
        }
        let (site, statement) = self.rerouted(&fragment).await?;
        warn!(query_id = %fragment.query_id, %gone, executor = site.id(), "the executor a query was planned for has left; running it on another");
        site.query(statement).await
    }

    /// Where `fragment` would be routed now, and its statement there.
    async fn rerouted(&self, fragment: &FragmentTicket) -> Result<(Site, openduck_api::Statement)> {
        let scope = Scope {
            database: Some(fragment.database.clone()),
            schema: Some(fragment.schema.clone()).filter(|schema| !schema.is_empty()),
            ..Scope::default()
        };
        let (Route::Site(site), database) = self.route_in(&scope, &fragment.sql).await? else {
            return Err(Error::UnknownExecutor(fragment.executor_id.clone()));
        };
        let mut statement = openduck_remote::statement_of(fragment.clone()).map_err(Error::Parameters)?;
        statement.database = database;
        Ok((site, statement))
    }

    /// Runs a statement whose rows are not wanted; returns the rows changed
    /// (`None` for statements that are not DML).
    pub async fn execute_update(
        &self,
        scope: &Scope,
        sql: &str,
        parameters: Option<RecordBatch>,
    ) -> Result<Option<u64>> {
        scope.check_writes(false)?;
        let (site, database) = self.site_in(scope, sql).await?;
        let mut statement = scope.statement(&database, sql);
        statement.parameters = parameters;
        let changed = site.executor().update(statement).await;
        self.planner.invalidate();
        self.registry.refresh_local();
        Ok(changed?)
    }

    /// Cancels the query a ticket runs: interrupts it if it runs and refuses
    /// to run it later.
    pub async fn cancel(&self, ticket: &[u8]) -> Result<Cancelled> {
        match self.signer.verify(ticket)? {
            TicketKind::Held(_) => Ok(Cancelled::NotCancellable),
            TicketKind::Distributed(query) => {
                let was_running = self.distributed.cancel(&query.query_id);
                info!(query_id = %query.query_id, was_running, "query across executors cancelled");
                Ok(Cancelled::Cancelled)
            }
            TicketKind::Fragment(fragment) => {
                // A query started at planning stops as its waiting rows go.
                drop(self.started.take(&fragment.query_id));
                // Its executor left, or cannot be reached: the query may run
                // where it was moved.
                let was_running = match self.registry.site(&fragment.executor_id) {
                    Some(site) => match site.executor().cancel(&fragment.query_id).await {
                        Err(error) if error.kind() == ErrorKind::Unavailable => {
                            self.cancel_everywhere(&fragment.query_id).await
                        }
                        cancelled => cancelled?,
                    },
                    None => self.cancel_everywhere(&fragment.query_id).await,
                };
                info!(query_id = %fragment.query_id, was_running, "query cancelled");
                Ok(Cancelled::Cancelled)
            }
        }
    }

    /// Cancels `query_id` on every executor that answers; whether it ran on any.
    async fn cancel_everywhere(&self, query_id: &str) -> bool {
        let mut was_running = false;
        for site in self.registry.sites().iter() {
            was_running |= site.executor().cancel(query_id).await.unwrap_or(false);
        }
        was_running
    }

    /// Opens a session on the executor that hosts `database` (the default
    /// when `None`).
    pub async fn open_session(&self, database: Option<&str>) -> Result<ClientSession> {
        let database = database.map_or_else(|| self.default_database(), str::to_string);
        let site = self.site_for(&database)?;
        Ok(ClientSession {
            executor_id: site.id().to_string(),
            session: site.open_session().await?,
        })
    }

    /// Starts a transaction in `session`, read-only for a read-only user.
    pub async fn begin(&self, session: &ClientSession, principal: &Principal) -> Result<()> {
        Ok(self
            .site(&session.executor_id)?
            .executor()
            .begin(session.session.id(), principal.is_read_only())
            .await?)
    }

    /// Commits the transaction of `session`.
    pub async fn commit(&self, session: &ClientSession) -> Result<()> {
        Ok(self
            .site(&session.executor_id)?
            .executor()
            .commit(session.session.id())
            .await?)
    }

    /// Rolls the transaction of `session` back.
    pub async fn rollback(&self, session: &ClientSession) -> Result<()> {
        Ok(self
            .site(&session.executor_id)?
            .executor()
            .rollback(session.session.id())
            .await?)
    }

    /// Appends a stream of record batches to a table on the executor that
    /// hosts `target.database`; returns the rows appended.
    pub async fn ingest<S, E>(
        &self,
        scope: &Scope,
        mut target: IngestTarget,
        schema: SchemaRef,
        batches: S,
    ) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<RecordBatch, E>> + Unpin + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        scope.check_writes(false)?;
        if !target.temporary {
            scope.check_granted(&target.database)?;
        }
        let site = self.site_for(&target.database)?;
        scope.check_executor(site.id())?;
        target.session_id = scope.session_id();
        let appended = site.ingest(target, schema, batches).await;
        self.planner.invalidate();
        appended
    }

    /// Shuts every executor down: running statements are interrupted and the
    /// databases checkpointed.
    pub async fn shutdown(&self, grace: Duration) -> Result<()> {
        // Queries waiting for a ticket that will not come now hold connections.
        self.started.clear();
        for site in self.registry.sites().iter() {
            site.executor().shutdown(grace).await?;
        }
        Ok(())
    }
}

/// EXPLAIN of a query across executors: one line of the plan per row.
fn explain_schema() -> SchemaRef {
    Arc::new(arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new(
        "plan",
        arrow::datatypes::DataType::Utf8,
        false,
    )]))
}
