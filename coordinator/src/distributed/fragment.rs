//! A REMOTE fragment: DuckDB SQL that one executor runs, and the Bridge that
//! streams its rows into the coordinator's DataFusion plan.
//!
//! In the logical plan a fragment is a [`Fragment`] leaf carrying the
//! schema of the subtree it replaced; the [`FragmentPlanner`] turns it into
//! a [`FragmentExec`], which starts the fragment when DataFusion first polls
//! it and yields its batches as they arrive (one at a time: backpressure
//! reaches the executor through Flight's flow control).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::cast;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::common::DFSchemaRef;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::context::{QueryPlanner, SessionState};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, SendableRecordBatchStream,
};
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use futures::{stream, TryStreamExt};
use openduck_api::{result_bytes, ErrorKind, Statement, Transferred};
use tracing::{info, Instrument};

use super::ship::{run, Shipped};
use super::QueryContext;
use crate::error::Error;
use crate::site::Site;

/// A subtree of the plan that runs on one executor as DuckDB SQL.
#[derive(Debug, Clone)]
pub(crate) struct Fragment {
    pub(crate) site: Site,
    /// The database the SQL runs in (its table names are fully qualified).
    pub(crate) database: String,
    pub(crate) sql: String,
    /// The schema of the subtree it replaced; rows arrive in this order.
    pub(crate) schema: DFSchemaRef,
    /// The small sides of joins shipped to its executor, which its SQL reads
    /// as temporary tables: each runs first and fills its table.
    pub(crate) shipped: Vec<Shipped>,
}

impl Fragment {
    fn key(&self) -> (&str, &str) {
        (self.site.id(), self.sql.as_str())
    }
}

impl PartialEq for Fragment {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Fragment {}

impl Hash for Fragment {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl PartialOrd for Fragment {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.key().cmp(&other.key()))
    }
}

impl UserDefinedLogicalNodeCore for Fragment {
    fn name(&self) -> &str {
        "Bridge"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        Vec::new()
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        fmt_bridge(f, &self.site, &self.sql, &self.shipped)
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, _inputs: Vec<LogicalPlan>) -> DfResult<Self> {
        Ok(self.clone())
    }
}

/// Plans [`Fragment`] nodes as [`FragmentExec`]s.
#[derive(Debug)]
pub(crate) struct FragmentPlanner;

#[async_trait]
impl ExtensionPlanner for FragmentPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        _physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session_state: &SessionState,
    ) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
        // A shipped side the cut left here (its join could not be written
        // as SQL after all) is read from its own executor, as any fragment.
        let fragment = match node.as_any().downcast_ref::<Shipped>() {
            Some(shipped) => &shipped.source,
            None => match node.as_any().downcast_ref::<Fragment>() {
                Some(fragment) => fragment,
                None => return Ok(None),
            },
        };
        Ok(Some(Arc::new(FragmentExec::of(fragment))))
    }
}

/// DataFusion's query planner with fragments.
#[derive(Debug)]
pub(crate) struct WithFragments;

#[async_trait]
impl QueryPlanner for WithFragments {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session_state: &SessionState,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(FragmentPlanner)])
            .create_physical_plan(logical_plan, session_state)
            .await
    }
}

/// The Bridge: runs a fragment on its executor and streams the rows, cast
/// to the types DataFusion planned with.
#[derive(Debug)]
pub(crate) struct FragmentExec {
    site: Site,
    database: String,
    sql: String,
    shipped: Vec<Shipped>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl FragmentExec {
    pub(crate) fn new(site: Site, database: String, sql: String, schema: SchemaRef) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(SchemaRef::clone(&schema)),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        FragmentExec {
            site,
            database,
            sql,
            shipped: Vec::new(),
            schema,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }
}

impl FragmentExec {
    /// The Bridge of `fragment`, with the shipped sides it reads.
    fn of(fragment: &Fragment) -> Self {
        let schema = SchemaRef::new(fragment.schema.as_arrow().clone());
        let mut exec = FragmentExec::new(
            fragment.site.clone(),
            fragment.database.clone(),
            fragment.sql.clone(),
            schema,
        );
        exec.shipped.clone_from(&fragment.shipped);
        exec
    }
}

impl DisplayAs for FragmentExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        fmt_bridge(f, &self.site, &self.sql, &self.shipped)
    }
}

/// A Bridge as plans show it, logical or physical.
fn fmt_bridge(f: &mut fmt::Formatter, site: &Site, sql: &str, shipped: &[Shipped]) -> fmt::Result {
    write!(f, "Bridge [REMOTE {}]: {}", site.id(), sql)?;
    for shipped in shipped {
        write!(f, " with ")?;
        UserDefinedLogicalNodeCore::fmt_for_explain(shipped, f)?;
    }
    Ok(())
}

