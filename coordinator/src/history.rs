//! The statements this coordinator received, newest last, bounded in number
//! and in bytes of SQL: `openduck.main.query_history`.
//!
//! The front end records each statement as it arrives ([`QueryHistory::record`])
//! and fills in its [`Recording`] as it runs: the query id once planned, the
//! rows and bytes its result sent, how and when it ended. A query that reads
//! the table (and nothing else) runs here, in DataFusion, over a snapshot of
//! the entries its client may see: a user account sees its own statements,
//! the service's token (an operator) and clients of an open server see all.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{MemoryCatalogProvider, MemorySchemaProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::MemTable;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use futures::TryStreamExt;
use parking_lot::Mutex;

use crate::distributed::from_datafusion;
use crate::error::{Error, Result};
use crate::scope::Principal;

/// The table's name: `openduck.main.query_history`.
pub(crate) const HISTORY_TABLE: [&str; 3] = [openduck_api::SYSTEM_CATALOG, "main", "query_history"];

/// Most bytes of one statement's SQL kept; longer SQL is cut, marked so.
const MAX_SQL_BYTES: usize = 64 * 1024;
/// Most bytes of SQL kept over all entries.
const MAX_TOTAL_SQL_BYTES: usize = 64 * 1024 * 1024;
/// Most memory a query of the history may use.
const MAX_QUERY_MEMORY: usize = 256 * 1024 * 1024;
/// Most bytes of a query's result (held until its ticket is redeemed).
const MAX_RESULT_BYTES: usize = 16 * 1024 * 1024;
/// Longest a query of the history may run.
const MAX_QUERY_TIME: Duration = Duration::from_secs(30);
/// Words that mark SQL that may carry a secret (any part of a word, any case).
const SECRET_WORDS: [&str; 9] = [
    "secret",
    "password",
    "passwd",
    "token",
    "key_id",
    "access_key",
    "private_key",
    "connection_string",
    "credential",
];

/// How a recorded statement stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryStatus {
    /// Planned or running; its result may not have been fetched yet.
    Running,
    /// It ran, and its whole result was sent.
    Succeeded,
    /// It failed (the entry's error says why).
    Failed,
    /// The client cancelled it, or stopped reading its result.
    Cancelled,
    /// The client was given the executor's address, and may have fetched
    /// its result from there, past this coordinator.
    Direct,
    /// Planned, and its result never fetched here while its ticket was valid.
    Unfetched,
}

impl HistoryStatus {
    fn as_str(self) -> &'static str {
        match self {
            HistoryStatus::Running => "running",
            HistoryStatus::Succeeded => "succeeded",
            HistoryStatus::Failed => "failed",
            HistoryStatus::Cancelled => "cancelled",
            HistoryStatus::Direct => "direct",
            HistoryStatus::Unfetched => "unfetched",
        }
    }
}

/// The statements a coordinator received, the newest `capacity`.
#[derive(Debug)]
pub struct QueryHistory {
    capacity: usize,
    /// How long a ticket may wait to be fetched.
    ticket_ttl: Duration,
    entries: Arc<Mutex<Entries>>,
}

#[derive(Debug, Default)]
struct Entries {
    list: VecDeque<Arc<Entry>>,
    sql_bytes: usize,
    /// Planned entries by query id, for the fetch of their result.
    planned: HashMap<String, Weak<Entry>>,
    /// How many entries were ever recorded: each entry's sequence number.
    recorded: u64,
}

#[derive(Debug)]
struct Entry {
    sequence: u64,
    principal: Principal,
    database: String,
    kind: &'static str,
    sql: String,
    /// The SQL may hold a secret: only its first word is kept, and no error.
    redacted: bool,
    started_at: SystemTime,
    started: Instant,
    progress: Mutex<Progress>,
}

#[derive(Debug, Clone)]
struct Progress {
    query_id: String,
    status: HistoryStatus,
    /// Planned as a query whose rows wait for a fetch that has not begun.
    awaiting_fetch: bool,
    elapsed: Option<Duration>,
    rows: Option<u64>,
    bytes: Option<u64>,
    error: Option<String>,
}

