//! Reaching the API: list parameters, authentication, unknown routes and wrong methods.

use reqwest::Method;
use serde_json::json;

use super::{
    delete, get, patch, post, put, run, start, trigger_event_body, webhook_body, Case, Request,
    TRIGGER, USER,
};
use crate::common::Api;

fn list_paths(webhook_id: &str) -> Vec<String> {
    vec![
        "/v1/webhooks".to_owned(),
        "/v1/events".to_owned(),
        "/v1/triggers".to_owned(),
        format!("/v1/webhooks/{webhook_id}/deliveries"),
    ]
}

fn list_cases(webhook_id: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    // (rule, limits)
    let limits = [
        ("list_limit_zero_is_invalid_value", vec!["0"]),
        ("list_limit_over_100_is_invalid_value", vec!["101"]),
        (
            "list_limit_not_a_whole_number_is_invalid_value",
            vec!["abc", "-1", "1.5", ""],
        ),
    ];
    for (rule, values) in limits {
        for limit in values {
            for path in list_paths(webhook_id) {
                let path = format!("{path}?limit={limit}");
                let name = format!("{rule} [{path}]");
                cases.push(Case::refused(
                    name,
                    get(&path),
                    422,
                    "invalid_value",
                    Some("limit"),
                ));
            }
        }
    }
    // Not base64url, not UTF-8 once decoded, base64url of "nope", and empty.
    for cursor in ["garbage", "!!!", "_w", "bm9wZQ", ""] {
        for path in list_paths(webhook_id) {
            let path = format!("{path}?cursor={cursor}");
            let name = format!("list_cursor_garbage_is_invalid_cursor [{path}]");
            let case = Case::refused(name, get(&path), 422, "invalid_cursor", Some("cursor"));
            cases.push(case);
        }
    }
    for status in ["bogus", "", "PENDING", "delivered"] {
        let path = format!("/v1/webhooks/{webhook_id}/deliveries?status={status}");
        let name = format!("deliveries_status_bogus_is_invalid_value [{status}]");
        cases.push(Case::refused(
            name,
            get(&path),
            422,
            "invalid_value",
            Some("status"),
        ));
    }
    for kind in ["bogus", "", "trigger_event"] {
        let path = format!("/v1/events?type={kind}");
        let name = format!("events_type_bogus_is_invalid_value [{kind}]");
        cases.push(Case::refused(
            name,
            get(&path),
            422,
            "invalid_value",
            Some("type"),
        ));
    }
    for path in list_paths(webhook_id) {
        for limit in ["1", "100"] {
            let path = format!("{path}?limit={limit}");
            let name = format!("list_limit_bounds_are_accepted [{path}]");
            cases.push(Case::accepted(name, get(&path), 200));
        }
    }
    cases
}

#[tokio::test]
async fn list_parameters_are_checked() {
    let (_server, api, id) = start().await;
    run(&api, &list_cases(&id)).await;
}

