//! The whole query on one executor, with the few small tables of other
//! executors it reads shipped there.
//!
//! When every table a query reads lives on one executor but some small ones
//! (by the tables' row estimates and a guess at the query's filters on
//! them), those are shipped to it, as a join's small side is (see `ship`),
//! and the query runs there whole, as the user wrote it, with the names of
//! those tables made the temporary tables'. DuckDB then plans all of it: its
//! own join order, correlated subqueries as it decorrelates them, aggregates
//! over only the rows that need them; what a DataFusion plan cut into
//! fragments cannot give it.
//!
//! A shipped table holds every column DataFusion's scans of it read or the
//! query's text names (all of them when a `*` reads it), and only the rows
//! those scans' filters keep when each reference to it in the text has a
//! scan with the same filters.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::DFSchema;
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::{Expr, Extension, Filter, LogicalPlan, TableScan};
use openduck_api::quote_identifier;
use sqlparser::ast::{
    Expr as SqlExpr, Ident, ObjectName, ObjectNamePart, Query, SelectItem, SetExpr, Statement, TableAlias, TableFactor,
    Visit, VisitMut, Visitor, VisitorMut,
};
use sqlparser::dialect::DuckDbDialect;
use sqlparser::parser::Parser;
use tracing::debug;

use super::catalog::RemoteTable;
use super::cut::remote_table;
use super::fragment::Fragment;
use super::ship::{keeps_its_meaning, selectivity, Shipped, ADVANTAGE, MOST_ROWS_SHIPPED};
use super::sql::fragment_sql;

/// A table the query reads, with what DataFusion's scans of it keep.
struct Read {
    table: Arc<RemoteTable>,
    /// One scan of it (the others' filters are compared to its own).
    scan: TableScan,
    scans: usize,
    /// The filters every scan of it has, or `None` when they differ.
    filters: Option<Vec<Expr>>,
    /// The most columns one of its scans reads.
    columns: usize,
    /// Every column one of its scans reads.
    scanned: BTreeSet<usize>,
}

impl Read {
    /// About how many rows of it pass `filters`.
    fn rows(&self, filters: &[Expr]) -> Option<f64> {
        let rows = self.table.estimated_rows? as f64;
        Some(match conjunction(filters.to_vec()) {
            Some(predicate) => rows * selectivity(&predicate),
            None => rows,
        })
    }

    /// About how many values pulling it would move: its rows under its
    /// filters, times the columns its scans read.
    fn values(&self) -> Option<f64> {
        Some(self.rows(self.filters.as_deref().unwrap_or_default())? * self.columns.max(1) as f64)
    }
}

/// `plan` (an optimized plan of `sql`, with `database` and `schema` for
/// unqualified names) as one fragment on the executor that holds most of
/// what it reads, the other executors' tables shipped there; `None` when
/// anything else lives elsewhere than small tables, the largest side is
/// below `least` values (rows times columns), or the text cannot be
/// rewritten for sure.
pub(super) fn on_one_executor(
    plan: &LogicalPlan,
    sql: &str,
    (database, schema): (&str, Option<&str>),
    least: u64,
) -> Option<LogicalPlan> {
    let reads = reads_of(plan)?;
    let mut values_at: BTreeMap<&str, f64> = BTreeMap::new();
    for read in reads.values() {
        *values_at.entry(read.table.site.id()).or_default() += read.values()?;
    }
    if values_at.len() < 2 {
        return None;
    }
    let (target, target_values) = values_at
        .iter()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(site, values)| (site.to_string(), *values))?;
    if target_values < least as f64 {
        return None;
    }
    let mut statement = one_query(sql)?;
    let text = Text::of(&statement);
    if text.top_level_star {
        // Its columns are DataFusion's expansion of it; DuckDB's could differ.
        return None;
    }
    let mut renames = BTreeMap::new();
    let mut shipped = Vec::new();
    let mut shipped_values = 0.0;
    let mut site = None;
    let mut target_database = None;
    for (name, read) in &reads {
        if read.table.site.id() == target {
            site = Some(read.table.site.clone());
            target_database.get_or_insert_with(|| read.table.catalog.clone());
            let parts = [&read.table.catalog, &read.table.schema, &read.table.name];
            renames.insert(name.clone(), (parts.map(|part| part.to_string()).to_vec(), false));
            continue;
        }
        let side = ship(read, &text)?;
        shipped_values += side.estimated_values();
        renames.insert(name.clone(), (side.name_parts(), true));
        shipped.push(side);
    }
    // The small tables cross once; pulling the large side would move it all.
    if shipped_values * ADVANTAGE > target_values {
        return None;
    }
    let rewritten = rename(
        &mut statement,
        &renames,
        (database, schema.unwrap_or("main")),
        &text.ctes,
    )?;
    debug!(executor = %target, shipped = shipped.len(), sql = %rewritten, "running a query on one executor whole");
    Some(LogicalPlan::Extension(Extension {
        node: Arc::new(Fragment {
            site: site?,
            database: target_database?,
            sql: rewritten,
            schema: Arc::clone(plan.schema()),
            shipped,
        }),
    }))
}

