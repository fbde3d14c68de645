//! Property tests of `reward_core::filter`: whatever JSON a customer sends, parsing never panics
//! and whatever it accepts stays within the limits; and the operators keep the algebra the module
//! doc promises (`$not` inverts, `$in [x]` is `$eq x`, `$nin` is not `$in` where the path exists,
//! every two numbers or two strings are ordered, values of different types never are).

use proptest::prelude::*;
use reward_core::filter::{PayloadFilter, MAX_FILTER_BYTES, MAX_FILTER_DEPTH};
use serde_json::{json, Map, Number, Value};

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

/// Numbers that often collide across representations (`1`, `1.0`), and the extremes.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-3_i64..=3).prop_map(|n| json!(n)),
        (-6_i32..=6).prop_map(|halves| json!(f64::from(halves) / 2.0)),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter_map("JSON numbers are finite", |f| {
            Number::from_f64(f).map(Value::Number)
        }),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["", "a", "ab", "b", "B", "é", "$eq", "0", "1"])
            .prop_map(str::to_owned),
        "\\PC{0,6}",
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        text().prop_map(Value::String),
    ]
}

/// Keys that paths below reach, so that generated events and filters meet.
fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "0", "1", "$eq", "$x"]).prop_map(str::to_owned)
}

fn any_json() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..4)
                .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A scalar, or an array or object of scalars: operands that leave room under the depth limit.
fn shallow_json() -> impl Strategy<Value = Value> {
    prop_oneof![
        scalar(),
        prop::collection::vec(scalar(), 0..3).prop_map(Value::Array),
        prop::collection::vec((key(), scalar()), 0..3)
            .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
    ]
}

fn event() -> impl Strategy<Value = Value> {
    (scalar(), any_json())
        .prop_map(|(kind, data)| json!({"id": "evt_1", "type": kind, "data": data}))
}

fn path() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "type",
        "data",
        "data.a",
        "data.b",
        "data.0",
        "data.1",
        "data.a.a",
        "data.a.0",
        "data.0.b",
        "data.$x",
        "missing",
        "data.missing.deeper",
    ])
    .prop_map(str::to_owned)
}

/// A literal a path's value may be tested against: its outer object has no `$` keys.
fn literal() -> impl Strategy<Value = Value> {
    shallow_json().prop_filter("an operator object is not a literal", |value| match value {
        Value::Object(members) => !members.keys().any(|key| key.starts_with('$')),
        _ => true,
    })
}

fn bound() -> impl Strategy<Value = Value> {
    prop_oneof![number(), text().prop_map(Value::String)]
}

/// A valid condition on a path's value, with one level of `$and` / `$or` / `$not`, so that a
/// filter of one path, wrapped once more in `$and`, stays within the depth limit.
fn condition() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        literal(),
        shallow_json().prop_map(|value| json!({"$eq": value})),
        shallow_json().prop_map(|value| json!({"$ne": value})),
        (
            prop::sample::select(vec!["$gt", "$gte", "$lt", "$lte"]),
            bound()
        )
            .prop_map(|(operator, bound)| json!({operator: bound})),
        prop::collection::vec(scalar(), 0..3).prop_map(|list| json!({"$in": list})),
        prop::collection::vec(scalar(), 0..3).prop_map(|list| json!({"$nin": list})),
        any::<bool>().prop_map(|expected| json!({"$exists": expected})),
        text().prop_map(|prefix| json!({"$startsWith": prefix})),
    ];
    leaf.prop_recursive(1, 6, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..3).prop_map(|all| json!({"$and": all})),
            prop::collection::vec(inner.clone(), 1..3).prop_map(|any| json!({"$or": any})),
            inner.prop_map(|negated| json!({"$not": negated})),
        ]
    })
}