/// A misspelt filter must not quietly list everything, as an unknown body field is refused: a
/// query parameter the route does not document is 422 `unknown_field`, one given twice 422
/// `invalid_value`, each naming it; writes with one change nothing.
fn query_parameter_cases(webhook_id: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let misspelt = [
        ("/v1/deliveries?staus=failed", "staus"),
        ("/v1/deliveries?status=failed&event-type=x", "event-type"),
        ("/v1/events?event_type=trigger_event.created", "event_type"),
        ("/v1/webhooks?limt=1", "limt"),
        ("/v1/triggers?page=2", "page"),
        ("/v1/api_keys?limit=5", "limit"),
        ("/v1/event_types?type=x", "type"),
    ];
    let webhook_deliveries = format!("/v1/webhooks/{webhook_id}/deliveries?state=failed");
    let webhook = format!("/v1/webhooks/{webhook_id}?expand=secret");
    let stats = format!("/v1/webhooks/{webhook_id}/stats?periode=7d");
    let single = [
        (webhook_deliveries.as_str(), "state"),
        (webhook.as_str(), "expand"),
        (stats.as_str(), "periode"),
        ("/v1/users/u-nobody?fields=balance", "fields"),
    ];
    for (path, field) in misspelt.into_iter().chain(single) {
        let name = format!("unknown_query_parameter_is_unknown_field [{path}]");
        cases.push(
            Case::refused(name, get(path), 422, "unknown_field", Some(field))
                .message_contains("Unknown query parameter"),
        );
    }
    // A write with one changes nothing (the user its trigger event would bring into being).
    cases.push(
        Case::refused(
            "unknown_query_parameter_on_a_write_is_unknown_field [POST /v1/trigger_events?dry_run=1]",
            post("/v1/trigger_events?dry_run=1", trigger_event_body()),
            422,
            "unknown_field",
            Some("dry_run"),
        )
        .user_stays_absent(USER),
    );
    for path in [
        "/v1/deliveries?status=failed&status=pending".to_owned(),
        format!("/v1/webhooks/{webhook_id}/deliveries?limit=1&limit=2"),
    ] {
        let field = if path.contains("status") {
            "status"
        } else {
            "limit"
        };
        let name = format!("query_parameter_given_twice_is_invalid_value [{path}]");
        cases.push(
            Case::refused(name, get(&path), 422, "invalid_value", Some(field))
                .message_contains("more than once"),
        );
    }
    // Every documented parameter is still taken, percent-encoded names too.
    for path in [
        "/v1/deliveries?status=failed&event_type=trigger_event.created&limit=5".to_owned(),
        "/v1/deliveries?%73tatus=pending".to_owned(),
        "/v1/events?type=trigger_event.created&created_after=2024-01-01T00:00:00Z".to_owned(),
        format!("/v1/webhooks/{webhook_id}/stats?period=7d"),
        "/v1/webhooks?".to_owned(),
    ] {
        let name = format!("documented_query_parameters_are_accepted [{path}]");
        cases.push(Case::accepted(name, get(&path), 200));
    }
    cases
}