/// One recorded statement, as the front end fills it in.
#[derive(Debug, Clone)]
pub struct Recording(Option<(Arc<Entry>, Weak<Mutex<Entries>>)>);

impl QueryHistory {
    /// A history of the newest `capacity` statements (0: none are kept),
    /// whose tickets are valid for `ticket_ttl`.
    pub fn new(capacity: usize, ticket_ttl: Duration) -> Self {
        QueryHistory {
            capacity,
            ticket_ttl,
            entries: Arc::default(),
        }
    }

    /// Records a statement of `kind` (query, update, ingest, ...) as it
    /// arrives. SQL that may hold a secret is kept as its first word only.
    pub fn record(&self, principal: &Principal, database: &str, kind: &'static str, sql: &str) -> Recording {
        if self.capacity == 0 {
            return Recording(None);
        }
        let (kept, redacted) = kept_sql(sql);
        let mut entries = self.entries.lock();
        entries.recorded += 1;
        let entry = Arc::new(Entry {
            sequence: entries.recorded,
            principal: principal.clone(),
            database: database.to_string(),
            kind,
            sql: kept,
            redacted,
            started_at: SystemTime::now(),
            started: Instant::now(),
            progress: Mutex::new(Progress {
                query_id: uuid::Uuid::new_v4().to_string(),
                status: HistoryStatus::Running,
                awaiting_fetch: false,
                elapsed: None,
                rows: None,
                bytes: None,
                error: None,
            }),
        });
        entries.sql_bytes += entry.sql.len();
        entries.list.push_back(Arc::clone(&entry));
        while entries.list.len() > self.capacity || entries.sql_bytes > MAX_TOTAL_SQL_BYTES {
            let Some(oldest) = entries.list.pop_front() else { break };
            entries.sql_bytes -= oldest.sql.len();
            let query_id = oldest.progress.lock().query_id.clone();
            entries.planned.remove(&query_id);
        }
        Recording(Some((entry, Arc::downgrade(&self.entries))))
    }

    /// The recording of the statement planned as `query_id` (nothing when
    /// it is not here: planned by another coordinator, or forgotten).
    pub fn find(&self, query_id: &str) -> Recording {
        let entries = self.entries.lock();
        match entries.planned.get(query_id).and_then(Weak::upgrade) {
            Some(entry) => Recording(Some((entry, Arc::downgrade(&self.entries)))),
            None => Recording(None),
        }
    }

    /// Runs `sql`, a query that reads only the history, over the entries
    /// `principal` may see.
    /// Its result is held whole (the history changes with every statement),
    /// so it may use at most [`MAX_QUERY_MEMORY`], [`MAX_RESULT_BYTES`] of
    /// result and [`MAX_QUERY_TIME`].
    pub(crate) async fn query(&self, principal: &Principal, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let snapshot = self.snapshot(principal).map_err(|error| Error::Distributed {
            kind: openduck_api::ErrorKind::Internal,
            message: format!("cannot list the query history: {error}"),
        })?;
        let frame = self.frame(snapshot, sql).await?;
        let schema = SchemaRef::new(frame.schema().as_arrow().clone());
        let collect = async {
            let mut stream = frame.execute_stream().await.map_err(from_datafusion)?;
            let (mut batches, mut bytes) = (Vec::new(), 0);
            while let Some(batch) = stream.try_next().await.map_err(from_datafusion)? {
                bytes += batch.get_array_memory_size();
                if bytes > MAX_RESULT_BYTES {
                    return Err(exhausted(format!("its result exceeds {} MiB", MAX_RESULT_BYTES >> 20)));
                }
                batches.push(batch);
            }
            Ok(batches)
        };
        let batches = tokio::time::timeout(MAX_QUERY_TIME, collect)
            .await
            .map_err(|_| exhausted(format!("it ran longer than {} s", MAX_QUERY_TIME.as_secs())))??;
        Ok((schema, batches))
    }

