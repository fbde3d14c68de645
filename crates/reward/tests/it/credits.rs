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
