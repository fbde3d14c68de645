//! What a customer sets on a webhook beyond its URL and event types (issue 16): `["*"]`, payload
//! filters, extra headers, notes, a rate limit's field, and their own signing secrets; each
//! checked end to end with real receivers. (The refusals are in `validation/webhooks.rs`.)

use std::time::Duration;

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{fresh_database, Api, TestServer};
use crate::databases::stored_webhook_column;
use crate::receiver::{Answer, Receiver};

const WAIT: Duration = Duration::from_secs(10);

async fn create(api: &Api, body: Value) -> Value {
    let reply = api.post("/v1/webhooks", body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    reply.body
}

fn id_of(webhook: &Value) -> String {
    webhook["id"].as_str().expect("id").to_owned()
}

/// A receiver URL with its own path, so one receiver tells webhooks apart.
fn at(receiver: &Receiver, path: &str) -> String {
    receiver.url.replace("/hook", path)
}

#[tokio::test]
async fn a_filter_drops_what_it_rejects_and_the_dropped_get_no_delivery() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    api.put_trigger("big", json!({"fixed": 150})).await;
    api.put_trigger("small", json!({"fixed": 5})).await;
    let both = ["trigger_event.created", "balance.credit_points_issued"];
    let filtered = create(
        &api,
        json!({"name": "Big issues", "url": at(&receiver, "/filtered"), "events": both,
               "filter": {"type": "balance.credit_points_issued", "data.points": {"$gte": 100}}}),
    )
    .await;
    assert_eq!(
        filtered["filter"],
        json!({"type": "balance.credit_points_issued", "data.points": {"$gte": 100}})
    );
    let everything = create(
        &api,
        json!({"name": "All", "url": at(&receiver, "/all"), "events": both}),
    )
    .await;

    api.trigger_event("user-1", "small", Value::Null).await;
    api.trigger_event("user-1", "big", Value::Null).await;

    // Deliveries commit with their events: the lists are final once the API has answered.
    let kept = api.deliveries(&id_of(&filtered)).await;
    assert_eq!(kept.len(), 1, "only the 150-point issue passes: {kept:?}");
    assert_eq!(kept[0]["event_type"], "balance.credit_points_issued");
    assert_eq!(api.deliveries(&id_of(&everything)).await.len(), 4);
    let arrived = receiver.wait_for(5, WAIT).await;
    let to_filtered: Vec<Value> = arrived
        .iter()
        .filter(|request| request.path == "/filtered")
        .map(|request| request.json())
        .collect();
    assert_eq!(to_filtered.len(), 1);
    assert_eq!(to_filtered[0]["data"]["points"], 150);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.count(), 5, "nothing else arrives");
}

#[tokio::test]
async fn every_operator_filters_end_to_end() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    // The event: `trigger_event.created` of user-42's purchase of 2.99 (no rule: no points).
    let cases = [
        ("literal", json!({"data.trigger.id": "purchase"}), true),
        ("eq", json!({"data.user.id": {"$eq": "user-42"}}), true),
        ("ne", json!({"data.user.id": {"$ne": "user-42"}}), false),
        ("gt", json!({"data.value": {"$gt": 2}}), true),
        ("gte", json!({"data.value": {"$gte": 3}}), false),
        ("lt", json!({"data.value": {"$lt": 3}}), true),
        ("lte", json!({"data.value": {"$lte": 2.99}}), true),
        (
            "in",
            json!({"type": {"$in": ["trigger_event.created", "x"]}}),
            true,
        ),
        (
            "nin",
            json!({"type": {"$nin": ["trigger_event.created"]}}),
            false,
        ),
        ("exists", json!({"data.value": {"$exists": true}}), true),
        ("missing", json!({"data.nothing": {"$exists": false}}), true),
        ("missing_ne", json!({"data.nothing": {"$ne": 1}}), true),
        ("missing_eq", json!({"data.nothing": 1}), false),
        ("starts_with", json!({"id": {"$startsWith": "we_"}}), true),
        (
            "and",
            json!({"$and": [{"type": "trigger_event.created"}, {"data.value": {"$lt": 1}}]}),
            false,
        ),
        (
            "or",
            json!({"$or": [{"data.value": {"$lt": 1}}, {"data.user.id": "user-42"}]}),
            true,
        ),
        ("not", json!({"$not": {"data.user.id": "user-42"}}), false),
        (
            "field_not",
            json!({"data.value": {"$not": {"$gt": 5}}}),
            true,
        ),
        ("across_types", json!({"data.value": {"$gt": "1"}}), false),
    ];
    let mut webhooks = Vec::new();
    for (name, filter, passes) in &cases {
        let webhook = create(
            &api,
            json!({"name": name, "url": at(&receiver, &format!("/{name}")),
                   "events": ["trigger_event.created"], "filter": filter}),
        )
        .await;
        webhooks.push((name, id_of(&webhook), *passes));
    }
    api.put_trigger("purchase", Value::Null).await;
    api.trigger_event("user-42", "purchase", json!(2.99)).await;

    for (name, id, passes) in &webhooks {
        let deliveries = api.deliveries(id).await.len();
        assert_eq!(deliveries, usize::from(*passes), "{name}");
    }
    let passing = cases.iter().filter(|(_, _, passes)| *passes).count();
    let arrived = receiver.wait_for(passing, WAIT).await;
    let mut paths: Vec<&str> = arrived
        .iter()
        .map(|request| request.path.as_str())
        .collect();
    paths.sort_unstable();
    let mut expected: Vec<String> = cases
        .iter()
        .filter(|(_, _, passes)| *passes)
        .map(|(name, _, _)| format!("/{name}"))
        .collect();
    expected.sort_unstable();
    assert_eq!(paths, expected);
}

