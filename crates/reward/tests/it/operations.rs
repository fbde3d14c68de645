//! The operator's surface: `/metrics` (checked by the official Prometheus client's parser),
//! `/openapi.json` (checked by a real OpenAPI validator) and `/docs`.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use crate::common::{python_module, TestServer};
use crate::dashboard::visitor::Visitor;
use crate::receiver::Receiver;

/// Runs a Python snippet with `input` on stdin; returns its stdout, panicking with its stderr.
fn python(snippet: &str, input: &str) -> String {
    let mut child = std::process::Command::new("python3")
        .args(["-c", snippet])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("python3 output");
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `name{labels} value` lines of an OpenMetrics text, parsed by prometheus_client's OpenMetrics
/// parser.
const PARSE_METRICS: &str = r#"
import sys, json
from prometheus_client.openmetrics.parser import text_string_to_metric_families
samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        samples.append({"name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps(samples))
"#;

/// The same for the classic text format, parsed by prometheus_client's text parser.
const PARSE_TEXT_METRICS: &str = r#"
import sys, json
from prometheus_client.parser import text_string_to_metric_families
samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        samples.append({"name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps(samples))
"#;

fn sample(samples: &[serde_json::Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s["name"] == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(key, value)| s["labels"][*key] == *value)
        })
        .map(|s| s["value"].as_f64().expect("number"))
        .sum()
}

#[tokio::test]
async fn metrics_parse_and_move_after_a_delivery() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let scrape = |accept: &'static str| {
        let url = format!("{}/metrics", server.base_url);
        async move {
            let reply = reqwest::Client::new()
                .get(url)
                .header("accept", accept)
                .send()
                .await
                .expect("GET /metrics");
            assert_eq!(reply.status().as_u16(), 200);
            reply.text().await.expect("text")
        }
    };
    let before = scrape("application/openmetrics-text").await;
    assert!(before.contains("reward_delivery_queue_depth"), "{before}");
    if !python_module("prometheus_client") {
        return;
    }
    let parsed_before: Vec<serde_json::Value> =
        serde_json::from_str(&python(PARSE_METRICS, &before)).expect("json");

    let receiver = Receiver::start().await;
    let webhook = api.create_webhook(&receiver.url).await;
    let webhook_id = webhook["id"].as_str().expect("id");
    let test = api.send_test(webhook_id, "trigger_event.created").await;
    api.wait_delivery(
        test.body["id"].as_str().expect("id"),
        Duration::from_secs(10),
        |d| d["status"] == "succeeded",
    )
    .await;

    let after: Vec<serde_json::Value> = serde_json::from_str(&python(
        PARSE_METRICS,
        &scrape("application/openmetrics-text").await,
    ))
    .expect("json");
    let after_text: Vec<serde_json::Value> =
        serde_json::from_str(&python(PARSE_TEXT_METRICS, &scrape("text/plain").await))
            .expect("json");
    let moved = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&parsed_before, name, labels)
    };
    assert_eq!(
        moved("reward_deliveries_total", &[("outcome", "succeeded")]),
        1.0
    );
    assert_eq!(
        moved("reward_delivery_attempts_total", &[("status_class", "2xx")]),
        1.0
    );
    assert_eq!(
        moved("reward_delivery_attempt_duration_seconds_count", &[]),
        1.0
    );
    assert_eq!(
        moved(
            "reward_events_emitted_total",
            &[("type", "trigger_event.created")]
        ),
        1.0
    );
    assert!(
        moved(
            "reward_api_requests_total",
            &[("route", "/v1/webhooks/{id}/test"), ("code", "202")]
        ) >= 1.0
    );
    assert_eq!(sample(&after, "reward_delivery_queue_depth", &[]), 0.0);

    // The classic format carries the same Reward samples (only the count of `/metrics` requests
    // moved between the two scrapes, and the process' own figures).
    let reward_samples = |samples: &[serde_json::Value]| {
        let mut kept: Vec<String> = samples
            .iter()
            .filter(|s| s["name"].as_str().is_some_and(|n| n.starts_with("reward_")))
            .filter(|s| s["labels"]["route"] != "/metrics")
            .map(|s| s.to_string())
            .collect();
        kept.sort();
        kept
    };
    let openmetrics_samples = reward_samples(&after);
    assert!(openmetrics_samples.len() > 20, "{openmetrics_samples:?}");
    assert_eq!(reward_samples(&after_text), openmetrics_samples);
}

