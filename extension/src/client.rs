//! A Flight SQL connection to the service, with blocking calls for DuckDB's threads.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arrow::array::{Array, BinaryArray, Int64Array, RecordBatch, StringArray};
use arrow::error::ArrowError;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::{
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetTables, CommandStatementQuery, CommandStatementUpdate,
    DoPutUpdateResult, ProstMessageExt,
};
use arrow_flight::{
    Action, CancelFlightInfoRequest, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, PutResult, Ticket,
};
use bytes::Bytes;
use futures::TryStreamExt;
use openduck_proto::{CATALOG_METADATA, ENDPOINTS_METADATA, EVERY_ENDPOINT, ONE_EXECUTOR_METADATA, REQUIRED};
use prost::Message;
use tokio::runtime::Runtime;
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::catalog::{Catalog, TableEntry};
use crate::colocation::Colocations;
use crate::credentials::Credentials;
use crate::link::Link;
use crate::reader::QueryReader;
use crate::{Error, Target};

/// How long connecting and each metadata call may take before the attach fails.
pub(crate) const METADATA_DEADLINE: Duration = Duration::from_secs(20);
/// How often a waiting query looks at the user's interrupt.
pub(crate) const INTERRUPT_POLL: Duration = Duration::from_millis(50);
/// How long connecting to a location (an executor the service names) may take before
/// its results are read through the service instead.
const LOCATION_CONNECT: Duration = Duration::from_secs(2);
/// How long telling the service to cancel an interrupted query may take.
const CANCEL_DEADLINE: Duration = Duration::from_secs(5);

/// The one runtime every client of this process shares; DuckDB's threads block on it.
pub(crate) fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("openduck-extension")
            .enable_all()
            .build()
            .expect("the openduck extension cannot start its I/O threads")
    })
}

/// A connection to one openduck service, for one attached database.
///
/// The client an attachment connects with runs each statement in a transaction of its
/// own on the service. [`Client::begin`] gives a client whose statements all run in one
/// service transaction, on a connection of its own (the service keeps one transaction per
/// client connection). [`Client::session`] gives one whose temporary tables last until
/// it is dropped.
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) target: Arc<Target>,
    /// The token presented, and the login that renews it.
    pub(crate) credentials: Arc<Credentials>,
    pub(crate) flight: FlightServiceClient<Channel>,
    /// The service transaction this client's statements run in, if any.
    pub(crate) transaction: Option<Bytes>,
    /// Connections whose transactions ended, kept for the next one.
    pub(crate) idle: Arc<Mutex<Vec<FlightServiceClient<Channel>>>>,
    /// Whether `flight` is this client's alone and keeps a session on the service
    /// ([`Client::session`]): its transactions then run on it too.
    pub(crate) own_session: bool,
    /// Connections to the executors the service named as locations of results, by
    /// address (None: not reachable from here, the service serves those results).
    pub(crate) locations: Locations,
    /// What the calls of this client (and of those made from it) measured of the link.
    pub(crate) link: Arc<Link>,
    /// Whether its queries must run on one executor, verbatim (see `colocation`).
    pub(crate) one_executor: bool,
    /// What the service answered about databases sharing an executor.
    pub(crate) colocations: Colocations,
}

/// Connections to locations, shared by a client and the clients of its transactions.
pub(crate) type Locations = Arc<Mutex<HashMap<String, Option<FlightServiceClient<Channel>>>>>;

