//! Setting up logs, traces and metrics once per process.

use std::fmt;
use std::sync::Arc;

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{ManualReader, SdkMeterProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::{Event, Level, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{filter_fn, FilterExt, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::error::{Error, Result};

/// How logs are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines (colours on a terminal).
    #[default]
    Text,
    /// One JSON object a line, with the trace and span ids of the span the
    /// event happened in.
    Json,
}

/// What a process asks of [`Telemetry::init`].
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// `service.name` of its traces and metrics when `OTEL_SERVICE_NAME`
    /// does not say (`openduck-coordinator`, say).
    pub service_name: String,
    /// Log filter, in tracing's EnvFilter syntax.
    pub log_filter: String,
    /// Text or JSON logs.
    pub log_format: LogFormat,
}

/// The process's telemetry; [`Telemetry::shutdown`] flushes what is left
/// to export.
#[derive(Debug)]
pub struct Telemetry {
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
    reader: Arc<ManualReader>,
}

impl Telemetry {
    /// Installs logging, tracing and metrics for this process. Traces and
    /// metrics are exported over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// (or the per-signal `..._TRACES_ENDPOINT`, `..._METRICS_ENDPOINT`) is
    /// set and `OTEL_SDK_DISABLED` is not `true`; metrics are always kept
    /// for [`Telemetry::prometheus`]. Must run inside a Tokio runtime (the
    /// exporters' gRPC client lives there).
    pub fn init(config: TelemetryConfig) -> Result<Telemetry> {
        let filter = EnvFilter::try_new(&config.log_filter).map_err(|error| Error::LogFilter {
            filter: config.log_filter.clone(),
            reason: error.to_string(),
        })?;
        let resource = resource(&config.service_name);

        let mut traces = SdkTracerProvider::builder().with_resource(resource.clone());
        if exports("TRACES") {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()
                .map_err(|error| Error::Exporter {
                    signal: "traces",
                    reason: error.to_string(),
                })?;
            traces = traces.with_batch_exporter(exporter);
        }
        let tracer_provider = traces.build();

        let reader = Arc::new(ManualReader::builder().build());
        let mut metrics = SdkMeterProvider::builder()
            .with_resource(resource)
            .with_reader(SharedReader(Arc::clone(&reader)));
        if exports("METRICS") {
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .build()
                .map_err(|error| Error::Exporter {
                    signal: "metrics",
                    reason: error.to_string(),
                })?;
            metrics = metrics.with_periodic_exporter(exporter);
        }
        let meter_provider = metrics.build();
        opentelemetry::global::set_meter_provider(meter_provider.clone());
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

        // Spans are openduck's own, at info, whatever the log filter says
        // (which must not turn tracing off, nor trace the exporter's own
        // gRPC calls); logs are events only, as the filter says, so that
        // text lines read as they did before there were spans.
        let spans = tracing_opentelemetry::layer()
            .with_tracer(tracer_provider.tracer("openduck"))
            .with_filter(Targets::new().with_target("openduck", Level::INFO));
        let events = filter.and(filter_fn(|metadata| metadata.is_event()));
        let logs = match config.log_format {
            LogFormat::Text => tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_filter(events)
                .boxed(),
            LogFormat::Json => tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .event_format(JsonLines)
                .with_filter(events)
                .boxed(),
        };
        tracing_subscriber::registry()
            .with(spans)
            .with(logs)
            .try_init()
            .map_err(|_| Error::AlreadyInstalled)?;
        Ok(Telemetry {
            tracer_provider,
            meter_provider,
            reader,
        })
    }

    /// Every metric of this process, in Prometheus' text exposition format.
    pub fn prometheus(&self) -> String {
        let mut collected = ResourceMetrics::default();
        match self.reader.collect(&mut collected) {
            Ok(()) => crate::prometheus::render(&collected),
            Err(error) => format!("# metrics unavailable: {error}\n"),
        }
    }

    /// Exports what is still buffered and stops exporting. Blocks while
    /// the exporters flush (each gives up after a few seconds).
    pub fn shutdown(&self) {
        if let Err(error) = self.tracer_provider.shutdown() {
            tracing::debug!(%error, "trace export did not shut down cleanly");
        }
        if let Err(error) = self.meter_provider.shutdown() {
            tracing::debug!(%error, "metric export did not shut down cleanly");
        }
    }
}

/// Whether the OTLP variables ask for `signal` (TRACES or METRICS) to be exported.
fn exports(signal: &str) -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|value| !value.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|value| value.eq_ignore_ascii_case("true"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set(&format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")))
}

/// The process's resource: `OTEL_RESOURCE_ATTRIBUTES` and
/// `OTEL_SERVICE_NAME` when either names the service, else `service_name`.
fn resource(service_name: &str) -> Resource {
    let builder = Resource::builder();
    let named = |name: &str| std::env::var(name).unwrap_or_default();
    let given = !named("OTEL_SERVICE_NAME").is_empty()
        || named("OTEL_RESOURCE_ATTRIBUTES")
            .split(',')
            .any(|pair| pair.trim_start().starts_with("service.name="));
    if given {
        builder.build()
    } else {
        builder.with_service_name(service_name.to_string()).build()
    }
}

/// The one [`ManualReader`] of the provider, kept by [`Telemetry`] too so
/// that `/metrics` can collect from it.
#[derive(Debug)]
pub(crate) struct SharedReader(pub(crate) Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: std::sync::Weak<opentelemetry_sdk::metrics::Pipeline>) {
        self.0.register_pipeline(pipeline)
    }

    fn collect(&self, rm: &mut ResourceMetrics) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.collect(rm)
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: std::time::Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: opentelemetry_sdk::metrics::InstrumentKind) -> opentelemetry_sdk::metrics::Temporality {
        self.0.temporality(kind)
    }
}

/// JSON lines: time, level, target, message, the event's other fields, the
/// span it happened in and that span's trace and span ids.
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut time = String::new();
        SystemTime.format_time(&mut Writer::new(&mut time))?;
        let metadata = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut line = serde_json::Map::new();
        line.insert("timestamp".into(), time.into());
        line.insert("level".into(), metadata.level().as_str().into());
        line.insert("target".into(), metadata.target().into());
        if let Some(message) = fields.message.take() {
            line.insert("message".into(), message.into());
        }
        if !fields.values.is_empty() {
            line.insert("fields".into(), serde_json::Value::Object(fields.values));
        }
        let current = tracing::Span::current();
        if let Some(span) = current.metadata() {
            line.insert("span".into(), span.name().into());
        }
        let context = current.context();
        let span = context.span();
        let ids = span.span_context();
        if ids.is_valid() {
            line.insert("trace_id".into(), ids.trace_id().to_string().into());
            line.insert("span_id".into(), ids.span_id().to_string().into());
        }
        writeln!(writer, "{}", serde_json::Value::Object(line))
    }
}

/// An event's fields as JSON values.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    values: serde_json::Map<String, serde_json::Value>,
}

impl Fields {
    fn put(&mut self, field: &tracing::field::Field, value: serde_json::Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            });
        } else {
            self.values.insert(field.name().to_string(), value);
        }
    }
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.put(field, value.into());
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.put(field, value.into());
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.put(field, value.into());
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.put(field, value.into());
    }

    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.put(field, value.into());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
}
