//! `Idempotency-Key` on every `POST` that creates something besides trigger events (those are in
//! idempotency.rs): webhooks, API keys, credits, resends and test events. The same key and body
//! answer the first response again and create nothing; another body or route answers 409; an
//! invalid key 422; concurrent requests with one key create one thing; kept answers are sealed.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{
    create_account, fresh_postgres_database, Api, Reply, ServerProcess, TestServer,
};
use crate::idempotency::futures_join_all;
use crate::receiver::Receiver;

async fn post_keyed(api: &Api, path: &str, body: &str, key: &str) -> Reply {
    api.send(
        Method::POST,
        path,
        Some(body.as_bytes().to_vec()),
        &[("Idempotency-Key", key)],
    )
    .await
}

fn replayed(reply: &Reply) -> bool {
    reply
        .headers
        .get("idempotent-replayed")
        .is_some_and(|value| value.as_bytes() == b"true")
}

fn count(reply: &Reply) -> usize {
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body["data"].as_array().expect("data").len()
}

/// The account's world, in numbers: what any of these POSTs could add to.
async fn world(api: &Api, webhooks: &[&str]) -> Value {
    let mut deliveries = Vec::new();
    for webhook in webhooks {
        deliveries.push(api.deliveries(webhook).await.len());
    }
    json!({
        "webhooks": count(&api.get("/v1/webhooks?limit=100").await),
        "api_keys": count(&api.get("/v1/api_keys").await),
        "events": count(&api.get("/v1/events?limit=100").await),
        "deliveries": deliveries,
        "balance": api.get("/v1/users/u1").await.body["balance"],
    })
}

/// One creating POST: where, a body, another valid body, and what its success adds to.
struct Case {
    path: String,
    body: Value,
    other_body: Value,
    status: StatusCode,
}

/// An account with two webhooks (W subscribed, W2 too) and a stored event; the cases.
async fn setup(api: &Api, receiver: &Receiver) -> (Vec<Case>, [String; 2]) {
    let mut webhooks = Vec::new();
    for name in ["W", "W2"] {
        let reply = api
            .post(
                "/v1/webhooks",
                json!({"name": name, "url": receiver.url, "events": ["trigger_event.created"]}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED);
        webhooks.push(reply.body["id"].as_str().expect("id").to_owned());
    }
    api.put_trigger("signup", Value::Null).await;
    api.trigger_event("u1", "signup", Value::Null).await;
    let event = api.get("/v1/events").await.body["data"][0]["id"]
        .as_str()
        .expect("event")
        .to_owned();
    let [w, w2] = [webhooks[0].clone(), webhooks[1].clone()];
    let cases = vec![
        Case {
            path: "/v1/webhooks".into(),
            body: json!({"name": "Orders", "url": receiver.url, "events": ["trigger_event.created"]}),
            other_body: json!({"name": "Other", "url": receiver.url, "events": ["trigger_event.created"]}),
            status: StatusCode::CREATED,
        },
        Case {
            path: "/v1/api_keys".into(),
            body: json!({"name": "ci"}),
            other_body: json!({"name": "cd"}),
            status: StatusCode::CREATED,
        },
        Case {
            path: "/v1/users/u1/credits".into(),
            body: json!({"points": 5, "reason": "welcome"}),
            other_body: json!({"points": 6, "reason": "welcome"}),
            status: StatusCode::CREATED,
        },
        Case {
            path: format!("/v1/events/{event}/resend"),
            body: json!({"webhook_id": w}),
            other_body: json!({"webhook_id": w2}),
            status: StatusCode::ACCEPTED,
        },
        Case {
            path: format!("/v1/webhooks/{w}/test"),
            body: json!({"type": "trigger_event.created"}),
            other_body: json!({"type": "balance.credit_points_issued"}),
            status: StatusCode::ACCEPTED,
        },
    ];
    (cases, [w, w2])
}

/// The body with its keys in reverse order and spaces: the same request.
fn respelled(body: &Value) -> String {
    let object = body.as_object().expect("object");
    let fields: Vec<String> = object
        .iter()
        .rev()
        .map(|(key, value)| format!("  {} : {}", json!(key), value))
        .collect();
    format!("{{ {} }}", fields.join(" ,\n"))
}

#[tokio::test]
async fn each_creating_post_replays_its_first_answer_and_creates_nothing_more() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let (cases, [w, w2]) = setup(&api, &receiver).await;
    for (index, case) in cases.iter().enumerate() {
        let key = format!("case-{index}");
        let before = world(&api, &[&w, &w2]).await;
        let first = post_keyed(&api, &case.path, &case.body.to_string(), &key).await;
        assert_eq!(first.status, case.status, "{}: {:?}", case.path, first.body);
        assert!(!replayed(&first));
        let after = world(&api, &[&w, &w2]).await;
        assert_ne!(after, before, "{} created something", case.path);

        for body in [case.body.to_string(), respelled(&case.body)] {
            let again = post_keyed(&api, &case.path, &body, &key).await;
            assert_eq!(again.status, case.status, "{}", case.path);
            assert_eq!(again.body, first.body, "{}", case.path);
            assert!(replayed(&again), "{}", case.path);
        }
        post_keyed(&api, &case.path, &case.other_body.to_string(), &key)
            .await
            .assert_error(409, "idempotency_conflict", None);
        // The same key on another creating route is another request too.
        let elsewhere = &cases[(index + 1) % cases.len()];
        post_keyed(&api, &elsewhere.path, &elsewhere.body.to_string(), &key)
            .await
            .assert_error(409, "idempotency_conflict", None);
        for bad in ["with space", &"k".repeat(256)] {
            post_keyed(&api, &case.path, &case.body.to_string(), bad)
                .await
                .assert_error(422, "invalid_value", Some("Idempotency-Key"));
        }
        assert_eq!(world(&api, &[&w, &w2]).await, after, "{}", case.path);
    }

    // Keys are per account: another account's same key is its own.
    let other = server.account("Other").await;
    let theirs = post_keyed(
        &other,
        "/v1/api_keys",
        &json!({"name": "ci"}).to_string(),
        "case-1",
    )
    .await;
    assert_eq!(theirs.status, StatusCode::CREATED);
    assert!(!replayed(&theirs));
}

