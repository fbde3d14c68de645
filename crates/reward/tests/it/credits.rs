//! Credit maths through the API: `per_unit` floors value × rate, `fixed` ignores the value, and a
//! trigger without a rule (or a rule giving 0) emits no `balance.credit_points_issued`.

use serde_json::{json, Value};

use crate::common::{Api, TestServer};

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

/// A trigger event that would take a balance past the largest number fails alone, with
/// `balance_overflow`, while the requests that arrived with it are recorded.
#[tokio::test]
async fn an_overflowing_trigger_event_fails_alone() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    api.put_trigger("jackpot", json!({"per_unit": 1000})).await;
    api.put_trigger("signup", json!({"fixed": 3})).await;
    let first = api
        .trigger_event("rich", "jackpot", json!(1_000_000_000_000_000_000_u64))
        .await;
    assert_eq!(first["credit_points_issued"], i64::MAX);
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
    assert_eq!(api.get("/v1/users/rich").await.body["balance"], i64::MAX);
    assert_eq!(api.get("/v1/users/u1").await.body["balance"], 3);
    assert_eq!(issued_events(&api).await.len(), 1 + 16);
}