impl ExecutionPlan for FragmentExec {
    fn name(&self) -> &str {
        "Bridge"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> DfResult<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal("a Bridge has no children".into()))
        }
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        let query = context.session_config().get_extension::<QueryContext>();
        let span = query
            .as_ref()
            .map_or_else(tracing::Span::current, |query| query.span.clone());
        let site = self.site.clone();
        let mut statement = Statement::new(self.database.clone(), self.sql.clone());
        statement.grants = query.and_then(|query| query.grants.clone());
        let shipped = self.shipped.clone();
        let schema = SchemaRef::clone(&self.schema);
        let rows = MetricBuilder::new(&self.metrics).output_rows(partition);
        let bytes = MetricBuilder::new(&self.metrics).counter("bytes_received", partition);
        let target = SchemaRef::clone(&schema);
        let mut moved = Moved::new(site.id(), None);
        let sql = self.sql.clone();
        let batches = stream::once(run(site, statement, shipped).instrument(span))
            .try_flatten()
            .map_err(move |error| DataFusionError::External(Box::new(unrunnable(error, &sql))))
            .and_then(move |batch| {
                // The whole guard moves into the closure, and logs when the stream goes.
                moved.add(&batch);
                let cast = conform(&batch, &target, &rows, &bytes);
                async move { cast }
            });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// An executor's error for a fragment. DataFusion parsed and bound the
/// query already, so DuckDB failing to parse or bind the SQL written for it
/// means the query has a shape the fragment writer does not support: that
/// is `Unimplemented`, naming the fragment, not the client's bad SQL.
fn unrunnable(error: Error, sql: &str) -> Error {
    let message = error.to_string();
    if error.kind() != ErrorKind::InvalidArgument
        || !(message.contains("Parser Error") || message.contains("Binder Error"))
    {
        return error;
    }
    Error::Distributed {
        kind: ErrorKind::Unimplemented,
        message: format!(
            "this query's shape is not supported across executors: the fragment written for it \
             does not run ({message}); fragment: {sql}"
        ),
    }
}

/// What one Bridge received, logged when it is done (finished, failed or
/// dropped), so that operators see what crossed the network.
pub(super) struct Moved {
    executor: String,
    /// Where the rows went on to: the executor a join's small side was
    /// shipped to (they crossed twice); `None` for rows the plan uses here.
    shipped_to: Option<String>,
    rows: usize,
    bytes: usize,
}

impl Moved {
    pub(super) fn new(executor: &str, shipped_to: Option<&str>) -> Self {
        Moved {
            executor: executor.to_string(),
            shipped_to: shipped_to.map(str::to_string),
            rows: 0,
            bytes: 0,
        }
    }

    /// Logs what crossed from executor `from` straight to executor `to` (a
    /// join's small side, fetched by the executor of its large side).
    pub(super) fn transferred(from: &str, to: &str, transferred: Transferred) {
        info!(
            executor = %from, shipped_to = %to, rows = transferred.rows, bytes = transferred.bytes, "transfer finished"
        );
    }

    pub(super) fn add(&mut self, batch: &RecordBatch) {
        self.rows += batch.num_rows();
        self.bytes += result_bytes(batch);
    }
}

impl Drop for Moved {
    fn drop(&mut self) {
        match &self.shipped_to {
            Some(to) => info!(
                executor = %self.executor, shipped_to = %to, rows = self.rows, bytes = self.bytes, "bridge finished"
            ),
            None => info!(executor = %self.executor, rows = self.rows, bytes = self.bytes, "bridge finished"),
        }
    }
}

/// A batch as DataFusion planned it: the planned names and types, by position.
fn conform(batch: &RecordBatch, target: &SchemaRef, rows: &Count, bytes: &Count) -> DfResult<RecordBatch> {
    rows.add(batch.num_rows());
    bytes.add(result_bytes(batch));
    if target.fields().is_empty() {
        // A scan that only counts rows: its placeholder column goes.
        return Ok(RecordBatch::try_new_with_options(
            SchemaRef::clone(target),
            Vec::new(),
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
        )?);
    }
    if batch.num_columns() != target.fields().len() {
        return Err(DataFusionError::Execution(format!(
            "a fragment returned {} columns where {} were planned",
            batch.num_columns(),
            target.fields().len()
        )));
    }
    let columns = batch
        .columns()
        .iter()
        .zip(target.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Ok(Arc::clone(column))
            } else {
                cast(column, field.data_type())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new_with_options(
        SchemaRef::clone(target),
        columns,
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(kind: ErrorKind, message: &str) -> Error {
        Error::Executor(openduck_api::Error::new(
            kind,
            format!("executor \"exec-1\": {message}"),
        ))
    }

    #[test]
    fn sql_the_executor_cannot_parse_or_bind_is_unimplemented_and_names_the_fragment() {
        for message in [
            "Parser Error: SELECT clause without selection list",
            "Binder Error: Referenced column \"c9\" not found",
        ] {
            let error = unrunnable(remote(ErrorKind::InvalidArgument, message), "SELECT FROM t");
            assert_eq!(error.kind(), ErrorKind::Unimplemented, "{error}");
            let text = error.to_string();
            assert!(
                text.contains(message) && text.contains("fragment: SELECT FROM t"),
                "{text}"
            );
        }
    }

    #[test]
    fn errors_of_the_data_keep_their_kind() {
        for (kind, message) in [
            (
                ErrorKind::InvalidArgument,
                "Conversion Error: Could not convert string 'x' to INT32",
            ),
            (ErrorKind::Cancelled, "INTERRUPT Error: Interrupted!"),
            (ErrorKind::Unavailable, "transport error"),
        ] {
            let error = unrunnable(remote(kind, message), "SELECT 1");
            assert_eq!(error.kind(), kind, "{error}");
            assert!(!error.to_string().contains("fragment:"), "{error}");
        }
    }
}