/// As on trigger events, an optional field sent as `null` is the same request as one without it:
/// the retry replays. Nested `null`s still count (in a filter, `null` is a value).
#[tokio::test]
async fn a_field_sent_as_null_is_the_same_request_as_one_left_out() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let webhook =
        json!({"name": "Orders", "url": receiver.url, "events": ["trigger_event.created"]});
    let mut with_nulls = webhook.clone();
    with_nulls["filter"] = Value::Null;
    with_nulls["rate_limit"] = Value::Null;
    let cases = [
        ("/v1/webhooks", webhook.clone(), with_nulls),
        (
            "/v1/users/u1/credits",
            json!({"points": 5}),
            json!({"points": 5, "reason": null}),
        ),
    ];
    for (index, (path, body, same_with_nulls)) in cases.iter().enumerate() {
        let key = format!("nulls-{index}");
        let first = post_keyed(&api, path, &body.to_string(), &key).await;
        assert!(first.status.is_success(), "{path}: {:?}", first.body);
        let again = post_keyed(&api, path, &same_with_nulls.to_string(), &key).await;
        assert!(replayed(&again), "{path}: {:?}", again.body);
        assert_eq!(again.body, first.body, "{path}");
    }
    // A filter comparing with null is another filter than none.
    let mut filtered = webhook.clone();
    filtered["filter"] = json!({"data.value": null});
    post_keyed(&api, "/v1/webhooks", &filtered.to_string(), "nulls-0")
        .await
        .assert_error(409, "idempotency_conflict", None);
}