impl Client {
    /// Connects to the target's endpoint and checks that the token is accepted and the
    /// database exists, so a wrong token or name fails at `ATTACH`, within a deadline.
    pub fn connect(mut target: Target) -> Result<Client, Error> {
        let flight = open(&target)?;
        // The credentials live in one place from here on.
        let credentials = Arc::new(Credentials::new(target.token.take(), target.login.take()));
        let client = Client {
            flight,
            credentials,
            target: Arc::new(target),
            transaction: None,
            idle: Arc::default(),
            own_session: false,
            locations: Arc::default(),
            link: Arc::default(),
            one_executor: false,
            colocations: Arc::default(),
        };
        if client.credentials.login().is_some() {
            client.log_in(None)?;
        }
        // The first call is where a connection the service refuses fails (a TLS client
        // certificate it does not accept, say): name the endpoint and the whole cause.
        let databases = client.databases().map_err(|error| match error {
            // (Cancelled too: a connection reset in the TLS handshake can read as one.)
            Error::Status(status)
                if matches!(
                    status.code(),
                    tonic::Code::Unknown | tonic::Code::Unavailable | tonic::Code::Cancelled
                ) =>
            {
                Error::Unreachable {
                    endpoint: client.target.endpoint.clone(),
                    reason: error_chain(&status),
                }
            }
            other => other,
        })?;
        let database = &client.target.database;
        if !database.is_empty() && !databases.iter().any(|name| name == database) {
            return Err(Error::Status(tonic::Status::not_found(format!(
                "database {database:?} not found on {}; it hosts: {}",
                client.target.endpoint,
                databases.join(", ")
            ))));
        }
        if client.target.snapshot.is_some() {
            // An unknown snapshot fails here, at ATTACH (listing it attaches it on the service).
            let schemas = CommandGetDbSchemas {
                catalog: Some(client.target.catalog()),
                db_schema_filter_pattern: None,
            };
            client.metadata(schemas.as_any().encode_to_vec())?;
        }
        Ok(client)
    }

    /// What this client has measured of its link to the service.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// Whether `other` reaches the same service the same way, as the same principal:
    /// then a statement sent through either may read the tables of both (the service names
    /// each by its database).
    pub fn same_service(&self, other: &Client) -> bool {
        self.target.same_endpoint(&other.target) && self.credentials.same_principal(&other.credentials)
    }

    /// What this client was attached to.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The databases (Flight SQL catalogs) the service hosts.
    pub fn databases(&self) -> Result<Vec<String>, Error> {
        let batches = self.metadata(CommandGetCatalogs {}.as_any().encode_to_vec())?;
        let mut names = Vec::new();
        for batch in &batches {
            names.extend(strings(batch, "catalog_name")?.iter().flatten().map(str::to_owned));
        }
        Ok(names)
    }

    /// The schemas and tables of `database`, with each table's Arrow schema.
    pub fn catalog(&self, database: &str) -> Result<Catalog, Error> {
        let schemas = CommandGetDbSchemas {
            catalog: Some(database.to_owned()),
            db_schema_filter_pattern: None,
        };
        let mut catalog = Catalog::default();
        for batch in self.metadata(schemas.as_any().encode_to_vec())? {
            catalog
                .schemas
                .extend(strings(&batch, "db_schema_name")?.iter().flatten().map(str::to_owned));
        }
        let tables = CommandGetTables {
            catalog: Some(database.to_owned()),
            db_schema_filter_pattern: None,
            table_name_filter_pattern: None,
            table_types: vec![],
            include_schema: true,
        };
        for batch in self.metadata(tables.as_any().encode_to_vec())? {
            let schema = strings(&batch, "db_schema_name")?;
            let name = strings(&batch, "table_name")?;
            let kind = strings(&batch, "table_type")?;
            let arrow = column::<BinaryArray>(&batch, "table_schema")?;
            for row in 0..batch.num_rows() {
                catalog.tables.push(TableEntry {
                    schema: schema.value(row).to_owned(),
                    name: name.value(row).to_owned(),
                    kind: kind.value(row).to_owned(),
                    arrow: Arc::new(arrow::ipc::convert::try_schema_from_ipc_buffer(arrow.value(row))?),
                    rows: None,
                });
            }
        }
        self.estimate_rows(database, &mut catalog);
        Ok(catalog)
    }

    /// Fills in the service's row estimates (DuckDB's `duckdb_tables()`), which DuckDB's
    /// join ordering needs. Best effort: without them scans are estimated as DuckDB does
    /// for any table function.
    fn estimate_rows(&self, database: &str, catalog: &mut Catalog) {
        let sql = format!(
            "SELECT schema_name, table_name, estimated_size FROM duckdb_tables() WHERE database_name = '{}'",
            database.replace('\'', "''")
        );
        let Ok(reader) = self.query(&sql, Interrupt::never()) else {
            return;
        };
        let mut estimates = std::collections::HashMap::new();
        for batch in reader.flatten() {
            let (Ok(schema), Ok(name)) = (strings(&batch, "schema_name"), strings(&batch, "table_name")) else {
                return;
            };
            let Some(rows) = batch
                .column_by_name("estimated_size")
                .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            else {
                return;
            };
            for row in 0..batch.num_rows() {
                if rows.is_valid(row) {
                    estimates.insert(
                        (schema.value(row).to_owned(), name.value(row).to_owned()),
                        rows.value(row),
                    );
                }
            }
        }
        for table in &mut catalog.tables {
            let key = (table.schema.clone(), table.name.clone());
            table.rows = estimates.get(&key).and_then(|rows| u64::try_from(*rows).ok());
        }
    }

