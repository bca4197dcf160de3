//! Logs, traces and metrics of the server processes (`serve`,
//! `coordinator`, `executor`): `--log`, `--log-format`, `--metrics-listen`,
//! and OpenTelemetry's own `OTEL_*` variables.

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use openduck_telemetry::{serve_metrics, LogFormat, MetricsServer, Telemetry, TelemetryConfig};

#[derive(Debug, Args)]
pub(crate) struct TelemetryArgs {
    /// Log filter (tracing's EnvFilter syntax, for example `info` or `openduck=debug`).
    #[arg(long, env = "OPENDUCK_LOG", default_value = "info")]
    log: String,

    /// Log lines as text, or as JSON objects that carry the trace and span
    /// ids of what they report.
    #[arg(long, env = "OPENDUCK_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormatArg,

    /// Serve metrics for Prometheus on http://HOST:PORT/metrics. Traces and
    /// metrics go over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set.
    #[arg(long, env = "OPENDUCK_METRICS_LISTEN")]
    metrics_listen: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

/// A process's telemetry while it runs.
#[derive(Debug)]
pub(crate) struct Observability {
    telemetry: Arc<Telemetry>,
    _metrics: Option<MetricsServer>,
}

impl TelemetryArgs {
    /// Sets up logs, traces and metrics for `service` (its `service.name`
    /// unless OTEL_SERVICE_NAME says otherwise).
    pub(crate) async fn start(&self, service: &str) -> Result<Observability, Box<dyn std::error::Error>> {
        let telemetry = Arc::new(Telemetry::init(TelemetryConfig {
            service_name: service.to_string(),
            log_filter: self.log.clone(),
            log_format: match self.log_format {
                LogFormatArg::Text => LogFormat::Text,
                LogFormatArg::Json => LogFormat::Json,
            },
        })?);
        let metrics = match &self.metrics_listen {
            Some(address) => {
                let server = serve_metrics(Arc::clone(&telemetry), address).await?;
                println!("openduck metrics on http://{}/metrics", server.local_addr());
                Some(server)
            }
            None => None,
        };
        Ok(Observability {
            telemetry,
            _metrics: metrics,
        })
    }
}

/// Longest wait for the exporters to flush at exit.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(3);

impl Observability {
    /// Exports what is still buffered, waiting at most a few seconds (an
    /// unreachable collector must not hold up a pod's exit).
    pub(crate) async fn shutdown(self) {
        drop(self._metrics);
        let telemetry = self.telemetry;
        let flushed = tokio::task::spawn_blocking(move || telemetry.shutdown());
        if tokio::time::timeout(FLUSH_TIMEOUT, flushed).await.is_err() {
            tracing::warn!("telemetry still unexported after {FLUSH_TIMEOUT:?}; exiting without it");
        }
    }
}
