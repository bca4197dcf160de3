//! Moving a join's small side to its large side.
//!
//! When a join's inputs live on two executors, the cut would pull both to
//! the coordinator and join them here: the large side crosses whole. When one
//! side is much smaller (by the tables' row estimates and a guess at each
//! filter's selectivity), it is shipped instead: its rows stream into a
//! temporary table of the other executor, in a session the query holds there
//! while it runs, and the join (with whatever above it can run there too)
//! becomes part of that executor's fragment. The receiving executor fetches
//! the small side from its executor itself, with a ticket signed here; the
//! rows pass through the coordinator only where it cannot (an executor in
//! this process, or one without the cluster's CA to check its peer). The
//! large side does not move at all.
//!
//! The estimates only choose where the join runs, never what it returns:
//! DuckDB runs a shipped join with the meaning the cut already requires of
//! any join it sends to an executor.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::DFSchemaRef;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::logical_plan::FetchType;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    BinaryExpr, Expr, Extension, Join, JoinType, LogicalPlan, Operator, UserDefinedLogicalNodeCore,
};
use futures::future::BoxFuture;
use futures::{FutureExt, TryStreamExt};
use openduck_api::{quote_identifier, ErrorKind, IngestMode, IngestTarget, Statement};
use parking_lot::Mutex;
use tracing::debug;

use super::fragment::{Fragment, Moved};
use crate::error::Result;
use crate::results::ResultStream;
use crate::site::Site;

/// Most rows a shipped side may have by estimate: they are held in a
/// temporary table of the receiving executor while the query runs.
pub(super) const MOST_ROWS_SHIPPED: f64 = 2_000_000.0;

/// A side is shipped only when pulling the other side would move at least
/// this many times its values (it crosses twice; estimates are rough).
pub(super) const ADVANTAGE: f64 = 4.0;

/// By default a join's small side is shipped when pulling its large side
/// would move at least this many values (rows times columns): below, the
/// session and the temporary table cost more than the pull.
pub const DEFAULT_SHIPPING_THRESHOLD: u64 = 1_000_000;

/// A join's small side, shipped to the executor of its large side: in the
/// plan a leaf of that executor's subtree, read as a temporary table.
#[derive(Debug, Clone)]
pub(crate) struct Shipped {
    /// The small side: a fragment of its own executor.
    pub(crate) source: Fragment,
    /// The temporary table its rows fill on the receiving executor.
    pub(crate) table: String,
    /// Its estimated rows, as the cut weighed them.
    estimated_rows: u64,
}

impl Shipped {
    /// `source`, shipped into a table named after what it holds.
    pub(super) fn new(source: Fragment, estimated_rows: u64) -> Self {
        Shipped {
            table: table_name(&source),
            source,
            estimated_rows,
        }
    }

    /// `temp.main."<table>"`, where the receiving executor's session keeps it.
    pub(crate) fn qualified_name(&self) -> String {
        format!("temp.main.{}", quote_identifier(&self.table))
    }

    /// About how many values it ships: its estimated rows times its columns.
    pub(super) fn estimated_values(&self) -> f64 {
        self.estimated_rows as f64 * self.source.schema.fields().len().max(1) as f64
    }

    /// The parts of its qualified name, unquoted.
    pub(super) fn name_parts(&self) -> Vec<String> {
        vec!["temp".into(), "main".into(), self.table.clone()]
    }
}

impl PartialEq for Shipped {
    fn eq(&self, other: &Self) -> bool {
        self.table == other.table
    }
}

impl Eq for Shipped {}

impl Hash for Shipped {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.table.hash(state);
    }
}

impl PartialOrd for Shipped {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.table.cmp(&other.table))
    }
}

impl UserDefinedLogicalNodeCore for Shipped {
    fn name(&self) -> &str {
        "Shipped"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        Vec::new()
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.source.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "Shipped [REMOTE {} -> {}]: {}",
            self.source.site.id(),
            self.qualified_name(),
            self.source.sql
        )
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, _inputs: Vec<LogicalPlan>) -> DfResult<Self> {
        Ok(self.clone())
    }
}