    /// The schema of the rows `sql` (reading only the history) returns:
    /// planned over no entries, since they do not change it.
    pub(crate) async fn describe(&self, sql: &str) -> Result<SchemaRef> {
        let frame = self.frame(RecordBatch::new_empty(history_schema()), sql).await?;
        Ok(SchemaRef::new(frame.schema().as_arrow().clone()))
    }

    /// `sql` planned over the history: queries only, nothing that changes
    /// DataFusion's catalog or settings, and nothing that multiplies rows
    /// (a join, of the history with itself through a CTE say, or an unnest):
    /// it runs in the coordinator, for any user.
    async fn frame(&self, entries: RecordBatch, sql: &str) -> Result<datafusion::dataframe::DataFrame> {
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let frame = self
            .context(entries)?
            .sql_with_options(sql, options)
            .await
            .map_err(from_datafusion)?;
        let mut scans = 0;
        let mut multiplies = false;
        frame
            .logical_plan()
            .apply_with_subqueries(|node| {
                match node {
                    LogicalPlan::TableScan(_) => scans += 1,
                    LogicalPlan::Join(_) | LogicalPlan::Unnest(_) | LogicalPlan::RecursiveQuery(_) => multiplies = true,
                    _ => {}
                }
                Ok(TreeNodeRecursion::Continue)
            })
            .map_err(from_datafusion)?;
        if scans > 1 || multiplies {
            return Err(Error::HistoryAlone);
        }
        Ok(frame)
    }

    /// A DataFusion context whose only table holds `entries` of the history.
    fn context(&self, entries: RecordBatch) -> Result<SessionContext> {
        let [catalog, schema, table] = HISTORY_TABLE;
        let table_provider = MemTable::try_new(entries.schema(), vec![vec![entries]]).map_err(from_datafusion)?;
        let schema_provider = MemorySchemaProvider::new();
        datafusion::catalog::SchemaProvider::register_table(&schema_provider, table.into(), Arc::new(table_provider))
            .map_err(from_datafusion)?;
        let catalog_provider = MemoryCatalogProvider::new();
        datafusion::catalog::CatalogProvider::register_schema(&catalog_provider, schema, Arc::new(schema_provider))
            .map_err(from_datafusion)?;
        let config = SessionConfig::new()
            .with_create_default_catalog_and_schema(false)
            .with_default_catalog_and_schema(catalog, schema)
            .with_information_schema(false)
            .with_target_partitions(1);
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(MAX_QUERY_MEMORY, 1.0)
            .build_arc()
            .map_err(from_datafusion)?;
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .build();
        let context = SessionContext::new_with_state(state);
        context.register_catalog(catalog, Arc::new(catalog_provider));
        Ok(context)
    }

