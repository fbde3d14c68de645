//! Prometheus metrics (`GET /metrics`): deliveries by outcome, attempts by status class, attempt
//! latency, the queue's depth and oldest pending age, events emitted by type, API requests by route
//! and status code, trace spans dropped, the build, the schema versions, and the process' own
//! figures.
//!
//! prometheus-client writes OpenMetrics only; [`text_format`] turns that into the classic text
//! format, which is what a scrape gets unless it asks for OpenMetrics ([`negotiate`]).

mod negotiate;
mod process;
pub mod text_format;

pub use negotiate::Format;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE, VARY};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use reward_core::event::EventType;
use reward_core::time::Timestamp;
use reward_store::records::SchemaVersions;
use reward_store::Store;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusClassLabel {
    status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventTypeLabel {
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    /// The HTTP status code, under the label name Prometheus' own exporters use.
    code: u16,
}

pub struct Metrics {
    registry: Registry,
    deliveries: Family<OutcomeLabel, Counter>,
    attempts: Family<StatusClassLabel, Counter>,
    attempt_seconds: Histogram,
    queue_depth: Gauge,
    oldest_pending_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    events: Family<EventTypeLabel, Counter>,
    requests: Family<RequestLabels, Counter>,
    handoffs_given_up: Counter,
    start_slots_missed: Counter,
    trace_spans_dropped: Counter,
    database_schema_version: Gauge,
    build_schema_version: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut root = Registry::default();
        // The process metrics keep their standard, unprefixed names.
        if let Some(process) = process::ProcessCollector::for_this_platform() {
            root.register_collector(Box::new(process));
        }
        let registry = root.sub_registry_with_prefix("reward");
        registry.register(
            "build",
            "The running build (value 1, the version as a label)",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        let deliveries = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "deliveries",
            "Delivery attempts by the state they left the delivery in (succeeded, retry, failed, unchanged)",
            deliveries.clone(),
        );
        let attempts = Family::<StatusClassLabel, Counter>::default();
        registry.register(
            "delivery_attempts",
            "Delivery attempts by the receiver's status class (2xx..5xx, or error when no status came back)",
            attempts.clone(),
        );
        // 1 ms to about 33 s.
        let attempt_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "delivery_attempt_duration_seconds",
            "How long delivery attempts took",
            attempt_seconds.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "delivery_queue_depth",
            "Pending deliveries",
            queue_depth.clone(),
        );
        let oldest_pending_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "delivery_oldest_pending_age_seconds",
            "Age of the oldest pending delivery",
            oldest_pending_seconds.clone(),
        );
        let events = Family::<EventTypeLabel, Counter>::default();
        registry.register("events_emitted", "Events emitted, by type", events.clone());
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "api_requests",
            "HTTP requests by method, route and status code",
            requests.clone(),
        );
        let handoffs_given_up = Counter::default();
        registry.register(
            "delivery_handoffs_given_up",
            "New deliveries handed to this node's worker that it left to claiming instead (their webhook had too many waiting, or they waited too long)",
            handoffs_given_up.clone(),
        );
        let start_slots_missed = Counter::default();
        registry.register(
            "delivery_start_slots_missed",
            "Deliveries of rate-limited webhooks this node's worker could not start within their start slot (it stalled), given back to claiming for a new slot",
            start_slots_missed.clone(),
        );
        let trace_spans_dropped = Counter::default();
        registry.register(
            "trace_spans_dropped",
            "Trace spans this node could not export (the OTLP collector was down, slow or refused them, or the export queue was full), dropped rather than waited for",
            trace_spans_dropped.clone(),
        );
        let database_schema_version = Gauge::default();
        registry.register(
            "database_schema_version",
            "The database's schema version (migrations applied), as this node last read it; above reward_build_schema_version, a newer release migrated it and this node should be upgraded",
            database_schema_version.clone(),
        );
        let build_schema_version = Gauge::default();
        registry.register(
            "build_schema_version",
            "The newest schema version this node's build knows",
            build_schema_version.clone(),
        );
        Self {
            registry: root,
            deliveries,
            attempts,
            attempt_seconds,
            queue_depth,
            oldest_pending_seconds,
            events,
            requests,
            handoffs_given_up,
            start_slots_missed,
            trace_spans_dropped,
            database_schema_version,
            build_schema_version,
        }
    }

    /// The schema versions last read (see `upkeep::SchemaWatch`).
    pub fn schema_versions(&self, versions: SchemaVersions) {
        let gauge = |version: usize| i64::try_from(version).unwrap_or(i64::MAX);
        self.database_schema_version.set(gauge(versions.database));
        self.build_schema_version.set(gauge(versions.build));
    }

    /// The count of trace spans dropped, for the exporter to add to.
    pub fn trace_spans_dropped(&self) -> Counter {
        self.trace_spans_dropped.clone()
    }

    /// One finished attempt: its outcome for the delivery, the receiver's status, its duration.
    pub fn attempt(&self, outcome: &'static str, status_code: Option<u16>, duration: Duration) {
        self.deliveries
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
        let status_class = match status_code {
            Some(200..=299) => "2xx",
            Some(300..=399) => "3xx",
            Some(400..=499) => "4xx",
            Some(500..=599) => "5xx",
            Some(_) => "other",
            None => "error",
        };
        self.attempts
            .get_or_create(&StatusClassLabel { status_class })
            .inc();
        self.attempt_seconds.observe(duration.as_secs_f64());
    }

    /// Handed-off deliveries the worker gave up to claiming.
    pub fn handoffs_given_up(&self, count: usize) {
        self.handoffs_given_up
            .inc_by(u64::try_from(count).unwrap_or(u64::MAX));
    }

    /// A delivery of a rate-limited webhook missed its start slot and was given back.
    pub fn start_slot_missed(&self) {
        self.start_slots_missed.inc();
    }

    pub fn event_emitted(&self, event_type: EventType) {
        self.events
            .get_or_create(&EventTypeLabel {
                r#type: event_type.as_str(),
            })
            .inc();
    }

    /// The exposition in `format`, with the queue gauges read from the store now.
    pub async fn render(&self, store: &dyn Store, format: Format) -> String {
        match store.queue_stats().await {
            Ok(stats) => {
                self.queue_depth
                    .set(i64::try_from(stats.pending).unwrap_or(i64::MAX));
                let age = stats
                    .oldest_pending_created_at
                    .map(|created| {
                        (Timestamp::now().as_millis() - created.as_millis()).max(0) as f64 / 1000.0
                    })
                    .unwrap_or(0.0);
                self.oldest_pending_seconds.set(age);
            }
            Err(error) => tracing::warn!(%error, "could not read queue statistics for /metrics"),
        }
        let openmetrics = self.encode_openmetrics();
        match format {
            Format::OpenMetrics => openmetrics,
            Format::Text => text_format::from_openmetrics(&openmetrics),
        }
    }

    fn encode_openmetrics(&self) -> String {
        let mut text = String::new();
        if let Err(error) = encode(&mut text, &self.registry) {
            tracing::error!(%error, "encoding metrics failed");
        }
        text
    }
}

