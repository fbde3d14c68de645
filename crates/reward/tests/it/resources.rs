//! Every endpoint's success path, with the exact response shapes of SPEC §4.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::TestServer;

/// Asserts `value` is an object with exactly `keys`.
#[track_caller]
fn assert_keys(value: &Value, keys: &[&str]) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("object, got {value}"));
    let mut found: Vec<&str> = object.keys().map(String::as_str).collect();
    let mut expected = keys.to_vec();
    found.sort_unstable();
    expected.sort_unstable();
    assert_eq!(found, expected, "keys of {value}");
}

#[track_caller]
fn assert_id(value: &Value, prefix: &str) {
    let id = value
        .as_str()
        .unwrap_or_else(|| panic!("id string, got {value}"));
    let body = id
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{id} starts with {prefix}"));
    assert_eq!(body.len(), 26, "{id}");
    assert!(
        body.chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()),
        "{id}"
    );
}

/// RFC 3339, UTC, milliseconds, `Z`: `2024-12-14T15:29:18.821Z`.
#[track_caller]
fn assert_time(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("time string, got {value}"));
    assert_eq!(text.len(), 24, "{text}");
    assert!(text.ends_with('Z') && text.as_bytes()[19] == b'.', "{text}");
    assert!(chrono_like_parse(text), "{text}");
}

fn chrono_like_parse(text: &str) -> bool {
    reward_core::time::Timestamp::parse_rfc3339(text).is_some()
}

const WEBHOOK_KEYS: [&str; 14] = [
    "id",
    "name",
    "url",
    "events",
    "enabled",
    "disabled_reason",
    "filter",
    "headers",
    "description",
    "metadata",
    "rate_limit",
    "ordering",
    "created_at",
    "updated_at",
];
const DELIVERY_KEYS: [&str; 10] = [
    "id",
    "event_id",
    "webhook_id",
    "event_type",
    "status",
    "attempt_count",
    "next_attempt_at",
    "last_status_code",
    "created_at",
    "updated_at",
];

#[tokio::test]
async fn healthz_answers_without_authentication() {
    let server = TestServer::start().await;
    let reply = server.anonymous().get("/healthz").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, json!({"status": "ok"}));
}

#[tokio::test]
async fn accounts_create_prints_one_json_line_with_id_and_key() {
    let server = TestServer::start().await;
    let created = crate::common::create_account(&server.database_url, "Acme").await;
    assert_keys(&created, &["account_id", "api_key"]);
    let api = crate::common::Api::new(&server.base_url, created["api_key"].as_str().expect("key"));
    assert_eq!(api.get("/v1/webhooks").await.status, StatusCode::OK);
}

