//! Rewards: `PUT /v1/triggers/{id}`, `POST /v1/trigger_events` and
//! `POST /v1/users/{id}/credits`. None of them may bring the user into being when refused.

use serde_json::{json, Value};

use super::{
    body_cases, body_under_limit_case, named, post, put, run, send, start, trigger_event_body,
    with, without, Case, TRIGGER, USER,
};

/// `PUT /v1/triggers/{id}` bodies, refused on the existing trigger, which stays as it was. Rows:
/// (rule, body, code, field).
fn trigger_rows() -> Vec<(&'static str, Value, &'static str, &'static str)> {
    let mut rows = Vec::new();
    for name in [json!(""), json!(" "), json!("n".repeat(101))] {
        rows.push((
            "trigger_invalid_name_is_refused",
            json!({"name": name, "credit_points": null}),
            "invalid_value",
            "name",
        ));
    }
    rows.push((
        "trigger_invalid_name_is_refused",
        json!({"name": 5, "credit_points": null}),
        "invalid_type",
        "name",
    ));
    rows.push((
        "trigger_credit_points_with_both_rules_is_invalid_value",
        json!({"name": "Signup", "credit_points": {"per_unit": 10, "fixed": 5}}),
        "invalid_value",
        "credit_points",
    ));
    rows.push((
        "trigger_credit_points_with_no_rule_is_invalid_value",
        json!({"name": "Signup", "credit_points": {}}),
        "invalid_value",
        "credit_points",
    ));
    rows.push((
        "trigger_credit_points_unknown_rule_is_unknown_field",
        json!({"name": "Signup", "credit_points": {"fixed": 5, "bonus": 1}}),
        "unknown_field",
        "credit_points.bonus",
    ));
    // (rule, rule kind, values, code): each value as that kind of `credit_points` rule.
    let rule_values = [
        (
            "trigger_per_unit_zero_or_negative_is_invalid_value",
            "per_unit",
            vec![json!(0), json!(0.0), json!(-1), json!(-0.5), json!(2e9)],
            "invalid_value",
        ),
        (
            "trigger_per_unit_not_a_number_is_invalid_type",
            "per_unit",
            vec![json!("10"), json!(null), json!([10])],
            "invalid_type",
        ),
        (
            "trigger_fixed_zero_or_negative_is_invalid_value",
            "fixed",
            vec![json!(0), json!(-5), json!(1_000_000_000_001_i64)],
            "invalid_value",
        ),
        (
            "trigger_fixed_not_whole_is_invalid_type",
            "fixed",
            vec![json!(1.5), json!("5"), json!(null)],
            "invalid_type",
        ),
    ];
    for (rule, kind, values, code) in rule_values {
        let field = if kind == "fixed" {
            "credit_points.fixed"
        } else {
            "credit_points.per_unit"
        };
        for value in values {
            let body = json!({"name": "Signup", "credit_points": {kind: value}});
            rows.push((rule, body, code, field));
        }
    }
    for rule in [json!("fixed"), json!(5), json!([{"fixed": 5}])] {
        rows.push((
            "trigger_credit_points_a_string_is_invalid_type",
            json!({"name": "Signup", "credit_points": rule}),
            "invalid_type",
            "credit_points",
        ));
    }
    rows.push((
        "trigger_unknown_field_is_refused",
        json!({"name": "Signup", "credit_points": null, "points": 5}),
        "unknown_field",
        "points",
    ));
    rows
}

/// A `PUT /v1/triggers/{id}` refused with 422; `GET` of the trigger answers the same after.
fn refused_trigger(name: String, id: &str, body: Value, code: &'static str, field: &str) -> Case {
    let path = format!("/v1/triggers/{id}");
    Case::refused(name, put(&path, body), 422, code, Some(field)).leaves_unchanged(&path, None)
}