/// The shipped node `plan` is, if it is one.
pub(crate) fn shipped_of(plan: &LogicalPlan) -> Option<&Shipped> {
    match plan {
        LogicalPlan::Extension(extension) => extension.node.as_any().downcast_ref::<Shipped>(),
        _ => None,
    }
}

/// `join` (whose inputs live on `left` and `right`, two executors) with its
/// small side shipped to the large side's executor, and that executor; or
/// `None` when the estimates do not say one side is much smaller, or the
/// large side is below `least` values (rows times columns).
/// `fragment` makes the small side's fragment (`None` when it cannot).
pub(super) fn ship_small_side(
    join: &Join,
    (left, right): (&Site, &Site),
    least: u64,
    fragment: impl FnOnce(LogicalPlan, Site) -> DfResult<Option<Fragment>>,
) -> DfResult<Option<(LogicalPlan, Site)>> {
    let (Some(left_bytes), Some(right_bytes)) = (weight(&join.left), weight(&join.right)) else {
        return Ok(None);
    };
    let ship_left = left_bytes < right_bytes;
    let (small, large) = if ship_left {
        (&join.left, &join.right)
    } else {
        (&join.right, &join.left)
    };
    let fields = small.schema().fields();
    if !moves_to(small, large, least)
        || fields.is_empty()
        || !fields.iter().all(|field| keeps_its_meaning(field.data_type()))
    {
        return Ok(None);
    }
    let small_rows = estimated_rows(small).unwrap_or(f64::INFINITY);
    let (from, to) = if ship_left {
        (left.clone(), right.clone())
    } else {
        (right.clone(), left.clone())
    };
    let Some(source) = fragment(small.as_ref().clone(), from)? else {
        return Ok(None);
    };
    debug!(
        from = source.site.id(),
        to = to.id(),
        rows = small_rows,
        sql = %source.sql,
        "shipping a join's small side"
    );
    let shipped = LogicalPlan::Extension(Extension {
        node: Arc::new(Shipped::new(source, small_rows as u64)),
    });
    let mut join = join.clone();
    if ship_left {
        join.left = Arc::new(shipped);
    } else {
        join.right = Arc::new(shipped);
    }
    Ok(Some((LogicalPlan::Join(join), to)))
}

/// Runs `statement` on `site` and streams its rows, after filling the
/// temporary tables of the sides `shipped` to it, in a session held on
/// `site` until the rows are read.
pub(super) fn run(
    site: Site,
    mut statement: Statement,
    shipped: Vec<Shipped>,
) -> BoxFuture<'static, Result<ResultStream>> {
    async move {
        if shipped.is_empty() {
            return site.query(statement).await;
        }
        let session = site.open_session().await?;
        statement.session_id = Some(session.id().to_string());
        fill(&site, &statement, shipped).await?;
        Ok(site.query(statement).await?.holding(session))
    }
    .boxed()
}

/// Fills the temporary tables of the sides `shipped` to `site`, in the
/// session `statement` runs in: each side runs on its own executor (after
/// the sides shipped to that one) and streams straight to `site`, or
/// through here where `site` cannot fetch from it. Each fills a table of
/// its own (the cut ships the same rows once per fragment).
fn fill<'a>(site: &'a Site, statement: &'a Statement, shipped: Vec<Shipped>) -> BoxFuture<'a, Result<()>> {
    async move {
        for side in shipped {
            let Fragment {
                site: from,
                database,
                sql,
                shipped: before,
                ..
            } = side.source;
            let mut source = Statement::new(database, sql);
            source.grants.clone_from(&statement.grants);
            let target = IngestTarget {
                database: statement.database.clone(),
                schema: None,
                table: side.table,
                mode: IngestMode::Create,
                temporary: true,
                session_id: statement.session_id.clone(),
                in_transaction: false,
                from_query: true,
            };
            // The source's own session, for the sides shipped to it in turn.
            let _held = if before.is_empty() {
                None
            } else {
                let held = from.open_session().await?;
                source.session_id = Some(held.id().to_string());
                fill(&from, &source, before).await?;
                Some(held)
            };
            if !transfer(&from, &source, site, target.clone()).await? {
                pass_through(&from, source, site, target).await?;
            }
        }
        Ok(())
    }
    .boxed()
}

