//! The API against its own OpenAPI document. Schemathesis (an independent property-based tester,
//! pinned in scripts/requirements-test.txt) generates requests from `/openapi.json`, valid and
//! invalid, and checks every answer: no 5xx, a status, content type, headers and body the document
//! describes, invalid input refused, auth not ignored. `schemathesis.toml` beside this file holds
//! its settings and the few narrow exceptions, each with its reason.
//!
//! The answers the fuzzer cannot provoke (429, 408, 413) are provoked here by hand and looked up
//! in the same document.

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use reward_core::names::TargetPolicy;
use serde_json::{json, Value};

use crate::common::{python_module, TestServer};

/// The whole run's bound: schemathesis takes about 20 s here; past this it is stopped and the test
/// fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(150);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_undocumented_answer() {
    if !python_module("schemathesis") {
        return;
    }
    let server = TestServer::start_with(|config| {
        // The fuzzer creates webhooks pointing anywhere: with no worker nothing is ever sent, and
        // with the production policy the URL rules it meets are the real ones.
        config.run_worker = false;
        config.target_policy = TargetPolicy::SecureOnly;
    })
    .await;
    let api = server.account("schemathesis").await;
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/schemathesis.toml");
    let report = tempfile::tempdir().expect("report folder");
    let started = Instant::now();
    let mut command = tokio::process::Command::new("python3");
    command
        .args([
            "-m",
            "schemathesis.cli",
            "--no-color",
            "--config-file",
            config,
        ])
        .arg("run")
        .arg(format!("{}/openapi.json", server.base_url))
        // Only this server is ever contacted: the base URL is ours, redirects are not followed.
        .args(["--url", &server.base_url, "--max-redirects", "0"])
        .args(["--header", &format!("Authorization: Bearer {}", api.key)])
        // Bounded and repeatable: few examples per operation, a fixed seed, one worker (so the
        // order of requests, and what each finds stored, is the same on every run).
        .args([
            "--max-examples",
            "20",
            "--seed",
            "20241214",
            "--workers",
            "1",
        ])
        .args(["--request-timeout", "10"])
        .current_dir(report.path())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(RUN_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("schemathesis ran longer than {RUN_TIMEOUT:?}"))
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout.lines().last().unwrap_or_default().to_owned();
    eprintln!(
        "schemathesis: {summary} ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    assert!(
        output.status.success(),
        "schemathesis found answers that break /openapi.json:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The document's answers of one operation (by method and path).
fn responses<'a>(document: &'a Value, method: &str, path: &str) -> &'a Value {
    let responses = &document["paths"][path][method]["responses"];
    assert!(responses.is_object(), "{method} {path} is not documented");
    responses
}

/// The answer is documented for the operation, as the error body, with `Retry-After` when the
/// answer carries one.
fn assert_documented(document: &Value, method: &str, path: &str, reply: &Answer) {
    let documented = &responses(document, method, path)[reply.status.to_string()];
    assert!(
        documented.is_object(),
        "{method} {path} answered an undocumented {}",
        reply.status
    );
    assert_eq!(
        documented["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody",
        "{method} {path} {}",
        reply.status
    );
    let code = reply.body["error"]["code"].as_str().unwrap_or_default();
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        !code.is_empty() && !message.is_empty(),
        "an error body: {}",
        reply.body
    );
    if reply.retry_after.is_some() {
        assert!(
            documented["headers"]["Retry-After"].is_object(),
            "{method} {path} {} documents Retry-After",
            reply.status
        );
    }
}

struct Answer {
    status: u16,
    body: Value,
    retry_after: Option<String>,
}

async fn answer(reply: reqwest::Response) -> Answer {
    let status = reply.status().as_u16();
    let retry_after = reply
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = reply.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        body,
        retry_after,
    }
}

/// Sends headers announcing a 16-byte body, then only part of it, and reads the answer.
fn trickled_post(base_url: &str, path: &str, key: &str) -> Answer {
    let address = base_url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: 16\r\nConnection: close\r\n\r\n{{\"na"
    );
    stream.write_all(head.as_bytes()).expect("write");
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or(Value::Null);
    Answer {
        status,
        body,
        retry_after: None,
    }
}

#[tokio::test]
async fn answers_the_fuzzer_cannot_provoke_are_documented() {
    let server = TestServer::start_with(|config| {
        config.rate_limit = 1;
        config.body_read_timeout = Duration::from_millis(300);
    })
    .await;
    let api = server.account("documented").await;
    let document: Value = reqwest::get(format!("{}/openapi.json", server.base_url))
        .await
        .expect("GET /openapi.json")
        .json()
        .await
        .expect("JSON");
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.base_url);

    // 401: no key, and a wrong one.
    let reply = answer(client.get(url("/v1/webhooks")).send().await.expect("GET")).await;
    assert_eq!(reply.status, 401);
    assert_documented(&document, "get", "/v1/webhooks", &reply);

    // 413: a body over 256 KiB, refused from its Content-Length before the key is even read (so
    // it spends no token); 400: a body that is not JSON, and a list read, which spend the 2 tokens
    // of this account's bucket: the request after them is over the rate.
    let big = json!({"name": "x".repeat(300 * 1024)}).to_string();
    let reply = answer(
        client
            .post(url("/v1/api_keys"))
            .bearer_auth(&api.key)
            .header("content-type", "application/json")
            .body(big)
            .send()
            .await
            .expect("POST"),
    )
    .await;
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert_documented(&document, "post", "/v1/api_keys", &reply);
    let reply = answer(
        client
            .post(url("/v1/webhooks"))
            .bearer_auth(&api.key)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .expect("POST"),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_documented(&document, "post", "/v1/webhooks", &reply);
    let reply = answer(
        client
            .get(url("/v1/webhooks"))
            .bearer_auth(&api.key)
            .send()
            .await
            .expect("GET"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    // 429, with Retry-After, on any authenticated operation.
    let reply = answer(
        client
            .get(url("/v1/triggers"))
            .bearer_auth(&api.key)
            .send()
            .await
            .expect("GET"),
    )
    .await;
    assert_eq!(reply.status, 429, "{}", reply.body);
    assert!(reply.retry_after.is_some(), "429 says when to retry");
    assert_documented(&document, "get", "/v1/triggers", &reply);

    // 408: a body that never arrives whole (after the bucket refills: the rate is 1 per second).
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let base_url = server.base_url.clone();
    let key = api.key.clone();
    let reply =
        tokio::task::spawn_blocking(move || trickled_post(&base_url, "/v1/trigger_events", &key))
            .await
            .expect("trickle");
    assert_eq!(reply.status, 408, "{}", reply.body);
    assert_documented(&document, "post", "/v1/trigger_events", &reply);

    // Every authenticated operation documents 401, 429 and 503 (the database unavailable, which
    // faults.rs provokes), the last two with Retry-After.
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            if operation["security"].as_array().is_none_or(Vec::is_empty) {
                continue;
            }
            for status in ["401", "429", "503"] {
                let documented = &operation["responses"][status];
                assert_eq!(
                    documented["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} documents {status}"
                );
                if status != "401" {
                    assert!(
                        documented["headers"]["Retry-After"].is_object(),
                        "{method} {path} {status} documents Retry-After"
                    );
                }
            }
        }
    }
}
