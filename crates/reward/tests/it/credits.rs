//! Credit maths through the API: `per_unit` floors value × rate, `fixed` ignores the value, and a
//! trigger without a rule (or a rule giving 0) emits no `balance.credit_points_issued`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{Api, TestServer};
use crate::receiver::Receiver;

async fn issued_events(api: &Api) -> Vec<Value> {
    api.get("/v1/events?type=balance.credit_points_issued&limit=100")
        .await
        .body["data"]
        .as_array()
        .expect("data")
        .clone()
}

#[tokio::test]
async fn per_unit_floors_value_times_rate() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    api.put_trigger("payment", json!({"per_unit": 10})).await;
    api.put_trigger("cents", json!({"per_unit": 100})).await;
    let cases = [
        ("payment", json!(2.99), 29),
        ("payment", json!(3), 30),
        ("cents", json!(0.29), 29),
    ];
    let mut balance = 0;
    for (trigger, value, points) in cases {
        let recorded = api.trigger_event("u1", trigger, value).await;
        assert_eq!(recorded["credit_points_issued"], points);
        balance += points;
    }
    assert_eq!(api.get("/v1/users/u1").await.body["balance"], balance);
    let events = issued_events(&api).await;
    assert_eq!(events.len(), 3);
    // Newest first: the last issuance brought the balance to its final value.
    assert_eq!(events[0]["data"]["points"], 29);
    assert_eq!(events[0]["data"]["balance"], balance);
    assert_eq!(events[0]["data"]["reason"], Value::Null);
    assert!(events[0]["data"]["trigger_event"]["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("te_")));
}

#[tokio::test]
async fn fixed_ignores_the_value() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    api.put_trigger("signup", json!({"fixed": 5})).await;
    for value in [Value::Null, json!(1000), json!(0)] {
        assert_eq!(
            api.trigger_event("u1", "signup", value).await["credit_points_issued"],
            5
        );
    }
    assert_eq!(api.get("/v1/users/u1").await.body["balance"], 15);
    assert_eq!(issued_events(&api).await.len(), 3);
}

#[tokio::test]
async fn no_rule_or_zero_points_emit_no_issuance() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    api.put_trigger("visit", Value::Null).await;
    api.put_trigger("payment", json!({"per_unit": 10})).await;
    let no_rule = api.trigger_event("u1", "visit", json!(50)).await;
    assert_eq!(no_rule["credit_points_issued"], 0);
    let tiny = api.trigger_event("u1", "payment", json!(0.05)).await;
    assert_eq!(tiny["credit_points_issued"], 0);
    let no_value = api.trigger_event("u1", "payment", Value::Null).await;
    assert_eq!(no_value["credit_points_issued"], 0);
    assert!(issued_events(&api).await.is_empty());
    let created = api.get("/v1/events?type=trigger_event.created").await;
    assert_eq!(created.body["data"].as_array().expect("data").len(), 3);
    // The user exists once referenced, even without points.
    let user = api.get("/v1/users/u1").await;
    assert_eq!(user.body["balance"], 0);
}