/// Has `site` fetch the rows of `source` from `from` itself, with a ticket
/// signed for it; `false` where one of them is in this process or `site`
/// cannot reach `from` (nothing moved then).
async fn transfer(from: &Site, source: &Statement, site: &Site, target: IngestTarget) -> Result<bool> {
    let Some(ticketed) = from.executor().source(source) else {
        return Ok(false);
    };
    match site.executor().ingest_from(target, ticketed?).await {
        Ok(transferred) => {
            Moved::transferred(from.id(), site.id(), transferred);
            Ok(true)
        }
        Err(error) if does_not_fetch(&error) => {
            debug!(from = %from.id(), to = %site.id(), %error, "shipping through the coordinator");
            Ok(false)
        }
        Err(error) => Err(error.into()),
    }
}

/// Whether an executor answered that it does not fetch from its peers, and
/// did nothing: `Unimplemented`, or, from an executor older than the
/// request, the protocol error it gives every request it does not know.
fn does_not_fetch(error: &openduck_api::Error) -> bool {
    match error.kind() {
        ErrorKind::Unimplemented => true,
        ErrorKind::Internal => error.to_string().ends_with("protocol error: an empty request"),
        _ => false,
    }
}

/// Streams the rows of `source` from `from` through this process into
/// `target` on `site`.
async fn pass_through(from: &Site, source: Statement, site: &Site, target: IngestTarget) -> Result<()> {
    let rows = from.query(source).await?;
    let schema = rows.schema();
    let mut moved = Moved::new(from.id(), Some(site.id()));
    // The source's own error (an executor gone, a cancelled query) rather
    // than the ingest's retelling of it.
    let failure = Arc::new(Mutex::new(None));
    let kept = Arc::clone(&failure);
    let rows = rows.inspect_ok(move |batch| moved.add(batch)).map_err(move |error| {
        let message = error.to_string();
        *kept.lock() = Some(error);
        message
    });
    match site.ingest(target, schema, rows).await {
        Ok(_) => Ok(()),
        Err(error) => Err(failure.lock().take().unwrap_or(error)),
    }
}

/// Whether a column of this type, stored in a temporary table from its
/// Arrow form, compares and computes as the executor's own column does.
/// Arrow carries some of DuckDB's types as others: a `TIMETZ` as a `TIME`
/// (its offset gone), a `HUGEINT` as a `DECIMAL(38,0)`, an ENUM as a
/// dictionary, nested types as Arrow builds them. Columns of those Arrow
/// types stay where they are, whatever they were. (A `UUID` arrives as its
/// text, which compares and orders as the `UUID` does. A collation is not
/// known here: a collated column compares by it only where it lives.)
pub(super) fn keeps_its_meaning(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Float32
            | DataType::Float64
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Date32
            | DataType::Timestamp(_, _)
    ) || matches!(data_type, DataType::Decimal128(precision, scale) if *precision < 38 || *scale > 0)
}

/// The temporary table a shipped side fills: named after what it holds (its
/// executor and SQL, FNV-1a), so that two sides shipped to one fragment with
/// the same rows share one table, and plans read the same every time. (Not
/// `openduck...`: SQL that names `openduck` makes an executor list its
/// snapshots first.)
fn table_name(source: &Fragment) -> String {
    let hash = [source.site.id().as_bytes(), &[0], source.sql.as_bytes()]
        .concat()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("shipped_{hash:016x}")
}

/// Whether the estimates say that `small`, joined with `large` on another
/// executor, moves there: pulling `large` would move at least `least`
/// values (rows times columns) and at least [`ADVANTAGE`] times `small`'s,
/// and `small` has at most [`MOST_ROWS_SHIPPED`] rows.
pub(super) fn moves_to(small: &LogicalPlan, large: &LogicalPlan, least: u64) -> bool {
    let (Some(small_values), Some(large_values)) = (weight(small), weight(large)) else {
        return false;
    };
    large_values >= least as f64
        && estimated_rows(small).is_some_and(|rows| rows <= MOST_ROWS_SHIPPED)
        && small_values * ADVANTAGE <= large_values
}

