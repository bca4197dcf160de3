//! Metrics in Prometheus' text exposition format (version 0.0.4).
//!
//! Instruments are named the Prometheus way already (`openduck_calls`,
//! `openduck_call_duration_seconds`): a monotonic sum becomes a counter
//! named `<name>_total`, other sums and gauges become gauges, histograms
//! keep their buckets (cumulative, with `+Inf`), sum and count.

use std::collections::BTreeMap;
use std::fmt::Write;

use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, Metric, MetricData, ResourceMetrics};

/// Renders every metric of `collected`.
pub(crate) fn render(collected: &ResourceMetrics) -> String {
    // Families by name: one HELP and TYPE each, even if two scopes share a name.
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for scope in collected.scope_metrics() {
        for metric in scope.metrics() {
            add(&mut families, metric);
        }
    }
    let mut out = String::new();
    for (name, family) in &families {
        let _ = writeln!(out, "# HELP {name} {}", escape_help(&family.help));
        let _ = writeln!(out, "# TYPE {name} {}", family.kind);
        for line in &family.samples {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

struct Family {
    help: String,
    kind: &'static str,
    samples: Vec<String>,
}

fn add(families: &mut BTreeMap<String, Family>, metric: &Metric) {
    let base = sanitize(metric.name());
    let help = metric.description().to_string();
    match metric.data() {
        AggregatedMetrics::F64(data) => add_data(families, &base, help, data, |v| format_f64(*v)),
        AggregatedMetrics::U64(data) => add_data(families, &base, help, data, u64::to_string),
        AggregatedMetrics::I64(data) => add_data(families, &base, help, data, i64::to_string),
    }
}

fn add_data<T: Copy + Into<NumberLike>>(
    families: &mut BTreeMap<String, Family>,
    base: &str,
    help: String,
    data: &MetricData<T>,
    number: impl Fn(&T) -> String,
) {
    let (name, kind, samples) = match data {
        MetricData::Gauge(gauge) => (
            base.to_string(),
            "gauge",
            gauge
                .data_points()
                .map(|point| sample(base, point.attributes(), &[], &number(&point.value())))
                .collect(),
        ),
        MetricData::Sum(sum) => {
            let (name, kind) = if sum.is_monotonic() {
                (total(base), "counter")
            } else {
                (base.to_string(), "gauge")
            };
            let samples = sum
                .data_points()
                .map(|point| sample(&name, point.attributes(), &[], &number(&point.value())))
                .collect();
            (name, kind, samples)
        }
        MetricData::Histogram(histogram) => {
            let mut samples = Vec::new();
            for point in histogram.data_points() {
                let mut cumulative = 0u64;
                let counts: Vec<u64> = point.bucket_counts().collect();
                for (bound, count) in point.bounds().zip(&counts) {
                    cumulative += count;
                    let le = format_f64(bound);
                    samples.push(sample(
                        &format!("{base}_bucket"),
                        point.attributes(),
                        &[("le", &le)],
                        &cumulative.to_string(),
                    ));
                }
                samples.push(sample(
                    &format!("{base}_bucket"),
                    point.attributes(),
                    &[("le", "+Inf")],
                    &point.count().to_string(),
                ));
                let sum: NumberLike = point.sum().into();
                samples.push(sample(&format!("{base}_sum"), point.attributes(), &[], &sum.0));
                samples.push(sample(
                    &format!("{base}_count"),
                    point.attributes(),
                    &[],
                    &point.count().to_string(),
                ));
            }
            (base.to_string(), "histogram", samples)
        }
        // Not made by any openduck instrument; left out rather than misrendered.
        MetricData::ExponentialHistogram(_) => return,
    };
    let family = families.entry(name).or_insert_with(|| Family {
        help,
        kind,
        samples: Vec::new(),
    });
    family.samples.extend(samples);
}

/// A number as Prometheus writes it.
struct NumberLike(String);

impl From<f64> for NumberLike {
    fn from(value: f64) -> Self {
        NumberLike(format_f64(value))
    }
}

impl From<u64> for NumberLike {
    fn from(value: u64) -> Self {
        NumberLike(value.to_string())
    }
}

impl From<i64> for NumberLike {
    fn from(value: i64) -> Self {
        NumberLike(value.to_string())
    }
}

fn format_f64(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value == f64::INFINITY {
        "+Inf".into()
    } else if value == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        value.to_string()
    }
}

fn total(name: &str) -> String {
    if name.ends_with("_total") {
        name.to_string()
    } else {
        format!("{name}_total")
    }
}

fn sample<'a>(
    name: &str,
    attributes: impl Iterator<Item = &'a KeyValue>,
    extra: &[(&str, &str)],
    value: &str,
) -> String {
    let mut labels: Vec<(String, String)> = attributes
        .map(|kv| (sanitize(kv.key.as_str()), kv.value.to_string()))
        .collect();
    labels.sort();
    labels.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    if labels.is_empty() {
        return format!("{name} {value}");
    }
    let labels: Vec<String> = labels
        .iter()
        .map(|(key, value)| format!("{key}=\"{}\"", escape_label(value)))
        .collect();
    format!("{name}{{{}}} {value}", labels.join(","))
}

/// A metric or label name Prometheus accepts: `[a-zA-Z_:][a-zA-Z0-9_:]*`
/// (colons are for recording rules, so not made here).
fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\n', "\\n").replace('"', "\\\"")
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::SharedReader;
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::reader::MetricReader;
    use opentelemetry_sdk::metrics::{ManualReader, SdkMeterProvider};
    use std::sync::Arc;

    #[test]
    fn counters_gauges_and_histograms_render_as_prometheus_expects() {
        let reader = Arc::new(ManualReader::builder().build());
        let provider = SdkMeterProvider::builder()
            .with_reader(SharedReader(Arc::clone(&reader)))
            .build();
        let meter = provider.meter("test");
        let calls = meter.u64_counter("openduck_calls").with_description("Calls.").build();
        calls.add(2, &[KeyValue::new("code", "OK"), KeyValue::new("kind", "query")]);
        calls.add(
            1,
            &[KeyValue::new("kind", "query"), KeyValue::new("code", "InvalidArgument")],
        );
        let open = meter.i64_up_down_counter("openduck_open_sessions").build();
        open.add(3, &[]);
        let duration = meter
            .f64_histogram("openduck_call_duration_seconds")
            .with_boundaries(vec![0.1, 1.0])
            .build();
        duration.record(0.05, &[KeyValue::new("kind", "a\"b")]);
        duration.record(0.5, &[KeyValue::new("kind", "a\"b")]);
        let mut collected = ResourceMetrics::default();
        reader.collect(&mut collected).unwrap();
        let text = render(&collected);
        for line in [
            "# TYPE openduck_calls_total counter",
            "openduck_calls_total{code=\"OK\",kind=\"query\"} 2",
            "openduck_calls_total{code=\"InvalidArgument\",kind=\"query\"} 1",
            "# TYPE openduck_open_sessions gauge",
            "openduck_open_sessions 3",
            "# TYPE openduck_call_duration_seconds histogram",
            "openduck_call_duration_seconds_bucket{kind=\"a\\\"b\",le=\"0.1\"} 1",
            "openduck_call_duration_seconds_bucket{kind=\"a\\\"b\",le=\"1\"} 2",
            "openduck_call_duration_seconds_bucket{kind=\"a\\\"b\",le=\"+Inf\"} 2",
            "openduck_call_duration_seconds_sum{kind=\"a\\\"b\"} 0.55",
            "openduck_call_duration_seconds_count{kind=\"a\\\"b\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "no line {line:?} in:\n{text}");
        }
    }
}