#[tokio::test]
async fn webhook_lifecycle() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;

    let created = api
        .post(
            "/v1/webhooks",
            json!({"name": "Orders", "url": "https://example.com/hook", "events": ["trigger_event.created"]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let mut keys = WEBHOOK_KEYS.to_vec();
    keys.push("secret");
    assert_keys(&created.body, &keys);
    let webhook = &created.body;
    assert_id(&webhook["id"], "wh_");
    assert_eq!(webhook["name"], "Orders");
    assert_eq!(webhook["url"], "https://example.com/hook");
    assert_eq!(webhook["events"], json!(["trigger_event.created"]));
    assert_eq!(webhook["enabled"], true);
    assert_eq!(webhook["disabled_reason"], Value::Null);
    assert_time(&webhook["created_at"]);
    assert_time(&webhook["updated_at"]);
    let secret = webhook["secret"].as_str().expect("secret");
    assert!(secret.starts_with("whsec_"));
    let id = webhook["id"].as_str().expect("id");

    let shown = api.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_keys(&shown.body, &WEBHOOK_KEYS);
    assert_eq!(shown.body["id"], webhook["id"]);

    let listed = api.get("/v1/webhooks").await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_keys(&listed.body, &["data", "next_cursor"]);
    assert_eq!(listed.body["data"].as_array().expect("data").len(), 1);
    assert_keys(&listed.body["data"][0], &WEBHOOK_KEYS);
    assert_eq!(listed.body["next_cursor"], Value::Null);

    let fetched_secret = api.get(&format!("/v1/webhooks/{id}/secret")).await;
    assert_eq!(fetched_secret.status, StatusCode::OK);
    assert_eq!(fetched_secret.body["secret"], secret);

    let patched = api
        .patch(
            &format!("/v1/webhooks/{id}"),
            json!({"name": "Renamed", "events": ["balance.credit_points_issued"], "enabled": false}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_keys(&patched.body, &WEBHOOK_KEYS);
    assert_eq!(patched.body["name"], "Renamed");
    assert_eq!(patched.body["url"], "https://example.com/hook");
    assert_eq!(
        patched.body["events"],
        json!(["balance.credit_points_issued"])
    );
    assert_eq!(patched.body["enabled"], false);

    let rotated = api
        .post(&format!("/v1/webhooks/{id}/secret/rotate"), json!({}))
        .await;
    assert_eq!(rotated.status, StatusCode::OK);
    let new_secret = rotated.body["secret"].as_str().expect("new secret");
    assert!(new_secret.starts_with("whsec_"));
    assert_ne!(new_secret, secret);
    let after_rotation = api.get(&format!("/v1/webhooks/{id}/secret")).await;
    assert_eq!(after_rotation.body["secret"], new_secret);

    let deleted = api.delete(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(deleted.body, Value::Null);
    assert_eq!(
        api.get(&format!("/v1/webhooks/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(api.get("/v1/webhooks").await.body["data"], json!([]));
}

#[tokio::test]
async fn secrets_decode_to_24_to_32_bytes() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let webhook = api.create_webhook("https://example.com/hook").await;
    let secret = webhook["secret"].as_str().expect("secret");
    let decoded = reward_core::signing::WebhookSecret::parse(secret).expect("valid secret");
    assert!(decoded.expose().len() > 6);
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .expect("base64");
    assert!((24..=32).contains(&bytes.len()), "{} bytes", bytes.len());
}

#[tokio::test]
async fn test_event_creates_one_delivery_to_that_webhook_only() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let first = api.create_webhook("https://example.com/a").await;
    let second = api.create_webhook("https://example.com/b").await;
    let first_id = first["id"].as_str().expect("id");

    let reply = api.send_test(first_id, "trigger_event.created").await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_keys(&reply.body, &DELIVERY_KEYS);
    assert_id(&reply.body["id"], "dl_");
    assert_id(&reply.body["event_id"], "we_");
    assert_eq!(reply.body["webhook_id"], first["id"]);
    assert_eq!(reply.body["event_type"], "trigger_event.created");
    assert_eq!(reply.body["status"], "pending");
    assert_eq!(reply.body["attempt_count"], 0);

    let second_id = second["id"].as_str().expect("id");
    let others = api
        .get(&format!("/v1/webhooks/{second_id}/deliveries"))
        .await;
    assert_eq!(others.body["data"], json!([]));

    let event = api
        .get(&format!(
            "/v1/events/{}",
            reply.body["event_id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(event.status, StatusCode::OK);
    assert_keys(&event.body, &["id", "type", "time", "data"]);
    let example = reward_core::event::EventType::TriggerEventCreated.example_data();
    assert_eq!(event.body["data"], example);
}

#[tokio::test]
async fn deliveries_list_filter_get_and_retry() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    // Port 9 (discard) on loopback: nothing listens, so deliveries stay pending or fail.
    let webhook = api.create_webhook("http://127.0.0.1:9/hook").await;
    let id = webhook["id"].as_str().expect("id");
    api.put_trigger("signup", json!({"fixed": 5})).await;
    api.trigger_event("user-1", "signup", Value::Null).await;

    let listed = api.get(&format!("/v1/webhooks/{id}/deliveries")).await;
    assert_eq!(listed.status, StatusCode::OK);
    let deliveries = listed.body["data"].as_array().expect("data");
    assert_eq!(deliveries.len(), 2, "one per event type: {deliveries:?}");
    for delivery in deliveries {
        assert_keys(delivery, &DELIVERY_KEYS);
    }
    // Newest first: the points were issued after the trigger event was created.
    assert_eq!(deliveries[0]["event_type"], "balance.credit_points_issued");
    assert_eq!(deliveries[1]["event_type"], "trigger_event.created");

    let succeeded = api
        .get(&format!("/v1/webhooks/{id}/deliveries?status=succeeded"))
        .await;
    assert_eq!(succeeded.body["data"], json!([]));

    let delivery_id = deliveries[0]["id"].as_str().expect("id");
    let shown = api.get(&format!("/v1/deliveries/{delivery_id}")).await;
    assert_eq!(shown.status, StatusCode::OK);
    let mut keys = DELIVERY_KEYS.to_vec();
    keys.push("attempts");
    assert_keys(&shown.body, &keys);
    assert!(shown.body["attempts"].is_array());

    let retried = api
        .post(&format!("/v1/deliveries/{delivery_id}/retry"), json!({}))
        .await;
    assert_eq!(retried.status, StatusCode::ACCEPTED);
    assert_eq!(retried.body["id"], delivery_id);

    let recovered = api
        .post(
            &format!("/v1/webhooks/{id}/recover"),
            json!({"since": "2024-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(recovered.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn events_list_filter_and_get() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    api.put_trigger("successful_payment", json!({"per_unit": 10}))
        .await;
    let recorded = api
        .trigger_event(
            "ca9bb5c2-25a6-43e9-972e-862d28241a47",
            "successful_payment",
            json!(2.99),
        )
        .await;

    let all = api.get("/v1/events").await;
    assert_eq!(all.status, StatusCode::OK);
    let events = all.body["data"].as_array().expect("data");
    assert_eq!(events.len(), 2);
    let created = api.get("/v1/events?type=trigger_event.created").await;
    let created = created.body["data"].as_array().expect("data").clone();
    assert_eq!(created.len(), 1);
    let event = &created[0];
    assert_keys(event, &["id", "type", "time", "data"]);
    assert_id(&event["id"], "we_");
    assert_time(&event["time"]);
    assert_eq!(event["type"], "trigger_event.created");
    assert_eq!(
        event["data"],
        json!({
            "id": recorded["id"],
            "user": {"id": "ca9bb5c2-25a6-43e9-972e-862d28241a47"},
            "value": 2.99,
            "trigger": {"id": "successful_payment"},
        })
    );
    let fetched = api
        .get(&format!("/v1/events/{}", event["id"].as_str().expect("id")))
        .await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(&fetched.body, event);
}

#[tokio::test]
async fn lists_paginate_newest_first_with_cursors() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let webhook = api
            .create_webhook(&format!("https://example.com/{n}"))
            .await;
        ids.push(webhook["id"].as_str().expect("id").to_owned());
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut path = "/v1/webhooks?limit=2".to_owned();
    loop {
        let page = api.get(&path).await;
        assert_eq!(page.status, StatusCode::OK);
        for webhook in page.body["data"].as_array().expect("data") {
            seen.push(webhook["id"].as_str().expect("id").to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/webhooks?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);

    for n in 0..3 {
        api.put_trigger(&format!("t{n}"), Value::Null).await;
    }
    let first = api.get("/v1/triggers?limit=2").await;
    assert_eq!(first.body["data"][0]["id"], "t2");
    assert_eq!(first.body["data"][1]["id"], "t1");
    let cursor = first.body["next_cursor"].as_str().expect("cursor");
    let second = api
        .get(&format!("/v1/triggers?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(second.body["data"].as_array().expect("data").len(), 1);
    assert_eq!(second.body["data"][0]["id"], "t0");
    assert_eq!(second.body["next_cursor"], Value::Null);
}

#[tokio::test]
async fn event_types_describe_schema_and_example() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let reply = api.get("/v1/event_types").await;
    assert_eq!(reply.status, StatusCode::OK);
    let types = reply.body["data"].as_array().expect("data");
    let names: Vec<&str> = types
        .iter()
        .map(|t| t["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        names,
        [
            "trigger_event.created",
            "balance.credit_points_issued",
            "webhook.disabled"
        ]
    );
    for kind in types {
        assert_keys(kind, &["type", "description", "schema", "example"]);
        assert!(kind["description"].as_str().is_some_and(|d| !d.is_empty()));
        assert_eq!(kind["schema"]["type"], "object");
        assert_eq!(kind["example"]["type"], kind["type"]);
        assert_keys(&kind["example"], &["id", "type", "time", "data"]);
    }
}

#[tokio::test]
async fn triggers_put_get_list_delete() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let created = api
        .put(
            "/v1/triggers/successful_payment",
            json!({"name": "Payment", "credit_points": {"per_unit": 10}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_keys(
        &created.body,
        &["id", "name", "credit_points", "created_at", "updated_at"],
    );
    assert_eq!(created.body["id"], "successful_payment");
    assert_eq!(created.body["credit_points"], json!({"per_unit": 10}));

    let replaced = api
        .put(
            "/v1/triggers/successful_payment",
            json!({"name": "Payment", "credit_points": {"fixed": 5}}),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK);
    assert_eq!(replaced.body["credit_points"], json!({"fixed": 5}));
    assert_eq!(replaced.body["created_at"], created.body["created_at"]);

    let no_rule = api
        .put(
            "/v1/triggers/visit",
            json!({"name": "Visit", "credit_points": null}),
        )
        .await;
    assert_eq!(no_rule.status, StatusCode::CREATED);
    assert_eq!(no_rule.body["credit_points"], Value::Null);

    let shown = api.get("/v1/triggers/successful_payment").await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.body, replaced.body);
    assert_eq!(
        api.get("/v1/triggers").await.body["data"]
            .as_array()
            .expect("data")
            .len(),
        2
    );

    assert_eq!(
        api.delete("/v1/triggers/visit").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.get("/v1/triggers/visit").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn trigger_events_users_and_credits() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    api.put_trigger("successful_payment", json!({"per_unit": 10}))
        .await;
    let recorded = api
        .trigger_event("user-1", "successful_payment", json!(2.99))
        .await;
    assert_keys(
        &recorded,
        &[
            "id",
            "user",
            "trigger",
            "value",
            "created_at",
            "credit_points_issued",
        ],
    );
    assert_id(&recorded["id"], "te_");
    assert_eq!(recorded["user"], json!({"id": "user-1"}));
    assert_eq!(recorded["trigger"], json!({"id": "successful_payment"}));
    assert_eq!(recorded["value"], json!(2.99));
    assert_eq!(recorded["credit_points_issued"], 29);
    assert_time(&recorded["created_at"]);

    let user = api.get("/v1/users/user-1").await;
    assert_eq!(user.status, StatusCode::OK);
    assert_keys(&user.body, &["id", "balance", "created_at"]);
    assert_eq!(user.body["balance"], 29);

    let credits = api
        .post(
            "/v1/users/user-1/credits",
            json!({"points": 100, "reason": "welcome"}),
        )
        .await;
    assert_eq!(credits.status, StatusCode::CREATED);
    assert_eq!(
        credits.body,
        json!({"user": {"id": "user-1"}, "points": 100, "balance": 129})
    );

    let issued = api
        .get("/v1/events?type=balance.credit_points_issued&limit=1")
        .await;
    assert_eq!(
        issued.body["data"][0]["data"],
        json!({"user": {"id": "user-1"}, "points": 100, "balance": 129, "sequence": 2, "trigger_event": null, "reason": "welcome"})
    );

    let brand_new = api
        .post("/v1/users/user-2/credits", json!({"points": 3}))
        .await;
    assert_eq!(brand_new.status, StatusCode::CREATED);
    assert_eq!(brand_new.body["balance"], 3);
    assert_eq!(
        api.get("/v1/users/nobody").await.status,
        StatusCode::NOT_FOUND
    );
}
