//! Every operator passing and failing, missing paths, types that never compare, logic at both
//! levels, array positions, and every way a filter is refused, with its message.

use serde_json::{json, Value};

use super::{FilterError, PayloadFilter, Problem, MAX_FILTER_BYTES};

fn event() -> Value {
    json!({
        "id": "evt_01",
        "type": "balance.credit_points_issued",
        "time": "2026-01-02T03:04:05.678Z",
        "data": {
            "points": 150,
            "ratio": 0.5,
            "user_id": "user_42",
            "trigger": {"id": "signup", "name": "Sign-up"},
            "tags": ["new", "vip"],
            "note": null,
            "active": true,
            "largest": 18_446_744_073_709_551_615_u64,
            "beyond_f64": 9_007_199_254_740_993_u64,
            "by_position": {"0": "zero as a key"}
        }
    })
}

fn passes(filter: Value) -> bool {
    PayloadFilter::parse(&filter)
        .expect("a valid filter")
        .matches(&event())
}

fn refusal(filter: Value) -> FilterError {
    PayloadFilter::parse(&filter).expect_err("a refused filter")
}

fn message(filter: Value) -> String {
    refusal(filter).to_string()
}

#[test]
fn literals_are_equality() {
    assert!(passes(json!({"type": "balance.credit_points_issued"})));
    assert!(!passes(json!({"type": "trigger_event.created"})));
    assert!(passes(json!({"data.points": 150})));
    assert!(passes(json!({"data.points": 150.0})));
    assert!(!passes(json!({"data.points": "150"})));
    assert!(passes(json!({"data.active": true})));
    assert!(!passes(json!({"data.active": false})));
    assert!(passes(json!({"data.note": null})));
    assert!(
        !passes(json!({"data.missing": null})),
        "null is a value, not a missing path"
    );
}

#[test]
fn composite_literals_are_json_equality_with_numbers_by_value() {
    assert!(passes(
        json!({"data.trigger": {"name": "Sign-up", "id": "signup"}})
    ));
    assert!(!passes(json!({"data.trigger": {"id": "signup"}})));
    assert!(passes(json!({"data.tags": ["new", "vip"]})));
    assert!(!passes(json!({"data.tags": ["vip", "new"]})));
    assert!(
        !passes(json!({"data.tags": "new"})),
        "no implicit element match"
    );
    let event = json!({"data": {"sizes": [1, {"w": 2}]}});
    let filter = PayloadFilter::parse(&json!({"data.sizes": [1.0, {"w": 2.0}]})).expect("valid");
    assert!(filter.matches(&event));
    let empty_object = PayloadFilter::parse(&json!({"data.x": {}})).expect("valid");
    assert!(empty_object.matches(&json!({"data": {"x": {}}})));
    assert!(!empty_object.matches(&json!({"data": {"x": {"a": 1}}})));
}

#[test]
fn several_keys_must_all_hold_and_an_empty_filter_passes_everything() {
    assert!(passes(
        json!({"type": "balance.credit_points_issued", "data.points": {"$gte": 100}})
    ));
    assert!(!passes(
        json!({"type": "balance.credit_points_issued", "data.points": {"$gte": 200}})
    ));
    assert!(passes(json!({})));
    assert!(passes(json!({"data.points": {"$gt": 100, "$lt": 200}})));
    assert!(!passes(json!({"data.points": {"$gt": 100, "$lt": 150}})));
}

#[test]
fn eq_and_ne() {
    assert!(passes(json!({"data.user_id": {"$eq": "user_42"}})));
    assert!(!passes(json!({"data.user_id": {"$eq": "user_43"}})));
    assert!(passes(json!({"data.user_id": {"$ne": "user_43"}})));
    assert!(!passes(json!({"data.user_id": {"$ne": "user_42"}})));
    assert!(
        passes(json!({"data.points": {"$ne": "150"}})),
        "types differ, so unequal"
    );
    assert!(passes(json!({"data.missing": {"$ne": 1}})));
    assert!(!passes(json!({"data.missing": {"$eq": 1}})));
    let dollar_object = json!({"data": {"query": {"$gt": 1}}});
    let filter = PayloadFilter::parse(&json!({"data.query": {"$eq": {"$gt": 1}}})).expect("valid");
    assert!(
        filter.matches(&dollar_object),
        "$eq matches objects with $ keys literally"
    );
}