#[tokio::test]
async fn a_patch_sets_and_clears_a_filter() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let webhook = create(
        &api,
        json!({"name": "Orders", "url": receiver.url, "events": ["trigger_event.created"],
               "filter": {"data.user.id": "someone-else"}}),
    )
    .await;
    let id = id_of(&webhook);
    api.put_trigger("purchase", Value::Null).await;
    api.trigger_event("user-1", "purchase", Value::Null).await;
    assert!(api.deliveries(&id).await.is_empty());

    let cleared = api
        .patch(&format!("/v1/webhooks/{id}"), json!({"filter": null}))
        .await;
    assert_eq!(cleared.status, StatusCode::OK, "{:?}", cleared.body);
    assert_eq!(cleared.body["filter"], Value::Null);
    api.trigger_event("user-1", "purchase", Value::Null).await;
    assert_eq!(api.deliveries(&id).await.len(), 1);

    let refused = api
        .patch(
            &format!("/v1/webhooks/{id}"),
            json!({"filter": {"$nope": 1}}),
        )
        .await;
    refused.assert_error(422, "invalid_value", Some("filter"));
    let shown = api.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(
        shown.body["filter"],
        Value::Null,
        "a refused patch changes nothing"
    );
}

#[tokio::test]
async fn extra_headers_arrive_with_every_delivery_and_are_sealed_at_rest() {
    let (database, database_url) = fresh_database().await;
    let server = TestServer::start_on(&database_url, |_| {}).await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let headers = json!({"Authorization": "Bearer gateway-s3cret", "X-Tenant": "acme"});
    let webhook = create(
        &api,
        json!({"name": "Gateway", "url": receiver.url, "events": ["trigger_event.created"],
               "headers": headers}),
    )
    .await;
    assert_eq!(webhook["headers"], headers);
    let id = id_of(&webhook);
    let stored = stored_webhook_column(&database_url, "headers", &id).await;
    assert!(
        stored.starts_with("enc:v1:") && !stored.contains("s3cret") && !stored.contains("acme"),
        "headers are sealed at rest: {stored}"
    );

    let test = json!({"type": "trigger_event.created"});
    let sent = api
        .post(&format!("/v1/webhooks/{id}/test"), test.clone())
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED);
    let first = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(first.header("authorization"), "Bearer gateway-s3cret");
    assert_eq!(first.header("x-tenant"), "acme");
    // Reward's own headers are untouched beside them.
    assert_eq!(first.header("content-type"), "application/json");
    assert!(first.header("webhook-signature").starts_with("v1,"));

    let patched = api
        .patch(
            &format!("/v1/webhooks/{id}"),
            json!({"headers": {"X-Tenant": "globex"}}),
        )
        .await;
    assert_eq!(patched.body["headers"], json!({"X-Tenant": "globex"}));
    api.post(&format!("/v1/webhooks/{id}/test"), test).await;
    let second = receiver.wait_for(2, WAIT).await.remove(1);
    assert_eq!(second.header("x-tenant"), "globex");
    assert!(
        second.headers.get("authorization").is_none(),
        "replaced, not merged"
    );
    server.stop().await;
    drop(database);
}

