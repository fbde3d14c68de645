//! `POST /v1/events/{id}/resend`: a stored event delivered again to one webhook of the account,
//! byte for byte, signed with that webhook's secret; and what it refuses, changing nothing.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{create_account, Api, ServerProcess, TestServer};
use crate::databases::fresh_database;
use crate::receiver::Receiver;

const WAIT: Duration = Duration::from_secs(10);

/// A webhook at `url` subscribed to `events` only.
async fn webhook(api: &Api, url: &str, events: Value) -> Value {
    let reply = api
        .post(
            "/v1/webhooks",
            json!({"name": "Resends", "url": url, "events": events}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    reply.body
}

/// Records a trigger event (no points) and returns the id of the `trigger_event.created` it
/// emitted.
async fn stored_event(api: &Api) -> String {
    api.put_trigger("signup", Value::Null).await;
    api.trigger_event("u1", "signup", Value::Null).await;
    let events = api.get("/v1/events?type=trigger_event.created").await;
    events.body["data"][0]["id"]
        .as_str()
        .expect("an event id")
        .to_owned()
}

#[tokio::test]
async fn a_resend_delivers_the_stored_bytes_signed_with_the_webhooks_secret() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let first = Receiver::start().await;
    webhook(&api, &first.url, json!(["trigger_event.created"])).await;
    let event = stored_event(&api).await;
    let original = first.wait_for(1, WAIT).await.remove(0);

    // Subscribed to another type: a resend is an explicit request, not a subscription.
    let second = Receiver::start().await;
    let target = webhook(&api, &second.url, json!(["balance.credit_points_issued"])).await;
    let target_id = target["id"].as_str().expect("id");
    let reply = api
        .post(
            &format!("/v1/events/{event}/resend"),
            json!({"webhook_id": target_id}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    assert_eq!(reply.body["event_id"], event.as_str());
    assert_eq!(reply.body["webhook_id"], target_id);
    assert_eq!(reply.body["event_type"], "trigger_event.created");
    assert_eq!(reply.body["status"], "pending");

    let resent = second.wait_for(1, WAIT).await.remove(0);
    let stored = api.get(&format!("/v1/events/{event}")).await;
    assert_eq!(
        resent.body, original.body,
        "the same bytes as the first time"
    );
    assert_eq!(
        resent.body,
        serde_json::to_vec(&stored.body).expect("json"),
        "the stored payload"
    );
    assert_eq!(resent.header("webhook-id"), event);
    let secret = target["secret"].as_str().expect("secret");
    standardwebhooks::Webhook::new(secret)
        .expect("secret")
        .verify(&resent.body, &resent.headers)
        .expect("the reference verifier accepts the resend");

    let delivery = reply.body["id"].as_str().expect("delivery id");
    api.wait_delivery(delivery, WAIT, |d| d["status"] == "succeeded")
        .await;
    let deliveries = api.deliveries(target_id).await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0]["id"], delivery);
    // Resending again is another delivery of the same event.
    let again = api
        .post(
            &format!("/v1/events/{event}/resend"),
            json!({"webhook_id": target_id}),
        )
        .await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_ne!(again.body["id"], reply.body["id"]);
    let twice = second.wait_for(2, WAIT).await;
    assert_eq!(twice[1].body, original.body);
    assert_eq!(twice[1].header("webhook-id"), event);
}

#[tokio::test]
async fn a_refused_resend_says_why_and_changes_nothing() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let other = server.account("Other").await;
    let receiver = Receiver::start().await;
    let enabled = webhook(&api, &receiver.url, json!(["trigger_event.created"])).await;
    let enabled_id = enabled["id"].as_str().expect("id").to_owned();
    let disabled = webhook(&api, &receiver.url, json!(["trigger_event.created"])).await;
    let disabled_id = disabled["id"].as_str().expect("id").to_owned();
    let patched = api
        .patch(
            &format!("/v1/webhooks/{disabled_id}"),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    let event = stored_event(&api).await;
    receiver.wait_for(1, WAIT).await;
    let others_webhook = webhook(&other, &receiver.url, json!(["trigger_event.created"])).await;
    let others_webhook_id = others_webhook["id"].as_str().expect("id").to_owned();
    let others_event = stored_event(&other).await;
    receiver.wait_for(2, WAIT).await;
    let snapshot = api.snapshot().await;
    let others_snapshot = other.snapshot().await;

    let resend = format!("/v1/events/{event}/resend");
    let cases: Vec<(String, Value, u16, &str, Option<&str>)> = vec![
        (
            "/v1/events/we_01jf2wkmvcfw6ts1qmgzya291c/resend".into(),
            json!({"webhook_id": enabled_id}),
            404,
            "not_found",
            None,
        ),
        (
            "/v1/events/not-an-id/resend".into(),
            json!({"webhook_id": enabled_id}),
            404,
            "not_found",
            None,
        ),
        (
            format!("/v1/events/{others_event}/resend"),
            json!({"webhook_id": enabled_id}),
            404,
            "not_found",
            None,
        ),
        (
            resend.clone(),
            json!({}),
            422,
            "missing_field",
            Some("webhook_id"),
        ),
        (
            resend.clone(),
            json!({"webhook_id": 7}),
            422,
            "invalid_type",
            Some("webhook_id"),
        ),
        (
            resend.clone(),
            json!({"webhook_id": "wh_nope"}),
            422,
            "invalid_value",
            Some("webhook_id"),
        ),
        (
            resend.clone(),
            json!({"webhook_id": enabled_id, "extra": 1}),
            422,
            "unknown_field",
            Some("extra"),
        ),
        (
            resend.clone(),
            json!({"webhook_id": "wh_01jf2wkmvcfw6ts1qmgzya291c"}),
            422,
            "unknown_webhook",
            Some("webhook_id"),
        ),
        (
            resend.clone(),
            json!({"webhook_id": others_webhook_id}),
            422,
            "unknown_webhook",
            Some("webhook_id"),
        ),
        (
            resend.clone(),
            json!({"webhook_id": disabled_id}),
            409,
            "webhook_disabled",
            None,
        ),
    ];
    for (path, body, status, code, field) in cases {
        let reply = api.post(&path, body.clone()).await;
        reply.assert_error(status, code, field);
    }
    assert_eq!(api.snapshot().await, snapshot);
    assert_eq!(other.snapshot().await, others_snapshot);
    assert_eq!(receiver.count(), 2, "nothing was sent");
}

/// The 202 comes after the delivery is written: a crash right after it loses nothing. The
/// receiver is down until the server is killed, so only the restarted server can deliver.
#[tokio::test]
async fn a_resend_answered_survives_a_crash() {
    let (_database, database_url) = fresh_database().await;
    let address = {
        let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        free.local_addr().expect("address").to_string()
    };
    let env = [
        ("REWARD_ALLOW_INSECURE_TARGETS", "true"),
        ("REWARD_RETRY_BASE", "1h"),
        ("REWARD_LEASE", "2s"),
    ];
    let server = ServerProcess::spawn(&database_url, &env).await;
    let account = create_account(&database_url, "Acme").await;
    let key = account["api_key"].as_str().expect("api_key").to_owned();
    let api = Api::new(&server.base_url, &key);
    let target = webhook(
        &api,
        &format!("http://{address}/hook"),
        json!(["balance.credit_points_issued"]),
    )
    .await;
    let target_id = target["id"].as_str().expect("id").to_owned();
    let event = stored_event(&api).await;
    let reply = api
        .post(
            &format!("/v1/events/{event}/resend"),
            json!({"webhook_id": target_id}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    let delivery = reply.body["id"].as_str().expect("id").to_owned();
    server.kill().await;

    let receiver = Receiver::start_at(&address).await;
    let restarted = ServerProcess::spawn(&database_url, &env).await;
    let api = Api::new(&restarted.base_url, &key);
    let kept = api.get(&format!("/v1/deliveries/{delivery}")).await;
    assert_eq!(kept.status, StatusCode::OK, "{:?}", kept.body);
    assert_eq!(kept.body["event_id"], event.as_str());
    assert_eq!(kept.body["webhook_id"], target_id.as_str());
    // Whether or not its first attempt (refused) was made before the kill, one now delivers it.
    let retried = api
        .post(&format!("/v1/deliveries/{delivery}/retry"), json!({}))
        .await;
    assert!(retried.status.is_success(), "{:?}", retried.body);
    api.wait_delivery(&delivery, WAIT, |d| d["status"] == "succeeded")
        .await;
    let stored = api.get(&format!("/v1/events/{event}")).await;
    let arrived = receiver
        .received()
        .into_iter()
        .find(|request| request.header("webhook-id") == event)
        .expect("the resent event arrived");
    assert_eq!(
        arrived.body,
        serde_json::to_vec(&stored.body).expect("json")
    );
    standardwebhooks::Webhook::new(target["secret"].as_str().expect("secret"))
        .expect("secret")
        .verify(&arrived.body, &arrived.headers)
        .expect("signed with the webhook's secret");
    restarted.kill().await;
}
