//! OpenTelemetry traces from the real binary: a real OTLP/HTTP collector on loopback, decoding
//! what arrives with the OpenTelemetry protobuf definitions. One trigger event is one trace, from
//! the API request through each event it recorded to each delivery attempt, whose `traceparent`
//! reaches the receiver; no attribute carries a path, a secret or a key. A dead collector only
//! costs dropped spans, counted in `/metrics`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use prost::Message;
use serde_json::json;
use tokio::net::TcpListener;

use crate::common::{create_account, fresh_database, metrics_text, Api, ServerProcess};
use crate::receiver::Receiver;

/// One span as the collector got it.
#[derive(Debug, Clone)]
struct CollectedSpan {
    service: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    name: String,
    attributes: HashMap<String, String>,
}

/// A collector of OTLP/HTTP protobuf traces on loopback (`POST /v1/traces`).
#[derive(Clone)]
struct Collector {
    endpoint: String,
    spans: Arc<Mutex<Vec<CollectedSpan>>>,
}

impl Collector {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let spans = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/v1/traces", post(collect))
            .with_state(Arc::clone(&spans));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { endpoint, spans }
    }

    fn spans(&self) -> Vec<CollectedSpan> {
        self.spans.lock().expect("lock").clone()
    }

    /// Waits until `ready` holds for the spans received; panics after `timeout`.
    async fn wait_until(
        &self,
        timeout: Duration,
        ready: impl Fn(&[CollectedSpan]) -> bool,
    ) -> Vec<CollectedSpan> {
        let deadline = Instant::now() + timeout;
        loop {
            let spans = self.spans();
            if ready(&spans) {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "the collector did not get the spans in {timeout:?}: {spans:#?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

async fn collect(
    State(spans): State<Arc<Mutex<Vec<CollectedSpan>>>>,
    body: Bytes,
) -> impl IntoResponse {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, Vec::new()).into_response();
    };
    let mut collected = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|resource| attributes(&resource.attributes))
            .unwrap_or_default();
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                let mut attributes = attributes(&span.attributes);
                // Resource attributes are attributes too: none may leak either.
                for (key, value) in &resource {
                    attributes.insert(format!("resource:{key}"), value.clone());
                }
                collected.push(CollectedSpan {
                    service: service.clone(),
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name,
                    attributes,
                });
            }
        }
    }
    spans.lock().expect("lock").extend(collected);
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
        .into_response()
}

fn attributes(pairs: &[KeyValue]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|pair| {
            let value = match pair.value.as_ref().and_then(|value| value.value.as_ref()) {
                Some(AnyValue::StringValue(text)) => text.clone(),
                Some(AnyValue::IntValue(number)) => number.to_string(),
                Some(AnyValue::BoolValue(flag)) => flag.to_string(),
                Some(AnyValue::DoubleValue(number)) => number.to_string(),
                other => format!("{other:?}"),
            };
            (pair.key.clone(), value)
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn attribute<'a>(span: &'a CollectedSpan, key: &str) -> &'a str {
    span.attributes
        .get(key)
        .unwrap_or_else(|| panic!("span {:?} has no {key}: {span:#?}", span.name))
}

/// The binary with tracing to `endpoint`, exporting every 50 ms.
async fn traced_server(database_url: &str, endpoint: &str) -> ServerProcess {
    traced_server_with(database_url, endpoint, "true").await
}

/// The same, with its delivery worker on (`"true"`) or off (an API-only node).
async fn traced_server_with(database_url: &str, endpoint: &str, worker: &str) -> ServerProcess {
    let env = [
        ("REWARD_WORKER", worker),
        ("REWARD_ALLOW_INSECURE_TARGETS", "true"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_SERVICE_NAME", "reward-under-test"),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000"),
    ];
    ServerProcess::spawn(database_url, &env).await
}