#[test]
fn ordering_of_numbers() {
    assert!(passes(json!({"data.points": {"$gt": 149}})));
    assert!(!passes(json!({"data.points": {"$gt": 150}})));
    assert!(passes(json!({"data.points": {"$gte": 150.0}})));
    assert!(!passes(json!({"data.points": {"$gte": 150.5}})));
    assert!(passes(json!({"data.points": {"$lt": 150.5}})));
    assert!(!passes(json!({"data.points": {"$lt": 150}})));
    assert!(passes(json!({"data.points": {"$lte": 150}})));
    assert!(!passes(json!({"data.points": {"$lte": -1}})));
    assert!(passes(json!({"data.ratio": {"$gt": 0, "$lt": 1}})));
}

#[test]
fn big_integers_are_not_rounded() {
    // 2^64 as a float is above u64::MAX, though the nearest f64 to u64::MAX is 2^64.
    assert!(passes(
        json!({"data.largest": {"$lt": 18_446_744_073_709_551_616.0_f64}})
    ));
    assert!(!passes(
        json!({"data.largest": 18_446_744_073_709_551_616.0_f64})
    ));
    assert!(passes(
        json!({"data.largest": 18_446_744_073_709_551_615_u64})
    ));
    // 2^53 + 1 is above the float 2^53 it would round to.
    assert!(passes(
        json!({"data.beyond_f64": {"$gt": 9_007_199_254_740_992.0_f64}})
    ));
    assert!(!passes(
        json!({"data.beyond_f64": {"$eq": 9_007_199_254_740_992_u64}})
    ));
    assert!(passes(
        json!({"data.points": {"$gt": -9_223_372_036_854_775_808_i64}})
    ));
}

#[test]
fn ordering_of_strings_is_by_bytes() {
    assert!(passes(json!({"data.user_id": {"$gt": "user_4"}})));
    assert!(!passes(json!({"data.user_id": {"$gt": "user_5"}})));
    assert!(passes(json!({"data.user_id": {"$lt": "user_a"}})));
    assert!(passes(
        json!({"time": {"$gte": "2026-01-01T00:00:00Z", "$lt": "2026-02-01"}})
    ));
    assert!(
        passes(json!({"data.user_id": {"$lt": "é"}})),
        "é's bytes come after ASCII"
    );
    assert!(
        !passes(json!({"data.user_id": {"$lt": "User"}})),
        "upper case sorts first"
    );
}

#[test]
fn types_never_compare() {
    assert!(!passes(json!({"data.user_id": {"$gt": 5}})));
    assert!(!passes(json!({"data.user_id": {"$lt": 5}})));
    assert!(!passes(json!({"data.points": {"$gt": "1"}})));
    assert!(!passes(json!({"data.points": {"$lte": "999"}})));
    assert!(!passes(json!({"data.active": {"$gte": 0}})));
    assert!(!passes(json!({"data.note": {"$lte": 0}})));
    assert!(!passes(json!({"data.tags": {"$gt": "a"}})));
    assert!(!passes(json!({"data.trigger": {"$gt": "a"}})));
    assert!(!passes(json!({"data.active": 1})));
}