fn matches(filter: &Value, event: &Value) -> bool {
    PayloadFilter::parse(filter)
        .expect("a valid filter")
        .matches(event)
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(members) => 1 + members.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Anything, weighted towards what looks like a filter.
fn filter_like() -> impl Strategy<Value = Value> {
    prop_oneof![
        any_json(),
        (path(), condition()).prop_map(|(path, condition)| json!({path: condition})),
        (path(), any_json()).prop_map(|(path, anything)| json!({path: anything})),
        prop::collection::vec((path(), any_json()), 0..3).prop_map(|clauses| {
            let filters: Vec<Value> = clauses
                .into_iter()
                .map(|(path, value)| json!({path: value}))
                .collect();
            json!({"$or": filters})
        }),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn parsing_never_panics_and_accepted_filters_keep_the_limits(
        filter in filter_like(),
        event in event(),
    ) {
        if let Ok(parsed) = PayloadFilter::parse(&filter) {
            prop_assert!(filter.is_object());
            prop_assert_eq!(parsed.as_json(), &filter);
            prop_assert!(depth(&filter) <= MAX_FILTER_DEPTH);
            let size = serde_json::to_vec(&filter).expect("serializable").len();
            prop_assert!(size <= MAX_FILTER_BYTES);
            parsed.matches(&event);
        }
    }

    #[test]
    fn every_generated_condition_is_valid(path in path(), condition in condition()) {
        let filter = json!({path: condition});
        prop_assert!(PayloadFilter::parse(&filter).is_ok(), "refused {}", filter);
    }

    #[test]
    fn not_inverts_a_condition(path in path(), condition in condition(), event in event()) {
        prop_assert_eq!(
            matches(&json!({&path: {"$not": &condition}}), &event),
            !matches(&json!({&path: &condition}), &event)
        );
    }

    #[test]
    fn not_inverts_a_filter(path in path(), condition in condition(), event in event()) {
        let filter = json!({path: condition});
        prop_assert_eq!(matches(&json!({"$not": &filter}), &event), !matches(&filter, &event));
    }

    #[test]
    fn and_or_of_one_filter_are_that_filter(
        path in path(), condition in condition(), event in event(),
    ) {
        let filter = json!({&path: &condition});
        let alone = matches(&filter, &event);
        prop_assert_eq!(matches(&json!({"$and": [&filter]}), &event), alone);
        prop_assert_eq!(matches(&json!({"$or": [&filter]}), &event), alone);
        prop_assert_eq!(matches(&json!({&path: {"$and": [&condition]}}), &event), alone);
        prop_assert_eq!(matches(&json!({&path: {"$or": [&condition]}}), &event), alone);
    }

    #[test]
    fn in_one_value_is_eq_and_ne_is_not_eq(path in path(), value in any_json(), event in event()) {
        let equal = matches(&json!({&path: {"$eq": &value}}), &event);
        prop_assert_eq!(matches(&json!({&path: {"$in": [&value]}}), &event), equal);
        prop_assert_eq!(matches(&json!({&path: {"$ne": &value}}), &event), !equal);
    }

    #[test]
    fn a_literal_is_eq(path in path(), value in literal(), event in event()) {
        prop_assert_eq!(
            matches(&json!({&path: &value}), &event),
            matches(&json!({&path: {"$eq": &value}}), &event)
        );
    }

    #[test]
    fn nin_is_not_in_where_the_path_exists(
        path in path(),
        list in prop::collection::vec(any_json(), 0..4),
        event in event(),
    ) {
        let exists = matches(&json!({&path: {"$exists": true}}), &event);
        let is_in = matches(&json!({&path: {"$in": &list}}), &event);
        let not_in = matches(&json!({&path: {"$nin": &list}}), &event);
        if exists {
            prop_assert_eq!(not_in, !is_in);
        } else {
            prop_assert!(not_in && !is_in);
        }
    }

    #[test]
    fn two_numbers_or_two_strings_are_ordered_one_way(
        (value, bound) in prop_oneof![
            (number(), number()),
            (text().prop_map(Value::String), text().prop_map(Value::String)),
        ],
    ) {
        let event = json!({"data": {"x": value}});
        let holds = |operator: &str| matches(&json!({"data.x": {operator: &bound}}), &event);
        let (less, equal, greater) = (holds("$lt"), holds("$eq"), holds("$gt"));
        prop_assert_eq!(u8::from(less) + u8::from(equal) + u8::from(greater), 1);
        prop_assert_eq!(holds("$lte"), less || equal);
        prop_assert_eq!(holds("$gte"), greater || equal);
    }

    #[test]
    fn integers_compare_exactly(a in any::<i64>(), b in any::<u64>()) {
        let event = json!({"data": {"x": a}});
        let holds = |operator: &str| matches(&json!({"data.x": {operator: b}}), &event);
        prop_assert_eq!(holds("$lt"), i128::from(a) < i128::from(b));
        prop_assert_eq!(holds("$eq"), i128::from(a) == i128::from(b));
    }

    #[test]
    fn integers_and_floats_compare_exactly(
        (integer, float) in any::<i64>().prop_flat_map(|integer| {
            let near = integer as f64;
            (
                Just(integer),
                prop_oneof![
                    Just(near),
                    Just(near + 0.5),
                    Just(near - 0.5),
                    (-4_i32..=4).prop_map(|halves| f64::from(halves) / 2.0),
                    any::<f64>().prop_filter("JSON numbers are finite", |f| f.is_finite()),
                ],
            )
        }),
    ) {
        // Floats with a fraction are below 2^52, so their floor fits an i64 exactly; integral
        // floats within ±2^63 convert exactly.
        const TWO_TO_63: f64 = 9_223_372_036_854_775_808.0;
        let expected = if float >= TWO_TO_63 {
            std::cmp::Ordering::Less
        } else if float < -TWO_TO_63 {
            std::cmp::Ordering::Greater
        } else if float.fract() == 0.0 {
            integer.cmp(&(float as i64))
        } else if integer <= float.floor() as i64 {
            std::cmp::Ordering::Less
        } else {
            std::cmp::Ordering::Greater
        };
        let event = json!({"data": {"x": integer}});
        let holds = |operator: &str| matches(&json!({"data.x": {operator: float}}), &event);
        prop_assert_eq!(holds("$lt"), expected == std::cmp::Ordering::Less);
        prop_assert_eq!(holds("$eq"), expected == std::cmp::Ordering::Equal);
        prop_assert_eq!(holds("$gt"), expected == std::cmp::Ordering::Greater);
    }

    #[test]
    fn values_of_different_types_are_never_ordered(value in any_json(), bound in bound()) {
        let same_type = matches!(
            (&value, &bound),
            (Value::Number(_), Value::Number(_)) | (Value::String(_), Value::String(_))
        );
        prop_assume!(!same_type);
        let event = json!({"data": {"x": value}});
        for operator in ["$gt", "$gte", "$lt", "$lte"] {
            let filter = json!({"data.x": {operator: &bound}});
            prop_assert!(!matches(&filter, &event), "{} passed {}", filter, event);
        }
    }
}
