//! OpenTelemetry traces, exported over OTLP/HTTP when the standard variables ask for it
//! ([`settings`]); off otherwise, when every call here is one branch on `None`.
//!
//! Three kinds of span, one trace per API request that records events:
//! - an API request: `http.request.method`, `http.response.status_code`, `reward.account_id` once
//!   authenticated ([`request`]);
//! - each event the request recorded, a child of the request's span: `reward.event_type`,
//!   `reward.account_id`. Its context is stored with the event (`events.trace_parent`) inside the
//!   transaction that records it, so it outlives restarts and reaches every node;
//! - each delivery attempt, a child of its event's span, read with the event's payload:
//!   `reward.account_id`, `reward.webhook_id`, `reward.event_id`, `reward.delivery_id`,
//!   `reward.attempt`, `http.response.status_code`, `reward.outcome`. The attempt sends its own
//!   context to the receiver as `traceparent`.
//!
//! No attribute holds a URL, a path, a header, a body, a secret or a key: only ids, types and
//! outcomes an operator filters on.
//!
//! Export never waits: see [`export`] (spans that cannot be exported are dropped and counted).

mod collector_client;
mod export;
pub mod request;
pub mod settings;
mod span_ids;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use prometheus_client::metrics::counter::Counter;
use reward_core::event::EventType;
use reward_core::ids::AccountId;
use reward_core::trace::TraceParent;
use reward_store::records::ClaimedDelivery;

pub use request::RequestTrace;
pub use settings::TraceSettings;

/// Where spans go: nowhere when tracing is off. Cheap to clone.
#[derive(Clone, Default)]
pub struct Traces(Option<Arc<Tracing>>);

struct Tracing {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    /// While the export queue is full (a dead or slow collector), no span is made: it would be
    /// dropped anyway, and making it costs the request or the attempt. Each counts as dropped.
    room: export::QueueRoom,
    dropped: Counter,
}

impl Tracing {
    /// Whether `spans` spans must be skipped now (and are counted as dropped).
    fn shedding(&self, spans: usize) -> bool {
        let full = self.room.is_full();
        if full {
            self.dropped.inc_by(spans as u64);
        }
        full
    }
}

impl Traces {
    /// Tracing off: nothing is made, written or sent.
    pub fn off() -> Self {
        Self(None)
    }