    /// The entries `principal` may see, as one batch.
    fn snapshot(&self, principal: &Principal) -> arrow::error::Result<RecordBatch> {
        let entries: Vec<(Arc<Entry>, Progress)> = {
            let entries = self.entries.lock();
            entries
                .list
                .iter()
                .filter(|entry| principal.sees(&entry.principal))
                .map(|entry| (Arc::clone(entry), entry.progress.lock().clone()))
                .collect()
        };
        let text = |value: fn(&Entry, &Progress) -> Option<String>| -> ArrayRef {
            Arc::new(
                entries
                    .iter()
                    .map(|(entry, progress)| value(entry, progress))
                    .collect::<StringArray>(),
            )
        };
        let count = |value: fn(&Progress) -> Option<u64>| -> ArrayRef {
            Arc::new(
                entries
                    .iter()
                    .map(|(_, progress)| value(progress).map(|n| i64::try_from(n).unwrap_or(i64::MAX)))
                    .collect::<Int64Array>(),
            )
        };
        let started: TimestampMicrosecondArray = entries
            .iter()
            .map(|(entry, _)| {
                let since_epoch = entry
                    .started_at
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default();
                Some(i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX))
            })
            .collect();
        // A query whose rows were never fetched while its ticket lived.
        let unfetched = |entry: &Entry, progress: &Progress| {
            progress.status == HistoryStatus::Running
                && progress.awaiting_fetch
                && entry.started.elapsed() > self.ticket_ttl
        };
        let duration: Float64Array = entries
            .iter()
            .map(|(entry, progress)| {
                let elapsed = match progress.status {
                    _ if unfetched(entry, progress) => return None,
                    HistoryStatus::Running => entry.started.elapsed(),
                    _ => progress.elapsed?,
                };
                Some(elapsed.as_secs_f64() * 1000.0)
            })
            .collect();
        let status: StringArray = entries
            .iter()
            .map(|(entry, progress)| match progress.status {
                _ if unfetched(entry, progress) => Some(HistoryStatus::Unfetched.as_str()),
                status => Some(status.as_str()),
            })
            .collect();
        RecordBatch::try_new(
            history_schema(),
            vec![
                text(|_, progress| Some(progress.query_id.clone())),
                text(|entry, _| Some(entry.principal.name().to_string())),
                text(|entry, _| Some(entry.database.clone())),
                text(|entry, _| Some(entry.kind.to_string())),
                text(|entry, _| Some(entry.sql.clone())),
                Arc::new(started.with_timezone("UTC")),
                Arc::new(duration),
                count(|progress| progress.rows),
                count(|progress| progress.bytes),
                Arc::new(status),
                text(|entry, progress| match &progress.error {
                    Some(_) if entry.redacted => Some("(not kept: the statement may hold a secret)".into()),
                    error => error.clone(),
                }),
                Arc::new(
                    entries
                        .iter()
                        .map(|(entry, _)| entry.sequence as i64)
                        .collect::<Int64Array>(),
                ),
            ],
        )
    }
}

/// A query of the history that went past a bound.
fn exhausted(why: String) -> Error {
    Error::Distributed {
        kind: openduck_api::ErrorKind::ResourceExhausted,
        message: format!("this query of openduck.main.query_history was stopped: {why}"),
    }
}

/// The columns of `openduck.main.query_history`.
fn history_schema() -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text("query_id", false),
        text("user_name", false),
        text("database_name", false),
        text("kind", false),
        text("sql", false),
        Field::new(
            "start_time",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        // Until it ends, how long it has been running.
        Field::new("duration_ms", DataType::Float64, true),
        // Rows sent to the client (a query), or changed (an update) or
        // appended (an ingest).
        Field::new("row_count", DataType::Int64, true),
        // Bytes of Arrow IPC sent to the client.
        Field::new("bytes_sent", DataType::Int64, true),
        text("status", false),
        text("error", true),
        // The order statements arrived in, counted from the coordinator's start.
        Field::new("sequence", DataType::Int64, false),
    ]))
}

/// The SQL an entry keeps, and whether it was redacted: at most
/// [`MAX_SQL_BYTES`], and for a statement that may carry a secret
/// (`CREATE SECRET`, `SET s3_secret_access_key`, a password in `ATTACH`
/// options: any of [`SECRET_WORDS`] anywhere) only its first word.
fn kept_sql(sql: &str) -> (String, bool) {
    let lowered = sql.to_ascii_lowercase();
    let first: String = sql.trim_start().chars().take_while(char::is_ascii_alphabetic).collect();
    // A URL with credentials (`postgres://user:password@host`), and any
    // ATTACH: its options may hold credentials under any name.
    let credentials_in_url = lowered
        .split("://")
        .skip(1)
        .any(|rest| rest.split(['\'', '"', ' ']).next().is_some_and(|url| url.contains('@')));
    if SECRET_WORDS.iter().any(|word| lowered.contains(word))
        || credentials_in_url
        || first.eq_ignore_ascii_case("attach")
    {
        return (format!("{first} ... (not kept: it may hold a secret)"), true);
    }
    if sql.len() <= MAX_SQL_BYTES {
        return (sql.to_string(), false);
    }
    let mut end = MAX_SQL_BYTES;
    while !sql.is_char_boundary(end) {
        end -= 1;
    }
    (format!("{}... ({} bytes in all)", &sql[..end], sql.len()), false)
}