/// Estimated rows times columns: what pulling `plan`'s rows would move.
fn weight(plan: &LogicalPlan) -> Option<f64> {
    Some(estimated_rows(plan)? * plan.schema().fields().len().max(1) as f64)
}

/// About how many rows `plan` returns, from its tables' row estimates and a
/// guess at each filter's selectivity; `None` where nothing is known (a view,
/// an operator this does not weigh).
pub(crate) fn estimated_rows(plan: &LogicalPlan) -> Option<f64> {
    let at_most = |rows: f64, fetch: Option<usize>| fetch.map_or(rows, |fetch| rows.min(fetch as f64));
    Some(match plan {
        LogicalPlan::TableScan(scan) => at_most(super::cut::table_rows(plan)? as f64, scan.fetch),
        LogicalPlan::Filter(filter) => estimated_rows(&filter.input)? * selectivity(&filter.predicate),
        LogicalPlan::Projection(projection) => estimated_rows(&projection.input)?,
        LogicalPlan::SubqueryAlias(alias) => estimated_rows(&alias.input)?,
        LogicalPlan::Sort(sort) => at_most(estimated_rows(&sort.input)?, sort.fetch),
        LogicalPlan::Limit(limit) => {
            let rows = estimated_rows(&limit.input)?;
            match limit.get_fetch_type() {
                Ok(FetchType::Literal(Some(fetch))) => rows.min(fetch as f64),
                _ => rows,
            }
        }
        LogicalPlan::Aggregate(aggregate) if aggregate.group_expr.is_empty() => 1.0,
        LogicalPlan::Aggregate(aggregate) => (estimated_rows(&aggregate.input)? * 0.1).max(1.0),
        LogicalPlan::Distinct(distinct) => estimated_rows(distinct.input())? * 0.5,
        LogicalPlan::Join(join) => {
            let (left, right) = (estimated_rows(&join.left)?, estimated_rows(&join.right)?);
            match join.join_type {
                JoinType::LeftSemi | JoinType::LeftAnti | JoinType::LeftMark => left * 0.5,
                JoinType::RightSemi | JoinType::RightAnti | JoinType::RightMark => right * 0.5,
                JoinType::Full => left + right,
                JoinType::Inner | JoinType::Left | JoinType::Right => left.max(right),
            }
        }
        LogicalPlan::Extension(_) => shipped_of(plan)?.estimated_rows as f64,
        _ => return None,
    })
}

/// The share of rows a range keeps: bounded on one side, and on both (a
/// range bounded on both sides is narrow far more often than not: a month,
/// a price band).
const ONE_SIDED: f64 = 1.0 / 3.0;
const TWO_SIDED: f64 = 0.05;

/// The share of rows a filter keeps, guessed from the shape of each of its
/// conjuncts; bounds of one expression on both sides count as one range.
pub(super) fn selectivity(predicate: &Expr) -> f64 {
    let mut ranges: HashMap<&Expr, (bool, bool)> = HashMap::new();
    let mut share = 1.0;
    for conjunct in split_conjunction(predicate) {
        match bound(conjunct) {
            Some((bounded, lower)) => {
                let sides = ranges.entry(bounded).or_default();
                if lower {
                    sides.0 = true;
                } else {
                    sides.1 = true;
                }
            }
            None => share *= conjunct_selectivity(conjunct),
        }
    }
    for (lower, upper) in ranges.into_values() {
        share *= if lower && upper { TWO_SIDED } else { ONE_SIDED };
    }
    share.clamp(1e-4, 1.0)
}

/// `(expression, true for a lower bound)` when `expr` bounds an expression
/// by a constant.
fn bound(expr: &Expr) -> Option<(&Expr, bool)> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = expr else {
        return None;
    };
    let lower = match op {
        Operator::Gt | Operator::GtEq => true,
        Operator::Lt | Operator::LtEq => false,
        _ => return None,
    };
    match (constant(left), constant(right)) {
        (false, true) => Some((left, lower)),
        (true, false) => Some((right, !lower)),
        _ => None,
    }
}

