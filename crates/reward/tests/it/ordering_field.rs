//! A webhook's `ordering` (issue 17): the field on create, PATCH, GET and list, and the order
//! columns it gives delivery rows, read straight from the database. (Refusals are in
//! `validation/webhooks.rs`; the order deliveries are attempted in is tested with the claims.)

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{Api, TestServer};
use crate::databases::{execute, query};
use crate::receiver::{Answer, Receiver};

const WAIT: Duration = Duration::from_secs(10);
const BOTH: [&str; 2] = ["trigger_event.created", "balance.credit_points_issued"];

async fn create(api: &Api, body: Value) -> Value {
    let reply = api.post("/v1/webhooks", body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    reply.body
}

fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("id").to_owned()
}

async fn patch(api: &Api, id: &str, body: Value) -> Value {
    let reply = api.patch(&format!("/v1/webhooks/{id}"), body).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body
}

/// Per delivery of the webhook: (delivery id, order_user, order_position, the event's user_id,
/// the event's user_position), oldest first.
type OrderRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

async fn order_rows(database_url: &str, webhook: &str) -> Vec<OrderRow> {
    // Ids are ours (`wh_` and base32), safe to inline; the same SQL reads on both backends.
    let sql = format!(
        "SELECT d.id, d.order_user, CAST(d.order_position AS TEXT), e.user_id,
                CAST(e.user_position AS TEXT)
         FROM deliveries d JOIN events e ON e.account_id = d.account_id AND e.id = d.event_id
         WHERE d.webhook_id = '{webhook}' ORDER BY d.created_at, d.id"
    );
    query(database_url, &sql)
        .await
        .into_iter()
        .map(|row| {
            let mut row = row.into_iter();
            let mut next = || row.next().flatten();
            (next().expect("id"), next(), next(), next(), next())
        })
        .collect()
}

/// Gives the webhook's events about a user a position where they have none yet, as the store
/// does once it counts users' events: these tests then check the order columns whether or not
/// the store fills positions itself.
async fn position_events(database_url: &str, webhook: &str, user: &str) {
    let sql = format!(
        "UPDATE events SET user_id = '{user}',
                user_position = 1000 + (SELECT count(*) FROM events older
                                        WHERE older.account_id = events.account_id
                                          AND older.id < events.id)
         WHERE user_position IS NULL AND event_type <> 'webhook.disabled'
           AND id IN (SELECT event_id FROM deliveries WHERE webhook_id = '{webhook}')"
    );
    execute(database_url, &sql).await;
}

/// A receiver that asks for an hour's pause: each delivery is attempted once, then waits pending
/// and unleased (Retry-After is honoured up to an hour).
async fn pausing_receiver() -> Receiver {
    let receiver = Receiver::start().await;
    receiver.answer(Answer::WithHeaders(
        503,
        vec![("Retry-After", "3600".to_owned())],
    ));
    receiver
}

/// Waits until every delivery of the webhook has been attempted once and waits for its next.
async fn wait_until_waiting(api: &Api, webhook: &str, expected: usize) -> Vec<Value> {
    let deliveries = api.deliveries(webhook).await;
    assert_eq!(deliveries.len(), expected, "{deliveries:?}");
    for delivery in &deliveries {
        api.wait_delivery(&id_of(delivery), WAIT, |found| {
            found["status"] == "pending" && found["attempt_count"].as_u64() >= Some(1)
        })
        .await;
    }
    deliveries
}

#[tokio::test]
async fn ordering_is_none_by_default_and_round_trips_on_create_patch_get_and_list() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let plain = create(
        &api,
        json!({"name": "Plain", "url": "http://127.0.0.1:9/plain", "events": ["*"]}),
    )
    .await;
    assert_eq!(plain["ordering"], "none");
    let ordered = create(
        &api,
        json!({"name": "Ordered", "url": "http://127.0.0.1:9/ordered", "events": ["*"],
               "ordering": "per_user"}),
    )
    .await;
    assert_eq!(ordered["ordering"], "per_user");

    let shown = api.get(&format!("/v1/webhooks/{}", id_of(&ordered))).await;
    assert_eq!(shown.body["ordering"], "per_user");
    let listed = api.get("/v1/webhooks").await;
    let orderings: Vec<(&str, &str)> = listed.body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|webhook| {
            (
                webhook["name"].as_str().expect("name"),
                webhook["ordering"].as_str().expect("ordering"),
            )
        })
        .collect();
    assert_eq!(orderings, [("Ordered", "per_user"), ("Plain", "none")]);

    // Another field's patch leaves it; its own patch changes it, both ways.
    let renamed = patch(&api, &id_of(&ordered), json!({"name": "Renamed"})).await;
    assert_eq!(renamed["ordering"], "per_user");
    let unordered = patch(&api, &id_of(&ordered), json!({"ordering": "none"})).await;
    assert_eq!(unordered["ordering"], "none");
    let reordered = patch(&api, &id_of(&plain), json!({"ordering": "per_user"})).await;
    assert_eq!(reordered["ordering"], "per_user");
    let shown = api.get(&format!("/v1/webhooks/{}", id_of(&plain))).await;
    assert_eq!(shown.body["ordering"], "per_user");
}