#[tokio::test]
async fn one_trigger_event_is_one_trace_through_its_deliveries() {
    let (_database, database_url) = fresh_database().await;
    let collector = Collector::start().await;
    let receiver = Receiver::start().await;
    let server = traced_server(&database_url, &collector.endpoint).await;
    let account = create_account(&database_url, "Acme").await;
    let api_key = account["api_key"].as_str().expect("key").to_owned();
    let account_id = account["account_id"]
        .as_str()
        .expect("account id")
        .to_owned();
    let api = Api::new(&server.base_url, &api_key);
    let webhook = api.create_webhook(&receiver.url).await;
    let webhook_id = webhook["id"].as_str().expect("id").to_owned();
    let secret = webhook["secret"].as_str().expect("secret").to_owned();
    api.put_trigger("purchase", json!({"per_unit": 10})).await;

    // Two events: trigger_event.created and balance.credit_points_issued.
    api.trigger_event("user-1", "purchase", json!(2.5)).await;
    let deliveries = receiver.wait_for(2, Duration::from_secs(10)).await;

    let spans = collector
        .wait_until(Duration::from_secs(10), |spans| {
            spans
                .iter()
                .filter(|span| span.name == "delivery attempt")
                .count()
                >= 2
                && spans
                    .iter()
                    .filter(|span| span.name.starts_with("record "))
                    .count()
                    >= 2
        })
        .await;
    let events: Vec<&CollectedSpan> = spans
        .iter()
        .filter(|span| span.name.starts_with("record "))
        .collect();
    assert_eq!(events.len(), 2, "{events:#?}");
    // Both events were recorded by one request: the trigger event's POST.
    let request_id = &events[0].parent_span_id;
    let request = spans
        .iter()
        .find(|span| &span.span_id == request_id)
        .unwrap_or_else(|| panic!("the events' parent span was never exported: {spans:#?}"));
    let trace_id = &request.trace_id;
    assert_eq!(request.name, "POST");
    assert_eq!(request.parent_span_id, "", "the request starts the trace");
    assert_eq!(attribute(request, "http.request.method"), "POST");
    assert_eq!(attribute(request, "http.response.status_code"), "201");
    assert_eq!(attribute(request, "reward.account_id"), account_id);
    assert_eq!(request.service, "reward-under-test");

    let mut event_types: Vec<&str> = events
        .iter()
        .map(|event| attribute(event, "reward.event_type"))
        .collect();
    event_types.sort_unstable();
    assert_eq!(
        event_types,
        ["balance.credit_points_issued", "trigger_event.created"]
    );
    for event in &events {
        assert_eq!(&event.trace_id, trace_id);
        assert_eq!(&event.parent_span_id, request_id);
        assert_eq!(attribute(event, "reward.account_id"), account_id);
    }

    // Each delivery's attempt is a child of its event's span, and its traceparent is the
    // attempt's own context.
    let attempts: Vec<&CollectedSpan> = spans
        .iter()
        .filter(|span| span.name == "delivery attempt")
        .collect();
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    for delivery in &deliveries {
        let payload = delivery.json();
        let event_id = payload["id"].as_str().expect("event id");
        let event_type = payload["type"].as_str().expect("type");
        let attempt = attempts
            .iter()
            .find(|attempt| attribute(attempt, "reward.event_id") == event_id)
            .unwrap_or_else(|| panic!("no attempt span for {event_id}: {attempts:#?}"));
        let event = events
            .iter()
            .find(|event| attribute(event, "reward.event_type") == event_type)
            .expect("the event's span");
        assert_eq!(&attempt.trace_id, trace_id);
        assert_eq!(attempt.parent_span_id, event.span_id);
        assert_eq!(attribute(attempt, "reward.account_id"), account_id);
        assert_eq!(attribute(attempt, "reward.webhook_id"), webhook_id);
        assert_eq!(attribute(attempt, "reward.outcome"), "succeeded");
        assert_eq!(attribute(attempt, "http.response.status_code"), "204");
        assert_eq!(attribute(attempt, "reward.attempt"), "1");
        assert_eq!(
            delivery.header("traceparent"),
            format!("00-{trace_id}-{}-01", attempt.span_id)
        );
    }

    // Ids, types and outcomes only: no URL or path, no secret, no key, anywhere.
    let receiver_address = receiver.url.trim_start_matches("http://");
    for span in &spans {
        for (key, value) in &span.attributes {
            for forbidden in [
                "/",
                receiver_address,
                api_key.as_str(),
                secret.as_str(),
                "whsec_",
                "Bearer",
            ] {
                assert!(
                    !value.contains(forbidden),
                    "{key}={value:?} on {:?} holds {forbidden:?}",
                    span.name
                );
            }
        }
    }
    server.kill().await;
}

