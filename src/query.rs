//! `openduck query`: run SQL against a server and print the rows.

use std::io::Write;

use arrow::array::RecordBatch;
use arrow_flight::sql::client::FlightSqlServiceClient;
use clap::{Args, ValueEnum};
use futures::TryStreamExt;
use tonic::transport::Endpoint;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// An aligned table (reads the whole result before printing).
    Table,
    /// CSV with a header line, printed as rows arrive.
    Csv,
    /// One JSON object per row, printed as rows arrive.
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    /// The server (grpc://HOST:PORT).
    #[arg(long, env = "OPENDUCK_ENDPOINT", default_value = "grpc://127.0.0.1:7878")]
    endpoint: String,

    /// Token to authenticate with.
    #[arg(long, env = "OPENDUCK_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// Output format.
    #[arg(long, env = "OPENDUCK_FORMAT", value_enum, default_value = "table")]
    format: Format,

    /// The SQL to run (DuckDB dialect).
    sql: String,
}

pub(crate) async fn run(args: QueryArgs) -> Result<(), Box<dyn std::error::Error>> {
    let uri = match args.endpoint.strip_prefix("grpc://") {
        Some(rest) => format!("http://{rest}"),
        None if args.endpoint.starts_with("http://") => args.endpoint.clone(),
        None => return Err(format!("unsupported endpoint {:?}: use grpc://HOST:PORT", args.endpoint).into()),
    };
    let channel = Endpoint::from_shared(uri)?.connect().await?;
    let mut client = FlightSqlServiceClient::new(channel);
    if let Some(token) = &args.token {
        client.set_header("authorization", format!("Bearer {token}"));
    }
    let info = client.execute(args.sql, None).await?;
    let mut printer = Printer::new(args.format);
    for endpoint in info.endpoint {
        let Some(ticket) = endpoint.ticket else { continue };
        let mut batches = client.do_get(ticket).await?;
        while let Some(batch) = batches.try_next().await? {
            printer.push(batch)?;
        }
    }
    printer.finish()
}

/// Prints batches as they arrive (CSV, JSON) or at the end (table).
struct Printer {
    format: Format,
    held: Vec<RecordBatch>,
    csv: Option<arrow::csv::Writer<std::io::Stdout>>,
    json: Option<arrow::json::LineDelimitedWriter<std::io::Stdout>>,
}

impl Printer {
    fn new(format: Format) -> Self {
        Printer {
            format,
            held: Vec::new(),
            csv: None,
            json: None,
        }
    }

    fn push(&mut self, batch: RecordBatch) -> Result<(), Box<dyn std::error::Error>> {
        match self.format {
            Format::Table => self.held.push(batch),
            Format::Csv => self
                .csv
                .get_or_insert_with(|| arrow::csv::Writer::new(std::io::stdout()))
                .write(&batch)?,
            Format::Json => self
                .json
                .get_or_insert_with(|| arrow::json::LineDelimitedWriter::new(std::io::stdout()))
                .write(&batch)?,
        }
        Ok(())
    }

    fn finish(mut self) -> Result<(), Box<dyn std::error::Error>> {
        if let Some(json) = self.json.as_mut() {
            json.finish()?;
        }
        if let Format::Table = self.format {
            let table = arrow::util::pretty::pretty_format_batches(&self.held)?;
            writeln!(std::io::stdout(), "{table}")?;
        }
        std::io::stdout().flush()?;
        Ok(())
    }
}
