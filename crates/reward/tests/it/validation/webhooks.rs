//! Webhooks: `POST /v1/webhooks`, `PATCH /v1/webhooks/{id}`, `/test` and `/recover`, and the
//! targets a server in secure mode refuses.

use reward_core::names::TargetPolicy;
use serde_json::{json, Value};

use super::{
    body_cases, body_under_limit_case, named, patch, post, run, send, start, webhook_body, with,
    without, Case, Request, HOOK_URL,
};
use crate::common::{Api, TestServer};

/// `POST /v1/webhooks` with the valid body, `field` set to each value: refused with `code` on
/// `field`. Rows: (rule, field, values, code).
fn create_field_rows() -> Vec<(&'static str, &'static str, Vec<Value>, &'static str)> {
    let url_prefix = "http://127.0.0.1:9/";
    let url_2049 = format!("{url_prefix}{}", "a".repeat(2049 - url_prefix.len()));
    assert_eq!(url_2049.len(), 2049);
    vec![
        (
            "webhook_name_of_wrong_type_is_invalid_type",
            "name",
            vec![
                json!(42),
                json!(null),
                json!(["Orders"]),
                json!({"text": "Orders"}),
                json!(true),
            ],
            "invalid_type",
        ),
        (
            "webhook_url_of_wrong_type_is_invalid_type",
            "url",
            vec![
                json!(42),
                json!(null),
                json!([HOOK_URL]),
                json!({"href": HOOK_URL}),
            ],
            "invalid_type",
        ),
        (
            "webhook_events_of_wrong_type_is_invalid_type",
            "events",
            vec![
                json!("trigger_event.created"),
                json!(null),
                json!(1),
                json!([1]),
                json!(["trigger_event.created", null]),
                json!({"type": "trigger_event.created"}),
            ],
            "invalid_type",
        ),
        (
            "webhook_name_empty_is_invalid_value",
            "name",
            vec![json!("")],
            "invalid_value",
        ),
        (
            "webhook_name_blank_is_invalid_value",
            "name",
            vec![json!(" "), json!("   "), json!("\t"), json!(" \n ")],
            "invalid_value",
        ),
        (
            "webhook_name_over_100_characters_is_invalid_value",
            "name",
            vec![
                json!("x".repeat(101)),
                json!("é".repeat(101)),
                json!("x".repeat(5000)),
            ],
            "invalid_value",
        ),
        (
            "webhook_url_not_absolute_is_invalid_value",
            "url",
            vec![
                json!("/hook"),
                json!("example.com/hook"),
                json!(""),
                json!("hook"),
                json!("//example.com/hook"),
                json!("http://"),
            ],
            "invalid_value",
        ),
        (
            "webhook_url_with_other_scheme_is_invalid_value",
            "url",
            vec![
                json!("ftp://example.com/hook"),
                json!("file:///etc/passwd"),
                json!("ws://example.com/hook"),
                json!("mailto:ops@example.com"),
                json!("javascript:alert(1)"),
            ],
            "invalid_value",
        ),
        (
            "webhook_url_with_credentials_is_invalid_value",
            "url",
            vec![
                json!("http://user:secret@127.0.0.1:9/hook"),
                json!("http://user@127.0.0.1:9/hook"),
                json!("https://user:secret@example.com/hook"),
            ],
            "invalid_value",
        ),
        (
            "webhook_url_with_fragment_is_invalid_value",
            "url",
            vec![json!("http://127.0.0.1:9/hook#part")],
            "invalid_value",
        ),
        (
            "webhook_url_over_2048_characters_is_invalid_value",
            "url",
            vec![json!(url_2049)],
            "invalid_value",
        ),
        (
            "webhook_events_empty_is_invalid_value",
            "events",
            vec![json!([])],
            "invalid_value",
        ),
        (
            "webhook_unknown_event_type_is_invalid_value",
            "events",
            vec![
                json!(["user.deleted"]),
                json!(["trigger_event.created", "nope"]),
                json!([""]),
                json!(["TRIGGER_EVENT.CREATED"]),
                json!(["*", "trigger_event.created"]),
                json!(["trigger_event.created", "*"]),
                json!(["**"]),
            ],
            "invalid_value",
        ),
        (
            "webhook_enabled_not_a_bool_is_invalid_type",
            "enabled",
            vec![json!("true"), json!(1), json!(0), json!([]), json!(null)],
            "invalid_type",
        ),
        (
            "webhook_own_secret_not_whsec_and_base64_of_24_to_64_bytes_is_invalid_value",
            "secret",
            vec![
                json!("x"),
                json!("whsec_"),
                json!("whsec_c2hvcnQ="),
                json!("whsec_!!!!"),
                json!(format!("whsec_{}", base64_of(&[7; 23]))),
                json!(format!("whsec_{}", base64_of(&[7; 65]))),
            ],
            "invalid_value",
        ),
        (
            "webhook_own_secret_of_wrong_type_is_invalid_type",
            "secret",
            vec![json!(5), json!(null), json!(["whsec_x"])],
            "invalid_type",
        ),
        (
            "webhook_invalid_filter_is_invalid_value",
            "filter",
            invalid_filters(),
            "invalid_value",
        ),
        (
            "webhook_filter_not_an_object_is_invalid_type",
            "filter",
            vec![json!("type"), json!(5), json!([]), json!(true)],
            "invalid_type",
        ),
        (
            "webhook_invalid_headers_are_invalid_value",
            "headers",
            invalid_headers(),
            "invalid_value",
        ),
        (
            "webhook_headers_not_an_object_of_strings_is_invalid_type",
            "headers",
            vec![
                json!("X-A: 1"),
                json!([]),
                json!({"X-A": 1}),
                json!({"X-A": null}),
            ],
            "invalid_type",
        ),
        (
            "webhook_description_too_long_or_with_control_characters_is_invalid_value",
            "description",
            vec![
                json!("d".repeat(1001)),
                json!("nul\u{0}"),
                json!("bell\u{7}"),
            ],
            "invalid_value",
        ),
        (
            "webhook_description_not_a_string_is_invalid_type",
            "description",
            vec![json!(5), json!(["d"]), json!({})],
            "invalid_type",
        ),
        (
            "webhook_invalid_metadata_is_invalid_value",
            "metadata",
            invalid_metadata(),
            "invalid_value",
        ),
        (
            "webhook_metadata_not_an_object_of_strings_is_invalid_type",
            "metadata",
            vec![
                json!("k=v"),
                json!([]),
                json!({"k": 1}),
                json!({"k": {"v": "w"}}),
            ],
            "invalid_type",
        ),
        (
            "webhook_rate_limit_outside_1_to_10000_is_invalid_value",
            "rate_limit",
            vec![json!(0), json!(-1), json!(10001), json!(1e12)],
            "invalid_value",
        ),
        (
            "webhook_rate_limit_not_a_whole_number_is_invalid_type",
            "rate_limit",
            vec![json!("20"), json!(1.5), json!(true), json!([20])],
            "invalid_type",
        ),
        (
            "webhook_ordering_not_none_or_per_user_is_invalid_value",
            "ordering",
            vec![
                json!(""),
                json!("per-user"),
                json!("PER_USER"),
                json!("fifo"),
                json!(" none"),
            ],
            "invalid_value",
        ),
        (
            "webhook_ordering_not_a_string_is_invalid_type",
            "ordering",
            vec![json!(null), json!(1), json!(true), json!(["per_user"])],
            "invalid_type",
        ),
    ]
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Filters refused for what they say, each for its own rule (issue 16).
fn invalid_filters() -> Vec<Value> {
    let mut deep = json!({"type": "x"});
    for _ in 0..8 {
        deep = json!({"$not": deep});
    }
    let big: serde_json::Map<String, Value> = (0..300)
        .map(|n| (format!("data.field_{n}"), json!("value")))
        .collect();
    vec![
        json!({"data.points": {"$gte": true}}),
        json!({"data.points": {"$bogus": 1}}),
        json!({"$gte": 5}),
        json!({"type": {"$in": "trigger_event.created"}}),
        json!({"type": {"$nin": 5}}),
        json!({"data.value": {"$exists": "yes"}}),
        json!({"type": {"$startsWith": 5}}),
        json!({"$and": []}),
        json!({"$or": {"type": "x"}}),
        json!({"$not": 5}),
        json!({"data.x": {"$eq": 1, "plain": 2}}),
        json!({"data..points": 1}),
        deep,
        Value::Object(big),
    ]
}

fn invalid_headers() -> Vec<Value> {
    let mut refused: Vec<Value> = [
        "content-type",
        "Content-Length",
        "host",
        "User-Agent",
        "connection",
        "Transfer-Encoding",
        "te",
        "upgrade",
        "webhook-id",
        "Webhook-Signature",
        "webhook-timestamp",
        "webhook-anything",
    ]
    .iter()
    .map(|name| json!({ (*name): "x" }))
    .collect();
    let many: serde_json::Map<String, Value> =
        (0..21).map(|n| (format!("X-{n}"), json!("v"))).collect();
    refused.extend([
        json!({"X Bad": "x"}),
        json!({"X-Bad:": "x"}),
        json!({"": "x"}),
        json!({"X-A": ""}),
        json!({"X-A": "line\nbreak"}),
        json!({"X-A": "caf\u{e9}"}),
        json!({"X-A": "v".repeat(1025)}),
        Value::Object(many),
    ]);
    refused
}

fn invalid_metadata() -> Vec<Value> {
    let many: serde_json::Map<String, Value> =
        (0..51).map(|n| (format!("k{n}"), json!("v"))).collect();
    vec![
        Value::Object(many),
        json!({ ("k".repeat(65)): "v" }),
        json!({"": "v"}),
        json!({"k": "v".repeat(513)}),
        json!({"k": "nul\u{0}"}),
    ]
}

fn create_cases() -> Vec<Case> {
    let path = "/v1/webhooks";
    let mut cases = body_cases("webhook", path, &webhook_body());
    for field in ["name", "url", "events"] {
        let rule = format!("webhook_without_{field}_is_missing_field");
        let body = without(webhook_body(), field);
        cases.push(Case::refused(
            rule,
            post(path, body),
            422,
            "missing_field",
            Some(field),
        ));
    }
    for (rule, field, values, code) in create_field_rows() {
        for value in values {
            let name = named(rule, &value);
            let body = with(webhook_body(), field, value);
            cases.push(Case::refused(
                name,
                post(path, body),
                422,
                code,
                Some(field),
            ));
        }
    }
    for field in ["nmae", "secret_key", "id", "disabled_reason"] {
        let name = format!("webhook_unknown_field_is_refused [{field}]");
        let body = with(webhook_body(), field, json!("x"));
        cases.push(Case::refused(
            name,
            post(path, body),
            422,
            "unknown_field",
            Some(field),
        ));
    }
    // The bounds next to the refused values are accepted: these add webhooks, so they come last.
    cases.push(body_under_limit_case("webhook", path, &webhook_body()));
    // Counted as characters, not bytes.
    let body = with(webhook_body(), "name", json!("é".repeat(100)));
    cases.push(Case::accepted(
        "webhook_name_over_100_characters_is_invalid_value [100 characters accepted]",
        post(path, body),
        201,
    ));
    let url_prefix = "http://127.0.0.1:9/";
    let url_2048 = format!("{url_prefix}{}", "a".repeat(2048 - url_prefix.len()));
    let body = with(webhook_body(), "url", json!(url_2048));
    cases.push(Case::accepted(
        "webhook_url_over_2048_characters_is_invalid_value [2048 characters accepted]",
        post(path, body),
        201,
    ));
    cases
}

#[tokio::test]
async fn create_webhook_refuses_bad_bodies() {
    let (_server, api, _) = start().await;
    run(&api, &create_cases()).await;
}

/// `PATCH /v1/webhooks/{id}`: validated as on create, and the webhook stays as it was. Rows:
/// (rule, body, code, field).
fn patch_rows() -> Vec<(&'static str, Value, &'static str, &'static str)> {
    vec![
        (
            "patch_webhook_invalid_ordering_is_refused",
            json!({"ordering": "per_webhook"}),
            "invalid_value",
            "ordering",
        ),
        (
            "patch_webhook_null_ordering_is_refused",
            json!({"ordering": null}),
            "invalid_type",
            "ordering",
        ),
        (
            "patch_webhook_null_name_is_refused",
            json!({"name": null}),
            "invalid_type",
            "name",
        ),
        (
            "patch_webhook_invalid_name_is_refused",
            json!({"name": ""}),
            "invalid_value",
            "name",
        ),
        (
            "patch_webhook_invalid_name_is_refused",
            json!({"name": "  "}),
            "invalid_value",
            "name",
        ),
        (
            "patch_webhook_invalid_name_is_refused",
            json!({"name": "x".repeat(101)}),
            "invalid_value",
            "name",
        ),
        (
            "patch_webhook_bad_url_is_refused",
            json!({"url": "/relative"}),
            "invalid_value",
            "url",
        ),
        (
            "patch_webhook_bad_url_is_refused",
            json!({"url": "ftp://example.com/"}),
            "invalid_value",
            "url",
        ),
        (
            "patch_webhook_bad_url_is_refused",
            json!({"url": "http://u:p@127.0.0.1:9/hook"}),
            "invalid_value",
            "url",
        ),
        (
            "patch_webhook_bad_url_is_refused",
            json!({"url": null}),
            "invalid_type",
            "url",
        ),
        (
            "patch_webhook_bad_url_is_refused",
            json!({"url": 7}),
            "invalid_type",
            "url",
        ),
        (
            "patch_webhook_empty_events_is_refused",
            json!({"events": []}),
            "invalid_value",
            "events",
        ),
        (
            "patch_webhook_empty_events_is_refused",
            json!({"events": ["nope"]}),
            "invalid_value",
            "events",
        ),
        (
            "patch_webhook_empty_events_is_refused",
            json!({"events": null}),
            "invalid_type",
            "events",
        ),
        (
            "patch_webhook_enabled_not_a_bool_is_refused",
            json!({"enabled": "false"}),
            "invalid_type",
            "enabled",
        ),
        (
            "patch_webhook_unknown_field_is_refused",
            json!({"name": "Renamed", "secret": "whsec_x"}),
            "unknown_field",
            "secret",
        ),
        // A valid name beside an invalid URL: the whole request is refused, the name included.
        (
            "patch_webhook_partly_valid_body_changes_nothing",
            json!({"name": "Renamed", "url": "not a url"}),
            "invalid_value",
            "url",
        ),
    ]
}

/// `POST /v1/webhooks/{id}/test` and `/recover`. Rows: (rule, action, body, code, field).
fn action_rows() -> Vec<(
    &'static str,
    &'static str,
    Value,
    &'static str,
    &'static str,
)> {
    let mut rows = vec![(
        "test_event_without_type_is_missing_field",
        "test",
        json!({}),
        "missing_field",
        "type",
    )];
    for kind in ["nope", "", "trigger_event"] {
        rows.push((
            "test_event_unknown_type_is_invalid_value",
            "test",
            json!({ "type": kind }),
            "invalid_value",
            "type",
        ));
    }
    rows.push((
        "test_event_unknown_type_is_invalid_value",
        "test",
        json!({"type": 1}),
        "invalid_type",
        "type",
    ));
    rows.push((
        "recover_without_since_is_missing_field",
        "recover",
        json!({}),
        "missing_field",
        "since",
    ));
    for since in [
        "yesterday",
        "",
        "2024-12-14",
        "2024-13-01T00:00:00Z",
        "2024-12-14 15:29:18",
        "1734190158",
    ] {
        rows.push((
            "recover_since_not_rfc3339_is_invalid_value",
            "recover",
            json!({ "since": since }),
            "invalid_value",
            "since",
        ));
    }
    for since in [json!(1_734_190_158), json!(null)] {
        rows.push((
            "recover_since_not_rfc3339_is_invalid_value",
            "recover",
            json!({ "since": since }),
            "invalid_type",
            "since",
        ));
    }
    rows
}

fn update_cases(id: &str) -> Vec<Case> {
    let path = format!("/v1/webhooks/{id}");
    let mut cases = Vec::new();
    for (rule, body, code, field) in patch_rows() {
        let case = Case::refused(
            named(rule, &body),
            patch(&path, body),
            422,
            code,
            Some(field),
        );
        cases.push(case.leaves_unchanged(&path, Some(200)));
    }
    let unparseable = Request::new(reqwest::Method::PATCH, &path, Some(b"{\"name\":".to_vec()));
    cases.push(Case::refused(
        "patch_webhook_body_that_does_not_parse_is_400",
        unparseable,
        400,
        "invalid_json",
        None,
    ));
    for (rule, action, body, code, field) in action_rows() {
        let request = post(&format!("{path}/{action}"), body.clone());
        cases.push(Case::refused(
            named(rule, &body),
            request,
            422,
            code,
            Some(field),
        ));
    }
    cases
}

#[tokio::test]
async fn update_test_and_recover_webhook_refuse_bad_bodies() {
    let (_server, api, id) = start().await;
    run(&api, &update_cases(&id)).await;
}

// ---------------------------------------------------------------------------------------------
// Secure mode: only public https:// targets.

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

/// Targets a secure server refuses on create. Rows: (rule, urls).
fn secure_refused_rows() -> Vec<(&'static str, Vec<String>)> {
    let special = SPECIAL_PURPOSE_LITERALS
        .iter()
        .chain(&["[4000::1]", "[febf::1]"])
        .map(|literal| format!("https://{literal}/hook"))
        .collect();
    let urls = |urls: &[&str]| urls.iter().map(|url| (*url).to_owned()).collect();
    vec![
        (
            "secure_mode_refuses_http_urls",
            urls(&["http://example.com/hook", "http://93.184.216.34/hook"]),
        ),
        (
            "secure_mode_refuses_non_public_hosts",
            urls(&[
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
            ]),
        ),
        ("secure_mode_refuses_every_special_purpose_block", special),
    ]
}

fn secure_create_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (rule, urls) in secure_refused_rows() {
        for url in urls {
            let name = format!("{rule} [{url}]");
            let body = with(webhook_body(), "url", json!(url));
            let mut case = Case::refused(
                name,
                post("/v1/webhooks", body),
                422,
                "invalid_value",
                Some("url"),
            );
            if rule == "secure_mode_refuses_every_special_purpose_block" {
                case = case.message_contains("not a public address");
            }
            cases.push(case);
        }
    }
    // A public https:// target is accepted: the refusals above are about the host. What the
    // registries mark globally reachable, and NAT64 around a public address, pass too.
    let accepted = [
        (
            "secure_mode_refuses_non_public_hosts",
            "https://example.com/hook",
        ),
        (
            "secure_mode_refuses_every_special_purpose_block",
            "https://[64:ff9b::5db8:d822]/hook",
        ),
        (
            "secure_mode_refuses_every_special_purpose_block",
            "https://[2620:4f:8000::1]/hook",
        ),
        (
            "secure_mode_refuses_every_special_purpose_block",
            "https://192.31.196.1/hook",
        ),
        (
            "secure_mode_refuses_every_special_purpose_block",
            "https://[2606:2800:220:1:248:1893:25c8:1946]/hook",
        ),
    ];
    for (rule, url) in accepted {
        let body = with(webhook_body(), "url", json!(url));
        let name = format!("{rule} [{url} accepted]");
        cases.push(Case::accepted(name, post("/v1/webhooks", body), 201));
    }
    cases
}

fn secure_patch_cases(id: &str) -> Vec<Case> {
    [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
    ]
    .into_iter()
    .map(|url| {
        let request = patch(&format!("/v1/webhooks/{id}"), json!({ "url": url }));
        let name = format!("secure_mode_patch_refuses_non_public_urls [{url}]");
        Case::refused(name, request, 422, "invalid_value", Some("url"))
    })
    .collect()
}

#[tokio::test]
async fn secure_mode_refuses_non_public_targets() {
    let server = TestServer::start_with(|c| c.target_policy = TargetPolicy::SecureOnly).await;
    let api: Api = server.account("secure").await;
    run(&api, &secure_create_cases()).await;
    // A webhook on a public target, that a PATCH must not move to a private one.
    let body = with(webhook_body(), "url", json!("https://example.com/hook"));
    let name = "secure_mode_patch_refuses_non_public_urls [setup]";
    let reply = send(&api, name, &post("/v1/webhooks", body)).await;
    assert_eq!(reply.status.as_u16(), 201, "{name}: {:?}", reply.body);
    let id = reply.body["id"].as_str().expect("id").to_owned();
    run(&api, &secure_patch_cases(&id)).await;
}
