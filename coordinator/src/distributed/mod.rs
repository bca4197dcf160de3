//! Queries across executors: DataFusion plans them over a mirror of every
//! executor's catalog; a query whose tables live on one executor but some
//! small ones runs there whole, the small ones shipped there (`whole`);
//! otherwise the cut sends the largest single-executor parts to their
//! executors as REMOTE fragments, and the rest runs here (LOCAL).

mod catalog;
mod cut;
mod dialect;
mod division;
mod eager;
mod explain;
mod fragment;
mod group;
mod partial;
mod parts;
mod running;
mod semi;
mod ship;
mod sql;
mod whole;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use datafusion::catalog::CatalogProviderList;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SessionState;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{execute_stream, ExecutionPlan};
use datafusion::prelude::SessionConfig;
use futures::{StreamExt, TryStreamExt};
use openduck_api::{ErrorKind, Grants};
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::results::ResultStream;
use crate::site::Site;

pub(crate) use explain::explain_lines;
pub(crate) use running::RunningQueries;
pub use ship::DEFAULT_SHIPPING_THRESHOLD;

/// How long a mirrored catalog is used at most before it is listed again.
/// Changes made through this coordinator, and those executors announce
/// (their catalog version), refresh it at once.
const CATALOG_TTL: Duration = Duration::from_secs(30);

/// The catalog mirror: when it was listed, the registry's catalog epoch
/// then, and the catalogs.
type Mirror = (Instant, u64, Arc<dyn CatalogProviderList>);

/// Plans queries that span executors.
#[derive(Debug)]
pub(crate) struct DistributedPlanner {
    catalogs: Mutex<Option<Mirror>>,
    /// When a join's small side moves to its large side (see `ship`).
    shipping: Option<u64>,
}

impl Default for DistributedPlanner {
    fn default() -> Self {
        DistributedPlanner {
            catalogs: Mutex::default(),
            shipping: Some(DEFAULT_SHIPPING_THRESHOLD),
        }
    }
}

/// A query planned across executors, ready to run.
#[derive(Debug)]
pub(crate) struct DistributedPlan {
    plan: LogicalPlan,
    state: SessionState,
}

impl DistributedPlanner {
    /// A planner that ships a join's small side to its large side's executor
    /// when pulling the large side would move at least `threshold` values
    /// (rows times columns, estimated); `None` never ships.
    pub(crate) fn with_shipping(threshold: Option<u64>) -> Self {
        DistributedPlanner {
            shipping: threshold,
            ..DistributedPlanner::default()
        }
    }

    /// Forgets the mirrored catalog: a statement may have changed one.
    pub(crate) fn invalidate(&self) {
        *self.catalogs.lock() = None;
    }

    async fn catalogs(&self, sites: &[Site], epoch: u64) -> Result<Arc<dyn CatalogProviderList>> {
        if let Some((listed, listed_epoch, catalogs)) = &*self.catalogs.lock() {
            if *listed_epoch == epoch && listed.elapsed() < CATALOG_TTL {
                return Ok(Arc::clone(catalogs));
            }
        }
        let catalogs = catalog::mirror(sites).await?;
        *self.catalogs.lock() = Some((Instant::now(), epoch, Arc::clone(&catalogs)));
        Ok(catalogs)
    }

    /// Plans `sql` over the catalogs of `sites` (in the registry's catalog
    /// `epoch`), with `database` (and `schema`) resolving unqualified names.
    pub(crate) async fn plan(
        &self,
        (sites, epoch): (&[Site], u64),
        database: &str,
        schema: Option<&str>,
        sql: &str,
    ) -> Result<DistributedPlan> {
        let catalogs = self.catalogs(sites, epoch).await?;
        let config = SessionConfig::new()
            .with_create_default_catalog_and_schema(false)
            .with_default_catalog_and_schema(database.to_lowercase(), schema.unwrap_or("main").to_lowercase())
            .with_information_schema(false)
            .with_target_partitions(2);
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .with_catalog_list(catalogs)
            .with_query_planner(Arc::new(fragment::WithFragments))
            .build();
        let logical = state.create_logical_plan(sql).await.map_err(from_datafusion)?;
        let logical = division::as_duckdb_divides(logical).map_err(from_datafusion)?;
        let grouped = group::group_by_executor(logical).map_err(from_datafusion)?;
        let optimized = state.optimize(&grouped).map_err(from_datafusion)?;
        if let Some(least) = self.shipping {
            if let Some(plan) = whole::on_one_executor(&optimized, sql, (database, schema), least) {
                return Ok(DistributedPlan { plan, state });
            }
        }
        let moved = semi::push_down_semi_joins(optimized).map_err(from_datafusion)?;
        let moved = semi::distinct_semi_join_keys(moved).map_err(from_datafusion)?;
        let moved = partial::split_aggregates_over_unions(moved).map_err(from_datafusion)?;
        let moved = eager::aggregate_below_joins(moved, self.shipping).map_err(from_datafusion)?;
        let plan = cut::cut(moved, self.shipping).map_err(from_datafusion)?;
        Ok(DistributedPlan { plan, state })
    }
}