#[test]
fn in_and_nin() {
    assert!(passes(
        json!({"type": {"$in": ["a", "balance.credit_points_issued"]}})
    ));
    assert!(!passes(json!({"type": {"$in": ["a", "b"]}})));
    assert!(passes(json!({"data.points": {"$in": [1, 150.0]}})));
    assert!(!passes(json!({"data.points": {"$in": []}})));
    assert!(passes(json!({"type": {"$nin": ["a", "b"]}})));
    assert!(!passes(
        json!({"type": {"$nin": ["balance.credit_points_issued"]}})
    ));
    assert!(passes(json!({"data.points": {"$nin": []}})));
    assert!(passes(json!({"data.tags": {"$in": [["new", "vip"]]}})));
    assert!(!passes(json!({"data.missing": {"$in": [null]}})));
    assert!(passes(json!({"data.missing": {"$nin": [null, 1]}})));
}

#[test]
fn exists() {
    assert!(passes(json!({"data.points": {"$exists": true}})));
    assert!(!passes(json!({"data.points": {"$exists": false}})));
    assert!(passes(json!({"data.missing": {"$exists": false}})));
    assert!(!passes(json!({"data.missing": {"$exists": true}})));
    assert!(
        passes(json!({"data.note": {"$exists": true}})),
        "null exists"
    );
    assert!(passes(json!({"data.points.deeper": {"$exists": false}})));
}

#[test]
fn starts_with() {
    assert!(passes(json!({"type": {"$startsWith": "balance."}})));
    assert!(!passes(json!({"type": {"$startsWith": "trigger_event."}})));
    assert!(passes(json!({"type": {"$startsWith": ""}})));
    assert!(
        !passes(json!({"data.points": {"$startsWith": "1"}})),
        "strings only"
    );
    assert!(!passes(json!({"data.missing": {"$startsWith": ""}})));
}

#[test]
fn a_missing_path_passes_only_the_negative_checks() {
    let missing = |condition: Value| passes(json!({"data.nothing.here": condition}));
    for failing in [
        json!("x"),
        json!(null),
        json!({"$eq": null}),
        json!({"$gt": 0}),
        json!({"$gte": ""}),
        json!({"$lt": 0}),
        json!({"$lte": ""}),
        json!({"$in": [null]}),
        json!({"$exists": true}),
        json!({"$startsWith": ""}),
        json!({"$not": {"$exists": false}}),
    ] {
        assert!(!missing(failing.clone()), "{failing} passed a missing path");
    }
    for passing in [
        json!({"$ne": null}),
        json!({"$nin": [null]}),
        json!({"$exists": false}),
        json!({"$not": {"$gt": 0}}),
        json!({"$not": 1}),
        json!({"$or": [{"$gt": 0}, {"$exists": false}]}),
    ] {
        assert!(missing(passing.clone()), "{passing} failed a missing path");
    }
}

#[test]
fn logic_at_the_top() {
    assert!(passes(
        json!({"$and": [{"type": {"$startsWith": "balance."}}, {"data.points": 150}]})
    ));
    assert!(!passes(
        json!({"$and": [{"type": {"$startsWith": "balance."}}, {"data.points": 1}]})
    ));
    assert!(passes(
        json!({"$or": [{"data.points": 1}, {"data.user_id": "user_42"}]})
    ));
    assert!(!passes(
        json!({"$or": [{"data.points": 1}, {"data.user_id": "user_1"}]})
    ));
    assert!(passes(json!({"$not": {"type": "trigger_event.created"}})));
    assert!(!passes(
        json!({"$not": {"type": "balance.credit_points_issued"}})
    ));
    assert!(
        !passes(json!({"$not": {}})),
        "{{}} passes everything, so its negation nothing"
    );
    assert!(passes(json!({
        "$or": [
            {"$and": [{"data.points": {"$gt": 1000}}, {"data.active": true}]},
            {"$not": {"data.trigger.id": {"$ne": "signup"}}}
        ],
        "type": {"$ne": "webhook.disabled"}
    })));
}