#[tokio::test]
async fn a_refused_request_does_not_take_its_key() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let (_, [w, _]) = setup(&api, &receiver).await;
    // Invalid input, and a request the store refuses (a disabled webhook): nothing is kept.
    post_keyed(&api, "/v1/api_keys", r#"{"name": ""}"#, "retry-me")
        .await
        .assert_error(422, "invalid_value", Some("name"));
    api.patch(&format!("/v1/webhooks/{w}"), json!({"enabled": false}))
        .await;
    let event = api.get("/v1/events").await.body["data"][0]["id"]
        .as_str()
        .expect("event")
        .to_owned();
    let resend = format!("/v1/events/{event}/resend");
    let body = json!({"webhook_id": w}).to_string();
    post_keyed(&api, &resend, &body, "resend-me")
        .await
        .assert_error(409, "webhook_disabled", None);
    api.patch(&format!("/v1/webhooks/{w}"), json!({"enabled": true}))
        .await;
    let resent = post_keyed(&api, &resend, &body, "resend-me").await;
    assert_eq!(resent.status, StatusCode::ACCEPTED, "{:?}", resent.body);
    assert!(!replayed(&resent));
    let created = post_keyed(&api, "/v1/api_keys", r#"{"name": "ci"}"#, "retry-me").await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_create_one_thing() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let (cases, [w, w2]) = setup(&api, &receiver).await;
    for (index, case) in cases.iter().enumerate() {
        let before = world(&api, &[&w, &w2]).await;
        let replies = futures_join_all((0..6).map(|_| {
            let api = api.clone();
            let (path, body) = (case.path.clone(), case.body.to_string());
            let key = format!("together-{index}");
            async move { post_keyed(&api, &path, &body, &key).await }
        }))
        .await;
        let answered: Vec<&Reply> = replies.iter().filter(|r| r.status == case.status).collect();
        assert!(!answered.is_empty(), "{}: {replies:?}", case.path);
        assert_eq!(
            answered.iter().filter(|reply| !replayed(reply)).count(),
            1,
            "{}: one request did the work",
            case.path
        );
        for reply in &answered {
            assert_eq!(reply.body, answered[0].body, "{}", case.path);
        }
        for reply in replies.iter().filter(|r| r.status != case.status) {
            reply.assert_error(409, "idempotency_in_progress", None);
        }
        // One thing was created: the same change as one request makes.
        let after = world(&api, &[&w, &w2]).await;
        let single = post_keyed(
            &api,
            &case.path,
            &case.body.to_string(),
            &format!("alone-{index}"),
        )
        .await;
        assert_eq!(single.status, case.status);
        let after_single = world(&api, &[&w, &w2]).await;
        assert_eq!(
            changes(&before, &after),
            changes(&after, &after_single),
            "{}",
            case.path
        );
    }
}

/// How each number of the world moved from `before` to `after`.
fn changes(before: &Value, after: &Value) -> Value {
    let delta = |a: &Value, b: &Value| b.as_i64().unwrap_or(0) - a.as_i64().unwrap_or(0);
    json!({
        "webhooks": delta(&before["webhooks"], &after["webhooks"]),
        "api_keys": delta(&before["api_keys"], &after["api_keys"]),
        "events": delta(&before["events"], &after["events"]),
        "deliveries": [
            delta(&before["deliveries"][0], &after["deliveries"][0]),
            delta(&before["deliveries"][1], &after["deliveries"][1]),
        ],
        "balance": delta(&before["balance"], &after["balance"]),
    })
}

#[tokio::test]
async fn kept_answers_are_sealed_at_rest() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let webhook = post_keyed(
        &api,
        "/v1/webhooks",
        &json!({"name": "W", "url": receiver.url, "events": ["trigger_event.created"]}).to_string(),
        "sealed-1",
    )
    .await;
    let key = post_keyed(&api, "/v1/api_keys", r#"{"name": "ci"}"#, "sealed-2").await;
    let secrets = [
        webhook.body["secret"].as_str().expect("secret").to_owned(),
        key.body["key"].as_str().expect("key").to_owned(),
    ];
    let stored = stored_answers(&server.database_url).await;
    assert_eq!(stored.len(), 2);
    for body in &stored {
        for secret in &secrets {
            assert!(!body.contains(secret.as_str()), "a secret stored plain");
        }
        assert!(!body.contains("whsec_"));
    }
    // And they still replay.
    let again = post_keyed(&api, "/v1/api_keys", r#"{"name": "ci"}"#, "sealed-2").await;
    assert_eq!(again.body, key.body);
}

/// On PostgreSQL, one key sent to three nodes at once: one of them issues the credits, the others
/// replay its answer (or say it is still in progress).
#[tokio::test]
async fn one_key_sent_to_three_nodes_at_once_issues_credits_once() {
    let Some((_database, database_url)) = fresh_postgres_database().await else {
        return;
    };
    let env = [("REWARD_ALLOW_INSECURE_TARGETS", "true")];
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(ServerProcess::spawn(&database_url, &env).await);
    }
    let account = create_account(&database_url, "Acme").await;
    let key = account["api_key"].as_str().expect("api_key");
    let apis: Vec<Api> = nodes
        .iter()
        .map(|node| Api::new(&node.base_url, key))
        .collect();
    let rounds = 10;
    for round in 0..rounds {
        let replies =
            futures_join_all(
                (0..6).map(|request| {
                    let api = apis[request % 3].clone();
                    let key = format!("credit-{round}");
                    async move {
                        post_keyed(&api, "/v1/users/u1/credits", r#"{"points": 5}"#, &key).await
                    }
                }),
            )
            .await;
        let answered: Vec<&Reply> = replies
            .iter()
            .filter(|reply| reply.status == StatusCode::CREATED)
            .collect();
        assert_eq!(
            answered.iter().filter(|reply| !replayed(reply)).count(),
            1,
            "{replies:?}"
        );
        for reply in &answered {
            assert_eq!(reply.body, answered[0].body);
        }
        for reply in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
            reply.assert_error(409, "idempotency_in_progress", None);
        }
    }
    assert_eq!(
        apis[1].get("/v1/users/u1").await.body["balance"],
        json!(5 * rounds)
    );
    for node in nodes {
        node.kill().await;
    }
}

/// Moves every kept answer `hours` back in time, as if it had been kept that long.
async fn age_answers(database_url: &str, hours: i64) {
    let sql = format!(
        "UPDATE idempotent_responses SET created_at = created_at - {}",
        hours * 3600 * 1000
    );
    if let Some(path) = database_url.strip_prefix("sqlite://") {
        let connection = rusqlite::Connection::open(path).expect("open");
        connection.execute_batch(&sql).expect("update");
    } else {
        let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client.batch_execute(&sql).await.expect("update");
    }
}

#[tokio::test]
async fn a_key_is_forgotten_after_24_hours_and_upkeep_removes_its_answer() {
    let server = TestServer::start_with(|config| {
        config.upkeep_every = std::time::Duration::from_millis(100);
    })
    .await;
    let api = server.account("Acme").await;
    let first = post_keyed(&api, "/v1/api_keys", r#"{"name": "ci"}"#, "daily").await;
    assert_eq!(first.status, StatusCode::CREATED);
    age_answers(&server.database_url, 24).await;
    // Its window has passed: the key is free for another request, replay or not.
    let next = post_keyed(&api, "/v1/api_keys", r#"{"name": "cd"}"#, "daily").await;
    assert_eq!(next.status, StatusCode::CREATED, "{:?}", next.body);
    assert!(!replayed(&next));
    assert_ne!(next.body["id"], first.body["id"]);

    age_answers(&server.database_url, 25).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !stored_answers(&server.database_url).await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "upkeep never removed an answer kept past 24 h"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn stored_answers(database_url: &str) -> Vec<String> {
    let sql = "SELECT body FROM idempotent_responses WHERE body IS NOT NULL";
    if let Some(path) = database_url.strip_prefix("sqlite://") {
        let connection = rusqlite::Connection::open(path).expect("open");
        let mut statement = connection.prepare(sql).expect("prepare");
        let rows = statement
            .query_map([], |row| row.get::<_, String>(0))
            .expect("query");
        rows.collect::<Result<_, _>>().expect("rows")
    } else {
        let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
            .query(sql, &[])
            .await
            .expect("query")
            .iter()
            .map(|row| row.get(0))
            .collect()
    }
}