    /// Runs a statement whose rows do not matter (DDL), to its end.
    pub fn execute(&self, sql: &str, interrupt: Interrupt) -> Result<(), Error> {
        for batch in self.query(sql, interrupt)? {
            batch?;
        }
        Ok(())
    }

    /// Runs a statement that changes rows (UPDATE, DELETE) as a Flight SQL update and
    /// returns how many rows it changed. Interrupted, the call is dropped, which cancels
    /// the statement on the service.
    pub fn update(&self, sql: &str, interrupt: Interrupt) -> Result<i64, Error> {
        let command = CommandStatementUpdate {
            query: sql.to_owned(),
            transaction_id: self.transaction.clone(),
        };
        let descriptor = FlightDescriptor::new_cmd(command.as_any().encode_to_vec());
        let first = FlightData {
            flight_descriptor: Some(descriptor),
            ..FlightData::default()
        };
        self.renewing(|| {
            let mut flight = self.flight.clone();
            let request = self.request(futures::stream::iter([first.clone()]));
            let call = async move { Ok(update_count(flight.do_put(request).await?.into_inner()).await?) };
            interruptible(call, &interrupt)
        })
    }

    /// Runs `sql` on the service and streams its rows. Waiting for the service stops as
    /// soon as `interrupt` reports the user interrupted the query; the service is then
    /// told to cancel it.
    pub fn query(&self, sql: &str, interrupt: Interrupt) -> Result<QueryReader, Error> {
        self.query_as(sql, interrupt, false)
    }

    /// As [`Client::query`], and redeems the first ticket at once, in the background,
    /// rather than when the first batch is wanted: the service, which starts a query of
    /// a session when its ticket is redeemed, then works while the caller does its own
    /// (checks its kept copies). Only for a query whose rows will be read, on a client
    /// outside a transaction: until they are, the service's session is busy with it.
    pub fn query_started(&self, sql: &str, interrupt: Interrupt) -> Result<QueryReader, Error> {
        self.query_as(sql, interrupt, true)
    }

    fn query_as(&self, sql: &str, interrupt: Interrupt, started: bool) -> Result<QueryReader, Error> {
        let command = CommandStatementQuery {
            query: sql.to_owned(),
            transaction_id: self.transaction.clone(),
        };
        let descriptor = FlightDescriptor::new_cmd(command.as_any().encode_to_vec());
        let info = self.renewing(|| {
            let mut flight = self.flight.clone();
            let request = self.request(descriptor.clone());
            let call = async move { Ok(flight.get_flight_info(request).await?.into_inner()) };
            interruptible(call, &interrupt)
        })?;
        QueryReader::open(self.clone(), info, interrupt, started)
    }

    /// Runs `action` and returns the body of its one result.
    pub(crate) fn action(&self, action: Action, deadline: Option<Duration>) -> Result<Bytes, Error> {
        self.renewing(|| {
            let mut flight = self.flight.clone();
            let request = self.request(action.clone());
            let call = async move {
                let mut results = flight.do_action(request).await?.into_inner();
                let mut body = Bytes::new();
                while let Some(result) = results.message().await? {
                    body = result.body;
                }
                Ok(body)
            };
            Ok(block_on(with_deadline(call, deadline))?)
        })
    }

    /// Logs in again with the user account's name and password in place of the token
    /// `seen` (unless another thread did meanwhile), and presents the new token from now on.
    fn log_in(&self, seen: Option<&str>) -> Result<(), Error> {
        self.credentials.log_in_once(seen, |user, password| {
            log_in(&self.flight, &self.target.endpoint, user, password)
        })
    }

