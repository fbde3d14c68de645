//! `webhook.disabled`: when Reward disables a webhook by itself (410 Gone, or failing for
//! `REWARD_DISABLE_AFTER`), the account's other webhooks subscribed to it hear about it, signed as
//! any event; the disabled one never does, and a webhook is announced once per disabling.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{Api, TestServer};
use crate::receiver::{Answer, Received, Receiver};

const WAIT: Duration = Duration::from_secs(10);

async fn webhook(api: &Api, name: &str, receiver: &Receiver, events: Value) -> (String, String) {
    let created = api
        .post(
            "/v1/webhooks",
            json!({"name": name, "url": receiver.url, "events": events}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    (
        created.body["id"].as_str().expect("id").to_owned(),
        created.body["secret"].as_str().expect("secret").to_owned(),
    )
}

/// The one `webhook.disabled` event `watcher` received: signed with `secret`, about `disabled`.
fn announced(received: &[Received], secret: &str, disabled: &str, name: &str, reason: &str) {
    let events: Vec<&Received> = received
        .iter()
        .filter(|request| request.json()["type"] == "webhook.disabled")
        .collect();
    assert_eq!(events.len(), 1, "announced once");
    let request = events[0];
    standardwebhooks::Webhook::new(secret)
        .expect("secret")
        .verify(&request.body, &request.headers)
        .expect("a valid signature");
    let event = request.json();
    assert_eq!(
        event["data"],
        json!({"webhook": {"id": disabled, "name": name}, "reason": reason})
    );
    assert_eq!(
        request.header("webhook-id"),
        event["id"].as_str().expect("id")
    );
    assert!(event["time"].is_string());
}

#[tokio::test]
async fn a_webhook_gone_410_is_announced_to_the_others_once() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let gone = Receiver::start().await;
    gone.answer(Answer::Status(410));
    let watcher = Receiver::start().await;
    let bystander = Receiver::start().await;
    // The webhook that goes subscribes to webhook.disabled too: it must not hear of itself.
    let (gone_id, _) = webhook(
        &api,
        "Orders",
        &gone,
        json!(["trigger_event.created", "webhook.disabled"]),
    )
    .await;
    let (_, watcher_secret) =
        webhook(&api, "Ops alerts", &watcher, json!(["webhook.disabled"])).await;
    webhook(
        &api,
        "Analytics",
        &bystander,
        json!(["trigger_event.created"]),
    )
    .await;
    // Another account's webhook subscribed to it hears nothing of this account's.
    let other = server.account("Other").await;
    let stranger = Receiver::start().await;
    webhook(&other, "Theirs", &stranger, json!(["webhook.disabled"])).await;

    let test = api.send_test(&gone_id, "trigger_event.created").await;
    let test_delivery = test.body["id"].as_str().expect("id").to_owned();
    api.wait_delivery(&test_delivery, WAIT, |delivery| {
        delivery["status"] == "failed"
    })
    .await;
    let received = watcher.wait_for(1, WAIT).await;
    announced(&received, &watcher_secret, &gone_id, "Orders", "gone");

    // Asked again by hand, the endpoint answers 410 again: the webhook is disabled already, so
    // nothing more is announced.
    let retried = api
        .post(&format!("/v1/deliveries/{test_delivery}/retry"), json!({}))
        .await;
    assert_eq!(retried.status, StatusCode::ACCEPTED, "{:?}", retried.body);
    api.wait_delivery(&test_delivery, WAIT, |delivery| {
        delivery["attempt_count"] == 2
    })
    .await;
    gone.wait_for(2, WAIT).await;

    // The event is in the account's log, once; its deliveries reached only the watcher.
    let events = api.get("/v1/events?type=webhook.disabled").await;
    assert_eq!(events.status, StatusCode::OK, "{:?}", events.body);
    let events = events.body["data"].as_array().expect("data").clone();
    assert_eq!(events.len(), 1, "{events:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(watcher.count(), 1);
    assert!(gone
        .received()
        .iter()
        .all(|request| request.json()["type"] != "webhook.disabled"));
    assert_eq!(bystander.count(), 0);
    assert_eq!(stranger.count(), 0);
    assert_eq!(
        api.deliveries(&gone_id).await.len(),
        1,
        "only the test event"
    );
}

#[tokio::test]
async fn a_webhook_failing_for_disable_after_is_announced() {
    let server = TestServer::start_with(|config| {
        config.disable_after = Duration::from_secs(1);
        config.upkeep_every = Duration::from_millis(200);
        config.retry.max_retries = 20;
    })
    .await;
    let api = server.account("Acme").await;
    let failing = Receiver::start().await;
    failing.answer(Answer::Status(500));
    let watcher = Receiver::start().await;
    let (failing_id, _) = webhook(
        &api,
        "Flaky",
        &failing,
        json!(["trigger_event.created", "webhook.disabled"]),
    )
    .await;
    let (_, watcher_secret) =
        webhook(&api, "Ops alerts", &watcher, json!(["webhook.disabled"])).await;
    let started = Instant::now();
    api.send_test(&failing_id, "trigger_event.created").await;
    let received = watcher.wait_for(1, WAIT).await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "not before 1 s"
    );
    announced(&received, &watcher_secret, &failing_id, "Flaky", "failing");
    let webhook = api.get(&format!("/v1/webhooks/{failing_id}")).await.body;
    assert_eq!(webhook["enabled"], false, "{webhook}");
    // Further sweeps find it disabled already: announced once.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(watcher.count(), 1);
    assert!(failing
        .received()
        .iter()
        .all(|request| request.json()["type"] != "webhook.disabled"));
}

/// A short `REWARD_DISABLE_AFTER` holds to the second: the sweep for failing webhooks runs at a
/// twentieth of it (at least a second apart), not with the hourly upkeep.
#[tokio::test]
async fn a_short_disable_after_holds_without_waiting_for_the_hourly_upkeep() {
    let server = TestServer::start_with(|config| {
        config.disable_after = Duration::from_secs(2);
        config.upkeep_every = Duration::from_secs(3600);
        config.retry.max_retries = 20;
    })
    .await;
    let api = server.account("Acme").await;
    let failing = Receiver::start().await;
    failing.answer(Answer::Status(500));
    let watcher = Receiver::start().await;
    let (failing_id, _) = webhook(&api, "Flaky", &failing, json!(["trigger_event.created"])).await;
    let (_, watcher_secret) =
        webhook(&api, "Ops alerts", &watcher, json!(["webhook.disabled"])).await;
    let started = Instant::now();
    api.send_test(&failing_id, "trigger_event.created").await;
    let received = watcher.wait_for(1, WAIT).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(2), "not before 2 s: {took:?}");
    announced(&received, &watcher_secret, &failing_id, "Flaky", "failing");
    let webhook = api.get(&format!("/v1/webhooks/{failing_id}")).await.body;
    assert_eq!(webhook["enabled"], false, "{webhook}");
}