/// Every table `plan` scans (its subqueries' too), by qualified name, with
/// the filters on its rows alone (the conjuncts of a Filter right above a
/// scan that read nothing but its columns: DataFusion leaves filters there,
/// see `catalog`); `None` when something else is read.
fn reads_of(plan: &LogicalPlan) -> Option<BTreeMap<String, Read>> {
    let mut above: HashMap<*const LogicalPlan, Vec<Expr>> = HashMap::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::Filter(filter) = node {
            if let LogicalPlan::TableScan(scan) = filter.input.as_ref() {
                let own = split_conjunction(&filter.predicate)
                    .into_iter()
                    .filter(|conjunct| reads_only(conjunct, scan))
                    .cloned()
                    .collect();
                above.insert(Arc::as_ptr(&filter.input), own);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    let mut reads: BTreeMap<String, Read> = BTreeMap::new();
    let mut other = false;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let Some(table) = remote_table(scan) else {
                other = true;
                return Ok(TreeNodeRecursion::Stop);
            };
            let filters = above.remove(&(node as *const LogicalPlan)).unwrap_or_default();
            let key = table.qualified_name().to_lowercase();
            let scanned: BTreeSet<usize> = match &scan.projection {
                Some(projection) => projection.iter().copied().collect(),
                None => (0..table.schema().fields().len()).collect(),
            };
            let columns = scanned.len();
            match reads.get_mut(&key) {
                Some(read) => {
                    read.scans += 1;
                    read.columns = read.columns.max(columns);
                    read.scanned.extend(scanned);
                    if read.filters.as_ref() != Some(&filters) {
                        read.filters = None;
                    }
                }
                None => {
                    reads.insert(
                        key,
                        Read {
                            table,
                            scan: scan.clone(),
                            scans: 1,
                            filters: Some(filters),
                            columns,
                            scanned,
                        },
                    );
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    (!other && !reads.is_empty()).then_some(reads)
}

/// Whether `conjunct` reads nothing but columns of `scan` (no outer
/// reference, subquery or volatile function).
fn reads_only(conjunct: &Expr, scan: &TableScan) -> bool {
    let columns = conjunct.column_refs();
    !columns.is_empty()
        && columns.iter().all(|column| scan.projected_schema.has_column(column))
        && !conjunct.contains_outer()
        && !conjunct.is_volatile()
        && !conjunct
            .exists(|expr| {
                Ok(matches!(
                    expr,
                    Expr::Exists(_) | Expr::InSubquery(_) | Expr::ScalarSubquery(_)
                ))
            })
            .unwrap_or(true)
}

/// The side that ships `read` to the query's executor: the columns `text`
/// names, and the rows its scans keep when each of the text's references to
/// it has a scan with the same filters.
fn ship(read: &Read, text: &Text) -> Option<Shipped> {
    let fields = read.table.schema().fields().clone();
    // What DataFusion's scans read (a USING join's columns, which the text
    // names nowhere else), and what the text may read that they do not
    // (columns its optimizer found it could do without).
    let named: Vec<usize> = (0..fields.len())
        .filter(|i| {
            read.scanned.contains(i)
                || text.all_columns_of(&read.table.name)
                || text.identifiers.contains(&fields[*i].name().to_lowercase())
        })
        .collect();
    let named = if named.is_empty() { vec![0] } else { named };
    if !named.iter().all(|i| keeps_its_meaning(fields[*i].data_type())) {
        return None;
    }
    let references = text
        .references
        .iter()
        .filter(|name| name.as_str() == read.table.name.to_lowercase())
        .count();
    // A CTE's references are scanned once for each use of it.
    let filters = match &read.filters {
        Some(filters) if references == read.scans && text.ctes.is_empty() => filters.clone(),
        _ => Vec::new(),
    };
    let rows = read.rows(&filters)?;
    if rows > MOST_ROWS_SHIPPED {
        return None;
    }
    // The scan reads the named columns and those its filters read; the
    // fragment names them by position (c0, c1, ...), the table by their names.
    let mut columns = named.clone();
    for filter in &filters {
        for column in filter.column_refs() {
            let index = fields.iter().position(|field| field.name() == &column.name)?;
            if !columns.contains(&index) {
                columns.push(index);
            }
        }
    }
    let scan = TableScan::try_new(
        read.scan.table_name.clone(),
        Arc::clone(&read.scan.source),
        Some(columns),
        Vec::new(),
        None,
    )
    .ok()?;
    let mut plan = LogicalPlan::TableScan(scan);
    if let Some(predicate) = conjunction(filters) {
        plan = LogicalPlan::Filter(Filter::try_new(predicate, Arc::new(plan)).ok()?);
    }
    let (database, sql) = fragment_sql(&plan, |plan| match plan {
        LogicalPlan::TableScan(scan) => remote_table(scan),
        _ => None,
    })
    .ok()?;
    let renamed = (0..named.len())
        .map(|position| format!("c{position} AS {}", quote_identifier(fields[named[position]].name())))
        .collect::<Vec<_>>()
        .join(", ");
    let schema = DFSchema::try_from(read.table.schema().project(&named).ok()?).ok()?;
    Some(Shipped::new(
        Fragment {
            site: read.table.site.clone(),
            database,
            sql: format!("SELECT {renamed} FROM ({sql}) AS shipped"),
            schema: Arc::new(schema),
            shipped: Vec::new(),
        },
        rows as u64,
    ))
}

/// `sql` when it is one query.
fn one_query(sql: &str) -> Option<Statement> {
    let mut statements = Parser::parse_sql(&DuckDbDialect {}, sql).ok()?;
    match (statements.pop(), statements.is_empty()) {
        (Some(statement @ Statement::Query(_)), true) => Some(statement),
        _ => None,
    }
}

/// What a query's text names: identifiers (lower-cased), the tables a `*`
/// reads every column of (all of them after a `*` in an expression), whether
/// the query's own columns come from one, its CTEs, and the last part of
/// each table name it references.
#[derive(Default)]
struct Text {
    identifiers: HashSet<String>,
    star_tables: HashSet<String>,
    star: bool,
    top_level_star: bool,
    ctes: HashSet<String>,
    references: Vec<String>,
}

impl Text {
    fn of(statement: &Statement) -> Text {
        let mut text = Text::default();
        if let Statement::Query(query) = statement {
            text.top_level_star = has_star(&query.body);
        }
        let _ = Visit::visit(statement, &mut text);
        text
    }

    /// Whether the query may read every column of `table`.
    fn all_columns_of(&self, table: &str) -> bool {
        self.star || self.star_tables.contains(&table.to_lowercase())
    }
}

/// Whether the columns of a query body come from a `*`.
fn has_star(body: &SetExpr) -> bool {
    match body {
        SetExpr::Select(select) => select
            .projection
            .iter()
            .any(|item| matches!(item, SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..))),
        SetExpr::SetOperation { left, .. } => has_star(left),
        SetExpr::Query(query) => has_star(&query.body),
        _ => true,
    }
}

/// The tables a SELECT's `*` reads every column of: those named in its own
/// FROM clause (a derived table's `*` is its own SELECT's).
fn starred_tables(body: &SetExpr, tables: &mut HashSet<String>) -> bool {
    let SetExpr::Select(select) = body else {
        return matches!(body, SetExpr::Values(_)) || has_star(body);
    };
    if !has_star(body) {
        return false;
    }
    for from in &select.from {
        for factor in std::iter::once(&from.relation).chain(from.joins.iter().map(|join| &join.relation)) {
            if let TableFactor::Table { name, .. } = factor {
                if let Some(last) = name.0.last().and_then(ObjectNamePart::as_ident) {
                    tables.insert(last.value.to_lowercase());
                }
            }
        }
    }
    false
}

impl Visitor for Text {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            self.ctes
                .extend(with.cte_tables.iter().map(|cte| cte.alias.name.value.to_lowercase()));
        }
        // Set operations and VALUES are not followed: every table's columns.
        self.star |= starred_tables(&query.body, &mut self.star_tables);
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        if let Some(last) = relation.0.last().and_then(ObjectNamePart::as_ident) {
            self.references.push(last.value.to_lowercase());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &SqlExpr) -> ControlFlow<()> {
        match expr {
            SqlExpr::Identifier(ident) => {
                self.identifiers.insert(ident.value.to_lowercase());
            }
            SqlExpr::CompoundIdentifier(parts) => {
                self.identifiers
                    .extend(parts.iter().map(|part| part.value.to_lowercase()));
            }
            // count(*) and its kin need no column; `t.*` and COLUMNS(...) do.
            SqlExpr::Wildcard(_) | SqlExpr::QualifiedWildcard(..) => self.star = true,
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// Rewrites the table names of `statement`: each key of `renames` (a table's
/// lower-cased qualified name) becomes its value (the parts of a name),
/// aliased with the name it had when it is a shipped table's. `None` when a name is neither a CTE's
/// nor one of those tables (a table function, a table DataFusion did not
/// scan), or a CTE is named like a table.
fn rename(
    statement: &mut Statement,
    renames: &BTreeMap<String, (Vec<String>, bool)>,
    (database, schema): (&str, &str),
    ctes: &HashSet<String>,
) -> Option<String> {
    struct Renamer<'a> {
        renames: &'a BTreeMap<String, (Vec<String>, bool)>,
        default: (&'a str, &'a str),
        ctes: &'a HashSet<String>,
    }
    impl VisitorMut for Renamer<'_> {
        type Break = ();

        fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            let TableFactor::Table { name, alias, args, .. } = factor else {
                return ControlFlow::Continue(());
            };
            if args.is_some() {
                return ControlFlow::Break(());
            }
            let parts: Option<Vec<String>> = name
                .0
                .iter()
                .map(|part| part.as_ident().map(|ident| ident.value.to_lowercase()))
                .collect();
            let Some(parts) = parts else {
                return ControlFlow::Break(());
            };
            let (database, schema) = self.default;
            let candidates = match parts.as_slice() {
                [table] if self.ctes.contains(table) => return ControlFlow::Continue(()),
                [table] => vec![(database.to_string(), schema.to_string(), table.clone())],
                [first, table] => vec![
                    (first.clone(), "main".to_string(), table.clone()),
                    (database.to_string(), first.clone(), table.clone()),
                ],
                [catalog, schema, table] => vec![(catalog.clone(), schema.clone(), table.clone())],
                _ => return ControlFlow::Break(()),
            };
            let found = candidates.into_iter().find_map(|(catalog, schema, table)| {
                let key = format!(
                    "{}.{}.{}",
                    quote_identifier(&catalog),
                    quote_identifier(&schema),
                    quote_identifier(&table)
                )
                .to_lowercase();
                self.renames.get(&key).map(|renamed| (renamed, table))
            });
            let Some(((renamed, shipped), table)) = found else {
                return ControlFlow::Break(());
            };
            if *shipped && alias.is_none() {
                // Columns may be qualified by the table's own name.
                *alias = Some(TableAlias {
                    explicit: true,
                    name: Ident::with_quote('"', table),
                    columns: Vec::new(),
                    at: None,
                });
            }
            *name = ObjectName::from(
                renamed
                    .iter()
                    .map(|part| Ident::with_quote('"', part.as_str()))
                    .collect::<Vec<_>>(),
            );
            ControlFlow::Continue(())
        }
    }
    if renames.keys().any(|key| {
        ctes.iter()
            .any(|cte| key.ends_with(&format!(".{}", quote_identifier(cte))))
    }) {
        return None;
    }
    let mut renamer = Renamer {
        renames,
        default: (database, schema),
        ctes,
    };
    match VisitMut::visit(statement, &mut renamer) {
        ControlFlow::Continue(()) => Some(statement.to_string()),
        ControlFlow::Break(()) => None,
    }
}