impl Recording {
    /// A recording that keeps nothing (the history is off).
    pub fn none() -> Recording {
        Recording(None)
    }

    /// How it stands, with the rows and bytes it sent (`None` when the
    /// history is off).
    pub fn status(&self) -> Option<(HistoryStatus, Option<u64>, Option<u64>)> {
        let progress = self.0.as_ref()?.0.progress.lock();
        Some((progress.status, progress.rows, progress.bytes))
    }

    /// Ends it (when it still runs) as `status`. A statement that ran when
    /// it was planned (it changed something) is over already; the fetch of
    /// its result adds only what it sent.
    fn end(&self, status: HistoryStatus, rows: Option<u64>, bytes: Option<u64>, error: Option<String>) {
        let Some((entry, _)) = &self.0 else { return };
        let mut progress = entry.progress.lock();
        match progress.status {
            HistoryStatus::Running | HistoryStatus::Direct => {
                progress.status = status;
                progress.elapsed = Some(entry.started.elapsed());
                progress.rows = rows;
                progress.bytes = bytes;
                progress.error = error;
            }
            HistoryStatus::Succeeded if progress.bytes.is_none() && bytes.is_some() => {
                progress.rows = rows;
                progress.bytes = bytes;
            }
            _ => {}
        }
    }

    /// The statement was planned as `query_id`. With `ran`, it ran then
    /// (it changed something; its result waits for the fetch); with
    /// `direct`, its result may be fetched from the executor, past this
    /// coordinator, and the history learns no more of it then.
    pub fn planned(&self, query_id: &str, ran: bool, direct: bool) {
        if let Some((entry, entries)) = &self.0 {
            // The history first, then the entry, as eviction takes them: an
            // evicted entry's query id leaves the index with it.
            let entries = entries.upgrade();
            let mut entries = entries.as_deref().map(Mutex::lock);
            let mut progress = entry.progress.lock();
            progress.query_id = query_id.to_string();
            if let Some(entries) = &mut entries {
                // Still kept (not evicted by a burst of statements since).
                if entries
                    .list
                    .front()
                    .is_some_and(|oldest| oldest.sequence <= entry.sequence)
                {
                    entries.planned.insert(query_id.to_string(), Arc::downgrade(entry));
                }
            }
            if ran {
                progress.status = HistoryStatus::Succeeded;
                progress.elapsed = Some(entry.started.elapsed());
            } else if !direct {
                progress.awaiting_fetch = true;
            } else {
                progress.status = HistoryStatus::Direct;
                progress.elapsed = Some(entry.started.elapsed());
            }
        }
    }

    /// The fetch of its rows has begun.
    pub fn fetching(&self) {
        if let Some((entry, _)) = &self.0 {
            entry.progress.lock().awaiting_fetch = false;
        }
    }

    /// It ended well, having sent (or changed) `rows` rows and `bytes` bytes.
    pub fn succeeded(&self, rows: Option<u64>, bytes: Option<u64>) {
        self.end(HistoryStatus::Succeeded, rows, bytes, None);
    }

    /// It failed with `error` (after sending `rows` rows and `bytes` bytes).
    pub fn failed(&self, error: &dyn std::fmt::Display, rows: Option<u64>, bytes: Option<u64>) {
        self.end(HistoryStatus::Failed, rows, bytes, Some(error.to_string()));
    }