#[tokio::test]
async fn a_per_user_webhooks_deliveries_wait_their_users_turn_and_a_none_webhooks_do_not() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    api.put_trigger("signup", json!({"fixed": 10})).await;
    let ordered = create(
        &api,
        json!({"name": "Ordered", "url": receiver.url, "events": BOTH, "ordering": "per_user"}),
    )
    .await;
    let plain = create(
        &api,
        json!({"name": "Plain", "url": receiver.url, "events": BOTH}),
    )
    .await;
    api.trigger_event("user-1", "signup", Value::Null).await;
    api.trigger_event("user-2", "signup", Value::Null).await;
    let test = api
        .post(
            &format!("/v1/webhooks/{}/test", id_of(&ordered)),
            json!({"type": "trigger_event.created"}),
        )
        .await;
    assert_eq!(test.status, StatusCode::ACCEPTED, "{:?}", test.body);

    let ordered_rows = order_rows(&server.database_url, &id_of(&ordered)).await;
    assert_eq!(
        ordered_rows.len(),
        5,
        "two events each for two users, a test"
    );
    for (id, order_user, order_position, user, position) in &ordered_rows {
        // Ordered exactly when its event has a position among its user's events.
        if position.is_some() {
            assert_eq!(
                (order_user, order_position),
                (user, position),
                "delivery {id}"
            );
        } else {
            assert_eq!(
                (order_user, order_position),
                (&None, &None),
                "delivery {id}"
            );
        }
    }
    let test_id = test.body["id"].as_str().expect("id");
    let test_row = ordered_rows
        .iter()
        .find(|row| row.0 == test_id)
        .expect("the test delivery");
    assert_eq!(
        (&test_row.1, &test_row.2),
        (&None, &None),
        "tests go unordered"
    );

    let plain_rows = order_rows(&server.database_url, &id_of(&plain)).await;
    assert_eq!(plain_rows.len(), 4);
    assert!(
        plain_rows
            .iter()
            .all(|row| row.1.is_none() && row.2.is_none()),
        "{plain_rows:?}"
    );
}

#[tokio::test]
async fn changing_ordering_orders_and_frees_the_deliveries_not_yet_started() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = pausing_receiver().await;
    api.put_trigger("signup", json!({"fixed": 10})).await;
    let webhook = create(
        &api,
        json!({"name": "Later ordered", "url": receiver.url, "events": BOTH}),
    )
    .await;
    let id = id_of(&webhook);
    api.trigger_event("user-1", "signup", Value::Null).await;
    api.trigger_event("user-1", "signup", Value::Null).await;
    wait_until_waiting(&api, &id, 4).await;
    position_events(&server.database_url, &id, "user-1").await;
    let before = order_rows(&server.database_url, &id).await;
    assert!(before.iter().all(|row| row.1.is_none()), "{before:?}");

    patch(&api, &id, json!({"ordering": "per_user"})).await;
    let ordered = order_rows(&server.database_url, &id).await;
    assert_eq!(ordered.len(), 4);
    for (delivery, order_user, order_position, user, position) in &ordered {
        assert!(position.is_some(), "{delivery}: positioned by the test");
        assert_eq!(
            (order_user, order_position),
            (user, position),
            "{delivery} takes its event's place"
        );
    }

    // Patching another field leaves them; back to none frees them all.
    patch(&api, &id, json!({"description": "still ordered"})).await;
    assert_eq!(order_rows(&server.database_url, &id).await, ordered);
    patch(&api, &id, json!({"ordering": "none"})).await;
    let freed = order_rows(&server.database_url, &id).await;
    assert!(
        freed.iter().all(|row| row.1.is_none() && row.2.is_none()),
        "{freed:?}"
    );
}