/// `GET /metrics`: the classic text format, or OpenMetrics when the `Accept` header asks for it.
pub async fn serve_metrics(
    State(state): State<crate::state::AppState>,
    headers: HeaderMap,
) -> Response {
    let accept = headers.get(ACCEPT).and_then(|value| value.to_str().ok());
    let format = Format::from_accept(accept);
    let text = state.metrics.render(state.store.as_ref(), format).await;
    (
        [(CONTENT_TYPE, format.content_type()), (VARY, "accept")],
        text,
    )
        .into_response()
}

/// Counts every request by method, matched route (never the raw path: ids would explode the
/// label set) and status code. Both labels come from fixed sets, so a client cannot grow the
/// series without bound, and no value needs escaping.
pub async fn count_requests(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = method_label(request.method());
    let response = next.run(request).await;
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route,
            code: response.status().as_u16(),
        })
        .inc();
    response
}

/// The standard methods by name; any other (HTTP allows a client to invent them) as `other`.
fn method_label(method: &Method) -> &'static str {
    const STANDARD: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ];
    STANDARD
        .into_iter()
        .find(|name| *name == method.as_str())
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        for invented in ["BREW", "get", "X-ANYTHING"] {
            let method = Method::from_bytes(invented.as_bytes()).unwrap_or_default();
            assert_eq!(method_label(&method), "other", "{invented}");
        }
    }
}