fn trigger_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let long = "t".repeat(101);
    for id in ["bad%20id", "bad!id", "bad%2Fid", "caf%C3%A9", long.as_str()] {
        let body = json!({"name": "Bad", "credit_points": {"fixed": 1}});
        let name = named("trigger_invalid_id_in_path_is_invalid_value", &json!(id));
        let request = put(&format!("/v1/triggers/{id}"), body);
        cases.push(Case::refused(
            name,
            request,
            422,
            "invalid_value",
            Some("id"),
        ));
    }
    // Without a name, on the existing trigger and on one that does not exist yet.
    for id in [TRIGGER, "fresh"] {
        let name = format!("trigger_without_name_is_missing_field [{id}]");
        let body = json!({"credit_points": {"fixed": 1}});
        cases.push(refused_trigger(name, id, body, "missing_field", "name"));
    }
    for (rule, body, code, field) in trigger_rows() {
        cases.push(refused_trigger(
            named(rule, &body),
            TRIGGER,
            body,
            code,
            field,
        ));
    }
    cases
}

#[tokio::test]
async fn put_trigger_refuses_bad_bodies() {
    let (_server, api, _) = start().await;
    run(&api, &trigger_cases()).await;
}

/// `POST /v1/trigger_events` with the valid body changed: refused with 422 on `field`. Rows:
/// (rule, body, code, field).
fn trigger_event_rows() -> Vec<(&'static str, Value, &'static str, &'static str)> {
    let mut rows = Vec::new();
    for field in ["user_id", "trigger_id"] {
        let rule = if field == "user_id" {
            "trigger_event_without_user_id_is_missing_field"
        } else {
            "trigger_event_without_trigger_id_is_missing_field"
        };
        rows.push((
            rule,
            without(trigger_event_body(), field),
            "missing_field",
            field,
        ));
    }
    // (rule, field, values, code)
    let field_values = [
        (
            "trigger_event_user_id_of_wrong_type_is_invalid_type",
            "user_id",
            vec![json!(1), json!(null), json!([USER])],
            "invalid_type",
        ),
        (
            "trigger_event_user_id_with_a_space_is_invalid_value",
            "user_id",
            vec![
                json!("user 1"),
                json!(" user-1"),
                json!("user/1"),
                json!("user?1"),
                json!("user#1"),
                json!("user%1"),
                json!(""),
                json!("u".repeat(129)),
            ],
            "invalid_value",
        ),
        (
            "trigger_event_invalid_trigger_id_is_invalid_value",
            "trigger_id",
            vec![json!("sign up"), json!(""), json!("signup!")],
            "invalid_value",
        ),
        (
            "trigger_event_value_a_string_is_invalid_type",
            "value",
            vec![json!("3"), json!(true), json!([3]), json!({"n": 3})],
            "invalid_type",
        ),
        (
            "trigger_event_unknown_trigger_is_unknown_trigger",
            "trigger_id",
            vec![json!("no_such_trigger")],
            "unknown_trigger",
        ),
        (
            "trigger_event_unknown_field_is_refused",
            "points",
            vec![json!(5)],
            "unknown_field",
        ),
    ];
    for (rule, field, values, code) in field_values {
        for value in values {
            rows.push((rule, with(trigger_event_body(), field, value), code, field));
        }
    }
    rows
}

fn trigger_event_cases() -> Vec<Case> {
    let path = "/v1/trigger_events";
    let mut cases: Vec<Case> = body_cases("trigger_event", path, &trigger_event_body())
        .into_iter()
        .map(|case| case.user_stays_absent(USER))
        .collect();
    for (rule, body, code, field) in trigger_event_rows() {
        let case = Case::refused(named(rule, &body), post(path, body), 422, code, Some(field));
        cases.push(case.user_stays_absent(USER));
    }
    let long = "k".repeat(256);
    for key in [long.as_str(), "has space"] {
        let name = named(
            "trigger_event_invalid_idempotency_key_is_invalid_value",
            &json!(key),
        );
        let request = post(path, trigger_event_body()).header("idempotency-key", key);
        let case = Case::refused(name, request, 422, "invalid_value", Some("Idempotency-Key"));
        cases.push(case.user_stays_absent(USER));
    }
    // Two keys in one request: which one counts would be a guess (here and on the other creating
    // POSTs, which read the header the same way).
    let credits = format!("/v1/users/{USER}/credits");
    for (path, body) in [
        (path, trigger_event_body()),
        (credits.as_str(), json!({"points": 5})),
    ] {
        let name = format!("idempotency_key_given_twice_is_invalid_value [{path}]");
        let request = post(path, body)
            .header("idempotency-key", "first")
            .header("idempotency-key", "second");
        let case = Case::refused(name, request, 422, "invalid_value", Some("Idempotency-Key"))
            .message_contains("more than once");
        cases.push(case.user_stays_absent(USER));
    }
    cases
}

