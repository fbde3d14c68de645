//! Random requests against a real server: bodies (bytes, any JSON, and objects shaped like each
//! endpoint's with random values), path segments, query parameters (cursors, limits, filters) and
//! Authorization headers. SPEC §4 is the oracle: bad input answers 4xx with
//! `{"error": {"code", "message", "field"?}}`, JSON that does not parse answers 400, and a
//! rejected request changes nothing; no input answers 5xx.
//!
//! Proptest generates the requests (a fixed number of cases, so the suite stays quick); the
//! server runs without its worker, so webhooks created at random URLs are never contacted.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{Api, TestServer};

mod inputs;

use inputs::{list_path, percent_encode, query_value, request};

/// Requests per property: enough to reach every endpoint's validation many times over.
const CASES: u32 = 200;

/// An answer: status and the raw body.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

async fn send(
    api: &Api,
    method: Method,
    path: &str,
    body: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> Answer {
    let client = reqwest::Client::new();
    let mut request = client
        .request(method, format!("{}{path}", api.base_url))
        .timeout(Duration::from_secs(30));
    if !api.key.is_empty() {
        request = request.bearer_auth(&api.key);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_vec());
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let body = response.bytes().await.expect("body").to_vec();
    Answer { status, body }
}

/// 2xx, or a 4xx in the documented error shape; never anything else.
fn check_answer(answer: &Answer, what: &str) -> Result<Option<Value>, TestCaseError> {
    let text = String::from_utf8_lossy(&answer.body);
    prop_assert!(
        (200..300).contains(&answer.status) || (400..500).contains(&answer.status),
        "{what} answered {}: {text}",
        answer.status
    );
    if answer.body.is_empty() {
        prop_assert!(
            answer.status == 204 || answer.status == 405,
            "{what}: empty {}",
            answer.status
        );
        return Ok(None);
    }
    let body: Value = serde_json::from_slice(&answer.body).map_err(|_| {
        TestCaseError::fail(format!(
            "{what} answered {} with non-JSON: {text}",
            answer.status
        ))
    })?;
    if answer.status >= 400 {
        let error = body["error"].as_object();
        prop_assert!(
            error.is_some() && body.as_object().is_some_and(|o| o.len() == 1),
            "{what}: {body}"
        );
        let error = error.expect("checked");
        let code = error.get("code").and_then(Value::as_str).unwrap_or("");
        prop_assert!(
            !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{what}: code in {body}"
        );
        prop_assert!(
            error
                .get("message")
                .and_then(Value::as_str)
                .is_some_and(|m| !m.is_empty()),
            "{what}: message in {body}"
        );
        prop_assert!(
            error.get("field").is_none_or(Value::is_string),
            "{what}: field in {body}"
        );
        prop_assert!(
            error
                .keys()
                .all(|key| matches!(key.as_str(), "code" | "message" | "field")),
            "{what}: keys of {body}"
        );
    }
    Ok(Some(body))
}

/// What a rejected request must leave as it was: the newest event, the webhooks, the triggers.
async fn snapshot(api: &Api) -> (Value, Value, Value) {
    let events = send(api, Method::GET, "/v1/events?limit=1", None, &[]).await;
    let webhooks = send(api, Method::GET, "/v1/webhooks?limit=100", None, &[]).await;
    let triggers = send(api, Method::GET, "/v1/triggers?limit=100", None, &[]).await;
    let json = |answer: Answer| serde_json::from_slice(&answer.body).expect("a list");
    (json(events), json(webhooks), json(triggers))
}

/// A runtime that outlives each case (the server keeps running between them), a server
/// without a worker, one account with a webhook and a trigger.
fn start() -> (tokio::runtime::Runtime, TestServer, Api, String) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (server, api, webhook) = runtime.block_on(async {
        let server = TestServer::start_with(|config| config.run_worker = false).await;
        let api = server.account("Fuzzing").await;
        let webhook = api.create_webhook("http://127.0.0.1:9/hook").await;
        api.put_trigger("purchase", json!({"per_unit": 10})).await;
        let id = webhook["id"].as_str().expect("id").to_owned();
        (server, api, id)
    });
    (runtime, server, api, webhook)
}

