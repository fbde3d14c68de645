//! `/v1/api_keys`: create (the key shown once), list, revoke, and "last used" kept without a
//! write per request.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{Api, TestServer};

/// The account's keys, as listed.
async fn keys(api: &Api) -> Vec<Value> {
    let reply = api.get("/v1/api_keys").await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["next_cursor"], Value::Null);
    reply.body["data"].as_array().expect("data").clone()
}

async fn key_named(api: &Api, id: &str) -> Option<Value> {
    keys(api).await.into_iter().find(|key| key["id"] == id)
}

#[tokio::test]
async fn a_key_is_created_shown_once_listed_and_revoked() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;

    let created = api
        .post("/v1/api_keys", json!({"name": "Billing service"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let body = &created.body;
    let mut fields: Vec<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["created_at", "id", "key", "last_used_at", "name", "prefix"]
    );
    let id = body["id"].as_str().expect("id").to_owned();
    let key = body["key"].as_str().expect("key").to_owned();
    assert!(id.starts_with("key_"), "{id}");
    assert!(key.starts_with("rwd_"), "{key}");
    assert!(key.starts_with(body["prefix"].as_str().expect("prefix")));
    assert_eq!(body["name"], "Billing service");
    assert_eq!(body["last_used_at"], Value::Null);

    // Listed, newest first, without the key itself.
    let listed = keys(&api).await;
    assert_eq!(listed.len(), 2, "the account's first key and the new one");
    assert_eq!(listed[0]["id"], id.as_str());
    assert!(listed.iter().all(|key| key.get("key").is_none()));

    // The new key works like the first.
    let new_api = Api::new(&server.base_url, &key);
    assert_eq!(new_api.get("/v1/webhooks").await.status, StatusCode::OK);

    // Revoked: it stops working at once and leaves the list.
    let revoked = api.delete(&format!("/v1/api_keys/{id}")).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{:?}", revoked.body);
    assert_eq!(revoked.body, Value::Null);
    new_api
        .get("/v1/webhooks")
        .await
        .assert_error(401, "unauthorized", None);
    assert!(key_named(&api, &id).await.is_none());
    api.delete(&format!("/v1/api_keys/{id}"))
        .await
        .assert_error(404, "not_found", None);
}

#[tokio::test]
async fn bad_requests_are_refused_and_keys_stay_in_their_account() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let other = server.account("Other").await;

    api.post("/v1/api_keys", json!({}))
        .await
        .assert_error(422, "missing_field", Some("name"));
    api.post("/v1/api_keys", json!({"name": "  "}))
        .await
        .assert_error(422, "invalid_value", Some("name"));
    api.post("/v1/api_keys", json!({"name": "x", "scope": "all"}))
        .await
        .assert_error(422, "unknown_field", Some("scope"));
    api.post_raw("/v1/api_keys", b"{")
        .await
        .assert_error(400, "invalid_json", None);
    server
        .anonymous()
        .get("/v1/api_keys")
        .await
        .assert_error(401, "unauthorized", None);
    api.delete("/v1/api_keys/not-an-id")
        .await
        .assert_error(404, "not_found", None);
    assert_eq!(keys(&api).await.len(), 1, "nothing was created");

    // Another account's key is not found, and keeps working.
    let theirs = keys(&other).await[0]["id"].as_str().expect("id").to_owned();
    api.delete(&format!("/v1/api_keys/{theirs}"))
        .await
        .assert_error(404, "not_found", None);
    assert_eq!(other.get("/v1/webhooks").await.status, StatusCode::OK);
    assert!(keys(&api)
        .await
        .iter()
        .all(|key| key["id"].as_str() != Some(theirs.as_str())));
}

#[tokio::test]
async fn the_key_in_use_can_revoke_itself() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let own = keys(&api).await[0]["id"].as_str().expect("id").to_owned();
    let revoked = api.delete(&format!("/v1/api_keys/{own}")).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{:?}", revoked.body);
    api.get("/v1/api_keys")
        .await
        .assert_error(401, "unauthorized", None);
}

#[tokio::test]
async fn last_use_is_recorded_at_most_once_a_minute() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let created = api.post("/v1/api_keys", json!({"name": "Worker"})).await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    let worker = Api::new(&server.base_url, created.body["key"].as_str().expect("key"));
    assert_eq!(
        key_named(&api, &id).await.expect("listed")["last_used_at"],
        Value::Null
    );

    // The first use is recorded (in the background, so poll for it).
    assert_eq!(worker.get("/v1/webhooks").await.status, StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(5);
    let first = loop {
        let used = key_named(&api, &id).await.expect("listed")["last_used_at"].clone();
        if !used.is_null() {
            break used;
        }
        assert!(Instant::now() < deadline, "last_used_at was never set");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    // Later uses within the minute write nothing.
    tokio::time::sleep(Duration::from_millis(20)).await;
    for _ in 0..5 {
        assert_eq!(worker.get("/v1/webhooks").await.status, StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        key_named(&api, &id).await.expect("listed")["last_used_at"],
        first
    );
}

/// Requests that arrive together with different keys (PostgreSQL looks their keys up in one
/// statement) each act as their own key's account, and an unknown key is refused among them.
#[tokio::test]
async fn keys_used_at_once_each_act_for_their_own_account() {
    let server = TestServer::start().await;
    let acme = server.account("Acme").await;
    let globex = server.account("Globex").await;
    acme.put_trigger("visit", Value::Null).await;
    globex.put_trigger("visit", Value::Null).await;
    let stranger = Api::new(&server.base_url, "rwd_this_key_was_never_issued_0000000000");
    let handles: Vec<_> = (0..60)
        .map(|n| {
            let (api, who) = match n % 3 {
                0 => (acme.clone(), "acme"),
                1 => (globex.clone(), "globex"),
                _ => (stranger.clone(), "stranger"),
            };
            tokio::spawn(async move {
                let reply = api
                    .post(
                        "/v1/trigger_events",
                        json!({"user_id": who, "trigger_id": "visit", "value": null}),
                    )
                    .await;
                if who == "stranger" {
                    reply.assert_error(401, "unauthorized", None);
                } else {
                    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("task");
    }
    for (api, own, other) in [(&acme, "acme", "globex"), (&globex, "globex", "acme")] {
        assert_eq!(
            api.get(&format!("/v1/users/{own}")).await.status,
            StatusCode::OK
        );
        api.get(&format!("/v1/users/{other}"))
            .await
            .assert_error(404, "not_found", None);
    }
}