#[tokio::test]
async fn post_trigger_event_refuses_bad_bodies() {
    let (_server, api, _) = start().await;
    run(&api, &trigger_event_cases()).await;
    // A deleted trigger is unknown too.
    let rule = "trigger_event_unknown_trigger_is_unknown_trigger [deleted trigger]";
    let reply = send(
        &api,
        rule,
        &super::delete(&format!("/v1/triggers/{TRIGGER}")),
    )
    .await;
    assert_eq!(reply.status.as_u16(), 204, "{rule}: {:?}", reply.body);
    let case = Case::refused(
        rule,
        post("/v1/trigger_events", trigger_event_body()),
        422,
        "unknown_trigger",
        Some("trigger_id"),
    );
    run(&api, &[case.user_stays_absent(USER)]).await;
    // The trigger back, for the one case that records an event (and so creates the user): last.
    api.put_trigger(TRIGGER, json!({"fixed": 5})).await;
    let valid = trigger_event_body();
    run(
        &api,
        &[body_under_limit_case(
            "trigger_event",
            "/v1/trigger_events",
            &valid,
        )],
    )
    .await;
}

/// `POST /v1/users/{USER}/credits` bodies, refused with 422 on `field`. Rows: (rule, body, code,
/// field).
fn credit_rows() -> Vec<(&'static str, Value, &'static str, &'static str)> {
    let mut rows = vec![(
        "credits_points_zero_is_invalid_value",
        json!({"points": 0}),
        "invalid_value",
        "points",
    )];
    // (rule, points values, code)
    let points = [
        (
            "credits_points_negative_is_invalid_value",
            vec![json!(-1), json!(-1_000_000), json!(i64::MIN)],
            "invalid_value",
        ),
        (
            "credits_points_over_10_pow_12_is_invalid_value",
            vec![json!(1_000_000_000_001_i64), json!(i64::MAX)],
            "invalid_value",
        ),
        (
            "credits_points_not_whole_is_invalid_type",
            vec![
                json!(1.5),
                json!("5"),
                json!(null),
                json!(u64::MAX),
                json!(1e300),
            ],
            "invalid_type",
        ),
    ];
    for (rule, values, code) in points {
        for value in values {
            rows.push((rule, json!({ "points": value }), code, "points"));
        }
    }
    rows.push((
        "credits_points_missing_is_missing_field",
        json!({"reason": "Welcome"}),
        "missing_field",
        "points",
    ));
    for reason in [json!(5), json!(true), json!(["Welcome"])] {
        rows.push((
            "credits_reason_not_a_string_is_invalid_type",
            json!({"points": 5, "reason": reason}),
            "invalid_type",
            "reason",
        ));
    }
    for reason in ["r".repeat(501), "é".repeat(501)] {
        rows.push((
            "credits_reason_over_500_characters_is_invalid_value",
            json!({"points": 5, "reason": reason}),
            "invalid_value",
            "reason",
        ));
    }
    rows.push((
        "credits_unknown_field_is_refused",
        json!({"points": 5, "balance": 100}),
        "unknown_field",
        "balance",
    ));
    rows
}

fn credit_cases() -> Vec<Case> {
    let path = format!("/v1/users/{USER}/credits");
    let mut cases = Vec::new();
    for (rule, body, code, field) in credit_rows() {
        let case = Case::refused(
            named(rule, &body),
            post(&path, body),
            422,
            code,
            Some(field),
        );
        cases.push(case.user_stays_absent(USER));
    }
    cases.push(
        Case::refused(
            "credits_invalid_user_id_in_path_is_invalid_value",
            post("/v1/users/user%201/credits", json!({"points": 5})),
            422,
            "invalid_value",
            Some("user_id"),
        )
        .user_stays_absent("user%201"),
    );
    // 500 characters are accepted; this credits the user, so it comes last.
    cases.push(Case::accepted(
        "credits_reason_over_500_characters_is_invalid_value [500 characters accepted]",
        post(&path, json!({"points": 5, "reason": "é".repeat(500)})),
        201,
    ));
    cases
}

#[tokio::test]
async fn post_credits_refuses_bad_bodies() {
    let (_server, api, _) = start().await;
    run(&api, &credit_cases()).await;
}