#[test]
fn logic_at_a_path() {
    assert!(passes(
        json!({"data.points": {"$and": [{"$gt": 100}, {"$lt": 200}]}})
    ));
    assert!(!passes(
        json!({"data.points": {"$and": [{"$gt": 100}, {"$lt": 120}]}})
    ));
    assert!(passes(json!({"data.points": {"$or": [{"$lt": 10}, 150]}})));
    assert!(!passes(
        json!({"data.points": {"$or": [{"$lt": 10}, {"$gt": 1000}]}})
    ));
    assert!(passes(json!({"data.points": {"$not": {"$lt": 100}}})));
    assert!(!passes(json!({"data.points": {"$not": 150}})));
    assert!(passes(
        json!({"data.points": {"$not": {"$or": [1, 2, {"$not": {"$gt": 0}}]}}})
    ));
}

#[test]
fn numeric_segments_index_arrays() {
    assert!(passes(json!({"data.tags.0": "new"})));
    assert!(passes(json!({"data.tags.1": {"$startsWith": "v"}})));
    assert!(!passes(json!({"data.tags.1": "new"})));
    assert!(passes(json!({"data.tags.2": {"$exists": false}})));
    assert!(
        passes(json!({"data.tags.01": {"$exists": false}})),
        "not a canonical position"
    );
    assert!(passes(json!({"data.tags.first": {"$exists": false}})));
    assert!(passes(
        json!({"data.tags.99999999999999999999999": {"$exists": false}})
    ));
    assert!(
        passes(json!({"data.by_position.0": "zero as a key"})),
        "objects by key"
    );
    assert!(
        passes(json!({"data.points.0": {"$exists": false}})),
        "scalars have no members"
    );
    let nested = json!({"data": {"rows": [[1, 2], {"cells": [{"v": "x"}]}]}});
    let filter = PayloadFilter::parse(&json!({"data.rows.0.1": 2, "data.rows.1.cells.0.v": "x"}))
        .expect("valid");
    assert!(filter.matches(&nested));
}

#[test]
fn the_filter_is_kept_as_given() {
    let given = json!({"data.points": {"$gte": 100.0}, "type": "balance.credit_points_issued"});
    let filter = PayloadFilter::parse(&given).expect("valid");
    assert_eq!(filter.as_json(), &given);
    assert_eq!(filter, PayloadFilter::parse(&given).expect("valid"));
    assert_ne!(filter, PayloadFilter::parse(&json!({})).expect("valid"));
}

#[test]
fn a_filter_is_an_object() {
    for not_an_object in [json!(null), json!([]), json!("type"), json!(1), json!(true)] {
        assert_eq!(message(not_an_object), "a filter must be a JSON object");
    }
    assert_eq!(
        message(json!({"$and": [{}, []]})),
        "$and[1]: a filter must be a JSON object"
    );
    assert_eq!(
        message(json!({"$not": "x"})),
        "$not takes a filter (a JSON object)"
    );
}

#[test]
fn size_limit_counts_compact_json() {
    // `{"type":"` + text + `"}`
    let fitting = "x".repeat(MAX_FILTER_BYTES - 11);
    assert!(PayloadFilter::parse(&json!({"type": fitting})).is_ok());
    let over = "x".repeat(MAX_FILTER_BYTES - 10);
    assert_eq!(
        message(json!({"type": over})),
        "the filter is larger than 4096 bytes as compact JSON"
    );
    // Checked before anything else: this is not even an object.
    assert_eq!(
        refusal(json!(["x".repeat(MAX_FILTER_BYTES)])).problem(),
        &Problem::TooLarge
    );
}