/// `reward_events_emitted_total{type="..."}` in the classic text format; 0 before the first.
async fn events_emitted(server: &TestServer, event_type: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", server.base_url))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("text");
    let series = format!("reward_events_emitted_total{{type=\"{event_type}\"}} ");
    text.lines()
        .filter_map(|line| line.strip_prefix(series.as_str()))
        .map(|value| value.trim().parse::<f64>().expect("a number"))
        .sum()
}

#[tokio::test]
async fn a_test_event_sent_from_the_dashboard_is_counted_like_one_from_the_api() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let webhook = api.create_webhook("http://127.0.0.1:9/hook").await;
    let id = webhook["id"].as_str().expect("id");
    let kind = "balance.credit_points_issued";
    assert_eq!(events_emitted(&server, kind).await, 0.0);

    let mut visitor = Visitor::new(&server.base_url);
    visitor.sign_in(&api.key).await;
    let page = format!("/settings/webhooks/{id}");
    let sent = visitor
        .post_from(&page, &format!("{page}/test"), &[("type", kind)])
        .await;
    sent.assert_redirect(&format!("{page}?notice=test_sent#deliveries"));
    assert_eq!(events_emitted(&server, kind).await, 1.0);

    let through_api = api.send_test(id, kind).await;
    assert_eq!(through_api.status.as_u16(), 202);
    assert_eq!(events_emitted(&server, kind).await, 2.0);
}

/// Every route of SPEC §4 (and the API-key routes): the document must list each.
const SPEC_ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("post", "/v1/webhooks"),
    ("get", "/v1/webhooks"),
    ("get", "/v1/webhooks/{id}"),
    ("patch", "/v1/webhooks/{id}"),
    ("delete", "/v1/webhooks/{id}"),
    ("get", "/v1/webhooks/{id}/secret"),
    ("post", "/v1/webhooks/{id}/secret/rotate"),
    ("post", "/v1/webhooks/{id}/test"),
    ("get", "/v1/webhooks/{id}/deliveries"),
    ("post", "/v1/webhooks/{id}/recover"),
    ("get", "/v1/webhooks/{id}/stats"),
    ("get", "/v1/deliveries/{id}"),
    ("post", "/v1/deliveries/{id}/retry"),
    ("get", "/v1/events"),
    ("get", "/v1/events/{id}"),
    ("get", "/v1/event_types"),
    ("put", "/v1/triggers/{id}"),
    ("get", "/v1/triggers"),
    ("get", "/v1/triggers/{id}"),
    ("delete", "/v1/triggers/{id}"),
    ("post", "/v1/trigger_events"),
    ("post", "/v1/users/{user_id}/credits"),
    ("get", "/v1/users/{user_id}"),
    ("post", "/v1/api_keys"),
    ("get", "/v1/api_keys"),
    ("delete", "/v1/api_keys/{id}"),
];

async fn openapi(server: &TestServer) -> serde_json::Value {
    let reply = reqwest::get(format!("{}/openapi.json", server.base_url))
        .await
        .expect("GET /openapi.json");
    assert_eq!(reply.status().as_u16(), 200);
    reply.json().await.expect("JSON")
}