fn constant(expr: &Expr) -> bool {
    match expr {
        Expr::Literal(..) => true,
        Expr::Cast(cast) => constant(&cast.expr),
        Expr::TryCast(cast) => constant(&cast.expr),
        _ => false,
    }
}

fn conjunct_selectivity(expr: &Expr) -> f64 {
    match expr {
        Expr::BinaryExpr(BinaryExpr { op, left, right }) => match op {
            Operator::Eq => 0.1,
            Operator::NotEq => 0.9,
            Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq => ONE_SIDED,
            Operator::Or => (conjunct_selectivity(left) + conjunct_selectivity(right)).min(1.0),
            // A conjunction inside a disjunction: each branch of an OR of ANDs.
            Operator::And => selectivity(expr),
            _ => 0.5,
        },
        Expr::Between(_) => TWO_SIDED,
        Expr::InList(list) if !list.negated => (0.1 * list.list.len() as f64).min(0.5),
        Expr::Like(like) if !like.negated => 0.2,
        Expr::IsNull(_) => 0.1,
        Expr::IsNotNull(_) => 0.9,
        Expr::Not(inner) => 1.0 - conjunct_selectivity(inner).min(0.9),
        _ => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::{col, lit};

    use super::*;

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() < 1e-9
    }

    #[test]
    fn a_range_bounded_on_both_sides_is_one_narrow_range() {
        let month = col("d").gt_eq(lit(1)).and(col("d").lt(lit(31)));
        assert!(close(selectivity(&month), TWO_SIDED), "{}", selectivity(&month));
        assert!(close(selectivity(&col("d").gt(lit(1))), ONE_SIDED));
        // Bounds of two columns are two ranges; an equality is 10%.
        let two = col("d").gt(lit(1)).and(lit(5).gt(col("e"))).and(col("k").eq(lit("x")));
        assert!(
            close(selectivity(&two), ONE_SIDED * ONE_SIDED * 0.1),
            "{}",
            selectivity(&two)
        );
        let either = col("k").eq(lit("x")).or(col("k").eq(lit("y")));
        assert!(close(selectivity(&either), 0.2));
        // An OR of ANDs (TPC-H q19's part): each branch keeps its conjuncts' share.
        let branch = |brand: &str| col("b").eq(lit(brand)).and(col("s").lt_eq(lit(5)));
        let branches = branch("x").or(branch("y"));
        assert!(
            close(selectivity(&branches), 2.0 * 0.1 * ONE_SIDED),
            "{}",
            selectivity(&branches)
        );
    }

    #[test]
    fn executors_that_do_not_fetch_are_told_apart_from_failures() {
        let error = |kind, message: &str| openduck_api::Error::new(kind, message.to_string());
        assert!(does_not_fetch(&error(ErrorKind::Unimplemented, "no CA")));
        let older = r#"executor "exec-0": protocol error: an empty request"#;
        assert!(does_not_fetch(&error(ErrorKind::Internal, older)));
        assert!(!does_not_fetch(&error(
            ErrorKind::Internal,
            "protocol error: a bad answer"
        )));
        assert!(!does_not_fetch(&error(
            ErrorKind::Unavailable,
            "executor \"exec-1\": gone"
        )));
    }

    #[test]
    fn only_columns_that_mean_the_same_in_a_temporary_table_are_shipped() {
        for plain in [
            DataType::Int64,
            DataType::Utf8,
            DataType::Date32,
            DataType::Decimal128(15, 2),
        ] {
            assert!(keeps_its_meaning(&plain), "{plain}");
        }
        for changed in [
            DataType::FixedSizeBinary(16),
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            DataType::Decimal256(50, 2),
            DataType::Decimal128(38, 0),
            DataType::Time64(arrow::datatypes::TimeUnit::Microsecond),
            DataType::Interval(arrow::datatypes::IntervalUnit::MonthDayNano),
        ] {
            assert!(!keeps_its_meaning(&changed), "{changed}");
        }
    }
}
