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

/// Requests per property: enough to reach every endpoint's validation many times over.
const CASES: u32 = 200;

/// Percent-encodes everything but unreserved characters, so any text travels as one path
/// segment or query value.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(json!(1e308)),
        Just(json!(-1e308)),
        ".{0,30}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,10}", inner, 0..4)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// A value for a field: plausible for that field half the time, anything the other half.
fn field_value(field: &'static str) -> BoxedStrategy<Value> {
    let plausible: BoxedStrategy<Value> = match field {
        "name" | "reason" => prop_oneof!["[A-Za-z0-9 ]{1,30}", ".{0,120}"]
            .prop_map(Value::String)
            .boxed(),
        "url" => prop_oneof![
            "https?://[a-z]{1,10}\\.example(:[0-9]{1,4})?/[a-z/]{0,10}",
            "https?://[a-z0-9.]{1,20}(:[0-9]{1,6})?/[ -~]{0,40}",
            "https?://\\[[0-9a-f:.]{2,30}\\]/",
            "https?://[0-9]{1,3}(\\.[0-9]{1,3}){0,3}/",
            "\\PC{0,30}",
        ]
        .prop_map(Value::String)
        .boxed(),
        "events" => prop::collection::vec(
            prop_oneof![
                3 => Just("trigger_event.created".to_owned()),
                3 => Just("balance.credit_points_issued".to_owned()),
                1 => ".{0,30}",
            ],
            0..4,
        )
        .prop_map(|events| json!(events))
        .boxed(),
        "type" => prop_oneof![
            Just(json!("trigger_event.created")),
            Just(json!("balance.credit_points_issued")),
            ".{0,30}".prop_map(Value::String),
        ]
        .boxed(),
        "enabled" => any::<bool>().prop_map(Value::Bool).boxed(),
        "credit_points" => prop_oneof![
            Just(Value::Null),
            number().prop_map(|n| json!({ "per_unit": n })),
            number().prop_map(|n| json!({ "fixed": n })),
            (number(), number()).prop_map(|(a, b)| json!({"per_unit": a, "fixed": b})),
            Just(json!({})),
        ]
        .boxed(),
        "points" | "value" => number(),
        "user_id" => prop_oneof!["[A-Za-z0-9-]{1,36}", ".{0,130}"]
            .prop_map(Value::String)
            .boxed(),
        "trigger_id" => prop_oneof![
            3 => Just(json!("purchase")),
            1 =>
            "[A-Za-z0-9_.:-]{0,101}".prop_map(Value::String),
        ]
        .boxed(),
        "since" => prop_oneof![
            "20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T[01][0-9]:[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]0[0-9]:[0-5][0-9])",
            "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})",
            ".{0,30}",
        ]
        .prop_map(Value::String)
        .boxed(),
        _ => any_json().boxed(),
    };
    prop_oneof![4 => plausible, 1 => any_json()].boxed()
}

fn number() -> BoxedStrategy<Value> {
    prop_oneof![
        (-5_i64..1_000_000).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(json!(1e308)),
        Just(json!(9_007_199_254_740_993_u64)),
        Just(json!(1_000_000_000_000_i64)),
    ]
    .boxed()
}

/// A valid value for a field, so that bodies changed in one or two places reach past validation.
fn valid_value(field: &str) -> Value {
    match field {
        "name" => json!("Orders"),
        "url" => json!("https://hooks.example/reward"),
        "events" => json!(["trigger_event.created"]),
        "enabled" => json!(true),
        "type" => json!("balance.credit_points_issued"),
        "since" => json!("2024-12-14T15:29:18.821Z"),
        "credit_points" => json!({"per_unit": 10}),
        "points" => json!(5),
        "reason" => json!("A bonus"),
        "value" => json!(2.99),
        "user_id" => json!("ca9bb5c2-25a6-43e9-972e-862d28241a47"),
        "trigger_id" => json!("purchase"),
        _ => Value::Null,
    }
}

/// An object with some of `fields`, each valid with probability `valid` and random otherwise,
/// and sometimes one field no endpoint knows.
fn shaped_object(fields: &'static [&'static str], valid: f64) -> BoxedStrategy<Value> {
    let values: Vec<BoxedStrategy<Option<Value>>> = fields
        .iter()
        .map(|field| {
            let value = if valid > 0.0 {
                prop::option::weighted(valid, Just(valid_value(field)))
                    .prop_flat_map(move |kept| match kept {
                        Some(value) => Just(value).boxed(),
                        None => field_value(field),
                    })
                    .boxed()
            } else {
                field_value(field)
            };
            prop::option::weighted(0.95, value).boxed()
        })
        .collect();
    (values, prop::option::weighted(0.05, "[a-z_]{1,12}"))
        .prop_map(move |(values, unknown)| {
            let mut object = serde_json::Map::new();
            for (field, value) in fields.iter().zip(values) {
                if let Some(value) = value {
                    object.insert((*field).to_owned(), value);
                }
            }
            if let Some(unknown) = unknown {
                object.insert(unknown, json!(1));
            }
            Value::Object(object)
        })
        .boxed()
}