    /// Runs `call`, which must be safe to repeat; when the service refuses the token
    /// (expired by its clock, or issued by a service since restarted) and this client
    /// logs in with a password, logs in again and runs it once more.
    pub(crate) fn renewing<R>(&self, call: impl Fn() -> Result<R, Error>) -> Result<R, Error> {
        let seen = self.credentials.bearer();
        match call() {
            Err(Error::Status(status))
                if status.code() == tonic::Code::Unauthenticated && self.credentials.login().is_some() =>
            {
                self.log_in(seen.as_deref())?;
                call()
            }
            done => done,
        }
    }

    /// A connection to `location` (a `grpc://` or `grpc+tcp://` URI the service named for
    /// a result), made once; None when this client does not follow locations (it holds
    /// credentials or talks TLS, which a plain connection elsewhere would not keep) or the
    /// location cannot be reached from here.
    pub(crate) fn location(&self, location: &str) -> Option<FlightServiceClient<Channel>> {
        if self.credentials.present() || self.target.tls() {
            return None;
        }
        let address = plain_address(location)?;
        let cached = self
            .locations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(address)
            .cloned();
        if let Some(known) = cached {
            return known;
        }
        let connected = match connect_location(address) {
            Ok(flight) => Some(flight),
            Err(reason) => {
                tracing::debug!(%reason, location, "cannot reach a location; the service serves its results");
                None
            }
        };
        self.locations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(address.to_owned(), connected.clone());
        connected
    }

    /// Stops following `location`: it could not be reached.
    pub(crate) fn forget_location(&self, location: &str) {
        let Some(address) = plain_address(location) else {
            return;
        };
        self.locations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(address.to_owned(), None);
    }

    /// A request carrying the token. A login whose token is about to expire logs in
    /// again first (best effort: if that fails, the call says why).
    pub(crate) fn request<T>(&self, message: T) -> tonic::Request<T> {
        if self.credentials.due() {
            if let Err(error) = self.log_in(self.credentials.bearer().as_deref()) {
                // Once: the call says why if the service refuses the token.
                tracing::debug!(%error, "renewing the token ahead of time failed");
                self.credentials.postpone();
            }
        }
        let mut request = tonic::Request::new(message);
        if let Some(token) = self.credentials.bearer() {
            if let Ok(value) = format!("Bearer {token}").parse() {
                request.metadata_mut().insert("authorization", value);
            }
        }
        if !self.target.database.is_empty() {
            // Unqualified names (SQL run verbatim) resolve in the attached database,
            // and transactions begin on its executor, whichever connection the call
            // takes: one opened again after the service restarted too.
            request.metadata_mut().insert_bin(
                CATALOG_METADATA,
                MetadataValue::from_bytes(self.target.database.as_bytes()),
            );
        }
        // This client reads every endpoint of a FlightInfo, in parallel when several.
        request
            .metadata_mut()
            .insert(ENDPOINTS_METADATA, MetadataValue::from_static(EVERY_ENDPOINT));
        if self.one_executor {
            request
                .metadata_mut()
                .insert(ONE_EXECUTOR_METADATA, MetadataValue::from_static(REQUIRED));
        }
        request
    }

    fn flight_info(&self, command: Vec<u8>, deadline: Option<Duration>) -> Result<FlightInfo, Error> {
        let descriptor = FlightDescriptor::new_cmd(command);
        self.renewing(|| {
            let mut flight = self.flight.clone();
            let request = self.request(descriptor.clone());
            let call = async move { flight.get_flight_info(request).await.map(tonic::Response::into_inner) };
            Ok(block_on(with_deadline(call, deadline))?)
        })
    }

    /// A metadata call: small results, fetched whole, within the metadata deadline.
    fn metadata(&self, command: Vec<u8>) -> Result<Vec<RecordBatch>, Error> {
        let started = Instant::now();
        let info = self.flight_info(command, Some(METADATA_DEADLINE))?;
        let mut batches = Vec::new();
        let mut round_trips = 1;
        for ticket in info.endpoint.into_iter().filter_map(|endpoint| endpoint.ticket) {
            let stream = self.do_get(ticket, Some(METADATA_DEADLINE))?;
            batches.extend(block_on(stream.map_err(Error::from).try_collect::<Vec<_>>())?);
            round_trips += 1;
        }
        self.link.round_trips(round_trips, started.elapsed());
        Ok(batches)
    }