#[tokio::test]
async fn openapi_lists_every_route_and_only_routes_that_exist() {
    let server = TestServer::start().await;
    let document = openapi(&server).await;
    assert_eq!(document["openapi"], "3.1.0");
    for (method, path) in SPEC_ROUTES {
        let operation = &document["paths"][path][method];
        assert!(
            operation.is_object(),
            "{method} {path} is missing from /openapi.json"
        );
        assert!(
            operation["responses"].is_object(),
            "{method} {path} has no responses"
        );
        if path.starts_with("/v1/") {
            assert_eq!(
                operation["security"][0]["api_key"],
                json!([]),
                "{method} {path} names its auth"
            );
            assert!(
                operation["responses"]["401"].is_object(),
                "{method} {path} documents 401"
            );
        }
    }
    // Nothing documented is missing from the server: no documented route answers the router's
    // own "No such route" fallback.
    let client = reqwest::Client::new();
    let paths = document["paths"].as_object().expect("paths");
    for (path, item) in paths {
        let concrete = path.replace("{id}", "x").replace("{user_id}", "x");
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let method =
                reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let reply = client
                .request(method.clone(), format!("{}{concrete}", server.base_url))
                .send()
                .await
                .expect("request");
            let status = reply.status().as_u16();
            let body = reply.text().await.unwrap_or_default();
            assert!(
                !(status == 404 && body.contains("No such route")) && status != 405,
                "{method} {path} is documented but not served ({status} {body})"
            );
        }
    }
    // Every event type's payload schema and example are in the document.
    for kind in reward_core::event::EventType::ALL {
        let webhook = &document["webhooks"][kind.as_str()]["post"];
        let reference = webhook["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .expect("webhook payload schema");
        let name = reference.rsplit('/').next().expect("name");
        assert_eq!(
            document["components"]["schemas"][name]["examples"][0],
            kind.example()
        );
    }
}

#[tokio::test]
async fn openapi_is_valid_openapi_3_1() {
    let server = TestServer::start().await;
    let document = openapi(&server).await;
    if !python_module("openapi_spec_validator") {
        return;
    }
    let verdict = python(
        "import sys, json\nfrom openapi_spec_validator import validate\nvalidate(json.load(sys.stdin))\nprint('valid')",
        &document.to_string(),
    );
    assert_eq!(verdict.trim(), "valid");
}

#[tokio::test]
async fn docs_and_event_pages_show_every_example() {
    let server = TestServer::start().await;
    let page = |path: &'static str| {
        let url = format!("{}{path}", server.base_url);
        async move {
            let reply = reqwest::get(url).await.expect("GET");
            assert_eq!(reply.status().as_u16(), 200, "{path}");
            let content_type = reply.headers()["content-type"]
                .to_str()
                .expect("type")
                .to_owned();
            assert!(
                content_type.starts_with("text/html"),
                "{path}: {content_type}"
            );
            reply.text().await.expect("text")
        }
    };
    let index = page("/docs").await;
    assert!(
        !index.contains("<script"),
        "the reference reads without JavaScript"
    );
    assert!(
        !index.contains("http://") || !index.contains("src=\"http"),
        "no external assets"
    );
    for (method, path) in SPEC_ROUTES {
        assert!(
            index.contains(&format!("id=\"{method}-{path}\"")),
            "/docs lacks {method} {path}"
        );
    }
    for kind in reward_core::event::EventType::ALL {
        let example_id = kind.example()["id"].as_str().expect("id").to_owned();
        assert!(
            index.contains(&example_id),
            "/docs shows the {} example",
            kind.as_str()
        );
        let event_page = match kind {
            reward_core::event::EventType::TriggerEventCreated => {
                page("/docs/events/trigger_event.created").await
            }
            reward_core::event::EventType::BalanceCreditPointsIssued => {
                page("/docs/events/balance.credit_points_issued").await
            }
            reward_core::event::EventType::WebhookDisabled => {
                page("/docs/events/webhook.disabled").await
            }
        };
        assert!(
            event_page.contains(&example_id),
            "the event page shows its example"
        );
        assert!(
            event_page.contains("webhook-signature"),
            "the event page explains verification"
        );
        assert!(
            event_page.contains("&quot;$schema&quot;") || event_page.contains("properties"),
            "schema shown"
        );
    }
    let missing = reqwest::get(format!("{}/docs/events/nope", server.base_url))
        .await
        .expect("GET");
    assert_eq!(missing.status().as_u16(), 404);
}