    /// The client cancelled it, or stopped reading its result.
    pub fn cancelled(&self, rows: Option<u64>, bytes: Option<u64>) {
        self.end(HistoryStatus::Cancelled, rows, bytes, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;

    fn user(name: &str) -> Principal {
        Principal::User {
            name: name.to_string(),
            read_only: false,
            grants: None,
        }
    }

    async fn strings(history: &QueryHistory, principal: &Principal, sql: &str) -> Vec<String> {
        let (_, batches) = history.query(principal, sql).await.unwrap();
        batches
            .iter()
            .flat_map(|batch| {
                let column = arrow::compute::cast(batch.column(0), &DataType::Utf8).unwrap();
                column
                    .as_string::<i32>()
                    .iter()
                    .map(|value| value.unwrap_or("NULL").to_string())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn history(capacity: usize) -> QueryHistory {
        QueryHistory::new(capacity, Duration::from_secs(60))
    }

    #[tokio::test]
    async fn records_statements_and_how_they_ended() {
        let history = history(100);
        let query = history.record(&user("ann"), "db", "query", "SELECT 42");
        query.planned("q1", false, false);
        query.succeeded(Some(1), Some(300));
        let update = history.record(&user("ann"), "db", "update", "DELETE FROM t");
        update.failed(&"no such table", None, None);
        history.find("q1").cancelled(None, None);
        // A statement that ran when planned is over; its fetch adds what it sent.
        let created = history.record(&user("ann"), "db", "query", "CREATE TABLE t (x INT)");
        created.planned("q3", true, false);
        history.find("q3").cancelled(Some(1), Some(200));
        assert!(history.find("q2").status().is_none(), "no such query");

        let rows = strings(
            &history,
            &Principal::Token,
            "SELECT kind || ' ' || sql || ' ' || status || ' ' || \
             coalesce(CAST(row_count AS VARCHAR), '-') || ' ' || coalesce(error, '-') \
             FROM openduck.main.query_history WHERE duration_ms >= 0 ORDER BY sequence",
        )
        .await;
        assert_eq!(
            rows,
            [
                "query SELECT 42 succeeded 1 -",
                "update DELETE FROM t failed - no such table",
                "query CREATE TABLE t (x INT) succeeded 1 -",
            ],
            "a later end changes nothing"
        );
    }

    #[tokio::test]
    async fn a_ticket_never_fetched_ends_unfetched() {
        let history = QueryHistory::new(10, Duration::ZERO);
        history
            .record(&Principal::Token, "db", "query", "SELECT 1")
            .planned("q1", false, false);
        let fetched = history.record(&Principal::Token, "db", "query", "SELECT 2");
        fetched.planned("q2", false, false);
        fetched.fetching();
        history.record(&Principal::Token, "db", "update", "UPDATE t SET x = 1");
        let sql = "SELECT status || ' ' || coalesce(CAST(duration_ms AS VARCHAR), '-') FROM query_history \
                   ORDER BY sequence";
        let rows = strings(&history, &Principal::Token, sql).await;
        assert_eq!(rows[0], "unfetched -");
        assert!(
            rows[1].starts_with("running ") && rows[2].starts_with("running "),
            "{rows:?}"
        );
    }

    #[tokio::test]
    async fn users_see_their_own_statements_and_the_operator_sees_all() {
        let history = history(100);
        history.record(&user("ann"), "db", "query", "SELECT 'ann'");
        history.record(&user("bob"), "db", "query", "SELECT 'bob'");
        history.record(&Principal::Token, "db", "query", "SELECT 'operator'");
        let sql = "SELECT user_name FROM openduck.main.query_history ORDER BY sequence";
        assert_eq!(strings(&history, &user("ann"), sql).await, ["ann"]);
        assert_eq!(
            strings(&history, &user("token"), sql).await,
            Vec::<String>::new(),
            "a user named token"
        );
        assert_eq!(strings(&history, &Principal::Token, sql).await, ["ann", "bob", "token"]);
        assert_eq!(
            strings(&history, &Principal::Anonymous, sql).await,
            ["ann", "bob", "token"]
        );
    }

    #[tokio::test]
    async fn keeps_the_newest_and_bounds_the_sql() {
        let history = history(2);
        for n in 0..5 {
            history
                .record(&Principal::Token, "db", "query", &format!("SELECT {n}"))
                .planned(&format!("q{n}"), false, false);
        }
        let sql = "SELECT sql FROM query_history ORDER BY sql";
        assert_eq!(
            strings(&history, &Principal::Token, sql).await,
            ["SELECT 3", "SELECT 4"]
        );
        assert!(history.find("q0").status().is_none(), "forgotten with its entry");
        assert!(history.find("q4").status().is_some());
        assert_eq!(history.entries.lock().planned.len(), 2);

        let long = format!("SELECT '{}'", "é".repeat(MAX_SQL_BYTES));
        let (kept, redacted) = kept_sql(&long);
        assert!(!redacted && kept.len() < MAX_SQL_BYTES + 64);
        assert!(kept.ends_with(&format!("({} bytes in all)", long.len())));

        let off = history_off();
        off.record(&Principal::Token, "db", "query", "SELECT 1");
        assert!(strings(&off, &Principal::Token, sql).await.is_empty());
    }

    fn history_off() -> QueryHistory {
        history(0)
    }

    #[tokio::test]
    async fn sql_that_may_hold_a_secret_is_kept_as_its_first_word_with_no_error() {
        for sql in [
            "CREATE SECRET s (TYPE s3, KEY_ID 'k', SECRET 'hush')",
            "ATTACH 'x' (PASSWORD 'hush')",
            "SET s3_secret_access_key = 'hush'",
            "set http_bearer_token='hush'",
            "SET azure_storage_connection_string = 'hush'",
            "ATTACH'md:?motherduck_token=hush'",
            "ATTACH 'postgresql://u:hush@h/db' (TYPE postgres)",
            "SELECT * FROM read_csv('https://u:hush@example.com/x.csv')",
        ] {
            let (kept, redacted) = kept_sql(sql);
            assert!(redacted && !kept.contains("hush"), "{kept}");
        }
        let history = history(10);
        history
            .record(&Principal::Token, "db", "update", "CREATE SECRET s (SECRET 'hush'")
            .failed(&"Parser Error: LINE 1: CREATE SECRET s (SECRET 'hush'", None, None);
        let sql = "SELECT sql || ' / ' || error FROM query_history";
        let rows = strings(&history, &Principal::Token, sql).await;
        assert_eq!(
            rows,
            ["CREATE ... (not kept: it may hold a secret) / (not kept: the statement may hold a secret)"]
        );
    }

    #[tokio::test]
    async fn bad_sql_over_the_history_is_an_invalid_argument_and_it_only_reads() {
        let history = history(10);
        let error = history
            .query(&Principal::Token, "SELECT nope FROM openduck.main.query_history")
            .await
            .unwrap_err();
        assert_eq!(error.kind(), openduck_api::ErrorKind::InvalidArgument, "{error}");
        // Several unknown columns (DataFusion reports them together), described for a prepare.
        let sql = "SELECT sql_text, rows_sent FROM openduck.main.query_history ORDER BY start_time DESC";
        let error = history.describe(sql).await.unwrap_err();
        assert_eq!(error.kind(), openduck_api::ErrorKind::InvalidArgument, "{error}");
        assert!(error.to_string().contains("sql_text"), "{error}");
        for sql in ["CREATE TABLE x AS SELECT 1", "SET datafusion.execution.batch_size = 1"] {
            assert!(history.query(&Principal::Token, sql).await.is_err(), "{sql}");
        }
        // Nothing that multiplies rows: it runs in the coordinator.
        for sql in [
            "WITH h AS (SELECT * FROM query_history) SELECT count(*) FROM h a, h b, h c",
            "SELECT unnest(range(0, 100000000)) FROM query_history",
            "SELECT * FROM query_history WHERE sql IN (SELECT sql FROM query_history)",
        ] {
            let error = history.query(&Principal::Token, sql).await.unwrap_err();
            assert_eq!(error.kind(), openduck_api::ErrorKind::InvalidArgument, "{sql}: {error}");
        }
        let (_, batches) = history
            .query(&Principal::Token, "SELECT count(*) FROM query_history")
            .await
            .unwrap();
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
    }
}
