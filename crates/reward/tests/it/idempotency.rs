//! `Idempotency-Key` on `POST /v1/trigger_events`: same key and body replay the first response and
//! emit nothing new; the same key with another body answers 409.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{Api, Reply, TestServer};

async fn record_with_key(api: &Api, key: &str, body: &Value) -> Reply {
    api.send(
        Method::POST,
        "/v1/trigger_events",
        Some(body.to_string().into_bytes()),
        &[("Idempotency-Key", key)],
    )
    .await
}

async fn event_count(api: &Api) -> usize {
    api.get("/v1/events?limit=100").await.body["data"]
        .as_array()
        .expect("data")
        .len()
}

#[tokio::test]
async fn same_key_and_body_replays_the_first_response_and_emits_nothing() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    api.create_webhook("https://example.com/hook").await;
    api.put_trigger("successful_payment", json!({"per_unit": 10}))
        .await;
    let body = json!({"user_id": "u1", "trigger_id": "successful_payment", "value": 2.99});

    let first = record_with_key(&api, "order-42", &body).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let events_after_first = event_count(&api).await;
    assert_eq!(events_after_first, 2);
    let snapshot = api.snapshot().await;

    // The same fields spelled differently are the same body.
    let respelled: Value = serde_json::from_str(
        r#"{ "value": 2.99, "trigger_id": "successful_payment", "user_id": "u1" }"#,
    )
    .expect("json");
    for replay_body in [&body, &respelled] {
        let again = record_with_key(&api, "order-42", replay_body).await;
        assert_eq!(again.status, StatusCode::CREATED);
        assert_eq!(again.body, first.body);
        assert_eq!(
            again
                .headers
                .get("idempotent-replayed")
                .map(|v| v.as_bytes()),
            Some(&b"true"[..])
        );
    }
    assert_eq!(api.snapshot().await, snapshot);
    assert_eq!(api.get("/v1/users/u1").await.body["balance"], 29);
}

#[tokio::test]
async fn same_key_with_another_body_conflicts_and_changes_nothing() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    api.put_trigger("successful_payment", json!({"per_unit": 10}))
        .await;
    let body = json!({"user_id": "u1", "trigger_id": "successful_payment", "value": 2.99});
    assert_eq!(
        record_with_key(&api, "k", &body).await.status,
        StatusCode::CREATED
    );
    let snapshot = api.snapshot().await;

    let other = json!({"user_id": "u1", "trigger_id": "successful_payment", "value": 3.99});
    let conflict = record_with_key(&api, "k", &other).await;
    conflict.assert_error(409, "idempotency_conflict", None);
    let other_user = json!({"user_id": "u2", "trigger_id": "successful_payment", "value": 2.99});
    record_with_key(&api, "k", &other_user)
        .await
        .assert_error(409, "idempotency_conflict", None);
    assert_eq!(api.snapshot().await, snapshot);
    assert_eq!(api.get("/v1/users/u2").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn different_keys_and_different_accounts_are_independent() {
    let server = TestServer::start().await;
    let first = server.account("First").await;
    let second = server.account("Second").await;
    for api in [&first, &second] {
        api.put_trigger("signup", json!({"fixed": 5})).await;
    }
    let body = json!({"user_id": "u1", "trigger_id": "signup", "value": null});
    let a = record_with_key(&first, "k1", &body).await;
    let b = record_with_key(&first, "k2", &body).await;
    let c = record_with_key(&second, "k1", &body).await;
    for reply in [&a, &b, &c] {
        assert_eq!(reply.status, StatusCode::CREATED);
        assert!(reply.headers.get("idempotent-replayed").is_none());
    }
    assert_ne!(a.body["id"], b.body["id"]);
    assert_eq!(first.get("/v1/users/u1").await.body["balance"], 10);
    assert_eq!(second.get("/v1/users/u1").await.body["balance"], 5);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_record_one_trigger_event() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    api.put_trigger("signup", json!({"fixed": 5})).await;
    let body = json!({"user_id": "u1", "trigger_id": "signup", "value": null});
    let replies = futures_join_all((0..8).map(|_| {
        let api = api.clone();
        let body = body.clone();
        async move { record_with_key(&api, "same", &body).await }
    }))
    .await;
    let first_id = &replies[0].body["id"];
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::CREATED);
        assert_eq!(&reply.body["id"], first_id);
    }
    assert_eq!(api.get("/v1/users/u1").await.body["balance"], 5);
    assert_eq!(event_count(&api).await, 2);
}

/// Many keyed requests at once (PostgreSQL claims their keys in one batch): each key records one
/// trigger event whichever of its requests comes first, its other requests replay it, and a key
/// naming an unknown trigger is not taken.
#[tokio::test]
async fn concurrent_requests_with_many_keys_record_one_trigger_event_per_key() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    api.put_trigger("signup", json!({"fixed": 5})).await;
    let replies = futures_join_all((0..60).map(|n| {
        let api = api.clone();
        async move {
            let key = format!("key-{}", n % 20);
            let trigger = if n % 20 == 19 { "nope" } else { "signup" };
            let body =
                json!({"user_id": format!("u{}", n % 20), "trigger_id": trigger, "value": null});
            (
                key,
                record_with_key(&api, &format!("key-{}", n % 20), &body).await,
            )
        }
    }))
    .await;
    let mut ids = std::collections::HashMap::new();
    for (key, reply) in &replies {
        if key == "key-19" {
            reply.assert_error(422, "unknown_trigger", Some("trigger_id"));
            continue;
        }
        assert_eq!(reply.status, StatusCode::CREATED, "{key}: {:?}", reply.body);
        let id = reply.body["id"].as_str().expect("id").to_owned();
        assert_eq!(
            ids.entry(key.clone()).or_insert_with(|| id.clone()),
            &id,
            "{key}"
        );
    }
    assert_eq!(ids.len(), 19);
    for n in 0..19 {
        assert_eq!(api.get(&format!("/v1/users/u{n}")).await.body["balance"], 5);
    }
    // The unknown trigger's key was never taken: with a known trigger it records now.
    let now_known = json!({"user_id": "u19", "trigger_id": "signup", "value": null});
    let reply = record_with_key(&api, "key-19", &now_known).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert!(reply.headers.get("idempotent-replayed").is_none());
    assert_eq!(api.get("/v1/users/u19").await.body["balance"], 5);
}

#[tokio::test]
async fn a_malformed_key_is_refused() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    api.put_trigger("signup", json!({"fixed": 5})).await;
    let body = json!({"user_id": "u1", "trigger_id": "signup"});
    let long_key = "k".repeat(256);
    record_with_key(&api, &long_key, &body).await.assert_error(
        422,
        "invalid_value",
        Some("Idempotency-Key"),
    );
    assert_eq!(api.get("/v1/users/u1").await.status, StatusCode::NOT_FOUND);
}

/// Runs futures concurrently and collects their outputs in order.
pub async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.expect("task"));
    }
    outputs
}
