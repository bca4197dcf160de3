//! The W3C trace context across process boundaries: in gRPC metadata from
//! coordinator to executor, and as text in tickets, so that a statement's
//! planning (GetFlightInfo) and execution (DoGet) are one trace.

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::Context;
use tonic::metadata::{KeyRef, MetadataKey, MetadataMap, MetadataValue};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Puts the current span's trace context into `metadata` (`traceparent`).
pub fn inject(metadata: &mut MetadataMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut MetadataWriter(metadata))
    });
}

/// Makes `span` a child of the trace context `metadata` carries, if any.
pub fn extract(span: &tracing::Span, metadata: &MetadataMap) {
    let parent =
        opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&MetadataReader(metadata)));
    adopt(span, parent);
}

/// The current span's trace context as text (a `traceparent` value), or
/// empty when there is none.
pub fn context_text() -> String {
    let context = tracing::Span::current().context();
    let mut fields = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.inject_context(&context, &mut fields));
    fields.remove("traceparent").unwrap_or_default()
}

/// Makes `span` a child of the trace context in `text` ([`context_text`]).
pub fn parent_from_text(span: &tracing::Span, text: &str) {
    if text.is_empty() {
        return;
    }
    let fields = HashMap::from([("traceparent".to_string(), text.to_string())]);
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&fields));
    adopt(span, parent);
}

fn adopt(span: &tracing::Span, parent: Context) {
    use opentelemetry::trace::TraceContextExt;
    if parent.span().span_context().is_valid() {
        // Fails only for a span that already started its OpenTelemetry span.
        let _ = span.set_parent(parent);
    }
}

struct MetadataWriter<'a>(&'a mut MetadataMap);

impl Injector for MetadataWriter<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.to_ascii_lowercase().as_bytes()),
            MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}

struct MetadataReader<'a>(&'a MetadataMap);

impl Extractor for MetadataReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|key| match key {
                KeyRef::Ascii(key) => Some(key.as_str()),
                KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

/// `stream`, polled inside `span`: the span lasts, and its logs carry its
/// trace, until the stream's last item (a span's end is the last time it is
/// exited, so merely holding it would end it at the first poll).
pub fn in_span<S>(stream: S, span: tracing::Span) -> InSpan<S> {
    InSpan { inner: stream, span }
}

/// A stream polled inside a span ([`in_span`]).
#[derive(Debug)]
pub struct InSpan<S> {
    inner: S,
    span: tracing::Span,
}

impl<S: futures::Stream + Unpin> futures::Stream for InSpan<S> {
    type Item = S::Item;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let this = &mut *self;
        let _entered = this.span.enter();
        std::pin::Pin::new(&mut this.inner).poll_next(cx)
    }
}