    fn do_get(&self, ticket: Ticket, deadline: Option<Duration>) -> Result<FlightRecordBatchStream, Error> {
        let stream = self.renewing(|| {
            let mut flight = self.flight.clone();
            let request = self.request(ticket.clone());
            let call = async move { flight.do_get(request).await.map(tonic::Response::into_inner) };
            Ok(block_on(with_deadline(call, deadline))?)
        })?;
        Ok(record_batches(stream))
    }

    /// Asks the service to stop the query `info` describes (best effort: the dropped
    /// stream stops it too).
    pub(crate) fn cancel(&self, info: FlightInfo) {
        let request = CancelFlightInfoRequest { info: Some(info) };
        let action = Action {
            r#type: "CancelFlightInfo".into(),
            body: request.encode_to_vec().into(),
        };
        if let Err(error) = self.action(action, Some(CANCEL_DEADLINE)) {
            tracing::debug!(%error, "cancelling an interrupted query failed");
        }
    }
}

/// The rows a DoPut changed, as its `DoPutUpdateResult` says (-1 when it says nothing).
pub(crate) async fn update_count(mut results: tonic::Streaming<PutResult>) -> Result<i64, tonic::Status> {
    let mut count = -1;
    while let Some(result) = results.message().await? {
        if let Ok(update) = DoPutUpdateResult::decode(result.app_metadata) {
            count = update.record_count;
        }
    }
    Ok(count)
}

/// A new connection to the target's endpoint, within the metadata deadline.
pub(crate) fn open(target: &Target) -> Result<FlightServiceClient<Channel>, Error> {
    let unreachable = |mut reason: String| {
        if target.ca.is_none() && reason.contains("UnknownIssuer") {
            reason += &format!(
                "; no CA of the system's store signed its certificate: name the one that did with \
                 CREATE SECRET (TYPE openduck, CA '/path/ca.pem', SCOPE '{}') or OPENDUCK_CA",
                target.endpoint
            );
        }
        Error::Unreachable {
            endpoint: target.endpoint.clone(),
            reason,
        }
    };
    let mut endpoint = Endpoint::from_shared(target.uri())
        .map_err(|error| Error::InvalidTarget(format!("openduck: invalid endpoint {:?}: {error}", target.endpoint)))?
        .connect_timeout(METADATA_DEADLINE)
        .tcp_nodelay(true);
    if target.identity.is_some() && !target.tls() {
        return Err(Error::InvalidTarget(format!(
            "openduck: a client certificate needs a grpc+tls:// endpoint, not {}",
            target.endpoint
        )));
    }
    if target.tls() {
        let mut tls = match target.ca.as_deref() {
            Some(ca) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)),
            // The system's CA store (where SSL_CERT_FILE or SSL_CERT_DIR say, if set).
            None => ClientTlsConfig::new().with_native_roots(),
        };
        if let Some((cert, key)) = &target.identity {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        endpoint = endpoint.tls_config(tls).map_err(|error| {
            let hint = match target.ca {
                // No system store (no CA certificates installed).
                None => {
                    " (no CA was named, and the system's CA store is empty: name one with CREATE SECRET \
                             (TYPE openduck, CA '/path/ca.pem') or OPENDUCK_CA)"
                }
                Some(_) => "",
            };
            Error::InvalidTarget(format!("openduck: TLS for {}: {error}{hint}", target.endpoint))
        })?;
    }
    let channel = block_on(async {
        tokio::time::timeout(METADATA_DEADLINE, endpoint.connect())
            .await
            .map_err(|_| unreachable(format!("no answer within {}s", METADATA_DEADLINE.as_secs())))?
            .map_err(|error| unreachable(error_chain(&error)))
    })?;
    Ok(FlightServiceClient::new(channel).max_decoding_message_size(usize::MAX))
}

/// The `host:port` of a plain `grpc://` (or `grpc+tcp://`) location.
fn plain_address(location: &str) -> Option<&str> {
    location
        .strip_prefix("grpc://")
        .or_else(|| location.strip_prefix("grpc+tcp://"))
}