/// A body: noise, any JSON, an object shaped like the endpoint's with random values, or a valid
/// one changed here and there.
fn body(fields: &'static [&'static str]) -> BoxedStrategy<Vec<u8>> {
    let json = |value: Value| value.to_string().into_bytes();
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..200),
        1 => "[\\[\\]{}\":,0-9a-z .eE+-]{0,60}".prop_map(String::into_bytes),
        2 => any_json().prop_map(json),
        3 => shaped_object(fields, 0.0).prop_map(json),
        3 => shaped_object(fields, 0.8).prop_map(json),
    ]
    .boxed()
}

/// Any text as one path segment; not `.` or `..`, which a client resolves away (even encoded).
fn path_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => ".{1,30}",
        2 => "[A-Za-z0-9_.:-]{1,40}",
        1 => Just("purchase".to_owned()),
    ]
    .prop_filter("a dot segment", |segment| {
        !segment.trim_matches('.').is_empty()
    })
}

/// One request to an endpoint that reads a body. `{webhook}` is replaced by a real webhook's id.
#[derive(Debug, Clone)]
struct Request {
    method: Method,
    /// The route, e.g. `/v1/triggers/{id}`, to count answers by.
    template: &'static str,
    path: String,
    body: Vec<u8>,
    idempotency_key: Option<String>,
}

fn request() -> impl Strategy<Value = Request> {
    let simple = |method: Method, path: &'static str, fields: &'static [&'static str]| {
        body(fields).prop_map(move |body| Request {
            method: method.clone(),
            template: path,
            path: path.to_owned(),
            body,
            idempotency_key: None,
        })
    };
    prop_oneof![
        simple(
            Method::POST,
            "/v1/webhooks",
            &["name", "url", "events", "enabled"]
        ),
        simple(
            Method::PATCH,
            "/v1/webhooks/{webhook}",
            &["name", "url", "events", "enabled"]
        ),
        simple(Method::POST, "/v1/webhooks/{webhook}/test", &["type"]),
        simple(Method::POST, "/v1/webhooks/{webhook}/recover", &["since"]),
        simple(Method::POST, "/v1/api_keys", &["name"]),
        (path_segment(), body(&["name", "credit_points"])).prop_map(|(id, body)| Request {
            method: Method::PUT,
            template: "/v1/triggers/{id}",
            path: format!("/v1/triggers/{}", percent_encode(&id)),
            body,
            idempotency_key: None,
        }),
        (
            body(&["user_id", "trigger_id", "value"]),
            prop::option::weighted(0.3, prop_oneof![3 => "[!-~]{1,20}", 1 => "[ -~]{0,300}"]),
        )
            .prop_map(|(body, idempotency_key)| Request {
                method: Method::POST,
                template: "/v1/trigger_events",
                path: "/v1/trigger_events".to_owned(),
                body,
                idempotency_key,
            }),
        (path_segment(), body(&["points", "reason"])).prop_map(|(user, body)| Request {
            method: Method::POST,
            template: "/v1/users/{id}/credits",
            path: format!("/v1/users/{}/credits", percent_encode(&user)),
            body,
            idempotency_key: None,
        }),
    ]
}

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

/// A list endpoint and the query parameters it takes besides `limit` and `cursor`.
fn list_path() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("/v1/webhooks"),
        Just("/v1/events"),
        Just("/v1/triggers"),
        Just("/v1/api_keys"),
        Just("/v1/webhooks/{webhook}/deliveries"),
    ]
}

fn query_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_-]{0,60}",
        // Cursors that decode, so the store's own cursor parsing is reached.
        prop_oneof![
            "(wh|we|dl)_[0-9a-zA-Z]{24,28}",
            "-?[0-9]{1,20}:[A-Za-z0-9_.:-]{0,30}",
            ".{0,40}",
        ]
        .prop_map(|cursor| BASE64URL.encode(cursor)),
        (0_i64..200).prop_map(|n| n.to_string()),
        Just("trigger_event.created".to_owned()),
        Just("failed".to_owned()),
    ]
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