    /// Starts exporting to `settings.endpoint`; spans that cannot be exported count in `dropped`.
    /// Needs no collector to be up: one that is down only costs dropped spans.
    pub fn start(settings: &TraceSettings, dropped: Counter) -> anyhow::Result<Self> {
        let resource = Resource::builder()
            .with_service_name(settings.service_name.clone())
            .build();
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(collector_client::CollectorClient::new(
                settings.export_timeout,
            )?)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(settings.endpoint.clone())
            .with_timeout(settings.export_timeout)
            .build()?;
        opentelemetry_sdk::trace::SpanExporter::set_resource(&mut exporter, &resource);
        let processor = export::BoundedExport::start(
            exporter,
            export::Batching {
                max_queue: settings.max_queue,
                max_batch: settings.max_batch,
                schedule_delay: settings.schedule_delay,
            },
            dropped.clone(),
        )?;
        let room = processor.room();
        let provider = SdkTracerProvider::builder()
            .with_resource(resource)
            .with_id_generator(span_ids::ChosenOrRandom::default())
            .with_span_processor(processor)
            .build();
        let tracer = provider.tracer("reward");
        Ok(Self(Some(Arc::new(Tracing {
            provider,
            tracer,
            room,
            dropped,
        }))))
    }

    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Exports the spans still queued, waiting at most `timeout` (blocks: call it off the
    /// runtime's workers).
    pub fn shutdown(&self, timeout: Duration) {
        if let Some(tracing) = &self.0 {
            if let Err(error) = tracing.provider.shutdown_with_timeout(timeout) {
                tracing::warn!(%error, "not every span was exported before stopping");
            }
        }
    }

    /// The spans of the events one request recorded, `kinds` in order, from `started` (before the
    /// store was called) until now: children of the request's span, with the ids the store
    /// wrote with the events ([`TraceParent::for_event`]).
    pub fn events_recorded(
        &self,
        cause: &RequestTrace,
        account: &AccountId,
        kinds: &[EventType],
        started: SystemTime,
    ) {
        let Some(tracing) = &self.0 else {
            return;
        };
        if tracing.shedding(kinds.len()) {
            return;
        }
        let parent = remote_context(cause.parent());
        for kind in kinds {
            let event = cause.parent().for_event(kind.as_str());
            let mut span = span_ids::with_span_id(SpanId::from_bytes(event.span_id()), || {
                tracing
                    .tracer
                    .span_builder(format!("record {}", kind.as_str()))
                    .with_kind(SpanKind::Internal)
                    .with_start_time(started)
                    .with_attributes([
                        KeyValue::new("reward.account_id", account.as_str().to_owned()),
                        KeyValue::new("reward.event_type", kind.as_str()),
                    ])
                    .start_with_context(&tracing.tracer, &parent)
            });
            span.end();
        }
    }

    /// A span for one delivery attempt, in its event's trace when the event was traced.
    pub fn attempt(&self, delivery: &ClaimedDelivery) -> Option<AttemptSpan> {
        let tracing = self.0.as_ref()?;
        if tracing.shedding(1) {
            return None;
        }
        let parent = delivery
            .trace
            .as_ref()
            .map_or_else(Context::new, remote_context);
        let span = tracing
            .tracer
            .span_builder("delivery attempt")
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new("reward.account_id", delivery.account_id.as_str().to_owned()),
                KeyValue::new("reward.webhook_id", delivery.webhook_id.as_str().to_owned()),
                KeyValue::new("reward.event_id", delivery.event_id.as_str().to_owned()),
                KeyValue::new("reward.delivery_id", delivery.id.as_str().to_owned()),
                KeyValue::new("reward.attempt", i64::from(delivery.attempt_count) + 1),
            ])
            .start_with_context(&tracing.tracer, &parent);
        Some(AttemptSpan(span))
    }

    /// A span for one API request: a child of the caller's span when it sent a valid
    /// `traceparent`.
    fn request_span(
        &self,
        method: &str,
        caller: Option<&TraceParent>,
    ) -> Option<opentelemetry_sdk::trace::Span> {
        let tracing = self.0.as_ref()?;
        if tracing.shedding(1) {
            return None;
        }
        let parent = caller.map_or_else(Context::new, remote_context);
        Some(
            tracing
                .tracer
                .span_builder(method.to_owned())
                .with_kind(SpanKind::Server)
                .with_attributes([KeyValue::new("http.request.method", method.to_owned())])
                .start_with_context(&tracing.tracer, &parent),
        )
    }
}

/// One delivery attempt's span, ended with its outcome.
pub struct AttemptSpan(opentelemetry_sdk::trace::Span);

impl AttemptSpan {
    /// The `traceparent` the attempt sends: the receiver's work joins the trace under it.
    pub fn trace_parent(&self) -> Option<TraceParent> {
        trace_parent_of(self.0.span_context())
    }

    /// Ends the span with what the attempt did.
    pub fn end(mut self, status_code: Option<u16>, outcome: &'static str, delivered: bool) {
        if let Some(code) = status_code {
            self.0
                .set_attribute(KeyValue::new("http.response.status_code", i64::from(code)));
        }
        self.0
            .set_attribute(KeyValue::new("reward.outcome", outcome));
        if !delivered {
            // No description: an error's text can name the receiver's address.
            self.0.set_status(Status::error(""));
        }
        self.0.end();
    }
}

/// The context a span continues from, as the SDK takes it.
fn remote_context(parent: &TraceParent) -> Context {
    Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from_bytes(parent.trace_id()),
        SpanId::from_bytes(parent.span_id()),
        TraceFlags::new(parent.flags()),
        true,
        TraceState::default(),
    ))
}

fn trace_parent_of(context: &SpanContext) -> Option<TraceParent> {
    TraceParent::new(
        context.trace_id().to_bytes(),
        context.span_id().to_bytes(),
        context.trace_flags().to_u8(),
    )
}