#[tokio::test]
async fn attempts_after_a_restart_join_the_trace_of_the_request() {
    let (_database, database_url) = fresh_database().await;
    let collector = Collector::start().await;
    let receiver = Receiver::start().await;
    // An API-only node records the events; it stops before anything is delivered.
    let api_node = traced_server_with(&database_url, &collector.endpoint, "false").await;
    let account = create_account(&database_url, "Acme").await;
    let api = Api::new(
        &api_node.base_url,
        account["api_key"].as_str().expect("key"),
    );
    api.create_webhook(&receiver.url).await;
    api.put_trigger("signup", json!({"fixed": 1})).await;
    api.trigger_event("user-1", "signup", json!(null)).await;
    let recorded = collector
        .wait_until(Duration::from_secs(10), |spans| {
            spans
                .iter()
                .filter(|span| span.name.starts_with("record "))
                .count()
                >= 2
        })
        .await;
    api_node.kill().await;
    assert_eq!(receiver.count(), 0, "an API-only node delivers nothing");

    // Another process claims the deliveries from the database.
    let worker_node = traced_server(&database_url, &collector.endpoint).await;
    let delivered = receiver.wait_for(2, Duration::from_secs(10)).await;
    let spans = collector
        .wait_until(Duration::from_secs(10), |spans| {
            spans
                .iter()
                .filter(|span| span.name == "delivery attempt")
                .count()
                >= 2
        })
        .await;
    for delivery in &delivered {
        let payload = delivery.json();
        let event_id = payload["id"].as_str().expect("event id");
        let event_type = payload["type"].as_str().expect("type");
        let attempt = spans
            .iter()
            .find(|span| {
                span.name == "delivery attempt"
                    && span.attributes.get("reward.event_id").map(String::as_str) == Some(event_id)
            })
            .expect("the attempt's span");
        let event = recorded
            .iter()
            .find(|span| span.name == format!("record {event_type}"))
            .expect("the event's span");
        assert_eq!(attempt.trace_id, event.trace_id);
        assert_eq!(attempt.parent_span_id, event.span_id);
        assert_eq!(
            delivery.header("traceparent"),
            format!("00-{}-{}-01", event.trace_id, attempt.span_id)
        );
    }
    worker_node.kill().await;
}

/// `reward_trace_spans_dropped_total` from `/metrics`.
async fn dropped_spans(base_url: &str) -> u64 {
    let text = metrics_text(base_url).await;
    text.lines()
        .find_map(|line| line.strip_prefix("reward_trace_spans_dropped_total "))
        .unwrap_or_else(|| panic!("no reward_trace_spans_dropped_total in:\n{text}"))
        .trim()
        .parse()
        .expect("a count")
}

#[tokio::test]
async fn a_dead_collector_costs_dropped_spans_and_nothing_else() {
    let (_database, database_url) = fresh_database().await;
    // A port nothing listens on.
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", closed.local_addr().expect("address"));
    drop(closed);
    let receiver = Receiver::start().await;
    let server = traced_server(&database_url, &endpoint).await;
    let account = create_account(&database_url, "Acme").await;
    let api = Api::new(&server.base_url, account["api_key"].as_str().expect("key"));
    api.create_webhook(&receiver.url).await;
    api.put_trigger("purchase", json!({"fixed": 1})).await;
    for user in ["a", "b", "c"] {
        api.trigger_event(user, "purchase", json!(null)).await;
    }
    let delivered = receiver.wait_for(6, Duration::from_secs(10)).await;
    assert!(delivered
        .iter()
        .all(|delivery| delivery.headers.contains_key("traceparent")));

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let dropped = dropped_spans(&server.base_url).await;
        if dropped > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no span was counted as dropped with the collector down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.kill().await;
}