impl DistributedPlan {
    /// The schema of its rows.
    pub(crate) fn schema(&self) -> SchemaRef {
        SchemaRef::new(self.plan.schema().as_arrow().clone())
    }

    /// The plan with every operator marked LOCAL or REMOTE, one line each.
    pub(crate) async fn explain(&self) -> Result<Vec<String>> {
        Ok(explain_lines(&self.plan, self.physical().await?.as_ref()))
    }

    async fn physical(&self) -> Result<Arc<dyn ExecutionPlan>> {
        self.state
            .query_planner()
            .create_physical_plan(&self.plan, &self.state)
            .await
            .map_err(from_datafusion)
    }

    /// Runs it for a user granted `grants` (`None` for all databases),
    /// streaming the rows as the LOCAL operators produce them.
    pub(crate) async fn execute(mut self, grants: Option<Grants>) -> Result<ResultStream> {
        let physical = self.physical().await?;
        // DataFusion runs parts of the plan in tasks of their own, where the
        // current span is gone: the fragments find the query's span here.
        self.state.config_mut().set_extension(Arc::new(QueryContext {
            span: tracing::Span::current(),
            grants,
        }));
        let stream = execute_stream(physical, self.state.task_ctx()).map_err(from_datafusion)?;
        let schema = stream.schema();
        Ok(ResultStream::new(schema, stream.map_err(from_datafusion).boxed()))
    }
}

/// What the fragments of a running plan need to know of its query.
#[derive(Debug)]
pub(crate) struct QueryContext {
    /// The query's span, which the fragments' calls to executors are children of.
    pub(crate) span: tracing::Span,
    /// The databases its user was granted; the fragments' statements carry them.
    pub(crate) grants: Option<Grants>,
}

/// The coordinator's error for a DataFusion error: an executor's own error
/// comes back out as it went in; DataFusion's are classified.
pub(crate) fn from_datafusion(error: DataFusionError) -> Error {
    match error {
        DataFusionError::External(inner) => match inner.downcast::<Error>() {
            Ok(error) => *error,
            Err(other) => Error::Distributed {
                kind: ErrorKind::Internal,
                message: other.to_string(),
            },
        },
        // Context and diagnostics (where in the SQL) around the error itself.
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => from_datafusion(*inner),
        // One error seen by several operators (a join's shared build side).
        DataFusionError::Shared(shared) => match Arc::try_unwrap(shared) {
            Ok(inner) => from_datafusion(inner),
            Err(shared) => Error::Distributed {
                kind: kind_of(&shared),
                message: message_of(&shared),
            },
        },
        other => Error::Distributed {
            kind: kind_of(&other),
            message: message_of(&other),
        },
    }
}

/// How an error is classified, looking through DataFusion's wrappers.
fn kind_of(error: &DataFusionError) -> ErrorKind {
    match error {
        DataFusionError::External(inner) => inner.downcast_ref::<Error>().map_or(ErrorKind::Internal, Error::kind),
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => kind_of(inner),
        DataFusionError::Shared(inner) => kind_of(inner),
        // Several errors reported together (unknown columns of one query): the first's.
        DataFusionError::Collection(errors) if !errors.is_empty() => kind_of(&errors[0]),
        DataFusionError::NotImplemented(_) => ErrorKind::Unimplemented,
        DataFusionError::ResourcesExhausted(_) => ErrorKind::ResourceExhausted,
        DataFusionError::Plan(message) if message.contains("not found") => ErrorKind::NotFound,
        DataFusionError::SchemaError(..) | DataFusionError::Plan(_) | DataFusionError::SQL(..) => {
            ErrorKind::InvalidArgument
        }
        _ => ErrorKind::Internal,
    }
}

/// The message of the error inside DataFusion's wrappers.
fn message_of(error: &DataFusionError) -> String {
    match error {
        DataFusionError::External(inner) => inner.to_string(),
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => message_of(inner),
        DataFusionError::Shared(inner) => message_of(inner),
        DataFusionError::Collection(errors) if !errors.is_empty() => {
            errors.iter().map(message_of).collect::<Vec<_>>().join("; ")
        }
        other => other.strip_backtrace(),
    }
}
