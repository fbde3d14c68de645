//! Bad input (SPEC §4): every validation rule answers its status, `error.code` and `error.field`,
//! never a 5xx, and a refused request changes nothing an account can see.

use reqwest::Method;
use reward_core::names::TargetPolicy;
use serde_json::{json, Value};

use crate::common::{Api, Reply, TestServer};

/// A loopback receiver nobody listens on; no test here ever causes a delivery to it.
const HOOK_URL: &str = "http://127.0.0.1:9/hook";
const EVENT_TYPES: [&str; 2] = ["trigger_event.created", "balance.credit_points_issued"];
/// The trigger every server here starts with, and the user nothing may create.
const TRIGGER: &str = "signup";
const USER: &str = "user-1";

/// One request to send.
struct Request {
    method: Method,
    path: String,
    body: Option<Vec<u8>>,
    headers: Vec<(&'static str, String)>,
}

impl Request {
    fn new(method: Method, path: &str, body: Option<Vec<u8>>) -> Self {
        Self {
            method,
            path: path.to_owned(),
            body,
            headers: Vec::new(),
        }
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    fn describe(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

fn get(path: &str) -> Request {
    Request::new(Method::GET, path, None)
}

fn delete(path: &str) -> Request {
    Request::new(Method::DELETE, path, None)
}

fn post(path: &str, body: Value) -> Request {
    Request::new(Method::POST, path, Some(body.to_string().into_bytes()))
}

fn post_raw(path: &str, body: &[u8]) -> Request {
    Request::new(Method::POST, path, Some(body.to_vec()))
}

fn put(path: &str, body: Value) -> Request {
    Request::new(Method::PUT, path, Some(body.to_string().into_bytes()))
}

fn patch(path: &str, body: Value) -> Request {
    Request::new(Method::PATCH, path, Some(body.to_string().into_bytes()))
}

async fn send(api: &Api, request: &Request) -> Reply {
    let headers: Vec<(&str, &str)> = request
        .headers
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    let reply = api
        .send(
            request.method.clone(),
            &request.path,
            request.body.clone(),
            &headers,
        )
        .await;
    assert!(
        !reply.status.is_server_error(),
        "{} answered {}: {:?}",
        request.describe(),
        reply.status,
        reply.body
    );
    reply
}

/// Sends a request that must be refused with `status`, `code` and `field`, and checks that the
/// account's data is exactly what it was before.
async fn refused(
    api: &Api,
    request: Request,
    status: u16,
    code: &str,
    field: Option<&str>,
) -> Reply {
    let before = api.snapshot().await;
    let reply = send(api, &request).await;
    assert_eq!(
        reply.status.as_u16(),
        status,
        "{}: {:?}",
        request.describe(),
        reply.body
    );
    reply.assert_error(status, code, field);
    let after = api.snapshot().await;
    assert_eq!(after, before, "{} changed stored data", request.describe());
    reply
}

/// As `refused`, for routes that would bring `user` into being: it must still not exist.
async fn refused_for_user(
    api: &Api,
    user: &str,
    request: Request,
    status: u16,
    code: &str,
    field: Option<&str>,
) -> Reply {
    assert_user_absent(api, user).await;
    let reply = refused(api, request, status, code, field).await;
    assert_user_absent(api, user).await;
    reply
}

async fn assert_user_absent(api: &Api, user: &str) {
    let reply = api.get(&format!("/v1/users/{user}")).await;
    reply.assert_error(404, "not_found", None);
}

/// A server (loopback targets allowed) and an account that already has a webhook and a trigger,
/// so that a refused request that changed them would show.
async fn start() -> (TestServer, Api, String) {
    let server = TestServer::start().await;
    let api = server.account("validation").await;
    let webhook = api.create_webhook(HOOK_URL).await;
    let webhook_id = webhook["id"].as_str().expect("webhook id").to_owned();
    api.put_trigger(TRIGGER, json!({"fixed": 5})).await;
    (server, api, webhook_id)
}

/// A server that only accepts public `https://` targets.
async fn start_secure() -> (TestServer, Api) {
    let server = TestServer::start_with(|c| c.target_policy = TargetPolicy::SecureOnly).await;
    let api = server.account("secure").await;
    (server, api)
}

fn webhook_body() -> Value {
    json!({"name": "Orders", "url": HOOK_URL, "events": EVENT_TYPES})
}

fn trigger_event_body() -> Value {
    json!({"user_id": USER, "trigger_id": TRIGGER, "value": 3})
}

/// `base` with `field` set to `value`.
fn with(mut base: Value, field: &str, value: Value) -> Value {
    base[field] = value;
    base
}

/// `base` without `field`.
fn without(mut base: Value, field: &str) -> Value {
    base.as_object_mut().expect("object").remove(field);
    base
}

/// A valid JSON body padded with whitespace to at least `size` bytes.
fn padded(body: &Value, size: usize) -> Vec<u8> {
    let mut bytes = body.to_string().into_bytes();
    let closing = bytes.pop().expect("closing brace");
    bytes.resize(size, b' ');
    bytes.push(closing);
    bytes
}

// ---------------------------------------------------------------------------------------------
// Bodies: unparseable, not an object, too large.

const NOT_JSON: [&[u8]; 5] = [
    b"{\"name\": \"Orders\",",
    b"not json",
    b"",
    b"{'name': 'Orders'}",
    b"{\"name\": \"Orders\"} trailing",
];

const NOT_OBJECTS: [&str; 6] = [
    "[]",
    "[{\"name\": \"Orders\"}]",
    "\"Orders\"",
    "42",
    "null",
    "true",
];

#[tokio::test]
async fn webhook_body_that_does_not_parse_is_400_invalid_json() {
    let (_server, api, _) = start().await;
    for body in NOT_JSON {
        refused(
            &api,
            post_raw("/v1/webhooks", body),
            400,
            "invalid_json",
            None,
        )
        .await;
    }
}

#[tokio::test]
async fn trigger_event_body_that_does_not_parse_is_400_invalid_json() {
    let (_server, api, _) = start().await;
    for body in NOT_JSON {
        let request = post_raw("/v1/trigger_events", body);
        refused_for_user(&api, USER, request, 400, "invalid_json", None).await;
    }
}

#[tokio::test]
async fn webhook_body_that_is_not_an_object_is_422_invalid_type() {
    let (_server, api, _) = start().await;
    for body in NOT_OBJECTS {
        let request = post_raw("/v1/webhooks", body.as_bytes());
        refused(&api, request, 422, "invalid_type", None).await;
    }
}

#[tokio::test]
async fn trigger_event_body_that_is_not_an_object_is_422_invalid_type() {
    let (_server, api, _) = start().await;
    for body in NOT_OBJECTS {
        let request = post_raw("/v1/trigger_events", body.as_bytes());
        refused_for_user(&api, USER, request, 422, "invalid_type", None).await;
    }
}

#[tokio::test]
async fn webhook_body_over_256_kib_is_413() {
    let (_server, api, _) = start().await;
    let body = padded(&webhook_body(), 256 * 1024 + 1);
    refused(
        &api,
        post_raw("/v1/webhooks", &body),
        413,
        "payload_too_large",
        None,
    )
    .await;
    let body = padded(&webhook_body(), 300 * 1024);
    refused(
        &api,
        post_raw("/v1/webhooks", &body),
        413,
        "payload_too_large",
        None,
    )
    .await;
    // The same body, padded to less than the limit, is accepted: the size alone was refused.
    let reply = send(
        &api,
        &post_raw("/v1/webhooks", &padded(&webhook_body(), 200 * 1024)),
    )
    .await;
    assert_eq!(reply.status.as_u16(), 201, "{:?}", reply.body);
}

#[tokio::test]
async fn trigger_event_body_over_256_kib_is_413() {
    let (_server, api, _) = start().await;
    let body = padded(&trigger_event_body(), 256 * 1024 + 1);
    let request = post_raw("/v1/trigger_events", &body);
    refused_for_user(&api, USER, request, 413, "payload_too_large", None).await;
    let reply = send(
        &api,
        &post_raw(
            "/v1/trigger_events",
            &padded(&trigger_event_body(), 200 * 1024),
        ),
    )
    .await;
    assert_eq!(reply.status.as_u16(), 201, "{:?}", reply.body);
}

// ---------------------------------------------------------------------------------------------
// POST /v1/webhooks

#[tokio::test]
async fn webhook_without_name_is_missing_field() {
    let (_server, api, _) = start().await;
    let body = without(webhook_body(), "name");
    refused(
        &api,
        post("/v1/webhooks", body),
        422,
        "missing_field",
        Some("name"),
    )
    .await;
}

#[tokio::test]
async fn webhook_without_url_is_missing_field() {
    let (_server, api, _) = start().await;
    let body = without(webhook_body(), "url");
    refused(
        &api,
        post("/v1/webhooks", body),
        422,
        "missing_field",
        Some("url"),
    )
    .await;
}

#[tokio::test]
async fn webhook_without_events_is_missing_field() {
    let (_server, api, _) = start().await;
    let body = without(webhook_body(), "events");
    refused(
        &api,
        post("/v1/webhooks", body),
        422,
        "missing_field",
        Some("events"),
    )
    .await;
}

#[tokio::test]
async fn webhook_name_of_wrong_type_is_invalid_type() {
    let (_server, api, _) = start().await;
    for value in [
        json!(42),
        json!(null),
        json!(["Orders"]),
        json!({"text": "Orders"}),
        json!(true),
    ] {
        let body = with(webhook_body(), "name", value);
        refused(
            &api,
            post("/v1/webhooks", body),
            422,
            "invalid_type",
            Some("name"),
        )
        .await;
    }
}

#[tokio::test]
async fn webhook_url_of_wrong_type_is_invalid_type() {
    let (_server, api, _) = start().await;
    for value in [
        json!(42),
        json!(null),
        json!([HOOK_URL]),
        json!({"href": HOOK_URL}),
    ] {
        let body = with(webhook_body(), "url", value);
        refused(
            &api,
            post("/v1/webhooks", body),
            422,
            "invalid_type",
            Some("url"),
        )
        .await;
    }
}

#[tokio::test]
async fn webhook_events_of_wrong_type_is_invalid_type() {
    let (_server, api, _) = start().await;
    for value in [
        json!("trigger_event.created"),
        json!(null),
        json!(1),
        json!([1]),
        json!(["trigger_event.created", null]),
        json!({"type": "trigger_event.created"}),
    ] {
        let body = with(webhook_body(), "events", value);
        refused(
            &api,
            post("/v1/webhooks", body),
            422,
            "invalid_type",
            Some("events"),
        )
        .await;
    }
}

#[tokio::test]
async fn webhook_name_empty_is_invalid_value() {
    let (_server, api, _) = start().await;
    let body = with(webhook_body(), "name", json!(""));
    refused(
        &api,
        post("/v1/webhooks", body),
        422,
        "invalid_value",
        Some("name"),
    )
    .await;
}

#[tokio::test]
async fn webhook_name_blank_is_invalid_value() {
    let (_server, api, _) = start().await;
    for blank in [" ", "   ", "\t", " \n "] {
        let body = with(webhook_body(), "name", json!(blank));
        refused(
            &api,
            post("/v1/webhooks", body),
            422,
            "invalid_value",
            Some("name"),
        )
        .await;
    }
}

#[tokio::test]
async fn webhook_name_over_100_characters_is_invalid_value() {
    let (_server, api, _) = start().await;
    for long in ["x".repeat(101), "é".repeat(101), "x".repeat(5000)] {
        let body = with(webhook_body(), "name", json!(long));
        refused(
            &api,
            post("/v1/webhooks", body),
            422,
            "invalid_value",
            Some("name"),
        )
        .await;
    }
    // 100 characters (counted as characters, not bytes) are accepted.
    let body = with(webhook_body(), "name", json!("é".repeat(100)));
    let reply = send(&api, &post("/v1/webhooks", body)).await;
    assert_eq!(reply.status.as_u16(), 201, "{:?}", reply.body);
}

#[tokio::test]
async fn webhook_url_not_absolute_is_invalid_value() {
    let (_server, api, _) = start().await;
    for url in [
        "/hook",
        "example.com/hook",
        "",
        "hook",
        "//example.com/hook",
        "http://",
    ] {
        let body = with(webhook_body(), "url", json!(url));
        refused(
            &api,
            post("/v1/webhooks", body),
            422,
            "invalid_value",
            Some("url"),
        )
        .await;
    }
}

#[tokio::test]
async fn webhook_url_with_other_scheme_is_invalid_value() {
    let (_server, api, _) = start().await;
    for url in [
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "ws://example.com/hook",
        "mailto:ops@example.com",
        "javascript:alert(1)",
    ] {
        let body = with(webhook_body(), "url", json!(url));
        refused(
            &api,
            post("/v1/webhooks", body),
            422,
            "invalid_value",
            Some("url"),
        )
        .await;
    }
}

#[tokio::test]
async fn webhook_url_with_credentials_is_invalid_value() {
    let (_server, api, _) = start().await;
    for url in [
        "http://user:secret@127.0.0.1:9/hook",
        "http://user@127.0.0.1:9/hook",
        "https://user:secret@example.com/hook",
    ] {
        let body = with(webhook_body(), "url", json!(url));
        refused(
            &api,
            post("/v1/webhooks", body),
            422,
            "invalid_value",
            Some("url"),
        )
        .await;
    }
}

#[tokio::test]
async fn webhook_url_with_fragment_is_invalid_value() {
    let (_server, api, _) = start().await;
    let body = with(webhook_body(), "url", json!("http://127.0.0.1:9/hook#part"));
    refused(
        &api,
        post("/v1/webhooks", body),
        422,
        "invalid_value",
        Some("url"),
    )
    .await;
}

#[tokio::test]
async fn webhook_url_over_2048_characters_is_invalid_value() {
    let (_server, api, _) = start().await;
    let prefix = "http://127.0.0.1:9/";
    let long = format!("{prefix}{}", "a".repeat(2049 - prefix.len()));
    assert_eq!(long.len(), 2049);
    let body = with(webhook_body(), "url", json!(long));
    refused(
        &api,
        post("/v1/webhooks", body),
        422,
        "invalid_value",
        Some("url"),
    )
    .await;
    // 2048 characters are accepted.
    let exact = format!("{prefix}{}", "a".repeat(2048 - prefix.len()));
    let body = with(webhook_body(), "url", json!(exact));
    let reply = send(&api, &post("/v1/webhooks", body)).await;
    assert_eq!(reply.status.as_u16(), 201, "{:?}", reply.body);
}

#[tokio::test]
async fn webhook_events_empty_is_invalid_value() {
    let (_server, api, _) = start().await;
    let body = with(webhook_body(), "events", json!([]));
    refused(
        &api,
        post("/v1/webhooks", body),
        422,
        "invalid_value",
        Some("events"),
    )
    .await;
}

#[tokio::test]
async fn webhook_unknown_event_type_is_invalid_value() {
    let (_server, api, _) = start().await;
    for events in [
        json!(["user.deleted"]),
        json!(["trigger_event.created", "nope"]),
        json!([""]),
        json!(["TRIGGER_EVENT.CREATED"]),
        json!(["*"]),
    ] {
        let body = with(webhook_body(), "events", events);
        refused(
            &api,
            post("/v1/webhooks", body),
            422,
            "invalid_value",
            Some("events"),
        )
        .await;
    }
}

#[tokio::test]
async fn webhook_unknown_field_is_refused() {
    let (_server, api, _) = start().await;
    for field in ["nmae", "secret", "id", "disabled_reason"] {
        let body = with(webhook_body(), field, json!("x"));
        refused(
            &api,
            post("/v1/webhooks", body),
            422,
            "unknown_field",
            Some(field),
        )
        .await;
    }
}

#[tokio::test]
async fn webhook_enabled_not_a_bool_is_invalid_type() {
    let (_server, api, _) = start().await;
    for value in [json!("true"), json!(1), json!(0), json!([]), json!(null)] {
        let body = with(webhook_body(), "enabled", value);
        refused(
            &api,
            post("/v1/webhooks", body),
            422,
            "invalid_type",
            Some("enabled"),
        )
        .await;
    }
}

// ---------------------------------------------------------------------------------------------
// Secure mode: only public https:// targets.

#[tokio::test]
async fn secure_mode_refuses_http_urls() {
    let (_server, api) = start_secure().await;
    for url in ["http://example.com/hook", "http://93.184.216.34/hook"] {
        let body = with(webhook_body(), "url", json!(url));
        refused(
            &api,
            post("/v1/webhooks", body),
            422,
            "invalid_value",
            Some("url"),
        )
        .await;
    }
}

#[tokio::test]
async fn secure_mode_refuses_non_public_hosts() {
    let (_server, api) = start_secure().await;
    for url in [
        "https://127.0.0.1/hook",
        "https://127.0.0.1:8443/hook",
        "https://[::1]/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost/hook",
        "https://LOCALHOST./hook",
        "https://api.localhost/hook",
        "https://192.168.1.1/hook",
        "https://172.16.0.1/hook",
        "https://0.0.0.0/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[fe80::1]/hook",
        "https://[fd00:ec2::254]/hook",
        "https://2130706433/hook",
    ] {
        let body = with(webhook_body(), "url", json!(url));
        refused(
            &api,
            post("/v1/webhooks", body),
            422,
            "invalid_value",
            Some("url"),
        )
        .await;
    }
    // A public https:// target is accepted: the refusals above are about the host.
    let body = with(webhook_body(), "url", json!("https://example.com/hook"));
    let reply = send(&api, &post("/v1/webhooks", body)).await;
    assert_eq!(reply.status.as_u16(), 201, "{:?}", reply.body);
}

/// One literal in each block of the IANA special-purpose registries that a webhook may not reach
/// (see reward-core's `special_addresses`), and in the tunnels and reserved space around them.
const SPECIAL_PURPOSE_LITERALS: [&str; 47] = [
    "0.1.2.3",
    "10.255.255.255",
    "100.64.0.1",
    "127.0.0.2",
    "169.254.0.1",
    "172.31.255.255",
    "192.0.0.1",
    "192.0.0.9",
    "192.0.0.170",
    "192.0.2.1",
    "192.88.99.2",
    "192.168.0.1",
    "198.18.0.1",
    "198.19.255.255",
    "198.51.100.1",
    "203.0.113.1",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "[::]",
    "[::1]",
    "[::7f00:1]",
    "[::ffff:10.0.0.1]",
    "[::ffff:0:7f00:1]",
    "[::ffff:0:5db8:d822]",
    "[64:ff9b::a00:1]",
    "[64:ff9b:1::1]",
    "[100::1]",
    "[100:0:0:1::1]",
    "[2001::1]",
    "[2001:0:4136:e378:8000:63bf:3fff:fdd2]",
    "[2001:1::1]",
    "[2001:2::1]",
    "[2001:3::1]",
    "[2001:4:112::1]",
    "[2001:10::1]",
    "[2001:20::1]",
    "[2001:30::1]",
    "[2001:db8::1]",
    "[2002:7f00:1::1]",
    "[2002:5db8:d822::1]",
    "[3fff::1]",
    "[5f00::1]",
    "[fc00::1]",
    "[fe80::1]",
    "[fec0::1]",
    "[ff02::1]",
];

#[tokio::test]
async fn secure_mode_refuses_every_special_purpose_block() {
    let (_server, api) = start_secure().await;
    for literal in SPECIAL_PURPOSE_LITERALS
        .iter()
        .chain(&["[4000::1]", "[febf::1]"])
    {
        let url = format!("https://{literal}/hook");
        let body = with(webhook_body(), "url", json!(url));
        let reply = refused(
            &api,
            post("/v1/webhooks", body),
            422,
            "invalid_value",
            Some("url"),
        )
        .await;
        let message = reply.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("not a public address"), "{url}: {message}");
    }
    // What the registries mark globally reachable, and NAT64 around a public address, pass.
    for url in [
        "https://[64:ff9b::5db8:d822]/hook",
        "https://[2620:4f:8000::1]/hook",
        "https://192.31.196.1/hook",
        "https://[2606:2800:220:1:248:1893:25c8:1946]/hook",
    ] {
        let body = with(webhook_body(), "url", json!(url));
        let reply = send(&api, &post("/v1/webhooks", body)).await;
        assert_eq!(reply.status.as_u16(), 201, "{url}: {:?}", reply.body);
    }
}

#[tokio::test]
async fn secure_mode_patch_refuses_non_public_urls() {
    let (_server, api) = start_secure().await;
    let body = with(webhook_body(), "url", json!("https://example.com/hook"));
    let reply = send(&api, &post("/v1/webhooks", body)).await;
    assert_eq!(reply.status.as_u16(), 201, "{:?}", reply.body);
    let id = reply.body["id"].as_str().expect("id").to_owned();
    for url in [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
    ] {
        let request = patch(&format!("/v1/webhooks/{id}"), json!({ "url": url }));
        refused(&api, request, 422, "invalid_value", Some("url")).await;
    }
}

// ---------------------------------------------------------------------------------------------
// PATCH /v1/webhooks/{id}: validated as on create, and the webhook stays as it was.

async fn refused_patch(api: &Api, id: &str, body: Value, code: &str, field: Option<&str>) {
    let path = format!("/v1/webhooks/{id}");
    let before = api.get(&path).await;
    assert_eq!(before.status.as_u16(), 200, "{:?}", before.body);
    refused(api, patch(&path, body), 422, code, field).await;
    let after = api.get(&path).await;
    assert_eq!(after.status.as_u16(), 200, "{:?}", after.body);
    assert_eq!(after.body, before.body, "the webhook changed");
}

#[tokio::test]
async fn patch_webhook_null_name_is_refused() {
    let (_server, api, id) = start().await;
    refused_patch(
        &api,
        &id,
        json!({"name": null}),
        "invalid_type",
        Some("name"),
    )
    .await;
}

#[tokio::test]
async fn patch_webhook_invalid_name_is_refused() {
    let (_server, api, id) = start().await;
    for name in [String::new(), "  ".to_owned(), "x".repeat(101)] {
        refused_patch(
            &api,
            &id,
            json!({ "name": name }),
            "invalid_value",
            Some("name"),
        )
        .await;
    }
}

#[tokio::test]
async fn patch_webhook_bad_url_is_refused() {
    let (_server, api, id) = start().await;
    for url in [
        "/relative",
        "ftp://example.com/",
        "http://u:p@127.0.0.1:9/hook",
    ] {
        refused_patch(
            &api,
            &id,
            json!({ "url": url }),
            "invalid_value",
            Some("url"),
        )
        .await;
    }
    refused_patch(&api, &id, json!({"url": null}), "invalid_type", Some("url")).await;
    refused_patch(&api, &id, json!({"url": 7}), "invalid_type", Some("url")).await;
}

#[tokio::test]
async fn patch_webhook_empty_events_is_refused() {
    let (_server, api, id) = start().await;
    refused_patch(
        &api,
        &id,
        json!({"events": []}),
        "invalid_value",
        Some("events"),
    )
    .await;
    refused_patch(
        &api,
        &id,
        json!({"events": ["nope"]}),
        "invalid_value",
        Some("events"),
    )
    .await;
    refused_patch(
        &api,
        &id,
        json!({"events": null}),
        "invalid_type",
        Some("events"),
    )
    .await;
}

#[tokio::test]
async fn patch_webhook_enabled_not_a_bool_is_refused() {
    let (_server, api, id) = start().await;
    refused_patch(
        &api,
        &id,
        json!({"enabled": "false"}),
        "invalid_type",
        Some("enabled"),
    )
    .await;
}

#[tokio::test]
async fn patch_webhook_unknown_field_is_refused() {
    let (_server, api, id) = start().await;
    let body = json!({"name": "Renamed", "secret": "whsec_x"});
    refused_patch(&api, &id, body, "unknown_field", Some("secret")).await;
}

#[tokio::test]
async fn patch_webhook_partly_valid_body_changes_nothing() {
    let (_server, api, id) = start().await;
    // A valid name beside an invalid URL: the whole request is refused, the name included.
    let body = json!({"name": "Renamed", "url": "not a url"});
    refused_patch(&api, &id, body, "invalid_value", Some("url")).await;
}

#[tokio::test]
async fn patch_webhook_body_that_does_not_parse_is_400() {
    let (_server, api, id) = start().await;
    let request = Request::new(
        Method::PATCH,
        &format!("/v1/webhooks/{id}"),
        Some(b"{\"name\":".to_vec()),
    );
    refused(&api, request, 400, "invalid_json", None).await;
}

// ---------------------------------------------------------------------------------------------
// POST /v1/webhooks/{id}/test and /recover

#[tokio::test]
async fn test_event_without_type_is_missing_field() {
    let (_server, api, id) = start().await;
    let request = post(&format!("/v1/webhooks/{id}/test"), json!({}));
    refused(&api, request, 422, "missing_field", Some("type")).await;
}

#[tokio::test]
async fn test_event_unknown_type_is_invalid_value() {
    let (_server, api, id) = start().await;
    for kind in ["nope", "", "trigger_event"] {
        let request = post(&format!("/v1/webhooks/{id}/test"), json!({ "type": kind }));
        refused(&api, request, 422, "invalid_value", Some("type")).await;
    }
    let request = post(&format!("/v1/webhooks/{id}/test"), json!({"type": 1}));
    refused(&api, request, 422, "invalid_type", Some("type")).await;
}

#[tokio::test]
async fn recover_without_since_is_missing_field() {
    let (_server, api, id) = start().await;
    let request = post(&format!("/v1/webhooks/{id}/recover"), json!({}));
    refused(&api, request, 422, "missing_field", Some("since")).await;
}

#[tokio::test]
async fn recover_since_not_rfc3339_is_invalid_value() {
    let (_server, api, id) = start().await;
    for since in [
        "yesterday",
        "",
        "2024-12-14",
        "2024-13-01T00:00:00Z",
        "2024-12-14 15:29:18",
        "1734190158",
    ] {
        let request = post(
            &format!("/v1/webhooks/{id}/recover"),
            json!({ "since": since }),
        );
        refused(&api, request, 422, "invalid_value", Some("since")).await;
    }
    for since in [json!(1_734_190_158), json!(null)] {
        let request = post(
            &format!("/v1/webhooks/{id}/recover"),
            json!({ "since": since }),
        );
        refused(&api, request, 422, "invalid_type", Some("since")).await;
    }
}

// ---------------------------------------------------------------------------------------------
// List parameters

fn list_paths(webhook_id: &str) -> Vec<String> {
    vec![
        "/v1/webhooks".to_owned(),
        "/v1/events".to_owned(),
        "/v1/triggers".to_owned(),
        format!("/v1/webhooks/{webhook_id}/deliveries"),
    ]
}

async fn refused_limit(limit: &str) {
    let (_server, api, id) = start().await;
    for path in list_paths(&id) {
        let request = get(&format!("{path}?limit={limit}"));
        refused(&api, request, 422, "invalid_value", Some("limit")).await;
    }
}

#[tokio::test]
async fn list_limit_zero_is_invalid_value() {
    refused_limit("0").await;
}

#[tokio::test]
async fn list_limit_over_100_is_invalid_value() {
    refused_limit("101").await;
}

#[tokio::test]
async fn list_limit_not_a_whole_number_is_invalid_value() {
    refused_limit("abc").await;
    refused_limit("-1").await;
    refused_limit("1.5").await;
    refused_limit("").await;
}

#[tokio::test]
async fn list_limit_bounds_are_accepted() {
    let (_server, api, id) = start().await;
    for path in list_paths(&id) {
        for limit in ["1", "100"] {
            let reply = send(&api, &get(&format!("{path}?limit={limit}"))).await;
            assert_eq!(reply.status.as_u16(), 200, "{path}: {:?}", reply.body);
        }
    }
}

#[tokio::test]
async fn list_cursor_garbage_is_invalid_cursor() {
    let (_server, api, id) = start().await;
    // Not base64url, not UTF-8 once decoded, base64url of "nope", and empty.
    for cursor in ["garbage", "!!!", "_w", "bm9wZQ", ""] {
        for path in list_paths(&id) {
            let request = get(&format!("{path}?cursor={cursor}"));
            refused(&api, request, 422, "invalid_cursor", Some("cursor")).await;
        }
    }
}

#[tokio::test]
async fn deliveries_status_bogus_is_invalid_value() {
    let (_server, api, id) = start().await;
    for status in ["bogus", "", "PENDING", "delivered"] {
        let request = get(&format!("/v1/webhooks/{id}/deliveries?status={status}"));
        refused(&api, request, 422, "invalid_value", Some("status")).await;
    }
}

#[tokio::test]
async fn events_type_bogus_is_invalid_value() {
    let (_server, api, _) = start().await;
    for kind in ["bogus", "", "trigger_event"] {
        let request = get(&format!("/v1/events?type={kind}"));
        refused(&api, request, 422, "invalid_value", Some("type")).await;
    }
}

// ---------------------------------------------------------------------------------------------
// PUT /v1/triggers/{id}

async fn refused_trigger(api: &Api, id: &str, body: Value, code: &str, field: &str) {
    let path = format!("/v1/triggers/{id}");
    let before = api.get(&path).await;
    refused(api, put(&path, body), 422, code, Some(field)).await;
    let after = api.get(&path).await;
    assert_eq!(after.status, before.status, "{:?}", after.body);
    assert_eq!(after.body, before.body, "the trigger changed");
}

#[tokio::test]
async fn trigger_invalid_id_in_path_is_invalid_value() {
    let (_server, api, _) = start().await;
    let long = "t".repeat(101);
    for id in ["bad%20id", "bad!id", "bad%2Fid", "caf%C3%A9", long.as_str()] {
        let body = json!({"name": "Bad", "credit_points": {"fixed": 1}});
        refused(
            &api,
            put(&format!("/v1/triggers/{id}"), body),
            422,
            "invalid_value",
            Some("id"),
        )
        .await;
    }
}

#[tokio::test]
async fn trigger_without_name_is_missing_field() {
    let (_server, api, _) = start().await;
    let body = json!({"credit_points": {"fixed": 1}});
    refused_trigger(&api, TRIGGER, body.clone(), "missing_field", "name").await;
    refused_trigger(&api, "fresh", body, "missing_field", "name").await;
}

#[tokio::test]
async fn trigger_invalid_name_is_refused() {
    let (_server, api, _) = start().await;
    for name in [String::new(), " ".to_owned(), "n".repeat(101)] {
        let body = json!({"name": name, "credit_points": null});
        refused_trigger(&api, TRIGGER, body, "invalid_value", "name").await;
    }
    let body = json!({"name": 5, "credit_points": null});
    refused_trigger(&api, TRIGGER, body, "invalid_type", "name").await;
}

#[tokio::test]
async fn trigger_credit_points_with_both_rules_is_invalid_value() {
    let (_server, api, _) = start().await;
    let body = json!({"name": "Signup", "credit_points": {"per_unit": 10, "fixed": 5}});
    refused_trigger(&api, TRIGGER, body, "invalid_value", "credit_points").await;
}

#[tokio::test]
async fn trigger_credit_points_with_no_rule_is_invalid_value() {
    let (_server, api, _) = start().await;
    let body = json!({"name": "Signup", "credit_points": {}});
    refused_trigger(&api, TRIGGER, body, "invalid_value", "credit_points").await;
}

#[tokio::test]
async fn trigger_credit_points_unknown_rule_is_unknown_field() {
    let (_server, api, _) = start().await;
    let body = json!({"name": "Signup", "credit_points": {"fixed": 5, "bonus": 1}});
    refused_trigger(&api, TRIGGER, body, "unknown_field", "credit_points.bonus").await;
}

#[tokio::test]
async fn trigger_per_unit_zero_or_negative_is_invalid_value() {
    let (_server, api, _) = start().await;
    for per_unit in [json!(0), json!(0.0), json!(-1), json!(-0.5), json!(2e9)] {
        let body = json!({"name": "Signup", "credit_points": {"per_unit": per_unit}});
        refused_trigger(
            &api,
            TRIGGER,
            body,
            "invalid_value",
            "credit_points.per_unit",
        )
        .await;
    }
}

#[tokio::test]
async fn trigger_per_unit_not_a_number_is_invalid_type() {
    let (_server, api, _) = start().await;
    for per_unit in [json!("10"), json!(null), json!([10])] {
        let body = json!({"name": "Signup", "credit_points": {"per_unit": per_unit}});
        refused_trigger(
            &api,
            TRIGGER,
            body,
            "invalid_type",
            "credit_points.per_unit",
        )
        .await;
    }
}

#[tokio::test]
async fn trigger_fixed_zero_or_negative_is_invalid_value() {
    let (_server, api, _) = start().await;
    for fixed in [json!(0), json!(-5), json!(1_000_000_000_001_i64)] {
        let body = json!({"name": "Signup", "credit_points": {"fixed": fixed}});
        refused_trigger(&api, TRIGGER, body, "invalid_value", "credit_points.fixed").await;
    }
}

#[tokio::test]
async fn trigger_fixed_not_whole_is_invalid_type() {
    let (_server, api, _) = start().await;
    for fixed in [json!(1.5), json!("5"), json!(null)] {
        let body = json!({"name": "Signup", "credit_points": {"fixed": fixed}});
        refused_trigger(&api, TRIGGER, body, "invalid_type", "credit_points.fixed").await;
    }
}

#[tokio::test]
async fn trigger_credit_points_a_string_is_invalid_type() {
    let (_server, api, _) = start().await;
    for rule in [json!("fixed"), json!(5), json!([{"fixed": 5}])] {
        let body = json!({"name": "Signup", "credit_points": rule});
        refused_trigger(&api, TRIGGER, body, "invalid_type", "credit_points").await;
    }
}

#[tokio::test]
async fn trigger_unknown_field_is_refused() {
    let (_server, api, _) = start().await;
    let body = json!({"name": "Signup", "credit_points": null, "points": 5});
    refused_trigger(&api, TRIGGER, body, "unknown_field", "points").await;
}

// ---------------------------------------------------------------------------------------------
// POST /v1/trigger_events

async fn refused_trigger_event(api: &Api, body: Value, code: &str, field: &str) {
    let request = post("/v1/trigger_events", body);
    refused_for_user(api, USER, request, 422, code, Some(field)).await;
}

#[tokio::test]
async fn trigger_event_without_user_id_is_missing_field() {
    let (_server, api, _) = start().await;
    let body = without(trigger_event_body(), "user_id");
    refused_trigger_event(&api, body, "missing_field", "user_id").await;
}

#[tokio::test]
async fn trigger_event_without_trigger_id_is_missing_field() {
    let (_server, api, _) = start().await;
    let body = without(trigger_event_body(), "trigger_id");
    refused_trigger_event(&api, body, "missing_field", "trigger_id").await;
}

#[tokio::test]
async fn trigger_event_user_id_of_wrong_type_is_invalid_type() {
    let (_server, api, _) = start().await;
    for user in [json!(1), json!(null), json!([USER])] {
        let body = with(trigger_event_body(), "user_id", user);
        refused_trigger_event(&api, body, "invalid_type", "user_id").await;
    }
}

#[tokio::test]
async fn trigger_event_user_id_with_a_space_is_invalid_value() {
    let (_server, api, _) = start().await;
    let long = "u".repeat(129);
    for user in [
        "user 1",
        " user-1",
        "user/1",
        "user?1",
        "user#1",
        "user%1",
        "",
        long.as_str(),
    ] {
        let body = with(trigger_event_body(), "user_id", json!(user));
        refused_trigger_event(&api, body, "invalid_value", "user_id").await;
    }
}

#[tokio::test]
async fn trigger_event_invalid_trigger_id_is_invalid_value() {
    let (_server, api, _) = start().await;
    for trigger in ["sign up", "", "signup!"] {
        let body = with(trigger_event_body(), "trigger_id", json!(trigger));
        refused_trigger_event(&api, body, "invalid_value", "trigger_id").await;
    }
}

#[tokio::test]
async fn trigger_event_value_a_string_is_invalid_type() {
    let (_server, api, _) = start().await;
    for value in [json!("3"), json!(true), json!([3]), json!({"n": 3})] {
        let body = with(trigger_event_body(), "value", value);
        refused_trigger_event(&api, body, "invalid_type", "value").await;
    }
}

#[tokio::test]
async fn trigger_event_unknown_trigger_is_unknown_trigger() {
    let (_server, api, _) = start().await;
    let body = with(trigger_event_body(), "trigger_id", json!("no_such_trigger"));
    refused_trigger_event(&api, body, "unknown_trigger", "trigger_id").await;
    // A deleted trigger is unknown too.
    let reply = api.delete(&format!("/v1/triggers/{TRIGGER}")).await;
    assert_eq!(reply.status.as_u16(), 204, "{:?}", reply.body);
    refused_trigger_event(&api, trigger_event_body(), "unknown_trigger", "trigger_id").await;
}

#[tokio::test]
async fn trigger_event_unknown_field_is_refused() {
    let (_server, api, _) = start().await;
    let body = with(trigger_event_body(), "points", json!(5));
    refused_trigger_event(&api, body, "unknown_field", "points").await;
}

#[tokio::test]
async fn trigger_event_invalid_idempotency_key_is_invalid_value() {
    let (_server, api, _) = start().await;
    let long = "k".repeat(256);
    for key in [long.as_str(), "has space"] {
        let request =
            post("/v1/trigger_events", trigger_event_body()).header("idempotency-key", key);
        refused_for_user(
            &api,
            USER,
            request,
            422,
            "invalid_value",
            Some("Idempotency-Key"),
        )
        .await;
    }
}

// ---------------------------------------------------------------------------------------------
// POST /v1/users/{id}/credits

async fn refused_credits(api: &Api, body: Value, code: &str, field: &str) {
    let request = post(&format!("/v1/users/{USER}/credits"), body);
    refused_for_user(api, USER, request, 422, code, Some(field)).await;
}

#[tokio::test]
async fn credits_points_zero_is_invalid_value() {
    let (_server, api, _) = start().await;
    refused_credits(&api, json!({"points": 0}), "invalid_value", "points").await;
}

#[tokio::test]
async fn credits_points_negative_is_invalid_value() {
    let (_server, api, _) = start().await;
    for points in [json!(-1), json!(-1_000_000), json!(i64::MIN)] {
        refused_credits(&api, json!({ "points": points }), "invalid_value", "points").await;
    }
}

#[tokio::test]
async fn credits_points_over_10_pow_12_is_invalid_value() {
    let (_server, api, _) = start().await;
    for points in [json!(1_000_000_000_001_i64), json!(i64::MAX)] {
        refused_credits(&api, json!({ "points": points }), "invalid_value", "points").await;
    }
}

#[tokio::test]
async fn credits_points_not_whole_is_invalid_type() {
    let (_server, api, _) = start().await;
    for points in [
        json!(1.5),
        json!("5"),
        json!(null),
        json!(u64::MAX),
        json!(1e300),
    ] {
        refused_credits(&api, json!({ "points": points }), "invalid_type", "points").await;
    }
}

#[tokio::test]
async fn credits_points_missing_is_missing_field() {
    let (_server, api, _) = start().await;
    refused_credits(
        &api,
        json!({"reason": "Welcome"}),
        "missing_field",
        "points",
    )
    .await;
}

#[tokio::test]
async fn credits_reason_not_a_string_is_invalid_type() {
    let (_server, api, _) = start().await;
    for reason in [json!(5), json!(true), json!(["Welcome"])] {
        let body = json!({"points": 5, "reason": reason});
        refused_credits(&api, body, "invalid_type", "reason").await;
    }
}

#[tokio::test]
async fn credits_reason_over_500_characters_is_invalid_value() {
    let (_server, api, _) = start().await;
    for reason in ["r".repeat(501), "é".repeat(501)] {
        let body = json!({"points": 5, "reason": reason});
        refused_credits(&api, body, "invalid_value", "reason").await;
    }
    // 500 characters are accepted.
    let body = json!({"points": 5, "reason": "é".repeat(500)});
    let reply = send(&api, &post(&format!("/v1/users/{USER}/credits"), body)).await;
    assert_eq!(reply.status.as_u16(), 201, "{:?}", reply.body);
}

#[tokio::test]
async fn credits_unknown_field_is_refused() {
    let (_server, api, _) = start().await;
    let body = json!({"points": 5, "balance": 100});
    refused_credits(&api, body, "unknown_field", "balance").await;
}

#[tokio::test]
async fn credits_invalid_user_id_in_path_is_invalid_value() {
    let (_server, api, _) = start().await;
    let request = post("/v1/users/user%201/credits", json!({"points": 5}));
    refused(&api, request, 422, "invalid_value", Some("user_id")).await;
    assert_user_absent(&api, "user%201").await;
}

// ---------------------------------------------------------------------------------------------
// Authentication

/// Routes of every kind, each with a body that an authenticated caller would see accepted.
fn authenticated_routes(webhook_id: &str) -> Vec<Request> {
    vec![
        get("/v1/webhooks"),
        post("/v1/webhooks", webhook_body()),
        get(&format!("/v1/webhooks/{webhook_id}")),
        patch(
            &format!("/v1/webhooks/{webhook_id}"),
            json!({"name": "Renamed"}),
        ),
        delete(&format!("/v1/webhooks/{webhook_id}")),
        get(&format!("/v1/webhooks/{webhook_id}/secret")),
        post(
            &format!("/v1/webhooks/{webhook_id}/secret/rotate"),
            json!({}),
        ),
        post(
            &format!("/v1/webhooks/{webhook_id}/test"),
            json!({"type": "trigger_event.created"}),
        ),
        get("/v1/events"),
        get("/v1/event_types"),
        get("/v1/triggers"),
        put(
            "/v1/triggers/other",
            json!({"name": "Other", "credit_points": null}),
        ),
        delete(&format!("/v1/triggers/{TRIGGER}")),
        post("/v1/trigger_events", trigger_event_body()),
        post(&format!("/v1/users/{USER}/credits"), json!({"points": 5})),
        get(&format!("/v1/users/{USER}")),
    ]
}

/// Every route refuses `caller` with 401, and the owner's data stays as it was.
async fn all_unauthorized(owner: &Api, caller: &Api, webhook_id: &str, extra: Option<&str>) {
    for mut request in authenticated_routes(webhook_id) {
        if let Some(authorization) = extra {
            request = request.header("authorization", authorization);
        }
        let before = owner.snapshot().await;
        let reply = send(caller, &request).await;
        assert_eq!(
            reply.status.as_u16(),
            401,
            "{}: {:?}",
            request.describe(),
            reply.body
        );
        reply.assert_error(401, "unauthorized", None);
        assert_eq!(
            owner.snapshot().await,
            before,
            "{} changed data",
            request.describe()
        );
        assert_user_absent(owner, USER).await;
    }
    let reply = owner.get(&format!("/v1/triggers/{TRIGGER}")).await;
    assert_eq!(reply.status.as_u16(), 200, "{:?}", reply.body);
    let reply = owner.get("/v1/triggers/other").await;
    reply.assert_error(404, "not_found", None);
}

#[tokio::test]
async fn no_authorization_header_is_401() {
    let (server, api, id) = start().await;
    all_unauthorized(&api, &server.anonymous(), &id, None).await;
}

#[tokio::test]
async fn wrong_api_key_is_401() {
    let (server, api, id) = start().await;
    let wrong = Api::new(&server.base_url, "rk_live_not_a_real_key");
    all_unauthorized(&api, &wrong, &id, None).await;
    // A key that differs from a real one by its last character.
    let mut almost = api.key.clone();
    let last = almost.pop().expect("non-empty key");
    almost.push(if last == 'a' { 'b' } else { 'a' });
    let almost = Api::new(&server.base_url, &almost);
    all_unauthorized(&api, &almost, &id, None).await;
}

#[tokio::test]
async fn basic_authorization_is_401() {
    let (server, api, id) = start().await;
    all_unauthorized(&api, &server.anonymous(), &id, Some("Basic xyz")).await;
    // Even a real key is refused under another scheme.
    let basic = format!("Basic {}", api.key);
    all_unauthorized(&api, &server.anonymous(), &id, Some(&basic)).await;
}

#[tokio::test]
async fn malformed_bearer_authorization_is_401() {
    let (server, api, id) = start().await;
    for header in ["Bearer", "Bearer ", "Bearer    ", "bearer", "Token abc"] {
        all_unauthorized(&api, &server.anonymous(), &id, Some(header)).await;
    }
    // The key alone, without its scheme.
    let bare = api.key.clone();
    all_unauthorized(&api, &server.anonymous(), &id, Some(&bare)).await;
}

// ---------------------------------------------------------------------------------------------
// Routing

#[tokio::test]
async fn unknown_route_is_404_json() {
    let (server, api, id) = start().await;
    let anonymous = server.anonymous();
    let paths = [
        "/v1/nope".to_owned(),
        "/v2/webhooks".to_owned(),
        "/webhooks".to_owned(),
        format!("/v1/webhooks/{id}/nope"),
        "/v1/users".to_owned(),
        "/v1/deliveries".to_owned(),
    ];
    for caller in [&api, &anonymous] {
        for path in &paths {
            for method in [Method::GET, Method::POST] {
                let body = (method == Method::POST).then(|| b"{}".to_vec());
                let request = Request::new(method, path, body);
                let before = api.snapshot().await;
                let reply = send(caller, &request).await;
                assert_eq!(
                    reply.status.as_u16(),
                    404,
                    "{}: {:?}",
                    request.describe(),
                    reply.body
                );
                reply.assert_error(404, "not_found", None);
                assert_eq!(api.snapshot().await, before);
            }
        }
    }
}

#[tokio::test]
async fn wrong_method_is_405_json() {
    let (server, api, id) = start().await;
    let anonymous = server.anonymous();
    let requests = [
        (Method::DELETE, "/v1/trigger_events".to_owned()),
        (Method::GET, "/v1/trigger_events".to_owned()),
        (Method::PUT, "/v1/webhooks".to_owned()),
        (Method::DELETE, "/v1/webhooks".to_owned()),
        (Method::POST, format!("/v1/webhooks/{id}")),
        (Method::PUT, format!("/v1/webhooks/{id}")),
        (Method::GET, format!("/v1/webhooks/{id}/test")),
        (Method::POST, "/v1/events".to_owned()),
        (Method::POST, "/v1/triggers".to_owned()),
        (Method::PATCH, format!("/v1/triggers/{TRIGGER}")),
        (Method::DELETE, format!("/v1/users/{USER}")),
        (Method::GET, format!("/v1/users/{USER}/credits")),
    ];
    for caller in [&api, &anonymous] {
        for (method, path) in &requests {
            let request = Request::new(method.clone(), path, Some(b"{}".to_vec()));
            let before = api.snapshot().await;
            let reply = send(caller, &request).await;
            assert_eq!(
                reply.status.as_u16(),
                405,
                "{}: {:?}",
                request.describe(),
                reply.body
            );
            reply.assert_error(405, "method_not_allowed", None);
            assert_eq!(api.snapshot().await, before);
        }
    }
    assert_user_absent(&api, USER).await;
}