#[tokio::test]
async fn query_parameters_a_route_does_not_take_are_refused() {
    let (server, api, id) = start().await;
    run(&api, &query_parameter_cases(&id)).await;
    // `/healthz` needs no key and takes what uptime checks add.
    let health = reqwest::get(format!("{}/healthz?cache_buster=1", server.base_url))
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
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

/// Every route refused to `caller` (with an extra `Authorization` header when given) with 401,
/// the owner's data as it was and the user still absent.
fn unauthorized_cases(
    rule: &str,
    caller: &Api,
    authorization: Option<&str>,
    webhook_id: &str,
) -> Vec<Case> {
    authenticated_routes(webhook_id)
        .into_iter()
        .map(|mut request| {
            if let Some(authorization) = authorization {
                request = request.header("authorization", authorization);
            }
            let name = format!("{rule} [{} {}]", request.method, request.path);
            Case::refused(name, request, 401, "unauthorized", None)
                .sent_by(caller)
                .user_stays_absent(USER)
        })
        .collect()
}

#[tokio::test]
async fn authentication_is_required_on_every_route() {
    let (server, api, id) = start().await;
    let anonymous = server.anonymous();
    let wrong = Api::new(&server.base_url, "rk_live_not_a_real_key");
    // A key that differs from a real one by its last character.
    let mut almost = api.key.clone();
    let last = almost.pop().expect("non-empty key");
    almost.push(if last == 'a' { 'b' } else { 'a' });
    let almost = Api::new(&server.base_url, &almost);
    // Even a real key is refused under another scheme, or without its scheme.
    let basic = format!("Basic {}", api.key);
    let bearer = format!("Bearer {}", api.key);
    let bare = api.key.clone();
    // (rule and what the caller sends, caller, extra Authorization header)
    let callers: Vec<(&str, &Api, Option<&str>)> = vec![
        ("no_authorization_header_is_401", &anonymous, None),
        ("wrong_api_key_is_401 (not a key)", &wrong, None),
        (
            "wrong_api_key_is_401 (last character changed)",
            &almost,
            None,
        ),
        // The owner's client sends its own header; a second one beside it, even the same key.
        (
            "two_authorization_headers_are_401 (the real key twice)",
            &api,
            Some(&bearer),
        ),
        (
            "two_authorization_headers_are_401 (the real key and another)",
            &api,
            Some("Bearer rk_live_not_a_real_key"),
        ),
        (
            "basic_authorization_is_401 (Basic xyz)",
            &anonymous,
            Some("Basic xyz"),
        ),
        (
            "basic_authorization_is_401 (Basic <real key>)",
            &anonymous,
            Some(&basic),
        ),
        (
            "malformed_bearer_authorization_is_401 (Bearer)",
            &anonymous,
            Some("Bearer"),
        ),
        (
            "malformed_bearer_authorization_is_401 (Bearer + space)",
            &anonymous,
            Some("Bearer "),
        ),
        (
            "malformed_bearer_authorization_is_401 (Bearer + spaces)",
            &anonymous,
            Some("Bearer    "),
        ),
        (
            "malformed_bearer_authorization_is_401 (bearer)",
            &anonymous,
            Some("bearer"),
        ),
        (
            "malformed_bearer_authorization_is_401 (Token abc)",
            &anonymous,
            Some("Token abc"),
        ),
        (
            "malformed_bearer_authorization_is_401 (<real key>)",
            &anonymous,
            Some(&bare),
        ),
    ];
    for (rule, caller, authorization) in callers {
        run(&api, &unauthorized_cases(rule, caller, authorization, &id)).await;
        // The trigger the caller tried to delete is there, the one it tried to create is not.
        let reply = api.get(&format!("/v1/triggers/{TRIGGER}")).await;
        assert_eq!(reply.status.as_u16(), 200, "{rule}: {:?}", reply.body);
        let reply = api.get("/v1/triggers/other").await;
        assert_eq!(reply.status.as_u16(), 404, "{rule}: {:?}", reply.body);
        assert_eq!(
            reply.body["error"]["code"], "not_found",
            "{rule}: {:?}",
            reply.body
        );
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{rule}: {:?}",
            reply.body
        );
        assert!(
            reply.body["error"].get("field").is_none(),
            "{rule}: {:?}",
            reply.body
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Routing

fn routing_cases(api: &Api, anonymous: &Api, webhook_id: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let unknown_paths = [
        "/v1/nope".to_owned(),
        "/v2/webhooks".to_owned(),
        "/webhooks".to_owned(),
        format!("/v1/webhooks/{webhook_id}/nope"),
        "/v1/users".to_owned(),
        "/v1/delivery".to_owned(),
    ];
    let wrong_methods = [
        (Method::DELETE, "/v1/trigger_events".to_owned()),
        (Method::GET, "/v1/trigger_events".to_owned()),
        (Method::PUT, "/v1/webhooks".to_owned()),
        (Method::DELETE, "/v1/webhooks".to_owned()),
        (Method::POST, format!("/v1/webhooks/{webhook_id}")),
        (Method::PUT, format!("/v1/webhooks/{webhook_id}")),
        (Method::GET, format!("/v1/webhooks/{webhook_id}/test")),
        (Method::POST, "/v1/events".to_owned()),
        (Method::POST, "/v1/deliveries".to_owned()),
        (Method::DELETE, "/v1/deliveries".to_owned()),
        (Method::POST, "/v1/triggers".to_owned()),
        (Method::PATCH, format!("/v1/triggers/{TRIGGER}")),
        (Method::DELETE, format!("/v1/users/{USER}")),
        (Method::GET, format!("/v1/users/{USER}/credits")),
    ];
    for (who, caller) in [("with key", api), ("anonymous", anonymous)] {
        for path in &unknown_paths {
            for method in [Method::GET, Method::POST] {
                let name = format!("unknown_route_is_404_json [{who}: {method} {path}]");
                let body = (method == Method::POST).then(|| b"{}".to_vec());
                let request = Request::new(method, path, body);
                let case = Case::refused(name, request, 404, "not_found", None);
                cases.push(case.sent_by(caller));
            }
        }
    }
    for (who, caller) in [("with key", api), ("anonymous", anonymous)] {
        for (method, path) in &wrong_methods {
            let name = format!("wrong_method_is_405_json [{who}: {method} {path}]");
            let request = Request::new(method.clone(), path, Some(b"{}".to_vec()));
            let case = Case::refused(name, request, 405, "method_not_allowed", None);
            cases.push(case.sent_by(caller).user_stays_absent(USER));
        }
    }
    cases
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_json() {
    let (server, api, id) = start().await;
    let anonymous = server.anonymous();
    run(&api, &routing_cases(&api, &anonymous, &id)).await;
}
