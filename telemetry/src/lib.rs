//! Logs, traces and metrics for every openduck process.
//!
//! - [`Telemetry::init`] installs them once per process: logs to stderr as
//!   text or JSON (with the trace id of the span they happen in), traces
//!   and metrics through OpenTelemetry, exported over OTLP/gRPC when the
//!   standard variables ask for it (`OTEL_EXPORTER_OTLP_ENDPOINT`,
//!   `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, ...) and off
//!   otherwise.
//! - [`Telemetry::prometheus`] renders the same metrics in Prometheus' text
//!   exposition format, and [`serve_metrics`] serves them on `/metrics`.
//! - [`observe_gauge`] reports a gauge read from live objects (pools,
//!   servers, replicas), summed over every one that lives.
//! - [`inject`] and [`extract`] carry the W3C trace context across a gRPC
//!   call (coordinator → executor), [`context_text`] and [`parent_from_text`]
//!   across a ticket, so that one statement is one trace.
//!
//! Library crates record through the `opentelemetry` API
//! (`opentelemetry::global::meter("openduck")`) and `tracing` spans; only
//! the binary calls [`Telemetry::init`].

mod error;
mod gauges;
mod init;
mod metrics_server;
mod prometheus;
mod propagation;

pub use error::{Error, Result};
pub use gauges::{observe_gauge, GaugeUnit, Readings};
pub use init::{LogFormat, Telemetry, TelemetryConfig};
pub use metrics_server::{serve_metrics, MetricsServer};
pub use propagation::{context_text, extract, in_span, inject, parent_from_text, InSpan};

/// The meter every openduck crate records with.
pub fn meter() -> opentelemetry::metrics::Meter {
    opentelemetry::global::meter("openduck")
}
