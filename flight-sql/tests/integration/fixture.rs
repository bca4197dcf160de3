//! An openduck server in this process, on an ephemeral port, with helpers
//! that speak raw Flight SQL so tests can check exact status codes.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{CommandStatementQuery, CommandStatementUpdate, DoPutUpdateResult, ProstMessageExt};
use arrow_flight::{FlightData, FlightDescriptor, FlightInfo};
use futures::{StreamExt, TryStreamExt};
use openduck_coordinator::Coordinator;
use openduck_executor::{Executor, ExecutorConfig};
use openduck_flight_sql::{serve, RunningServer, ServerConfig};
use prost::Message;
use tempfile::TempDir;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

/// How to start a [`TestServer`].
pub(crate) struct Options {
    pub(crate) databases: Vec<String>,
    pub(crate) token: Option<String>,
    pub(crate) max_connections: usize,
    pub(crate) max_streams_per_connection: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            databases: vec!["mydb".into()],
            token: None,
            max_connections: 4,
            max_streams_per_connection: ServerConfig::default().max_streams_per_connection,
        }
    }
}

pub(crate) struct TestServer {
    server: Option<RunningServer>,
    dir: Option<TempDir>,
    pub(crate) token: Option<String>,
    channel: Channel,
}

impl TestServer {
    pub(crate) async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub(crate) async fn start_with(options: Options) -> Self {
        Self::start_in(TempDir::new().expect("temp dir"), options).await
    }

    /// Starts a server whose databases live in `dir` (to test restarts).
    pub(crate) async fn start_in(dir: TempDir, options: Options) -> Self {
        let config = ExecutorConfig {
            max_connections: options.max_connections,
            ..ExecutorConfig::new(dir.path(), options.databases)
        };
        let executor = tokio::task::spawn_blocking(move || Executor::open(config))
            .await
            .unwrap()
            .expect("executor opens");
        let coordinator = Arc::new(Coordinator::embedded(Arc::new(executor), Duration::from_secs(60)));
        let server = serve(
            coordinator,
            ServerConfig {
                listen: "127.0.0.1:0".into(),
                token: options.token.clone(),
                max_streams_per_connection: options.max_streams_per_connection,
                shutdown_grace: Duration::from_secs(2),
                ..ServerConfig::default()
            },
        )
        .await
        .expect("server starts");
        let uri = format!("http://{}", server.local_addr());
        let channel = Endpoint::from_shared(uri)
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .connect_lazy();
        TestServer {
            server: Some(server),
            dir: Some(dir),
            token: options.token,
            channel,
        }
    }

    /// Stops the server (checkpointing) and hands back its data directory.
    pub(crate) async fn stop(mut self) -> TempDir {
        self.server.take().unwrap().shutdown().await.expect("clean shutdown");
        self.dir.take().expect("present until stopped")
    }

    /// `HOST:PORT` the server listens on.
    pub(crate) fn addr(&self) -> String {
        self.server.as_ref().expect("running").local_addr().to_string()
    }

    /// The one connection every client of this test shares.
    pub(crate) fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub(crate) fn flight(&self) -> FlightServiceClient<Channel> {
        FlightServiceClient::new(self.channel.clone())
    }

    /// arrow-flight's Flight SQL client, authenticated when the server has a token.
    pub(crate) fn sql_client(&self) -> FlightSqlServiceClient<Channel> {
        let mut client = FlightSqlServiceClient::new(self.channel.clone());
        if let Some(token) = &self.token {
            client.set_header("authorization", format!("Bearer {token}"));
        }
        client
    }

    /// A request carrying the server's token, if any.
    pub(crate) fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(token) = &self.token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        request
    }

    pub(crate) async fn info(&self, command: impl ProstMessageExt) -> Result<FlightInfo, Status> {
        let descriptor = FlightDescriptor::new_cmd(command.as_any().encode_to_vec());
        Ok(self
            .flight()
            .get_flight_info(self.request(descriptor))
            .await?
            .into_inner())
    }

    /// Reads every endpoint of `info`, in order.
    pub(crate) async fn fetch(&self, info: FlightInfo) -> Result<Vec<RecordBatch>, Status> {
        let mut batches = Vec::new();
        for endpoint in info.endpoint {
            let ticket = endpoint.ticket.expect("endpoint has a ticket");
            batches.extend(self.fetch_ticket(ticket).await?);
        }
        Ok(batches)
    }

    pub(crate) async fn fetch_ticket(&self, ticket: arrow_flight::Ticket) -> Result<Vec<RecordBatch>, Status> {
        let stream = self.flight().do_get(self.request(ticket)).await?.into_inner();
        let batches = FlightRecordBatchStream::new_from_flight_data(stream.map_err(FlightError::from));
        batches.try_collect().await.map_err(to_status)
    }

    /// Runs a query through GetFlightInfo + DoGet.
    pub(crate) async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>, Status> {
        let info = self
            .info(CommandStatementQuery {
                query: sql.into(),
                transaction_id: None,
            })
            .await?;
        self.fetch(info).await
    }

    /// Runs a statement through DoPut(CommandStatementUpdate).
    pub(crate) async fn update(&self, sql: &str) -> Result<i64, Status> {
        let command = CommandStatementUpdate {
            query: sql.into(),
            transaction_id: None,
        };
        let descriptor = FlightDescriptor::new_cmd(command.as_any().encode_to_vec());
        let first = FlightData::new().with_descriptor(descriptor);
        let mut results = self
            .flight()
            .do_put(self.request(futures::stream::iter([first])))
            .await?
            .into_inner();
        let result = results.next().await.expect("a put result")?;
        Ok(DoPutUpdateResult::decode(result.app_metadata).unwrap().record_count)
    }

    /// The single value of a one-row, one-column result, as text.
    pub(crate) async fn scalar(&self, sql: &str) -> String {
        let batches = self.query(sql).await.unwrap_or_else(|status| panic!("{sql}: {status}"));
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 1, "{sql} returned {rows} rows");
        let batch = batches.iter().find(|b| b.num_rows() > 0).unwrap();
        arrow::util::display::array_value_to_string(batch.column(0), 0).unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // A test that panicked still stops its server: abort via a detached shutdown.
        if let Some(server) = self.server.take() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = server.shutdown().await;
                });
            }
        }
    }
}

pub(crate) fn to_status(error: FlightError) -> Status {
    match error {
        FlightError::Tonic(status) => *status,
        other => Status::internal(other.to_string()),
    }
}

pub(crate) fn total_rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|batch| batch.num_rows()).sum()
}
