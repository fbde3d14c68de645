//! Retention an operator sets (issue 18 §4): `REWARD_ATTEMPT_BODY_RETENTION` clears attempts'
//! response bodies while their status and timing stay; `REWARD_EVENT_RETENTION` purges events with
//! their finished deliveries, and keeps an event whose delivery is still pending.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{Api, TestServer};
use crate::receiver::{Answer, Receiver};

async fn create_webhook(api: &Api, url: &str, event_type: &str) -> String {
    let reply = api
        .post(
            "/v1/webhooks",
            json!({"name": "Kept", "url": url, "events": [event_type]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    reply.body["id"].as_str().expect("id").to_owned()
}

/// Polls `path` until `done` holds of its answer.
async fn wait_until(api: &Api, path: &str, what: &str, done: impl Fn(StatusCode, &Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = api.get(path).await;
        if done(reply.status, &reply.body) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {} {:?}",
            reply.status,
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn old_attempt_bodies_are_cleared_and_old_events_purged_unless_pending() {
    let server = TestServer::start_with(|config| {
        config.attempt_body_retention = Duration::from_secs(2);
        config.event_retention = Duration::from_secs(4);
        config.upkeep_every = Duration::from_millis(200);
        // The failing endpoint's delivery stays pending (its retry is a minute away).
        config.retry.base = Duration::from_secs(60);
    })
    .await;
    let api = server.account("Acme").await;
    let answering = Receiver::start().await;
    answering.answer(Answer::WithBody(200, "thanks"));
    let failing = Receiver::start().await;
    failing.answer(Answer::Status(503));
    let answered_webhook = create_webhook(&api, &answering.url, "trigger_event.created").await;
    let failing_webhook = create_webhook(&api, &failing.url, "balance.credit_points_issued").await;
    api.put_trigger("signup", json!({"fixed": 1})).await;
    api.trigger_event("u1", "signup", json!(null)).await;
    answering.wait_for(1, Duration::from_secs(10)).await;
    failing.wait_for(1, Duration::from_secs(10)).await;

    let answered = api.deliveries(&answered_webhook).await[0].clone();
    let answered_id = answered["id"].as_str().expect("id").to_owned();
    let answered_event = answered["event_id"].as_str().expect("event").to_owned();
    let delivery_path = format!("/v1/deliveries/{answered_id}");
    let recorded = api
        .wait_delivery(&answered_id, Duration::from_secs(10), |d| {
            d["status"] == "succeeded"
        })
        .await;
    assert_eq!(recorded["attempts"][0]["response_body"], "thanks");

    // Past the body retention: the body goes, the rest of the attempt stays.
    wait_until(
        &api,
        &delivery_path,
        "the body was never cleared",
        |_, body| body["attempts"][0]["response_body"].is_null(),
    )
    .await;
    let cleared = api.get(&delivery_path).await.body;
    assert_eq!(cleared["status"], "succeeded");
    let (before, after) = (&recorded["attempts"][0], &cleared["attempts"][0]);
    for kept in [
        "id",
        "number",
        "started_at",
        "duration_ms",
        "status_code",
        "error",
    ] {
        assert_eq!(before[kept], after[kept], "{kept} stays");
    }
    assert_eq!(after["status_code"], 200);

    // Past the event retention: the answered event and its delivery are gone.
    let event_path = format!("/v1/events/{answered_event}");
    wait_until(
        &api,
        &event_path,
        "the old event was never purged",
        |status, _| status == StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(api.get(&delivery_path).await.status, StatusCode::NOT_FOUND);
    if crate::databases::backend() == crate::databases::Backend::Postgres {
        // Its search keys went with it (PostgreSQL keeps them apart: migration 0015).
        let keys = crate::databases::query(
            &server.database_url,
            &format!("SELECT delivery_id FROM delivery_keys WHERE event_id = '{answered_event}'"),
        )
        .await;
        assert!(keys.is_empty(), "{keys:?}");
    }

    // The event whose delivery is still pending stays, with its delivery.
    let pending = api.deliveries(&failing_webhook).await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["status"], "pending");
    let pending_event = pending[0]["event_id"].as_str().expect("event");
    let kept = api.get(&format!("/v1/events/{pending_event}")).await;
    assert_eq!(kept.status, StatusCode::OK, "{:?}", kept.body);
    server.stop().await;
}