#[tokio::test]
async fn concurrent_issuance_loses_no_update() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    api.put_trigger("signup", json!({"fixed": 3})).await;
    let handles: Vec<_> = (0..40)
        .map(|n| {
            let api = api.clone();
            tokio::spawn(async move {
                if n % 2 == 0 {
                    api.trigger_event("u1", "signup", Value::Null).await;
                } else {
                    let reply = api.post("/v1/users/u1/credits", json!({"points": 2})).await;
                    assert_eq!(reply.status.as_u16(), 201);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("task");
    }
    assert_eq!(
        api.get("/v1/users/u1").await.body["balance"],
        20 * 3 + 20 * 2
    );
}

/// Trigger events arriving together (PostgreSQL writes them in one batch) each get their own
/// outcome: every balance is exact, each `balance.credit_points_issued` carries the balance right
/// after its own trigger event, and an unknown trigger fails only its own request.
#[tokio::test]
async fn concurrent_trigger_events_each_report_their_own_balance() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    api.put_trigger("signup", json!({"fixed": 3})).await;
    let handles: Vec<_> = (0..60)
        .map(|n| {
            let api = api.clone();
            tokio::spawn(async move {
                let (user, trigger) = match n % 6 {
                    0 => ("u2", "nope"),
                    1 | 3 => ("u2", "signup"),
                    _ => ("u1", "signup"),
                };
                let reply = api
                    .post(
                        "/v1/trigger_events",
                        json!({"user_id": user, "trigger_id": trigger, "value": null}),
                    )
                    .await;
                if trigger == "nope" {
                    reply.assert_error(422, "unknown_trigger", Some("trigger_id"));
                } else {
                    assert_eq!(reply.status.as_u16(), 201, "{:?}", reply.body);
                    assert_eq!(reply.body["credit_points_issued"], 3);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("task");
    }
    assert_eq!(api.get("/v1/users/u1").await.body["balance"], 30 * 3);
    assert_eq!(api.get("/v1/users/u2").await.body["balance"], 20 * 3);
    let issued = issued_events(&api).await;
    assert_eq!(issued.len(), 50);
    for (user, count) in [("u1", 30), ("u2", 20)] {
        let mut balances: Vec<i64> = issued
            .iter()
            .filter(|event| event["data"]["user"]["id"] == user)
            .map(|event| event["data"]["balance"].as_i64().expect("balance"))
            .collect();
        balances.sort_unstable();
        let expected: Vec<i64> = (1..=count).map(|n| n * 3).collect();
        assert_eq!(balances, expected, "{user}");
    }
    let created = api
        .get("/v1/events?type=trigger_event.created&limit=100")
        .await;
    assert_eq!(created.body["data"].as_array().expect("data").len(), 50);
}

/// The largest balance: 2^53 - 1, the largest whole number a JavaScript receiver reads exactly.
const MAX_BALANCE: i64 = 9_007_199_254_740_991;
/// Most points one trigger event or manual issuance adds.
const MAX_POINTS: i64 = 1_000_000_000_000;
const WAIT: Duration = Duration::from_secs(10);

/// Sets a user's balance in the database itself: reaching 2^53 - 1 through the API would take
/// some 9,000 requests of 10^12 points each.
async fn set_balance(database_url: &str, user: &str, balance: i64) {
    let updated = if let Some(path) = database_url.strip_prefix("sqlite://") {
        let connection = rusqlite::Connection::open(path).expect("open");
        connection
            .busy_timeout(Duration::from_secs(5))
            .expect("busy timeout");
        connection
            .execute(
                "UPDATE users SET balance = ?1 WHERE id = ?2",
                rusqlite::params![balance, user],
            )
            .expect("update") as u64
    } else {
        let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
            .execute(
                "UPDATE users SET balance = $1 WHERE id = $2",
                &[&balance, &user],
            )
            .await
            .expect("update")
    };
    assert_eq!(updated, 1, "user {user} exists");
}

async fn balance(api: &Api, user: &str) -> Value {
    api.get(&format!("/v1/users/{user}")).await.body["balance"].clone()
}

/// A trigger event that would take a balance past 2^53 - 1 fails alone, with
/// `balance_overflow`, while the requests that arrived with it are recorded.
#[tokio::test]
async fn an_overflowing_trigger_event_fails_alone() {
    overflow_fails_alone(TestServer::start().await).await;
}

/// The same on PostgreSQL with statements sent unnamed (PgBouncer before 1.21), where a batch's
/// statements run as PL/pgSQL functions: the overflow inside one fails its batch the same way.
#[tokio::test]
async fn an_overflowing_trigger_event_fails_alone_with_unnamed_statements() {
    let Some((_database, url)) = crate::databases::fresh_postgres_database().await else {
        return;
    };
    let server = TestServer::start_on(&url, |config| {
        config.database_options.statements = reward_server::store::Statements::Unnamed;
    })
    .await;
    overflow_fails_alone(server).await;
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let made: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_proc WHERE proname LIKE 'reward_statement_%'",
            &[],
        )
        .await
        .expect("functions")
        .get(0);
    assert!(made > 0, "the batch's statements ran as functions");
}

async fn overflow_fails_alone(server: TestServer) {
    let api = server.account("Acme").await;
    api.put_trigger("jackpot", json!({"per_unit": 1000})).await;
    api.put_trigger("signup", json!({"fixed": 3})).await;
    api.trigger_event("rich", "signup", Value::Null).await;
    set_balance(&server.database_url, "rich", MAX_BALANCE - 999).await;
    let handles: Vec<_> = (0..20)
        .map(|n| {
            let api = api.clone();
            tokio::spawn(async move {
                if n % 5 == 0 {
                    let reply = api
                        .post(
                            "/v1/trigger_events",
                            json!({"user_id": "rich", "trigger_id": "jackpot", "value": 1}),
                        )
                        .await;
                    reply.assert_error(422, "balance_overflow", None);
                } else {
                    api.trigger_event(&format!("u{n}"), "signup", Value::Null)
                        .await;
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("task");
    }
    assert_eq!(balance(&api, "rich").await, MAX_BALANCE - 999);
    assert_eq!(balance(&api, "u1").await, 3);
    assert_eq!(issued_events(&api).await.len(), 1 + 16);
}

/// `value: 1e18` on a `per_unit` trigger used to issue i64::MAX points. A trigger event issues at
/// most 10^12 points, as a manual issuance does: past it the request answers 422 on `value` and
/// records nothing (no trigger event, no event, no delivery, the balance as it was), and its
/// `Idempotency-Key` stays free.
#[tokio::test]
async fn a_trigger_event_worth_more_than_ten_to_the_twelve_points_records_nothing() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    api.create_webhook(&receiver.url).await;
    api.put_trigger("jackpot", json!({"per_unit": 1000})).await;
    let largest = api
        .trigger_event("u1", "jackpot", json!(1_000_000_000))
        .await;
    assert_eq!(largest["credit_points_issued"], MAX_POINTS);
    receiver.wait_for(2, WAIT).await;
    let before = api.snapshot().await;
    for value in [json!(1e18), json!(1_000_000_000.001), json!(1e300)] {
        let body = json!({"user_id": "u1", "trigger_id": "jackpot", "value": value});
        let plain = api.post("/v1/trigger_events", body.clone()).await;
        plain.assert_error(422, "invalid_value", Some("value"));
        let message = plain.body["error"]["message"].as_str().expect("message");
        assert!(message.contains("10^12"), "{message}");
        let keyed = api
            .send(
                reqwest::Method::POST,
                "/v1/trigger_events",
                Some(serde_json::to_vec(&body).expect("json")),
                &[("idempotency-key", "once")],
            )
            .await;
        keyed.assert_error(422, "invalid_value", Some("value"));
    }
    // A user the refused events named is not created either.
    let refused = api
        .post(
            "/v1/trigger_events",
            json!({"user_id": "new", "trigger_id": "jackpot", "value": 1e18}),
        )
        .await;
    refused.assert_error(422, "invalid_value", Some("value"));
    assert_eq!(api.get("/v1/users/new").await.status.as_u16(), 404);
    assert_eq!(api.snapshot().await, before);
    assert_eq!(balance(&api, "u1").await, MAX_POINTS);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        receiver.count(),
        2,
        "no delivery for a refused trigger event"
    );
    // The key was not used up.
    let body = json!({"user_id": "u1", "trigger_id": "jackpot", "value": 1});
    let recorded = api
        .send(
            reqwest::Method::POST,
            "/v1/trigger_events",
            Some(serde_json::to_vec(&body).expect("json")),
            &[("idempotency-key", "once")],
        )
        .await;
    assert_eq!(recorded.status.as_u16(), 201, "{:?}", recorded.body);
    assert_eq!(recorded.body["credit_points_issued"], 1000);
}

/// Trigger events arriving together (PostgreSQL writes them in one batch): one worth too many
/// points fails alone, on `value`, keyed or not, and its neighbours are recorded.
#[tokio::test]
async fn too_many_points_fail_only_their_own_request() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    api.put_trigger("jackpot", json!({"per_unit": 1000})).await;
    let handles: Vec<_> = (0..40)
        .map(|n| {
            let api = api.clone();
            tokio::spawn(async move {
                let value = if n % 4 == 0 { json!(1e18) } else { json!(1) };
                let body = json!({"user_id": format!("u{}", n % 2), "trigger_id": "jackpot", "value": value});
                let key = format!("key-{n}");
                let keyed = [("idempotency-key", key.as_str())];
                let headers: &[(&str, &str)] = if n % 3 == 0 { &keyed } else { &[] };
                let reply = api
                    .send(
                        reqwest::Method::POST,
                        "/v1/trigger_events",
                        Some(serde_json::to_vec(&body).expect("json")),
                        headers,
                    )
                    .await;
                if n % 4 == 0 {
                    reply.assert_error(422, "invalid_value", Some("value"));
                } else {
                    assert_eq!(reply.status.as_u16(), 201, "{:?}", reply.body);
                    assert_eq!(reply.body["credit_points_issued"], 1000);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("task");
    }
    // 30 recorded: the 10 refused were all u0's.
    assert_eq!(balance(&api, "u0").await, 10 * 1000);
    assert_eq!(balance(&api, "u1").await, 20 * 1000);
    assert_eq!(issued_events(&api).await.len(), 30);
    let created = api
        .get("/v1/events?type=trigger_event.created&limit=100")
        .await;
    assert_eq!(created.body["data"].as_array().expect("data").len(), 30);
}

/// Every balance stays a number a JavaScript receiver reads exactly: at most 2^53 - 1. Credits or
/// a trigger event that would pass it answer 422 `balance_overflow` and change nothing; reaching
/// it exactly is fine, and so is a trigger event that adds nothing.
#[tokio::test]
async fn no_balance_passes_two_to_the_fifty_three_minus_one() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    api.create_webhook(&receiver.url).await;
    api.put_trigger("jackpot", json!({"per_unit": 1000})).await;
    api.put_trigger("signup", json!({"fixed": 3})).await;
    api.trigger_event("rich", "signup", Value::Null).await;
    receiver.wait_for(2, WAIT).await;
    set_balance(&server.database_url, "rich", MAX_BALANCE - 1000).await;
    let before = api.snapshot().await;
    for points in [1001, MAX_POINTS] {
        let reply = api
            .post("/v1/users/rich/credits", json!({"points": points}))
            .await;
        reply.assert_error(422, "balance_overflow", Some("points"));
        let message = reply.body["error"]["message"].as_str().expect("message");
        assert!(message.contains("9007199254740991"), "{message}");
    }
    let reply = api
        .post(
            "/v1/trigger_events",
            json!({"user_id": "rich", "trigger_id": "jackpot", "value": 1.001}),
        )
        .await;
    reply.assert_error(422, "balance_overflow", None);
    assert_eq!(api.snapshot().await, before);
    assert_eq!(balance(&api, "rich").await, MAX_BALANCE - 1000);

    // Up to the bound exactly.
    let credited = api
        .post("/v1/users/rich/credits", json!({"points": 999}))
        .await;
    assert_eq!(credited.status.as_u16(), 201, "{:?}", credited.body);
    assert_eq!(credited.body["balance"], MAX_BALANCE - 1);
    api.post(
        "/v1/trigger_events",
        json!({"user_id": "rich", "trigger_id": "signup"}),
    )
    .await
    .assert_error(422, "balance_overflow", None);
    let last = api.trigger_event("rich", "jackpot", json!(0.001)).await;
    assert_eq!(last["credit_points_issued"], 1);
    assert_eq!(balance(&api, "rich").await, MAX_BALANCE);
    let issued = issued_events(&api).await;
    assert_eq!(issued[0]["data"]["balance"], MAX_BALANCE);
    // At the bound: one more point is refused, nothing added is recorded.
    api.post("/v1/users/rich/credits", json!({"points": 1}))
        .await
        .assert_error(422, "balance_overflow", Some("points"));
    let nothing = api.trigger_event("rich", "jackpot", json!(0.0001)).await;
    assert_eq!(nothing["credit_points_issued"], 0);
    assert_eq!(balance(&api, "rich").await, MAX_BALANCE);
}