fn runner() -> TestRunner {
    TestRunner::new(ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

#[test]
fn random_request_bodies_answer_2xx_or_a_documented_4xx() {
    let (runtime, server, api, webhook) = start();
    // Answers by endpoint and status, to show the cases reached past validation too.
    let answers = RefCell::new(BTreeMap::<(String, u16), u32>::new());
    let result = runner().run(&request(), |request| {
        runtime.block_on(async {
            let path = request.path.replace("{webhook}", &webhook);
            let what = format!(
                "{} {path} {}",
                request.method,
                String::from_utf8_lossy(&request.body)
            );
            let before = snapshot(&api).await;
            let mut headers = Vec::new();
            if let Some(key) = &request.idempotency_key {
                headers.push(("idempotency-key", key.as_str()));
            }
            let answer = send(
                &api,
                request.method.clone(),
                &path,
                Some(&request.body),
                &headers,
            )
            .await;
            check_answer(&answer, &what)?;
            let endpoint = format!("{} {}", request.method, request.template);
            *answers
                .borrow_mut()
                .entry((endpoint, answer.status))
                .or_default() += 1;
            match serde_json::from_slice::<Value>(&request.body) {
                Err(_) => prop_assert_eq!(answer.status, 400, "{}: JSON that does not parse", what),
                Ok(Value::Object(_)) => {}
                Ok(_) => prop_assert_eq!(answer.status, 422, "{}: not an object", what),
            }
            if answer.status >= 400 {
                prop_assert!(
                    snapshot(&api).await == before,
                    "{} was refused but changed data",
                    what
                );
            }
            Ok(())
        })
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    let answers = answers.into_inner();
    eprintln!("answers by endpoint and status: {answers:?}");
    let count = |accepted: bool| -> u32 {
        answers
            .iter()
            .filter(|((_, status), _)| (*status < 300) == accepted)
            .map(|(_, n)| n)
            .sum()
    };
    // Not vacuous: many cases got through validation, many were refused.
    assert!(
        count(true) >= CASES / 10 && count(false) >= CASES / 10,
        "{answers:?}"
    );
    runtime.block_on(server.stop());
}

#[test]
fn random_cursors_limits_and_filters_answer_200_or_422() {
    let (runtime, server, api, webhook) = start();
    let parameters = prop::collection::vec(
        (
            prop_oneof![Just("cursor"), Just("limit"), Just("type"), Just("status")],
            query_value(),
        ),
        0..3,
    );
    let result = runner().run(&(list_path(), parameters), |(path, parameters)| {
        runtime.block_on(async {
            let query: Vec<String> = parameters
                .iter()
                .map(|(name, value)| format!("{name}={}", percent_encode(value)))
                .collect();
            let path = format!(
                "{}?{}",
                path.replace("{webhook}", &webhook),
                query.join("&")
            );
            let answer = send(&api, Method::GET, &path, None, &[]).await;
            let body = check_answer(&answer, &path)?;
            prop_assert!(
                matches!(answer.status, 200 | 422),
                "{} answered {}",
                path,
                answer.status
            );
            if answer.status == 422 {
                let field = body
                    .as_ref()
                    .and_then(|b| b["error"]["field"].as_str())
                    .unwrap_or("");
                prop_assert!(
                    matches!(field, "cursor" | "limit" | "type" | "status"),
                    "{}: field {}",
                    path,
                    field
                );
            }
            Ok(())
        })
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    runtime.block_on(server.stop());
}

#[test]
fn random_authorization_headers_answer_401() {
    let (runtime, server, api, _webhook) = start();
    let anonymous = Api::new(&api.base_url, "");
    let header = prop_oneof![
        "[ -~]{0,80}",
        "[Bb][Ee][Aa][Rr][Ee][Rr] {0,3}[ -~]{0,60}",
        Just(format!("Bearer {}x", api.key)),
        Just(format!("Bearer {}", &api.key[..api.key.len() - 1])),
    ];
    let result = runner().run(&header, |header| {
        runtime.block_on(async {
            let answer = send(
                &anonymous,
                Method::GET,
                "/v1/webhooks",
                None,
                &[("authorization", &header)],
            )
            .await;
            let what = format!("Authorization: {header}");
            let body = check_answer(&answer, &what)?;
            prop_assert_eq!(answer.status, 401, "{}", what);
            prop_assert_eq!(&body.expect("an error")["error"]["code"], "unauthorized");
            Ok(())
        })
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    runtime.block_on(server.stop());
}

#[tokio::test]
async fn paging_with_every_limit_walks_each_list_once_and_cursors_round_trip() {
    let server = TestServer::start_with(|config| config.run_worker = false).await;
    let api = server.account("Paging").await;
    for n in 0..7 {
        api.create_webhook(&format!("http://127.0.0.1:9/{n}")).await;
        api.put_trigger(&format!("t:{n}"), json!({"fixed": 1}))
            .await;
    }
    for path in ["/v1/webhooks", "/v1/triggers"] {
        let all = api.get(&format!("{path}?limit=100")).await;
        let expected: Vec<Value> = all.body["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|item| item["id"].clone())
            .collect();
        assert_eq!(expected.len(), 7);
        for limit in 1..=8 {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let query = match &cursor {
                    Some(cursor) => format!("{path}?limit={limit}&cursor={cursor}"),
                    None => format!("{path}?limit={limit}"),
                };
                let page = api.get(&query).await;
                assert_eq!(page.status.as_u16(), 200, "{query}: {:?}", page.body);
                let items = page.body["data"].as_array().expect("data").clone();
                assert!(items.len() <= limit);
                seen.extend(items.iter().map(|item| item["id"].clone()));
                match page.body["next_cursor"].as_str() {
                    None => break,
                    Some(next) => {
                        let decoded = BASE64URL.decode(next).expect("base64url");
                        let decoded = String::from_utf8(decoded).expect("utf-8");
                        let last = items.last().expect("a full page before a cursor");
                        let last_id = last["id"].as_str().expect("id");
                        // The store's half of the cursor names the last item shown.
                        assert!(
                            decoded == last_id || decoded.ends_with(&format!(":{last_id}")),
                            "{decoded} for {last_id}"
                        );
                        cursor = Some(next.to_owned());
                    }
                }
            }
            assert_eq!(seen, expected, "{path} with limit={limit}");
        }
    }
    server.stop().await;
}
