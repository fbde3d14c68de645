//! The transactional outbox, tested the hard way: the real binary is SIGKILLed right after
//! answering 201, and after a restart on the same database every acknowledged trigger event has
//! its events and a delivery to every subscribed webhook.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::common::{create_account, fresh_database, Api, ServerProcess};

#[tokio::test]
async fn acknowledged_events_and_deliveries_survive_sigkill() {
    let (_database, database_url) = fresh_database().await;
    // Retries far in the future: deliveries stay pending, whatever the (absent) receiver says.
    let env = [
        ("REWARD_ALLOW_INSECURE_TARGETS", "true"),
        ("REWARD_RETRY_BASE", "1h"),
    ];
    let server = ServerProcess::spawn(&database_url, &env).await;
    let account = create_account(&database_url, "Acme").await;
    let api = Api::new(&server.base_url, account["api_key"].as_str().expect("key"));
    let webhook = api.create_webhook("http://127.0.0.1:9/hook").await;
    api.put_trigger("payment", json!({"per_unit": 10})).await;

    // Eight clients record trigger events as fast as they can; the server dies mid-burst.
    let mut clients = Vec::new();
    for client in 0..8 {
        let api = api.clone();
        clients.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for n in 0..1000 {
                let body =
                    json!({"user_id": format!("u{client}"), "trigger_id": "payment", "value": n});
                let request = reqwest::Client::new()
                    .post(format!("{}/v1/trigger_events", api.base_url))
                    .bearer_auth(&api.key)
                    .body(body.to_string())
                    .send()
                    .await;
                let Ok(response) = request else { break };
                if response.status().as_u16() != 201 {
                    break;
                }
                let Ok(recorded) = response.json::<Value>().await else {
                    break;
                };
                acknowledged.push(recorded["id"].as_str().expect("id").to_owned());
            }
            acknowledged
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    server.kill().await;
    let mut acknowledged = Vec::new();
    for client in clients {
        acknowledged.extend(client.await.expect("client"));
    }
    assert!(
        acknowledged.len() >= 8,
        "the burst got going: {}",
        acknowledged.len()
    );

    let restarted = ServerProcess::spawn(&database_url, &env).await;
    let api = Api::new(&restarted.base_url, &api.key);
    let mut events_by_trigger_event = HashSet::new();
    let mut event_ids = HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/v1/events?type=trigger_event.created&limit=100".to_owned(),
            Some(cursor) => {
                format!("/v1/events?type=trigger_event.created&limit=100&cursor={cursor}")
            }
        };
        let page = api.get(&path).await;
        for event in page.body["data"].as_array().expect("data") {
            events_by_trigger_event.insert(event["data"]["id"].as_str().expect("te id").to_owned());
            event_ids.insert(event["id"].as_str().expect("event id").to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    for trigger_event in &acknowledged {
        assert!(
            events_by_trigger_event.contains(trigger_event),
            "{trigger_event} lost its event"
        );
    }

    let webhook_id = webhook["id"].as_str().expect("id");
    let mut delivered_events = HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => format!("/v1/webhooks/{webhook_id}/deliveries?limit=100"),
            Some(cursor) => {
                format!("/v1/webhooks/{webhook_id}/deliveries?limit=100&cursor={cursor}")
            }
        };
        let page = api.get(&path).await;
        for delivery in page.body["data"].as_array().expect("data") {
            assert_eq!(delivery["status"], "pending");
            delivered_events.insert(delivery["event_id"].as_str().expect("event id").to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    for event in &event_ids {
        assert!(
            delivered_events.contains(event),
            "event {event} has no delivery"
        );
    }
    restarted.kill().await;
}