#[tokio::test]
async fn a_delivery_under_way_keeps_its_place_when_ordering_changes() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = pausing_receiver().await;
    api.put_trigger("signup", json!({"fixed": 10})).await;
    let webhook = create(
        &api,
        json!({"name": "Ordered", "url": receiver.url, "events": ["trigger_event.created"],
               "ordering": "per_user"}),
    )
    .await;
    let id = id_of(&webhook);
    api.trigger_event("user-1", "signup", Value::Null).await;
    let deliveries = wait_until_waiting(&api, &id, 1).await;
    let delivery = id_of(&deliveries[0]);
    // As a worker holding it would: leased for a minute, with its place.
    let far = reward_core::time::Timestamp::now()
        .plus_millis(60_000)
        .as_millis();
    execute(
        &server.database_url,
        &format!(
            "UPDATE deliveries SET lease_expires_at = {far}, order_user = 'user-1',
                    order_position = 7 WHERE id = '{delivery}'"
        ),
    )
    .await;

    patch(&api, &id, json!({"ordering": "none"})).await;
    let rows = order_rows(&server.database_url, &id).await;
    assert_eq!(
        (rows[0].1.as_deref(), rows[0].2.as_deref()),
        (Some("user-1"), Some("7")),
        "a leased delivery is under way: it keeps its place"
    );
}

#[tokio::test]
async fn manual_retry_and_recover_go_out_of_order() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = pausing_receiver().await;
    api.put_trigger("signup", json!({"fixed": 10})).await;
    let webhook = create(
        &api,
        json!({"name": "Ordered", "url": receiver.url, "events": BOTH, "ordering": "per_user"}),
    )
    .await;
    let id = id_of(&webhook);
    api.trigger_event("user-1", "signup", Value::Null).await;
    // `trigger_event.created` (the user's first) is attempted and waits an hour for its retry; the
    // balance change behind it waits its turn, never attempted.
    let rows = order_rows(&server.database_url, &id).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter().all(|row| row.1.is_some()),
        "both ordered: {rows:?}"
    );
    let (first, waiting) = (rows[0].0.clone(), rows[1].0.clone());
    api.wait_delivery(&first, WAIT, |found| {
        found["status"] == "pending" && found["attempt_count"].as_u64() >= Some(1)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held = api.get(&format!("/v1/deliveries/{waiting}")).await;
    assert_eq!(
        held.body["attempt_count"], 0,
        "it waits its turn: {:?}",
        held.body
    );

    // A manual retry goes out of order: attempted at once, though the first still waits.
    let reply = api
        .post(&format!("/v1/deliveries/{waiting}/retry"), json!({}))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    api.wait_delivery(&waiting, WAIT, |found| {
        found["attempt_count"].as_u64() >= Some(1)
    })
    .await;

    // A recovery too: the first, ended `failed` with its place, comes back without one.
    let database = &server.database_url;
    execute(
        database,
        &format!(
            "UPDATE deliveries SET status = 'failed', next_attempt_at = NULL WHERE id = '{first}'"
        ),
    )
    .await;
    let reply = api
        .post(
            &format!("/v1/webhooks/{id}/recover"),
            json!({"since": "2000-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    assert_eq!(reply.body["recovered"], 1);

    let rows = order_rows(database, &id).await;
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter().all(|row| row.1.is_none() && row.2.is_none()),
        "{rows:?}"
    );
}

#[tokio::test]
async fn openapi_and_docs_describe_ordering_on_the_bodies_and_the_view() {
    let server = TestServer::start().await;
    let reply = reqwest::get(format!("{}/openapi.json", server.base_url))
        .await
        .expect("GET /openapi.json");
    assert_eq!(reply.status().as_u16(), 200);
    let document: Value = reply.json().await.expect("JSON");
    for schema in ["WebhookCreateBody", "WebhookPatchBody", "WebhookView"] {
        let ordering = &document["components"]["schemas"][schema]["properties"]["ordering"];
        assert_eq!(ordering["enum"], json!(["none", "per_user"]), "{schema}");
        let description = ordering["description"].as_str().unwrap_or_default();
        for promise in [
            "until it succeeds or ends `failed`",
            "Manual retry, resend and recover",
            "`webhook.disabled` and test events are not ordered",
        ] {
            assert!(description.contains(promise), "{schema}: {description}");
        }
    }
    let required = &document["components"]["schemas"]["WebhookView"]["required"];
    assert!(
        required
            .as_array()
            .is_some_and(|names| names.contains(&json!("ordering"))),
        "{required}"
    );
    let docs = reqwest::get(format!("{}/docs", server.base_url))
        .await
        .expect("GET /docs")
        .text()
        .await
        .expect("text");
    assert!(docs.contains("per_user"), "/docs shows the field");
}