#[test]
fn depth_limit_counts_objects_and_arrays() {
    // Levels: filter, operators, then six arrays.
    assert!(PayloadFilter::parse(&json!({"data.x": {"$in": [[[[[[1]]]]]]}})).is_ok());
    assert_eq!(
        message(json!({"data.x": {"$in": [[[[[[[1]]]]]]]}})),
        "the filter nests objects and arrays more than 8 levels deep"
    );
    assert_eq!(
        refusal(json!([[[[[[[[["$not an object, and unknown"]]]]]]]]])).problem(),
        &Problem::TooDeep
    );
    let mut deep = json!({});
    for _ in 0..7 {
        deep = json!({"$not": deep});
    }
    assert!(PayloadFilter::parse(&deep).is_ok());
    assert_eq!(refusal(json!({"$not": deep})).problem(), &Problem::TooDeep);
}

#[test]
fn operands_of_the_wrong_type() {
    for operator in ["$gt", "$gte", "$lt", "$lte"] {
        for operand in [json!(true), json!(null), json!([1]), json!({"a": 1})] {
            assert_eq!(
                message(json!({"data.points": {operator: operand}})),
                format!("data.points: {operator} takes a number or a string")
            );
        }
    }
    for operator in ["$in", "$nin"] {
        assert_eq!(
            message(json!({"type": {operator: "a"}})),
            format!("type: {operator} takes an array")
        );
    }
    assert_eq!(
        message(json!({"data.x": {"$exists": 1}})),
        "data.x: $exists takes true or false"
    );
    assert_eq!(
        message(json!({"type": {"$startsWith": 1}})),
        "type: $startsWith takes a string"
    );
    for operator in ["$and", "$or"] {
        for operand in [json!([]), json!({}), json!("x")] {
            assert_eq!(
                message(json!({operator: operand})),
                format!("{operator} takes a non-empty array of filters")
            );
            assert_eq!(
                message(json!({"data.points": {operator: operand}})),
                format!("data.points: {operator} takes a non-empty array of conditions")
            );
        }
    }
}

#[test]
fn unknown_and_misplaced_operators() {
    assert_eq!(
        message(json!({"type": {"$regex": "^a"}})),
        "type: unknown operator $regex; the operators are $eq, $ne, $gt, $gte, $lt, $lte, $in, \
         $nin, $exists, $startsWith, $and, $or and $not"
    );
    assert_eq!(
        refusal(json!({"$nor": []})).problem(),
        &Problem::UnknownOperator("$nor".to_owned())
    );
    assert_eq!(
        message(json!({"$gte": 100})),
        "$gte tests a path's value, so it goes under a path: {\"data.points\": {\"$gte\": ...}}"
    );
}

#[test]
fn operators_and_plain_keys_do_not_mix() {
    assert_eq!(
        message(json!({"data.trigger": {"id": "signup", "$exists": true}})),
        "data.trigger: an object cannot mix operators ($...) and plain keys; to match an object \
         exactly, give it without operators or under $eq"
    );
}

#[test]
fn empty_path_segments() {
    for path in ["data..points", ".type", "type.", "."] {
        assert_eq!(
            message(json!({path: 1})),
            format!(
                "{path}: a path cannot have an empty segment (two dots in a row, or a dot at \
                 either end)"
            )
        );
    }
    assert_eq!(refusal(json!({"": 1})).place(), "\"\"");
}

#[test]
fn messages_name_the_place_through_logic() {
    assert_eq!(
        message(json!({"$or": [{"type": "a"}, {"data.points": {"$gt": null}}]})),
        "$or[1].data.points: $gt takes a number or a string"
    );
    assert_eq!(
        message(json!({"$not": {"$and": [{"data.x": {"$in": 1}}]}})),
        "$not.$and[0].data.x: $in takes an array"
    );
    assert_eq!(
        message(json!({"data.points": {"$or": [1, {"$lt": true}]}})),
        "data.points.$or[1]: $lt takes a number or a string"
    );
    assert_eq!(
        message(json!({"data.points": {"$not": {"$foo": 1}}})),
        "data.points.$not: unknown operator $foo; the operators are $eq, $ne, $gt, $gte, $lt, \
         $lte, $in, $nin, $exists, $startsWith, $and, $or and $not"
    );
}