/// A plain connection to the executor at `address`, within [`LOCATION_CONNECT`].
fn connect_location(address: &str) -> Result<FlightServiceClient<Channel>, String> {
    let endpoint = Endpoint::from_shared(format!("http://{address}"))
        .map_err(|error| error.to_string())?
        .connect_timeout(LOCATION_CONNECT)
        .tcp_nodelay(true);
    let channel = block_on(async { tokio::time::timeout(LOCATION_CONNECT, endpoint.connect()).await })
        .map_err(|_| "no answer".to_owned())?
        .map_err(|error| error_chain(&error))?;
    Ok(FlightServiceClient::new(channel).max_decoding_message_size(usize::MAX))
}

/// Logs `user` in through the Flight handshake (Basic credentials) and returns the bearer
/// token the service hands out. Neither the password nor the token is ever in an error.
fn log_in(flight: &FlightServiceClient<Channel>, endpoint: &str, user: &str, password: &str) -> Result<String, Error> {
    use base64::Engine;
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut request = tonic::Request::new(futures::stream::iter([HandshakeRequest::default()]));
    let header = format!("Basic {credentials}")
        .parse()
        .map_err(|_| Error::InvalidTarget("openduck: the user name or password is not valid in a header".into()))?;
    request.metadata_mut().insert("authorization", header);
    let mut flight = flight.clone();
    let call = async move {
        let response = flight.handshake(request).await?;
        let bearer = response
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::to_owned);
        let mut replies = response.into_inner();
        while replies.message().await?.is_some() {}
        Ok(bearer)
    };
    block_on(with_deadline(call, Some(METADATA_DEADLINE)))?.ok_or_else(|| {
        Error::Protocol(format!(
            "{endpoint} accepted the login but sent no token (does it have user accounts?)"
        ))
    })
}

pub(crate) fn record_batches(
    stream: impl futures::Stream<Item = Result<FlightData, tonic::Status>> + Send + 'static,
) -> FlightRecordBatchStream {
    FlightRecordBatchStream::new_from_flight_data(
        stream.map_err(|status| arrow_flight::error::FlightError::Tonic(Box::new(status))),
    )
}

/// Tells a waiting call whether the user interrupted the query it serves (DuckDB's
/// interrupt flag, read through the C interface).
#[derive(Clone)]
pub struct Interrupt(Option<Arc<dyn Fn() -> bool + Send + Sync>>);

impl Interrupt {
    /// An interrupt that never comes.
    pub fn never() -> Interrupt {
        Interrupt(None)
    }

    /// Interrupted once `check` says so.
    pub fn when(check: impl Fn() -> bool + Send + Sync + 'static) -> Interrupt {
        Interrupt(Some(Arc::new(check)))
    }

    pub(crate) fn is_set(&self) -> bool {
        self.0.as_ref().is_some_and(|check| check())
    }
}

impl std::fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Interrupt(when)"
        } else {
            "Interrupt(never)"
        })
    }
}

/// Waits for `call` on the shared runtime, looking at `interrupt` every
/// [`INTERRUPT_POLL`].
pub(crate) fn interruptible<T>(
    call: impl Future<Output = Result<T, Error>>,
    interrupt: &Interrupt,
) -> Result<T, Error> {
    if interrupt.0.is_none() {
        return block_on(call);
    }
    block_on(async {
        tokio::pin!(call);
        loop {
            tokio::select! {
                result = &mut call => return result,
                _ = tokio::time::sleep(INTERRUPT_POLL) => {
                    if interrupt.is_set() {
                        return Err(Error::Interrupted);
                    }
                }
            }
        }
    })
}

pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

async fn with_deadline<T>(
    call: impl Future<Output = Result<T, tonic::Status>>,
    deadline: Option<Duration>,
) -> Result<T, tonic::Status> {
    match deadline {
        None => call.await,
        Some(deadline) => tokio::time::timeout(deadline, call).await.unwrap_or_else(|_| {
            Err(tonic::Status::deadline_exceeded(format!(
                "no answer within {}s",
                deadline.as_secs()
            )))
        }),
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, Error> {
    batch
        .column_by_name(name)
        .and_then(|column| column.as_any().downcast_ref::<T>())
        .ok_or_else(|| {
            Error::Arrow(ArrowError::SchemaError(format!(
                "the service's metadata lacks column {name}"
            )))
        })
}

fn strings<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray, Error> {
    let array = column::<StringArray>(batch, name)?;
    debug_assert!(array.len() == batch.num_rows());
    Ok(array)
}