#[tokio::test]
async fn every_type_reaches_a_webhook_of_star_and_the_selection_is_kept_as_star() {
    let (database, database_url) = fresh_database().await;
    let server = TestServer::start_on(&database_url, |_| {}).await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let webhook = create(
        &api,
        json!({"name": "Everything", "url": receiver.url, "events": ["*"]}),
    )
    .await;
    assert_eq!(webhook["events"], json!(["*"]));
    let id = id_of(&webhook);
    // Stored as the wildcard itself, not as today's list: a type added later is included.
    assert_eq!(
        stored_webhook_column(&database_url, "events", &id).await,
        r#"["*"]"#
    );
    api.put_trigger("purchase", json!({"fixed": 5})).await;
    api.trigger_event("user-1", "purchase", Value::Null).await;
    let arrived = receiver.wait_for(2, WAIT).await;
    let mut types: Vec<String> = arrived
        .iter()
        .map(|request| request.json()["type"].as_str().expect("type").to_owned())
        .collect();
    types.sort();
    assert_eq!(
        types,
        ["balance.credit_points_issued", "trigger_event.created"]
    );
    // `webhook.disabled` came after the first two types: a webhook of "*" receives it as well.
    let gone = Receiver::start().await;
    gone.answer(Answer::Status(410));
    let leaving = create(
        &api,
        json!({"name": "Leaving", "url": gone.url, "events": ["trigger_event.created"]}),
    )
    .await;
    let sent = api
        .post(
            &format!("/v1/webhooks/{}/test", id_of(&leaving)),
            json!({"type": "trigger_event.created"}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED);
    let third = receiver.wait_for(3, WAIT).await.remove(2).json();
    assert_eq!(third["type"], "webhook.disabled");
    assert_eq!(third["data"]["webhook"]["id"], id_of(&leaving).as_str());
    server.stop().await;
    drop(database);
}

#[tokio::test]
async fn notes_and_a_rate_limit_are_kept_as_given_and_null_clears_them() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let metadata = json!({"team": "payments", "cost_center": "42", "empty": ""});
    let webhook = create(
        &api,
        json!({"name": "Orders", "url": "https://example.com/hook", "events": ["*"],
               "description": "Sends orders to the ERP.\nOwned by payments.",
               "metadata": metadata, "rate_limit": 20}),
    )
    .await;
    let id = id_of(&webhook);
    let shown = api.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(
        shown.body["description"],
        "Sends orders to the ERP.\nOwned by payments."
    );
    // In the order given, not sorted.
    assert_eq!(
        serde_json::to_string(&shown.body["metadata"]).expect("JSON"),
        r#"{"team":"payments","cost_center":"42","empty":""}"#
    );
    assert_eq!(shown.body["rate_limit"], 20);
    let listed = api.get("/v1/webhooks").await;
    assert_eq!(listed.body["data"][0]["metadata"], metadata);

    let cleared = api
        .patch(
            &format!("/v1/webhooks/{id}"),
            json!({"description": null, "metadata": null, "rate_limit": null}),
        )
        .await;
    assert_eq!(cleared.status, StatusCode::OK, "{:?}", cleared.body);
    assert_eq!(cleared.body["description"], Value::Null);
    assert_eq!(cleared.body["metadata"], json!({}));
    assert_eq!(cleared.body["rate_limit"], Value::Null);
    assert_eq!(
        cleared.body["events"],
        json!(["*"]),
        "the rest is untouched"
    );
}

fn own_secret(bytes: usize) -> String {
    let key: Vec<u8> = (0..bytes).map(|n| (n * 7 + 3) as u8).collect();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

#[tokio::test]
async fn own_secrets_on_create_and_rotate_verify_with_the_standard_webhooks_library() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let (short, long) = (own_secret(24), own_secret(64));
    let webhook = create(
        &api,
        json!({"name": "Moved", "url": receiver.url, "events": ["*"], "secret": short}),
    )
    .await;
    assert_eq!(webhook["secret"], short.as_str());
    let id = id_of(&webhook);
    let test = json!({"type": "trigger_event.created"});
    api.post(&format!("/v1/webhooks/{id}/test"), test.clone())
        .await;
    let first = receiver.wait_for(1, WAIT).await.remove(0);
    standardwebhooks::Webhook::new(&short)
        .expect("secret")
        .verify(&first.body, &first.headers)
        .expect("the Standard Webhooks library accepts the customer's own secret");

    let rotated = api
        .post(
            &format!("/v1/webhooks/{id}/secret/rotate"),
            json!({"secret": long}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
    assert_eq!(rotated.body["secret"], long.as_str());
    api.post(&format!("/v1/webhooks/{id}/test"), test).await;
    let second = receiver.wait_for(2, WAIT).await.remove(1);
    for secret in [&short, &long] {
        standardwebhooks::Webhook::new(secret)
            .expect("secret")
            .verify(&second.body, &second.headers)
            .expect("both the new secret and the one rotated out sign");
    }
    let refused = api
        .post(
            &format!("/v1/webhooks/{id}/secret/rotate"),
            json!({"secret": own_secret(16)}),
        )
        .await;
    refused.assert_error(422, "invalid_value", Some("secret"));
    let shown = api.get(&format!("/v1/webhooks/{id}/secret")).await;
    assert_eq!(
        shown.body["secret"],
        long.as_str(),
        "a refused rotation changes nothing"
    );
}
