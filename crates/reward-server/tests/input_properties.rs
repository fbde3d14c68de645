//! Property tests of the API's own readers of untrusted input: request bodies
//! (`api::input::JsonObject`, which every handler reads its body with) and list parameters
//! (`api::extract::QueryParams::page`, which decodes `?cursor=` and `?limit=`).
//!
//! Whatever the bytes, a reader never panics and either gives a value of the asked type or a
//! typed `ApiError`: a 4xx status, a snake_case code, a message, and the field at fault. The
//! whole path through the handlers is driven over HTTP in `crates/reward/tests/it/fuzzing.rs`.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use proptest::prelude::*;
use reward_server::api::error::ApiError;
use reward_server::api::extract::{ListBody, QueryParams};
use reward_server::api::input::JsonObject;
use reward_store::records::Page;
use serde_json::{Map, Value};

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        // Whole numbers written as floats (5.0), which count as whole numbers.
        any::<i32>().prop_map(|n| Value::from(f64::from(n))),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..4)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// Field names: the ones handlers ask for, and others.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("name".to_owned()),
        Just("url".to_owned()),
        Just("events".to_owned()),
        Just("enabled".to_owned()),
        Just("credit_points".to_owned()),
        Just("per_unit".to_owned()),
        Just("points".to_owned()),
        ".{0,8}",
    ]
}

/// Bytes that are sometimes JSON, sometimes almost, sometimes noise.
fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any_json().prop_map(|value| value.to_string().into_bytes()),
        any_json().prop_map(|value| {
            let mut bytes = value.to_string().into_bytes();
            bytes.truncate(bytes.len() / 2);
            bytes
        }),
        prop::collection::vec(any::<u8>(), 0..64),
        "[\\[\\]{}\":,0-9a-z .eE+-]{0,40}".prop_map(String::into_bytes),
    ]
}

/// The documented error shape, checked on the rendered response:
/// `{"error": {"code": snake_case, "message": text, "field"?: text}}` with a 4xx status.
fn assert_error_shape(error: ApiError) -> Result<(), TestCaseError> {
    let status = error.status;
    prop_assert!(status.is_client_error(), "status {}", status);
    let response = error.into_response();
    prop_assert_eq!(response.status(), status);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let bytes = runtime
        .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
        .expect("body");
    let body: Value = serde_json::from_slice(&bytes).expect("a JSON body");
    prop_assert_eq!(body.as_object().map(Map::len), Some(1));
    let error = body["error"].as_object().expect("{\"error\": {...}}");
    let code = error["code"].as_str().expect("code");
    let snake_case = !code.is_empty()
        && code
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte == b'_');
    prop_assert!(snake_case, "code {:?}", code);
    prop_assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    prop_assert!(error.get("field").is_none_or(Value::is_string));
    let known_keys = error
        .keys()
        .all(|key| matches!(key.as_str(), "code" | "message" | "field"));
    prop_assert!(known_keys, "{:?}", error);
    Ok(())
}

/// JSON as written, every key of an object kept (serde_json's `Value` keeps the last of a key
/// named twice): the oracle for duplicate keys.
enum Tree {
    Leaf,
    Array(Vec<Tree>),
    Object(Vec<(String, Tree)>),
}

impl Tree {
    fn repeats_a_key(&self) -> bool {
        match self {
            Tree::Leaf => false,
            Tree::Array(items) => items.iter().any(Tree::repeats_a_key),
            Tree::Object(entries) => {
                let mut keys: Vec<&str> = entries.iter().map(|(key, _)| key.as_str()).collect();
                keys.sort_unstable();
                keys.windows(2).any(|pair| pair[0] == pair[1])
                    || entries.iter().any(|(_, value)| value.repeats_a_key())
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for Tree {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TreeVisitor;
        impl<'de> serde::de::Visitor<'de> for TreeVisitor {
            type Value = Tree;
            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("JSON")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Tree, E> {
                Ok(Tree::Leaf)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Tree, E> {
                Ok(Tree::Leaf)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Tree, E> {
                Ok(Tree::Leaf)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Tree, E> {
                Ok(Tree::Leaf)
            }
            fn visit_str<E>(self, _: &str) -> Result<Tree, E> {
                Ok(Tree::Leaf)
            }
            fn visit_unit<E>(self) -> Result<Tree, E> {
                Ok(Tree::Leaf)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Tree::Array(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Tree::Object(entries))
            }
        }
        deserializer.deserialize_any(TreeVisitor)
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_key_named_twice_is_refused_naming_its_path(
        fields in prop::collection::btree_map(field_name(), any_json(), 1..6),
        pick in any::<prop::sample::Index>(),
        nest in any::<bool>(),
    ) {
        let keys: Vec<&String> = fields.keys().collect();
        let key = keys[pick.index(keys.len())].clone();
        let object = Value::Object(fields.into_iter().collect()).to_string();
        // The same key again at the end of the object: `{..., "key": 0}`.
        let repeated = format!("{}, {}: 0}}", &object[..object.len() - 1], Value::from(key.clone()));
        let (body, path) = if nest {
            (format!("{{\"credit_points\": {repeated}}}"), format!("credit_points.{key}"))
        } else {
            (repeated, key)
        };
        let error = JsonObject::parse(body.as_bytes()).err().expect("refused");
        prop_assert_eq!(error.status, StatusCode::BAD_REQUEST);
        prop_assert_eq!(error.code, "duplicate_key");
        prop_assert_eq!(error.field.as_deref(), Some(path.as_str()));
        assert_error_shape(error)?;
    }

    #[test]
    fn bodies_parse_exactly_when_they_are_json_objects(bytes in body_bytes()) {
        let expected = serde_json::from_slice::<Value>(&bytes).ok();
        let repeats_a_key = serde_json::from_slice::<Tree>(&bytes).is_ok_and(|tree| tree.repeats_a_key());
        match JsonObject::parse(&bytes) {
            Ok(_) => {
                prop_assert!(matches!(expected, Some(Value::Object(_))));
                prop_assert!(!repeats_a_key);
            }
            Err(error) => {
                match &expected {
                    Some(_) if repeats_a_key => {
                        prop_assert_eq!(error.status, StatusCode::BAD_REQUEST);
                        prop_assert_eq!(error.code, "duplicate_key");
                    }
                    None => {
                        prop_assert_eq!(error.status, StatusCode::BAD_REQUEST);
                        prop_assert_eq!(error.code, "invalid_json");
                    }
                    Some(Value::Object(_)) => prop_assert!(false, "refused an object"),
                    Some(_) => {
                        prop_assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY);
                        prop_assert_eq!(error.code, "invalid_type");
                    }
                }
                assert_error_shape(error)?;
            }
        }
    }

    #[test]
    fn fields_read_as_their_type_or_name_the_fault(
        fields in prop::collection::btree_map(field_name(), any_json(), 0..6),
        name in field_name(),
    ) {
        let body = Value::Object(fields.clone().into_iter().collect()).to_string();
        let value = fields.get(&name);
        let fresh = || JsonObject::parse(body.as_bytes()).expect("an object");
        let fault = |error: ApiError, codes: &[&str]| -> Result<(), TestCaseError> {
            prop_assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY);
            prop_assert!(codes.contains(&error.code), "code {}", error.code);
            prop_assert_eq!(error.field.as_deref(), Some(name.as_str()));
            assert_error_shape(error)
        };
        let missing_or_wrong = ["missing_field", "invalid_type"];

        match (fresh().string(&name), value) {
            (Ok(text), Some(Value::String(expected))) => prop_assert_eq!(&text, expected),
            (Ok(_), _) => prop_assert!(false, "string from {:?}", value),
            (Err(error), _) => fault(error, &missing_or_wrong)?,
        }
        match (fresh().optional_string(&name), value) {
            (Ok(None), None | Some(Value::Null)) => {}
            (Ok(Some(text)), Some(Value::String(expected))) => prop_assert_eq!(&text, expected),
            (Ok(_), _) => prop_assert!(false, "optional string from {:?}", value),
            (Err(error), _) => fault(error, &missing_or_wrong)?,
        }
        match (fresh().bool_if_present(&name), value) {
            (Ok(None), None) => {}
            (Ok(Some(flag)), Some(Value::Bool(expected))) => prop_assert_eq!(flag, *expected),
            (Ok(_), _) => prop_assert!(false, "bool from {:?}", value),
            (Err(error), _) => fault(error, &missing_or_wrong)?,
        }
        match (fresh().string_list(&name), value) {
            (Ok(list), Some(Value::Array(items))) => {
                let expected: Vec<Value> = list.into_iter().map(Value::String).collect();
                prop_assert_eq!(&expected, items);
            }
            (Ok(_), _) => prop_assert!(false, "list from {:?}", value),
            (Err(error), _) => fault(error, &missing_or_wrong)?,
        }
        match (fresh().integer(&name), value) {
            (Ok(number), Some(Value::Number(expected))) => {
                // An integer, or a float with no fraction that an i64 holds (JSON Schema's integer).
                let whole = expected.as_i64().or_else(|| {
                    expected
                        .as_f64()
                        .filter(|float| float.fract() == 0.0)
                        .filter(|float| (-(2_f64.powi(63))..2_f64.powi(63)).contains(float))
                        .map(|float| float as i64)
                });
                prop_assert_eq!(Some(number), whole);
            }
            (Ok(_), _) => prop_assert!(false, "integer from {:?}", value),
            (Err(error), _) => fault(error, &missing_or_wrong)?,
        }
        match (fresh().optional_number(&name), value) {
            (Ok(None), None | Some(Value::Null)) => {}
            (Ok(Some(number)), Some(Value::Number(expected))) => prop_assert_eq!(&number, expected),
            (Ok(_), _) => prop_assert!(false, "number from {:?}", value),
            (Err(error), _) => fault(error, &missing_or_wrong)?,
        }
        match (fresh().optional_object(&name), value) {
            (Ok(None), None | Some(Value::Null)) => {}
            (Ok(Some(nested)), Some(Value::Object(inner))) => {
                // A nested field's faults name its whole path.
                if let Err(error) = nested.only(&[]) {
                    prop_assert!(!inner.is_empty());
                    prop_assert_eq!(error.code, "unknown_field");
                    let field = error.field.clone().unwrap_or_default();
                    prop_assert!(field.starts_with(&format!("{name}.")), "{}", field);
                    assert_error_shape(error)?;
                }
            }
            (Ok(_), _) => prop_assert!(false, "object from {:?}", value),
            (Err(error), _) => fault(error, &missing_or_wrong)?,
        }
        match fresh().only(&[name.as_str()]) {
            Ok(()) => prop_assert!(fields.keys().all(|key| *key == name)),
            Err(error) => {
                prop_assert_eq!(error.code, "unknown_field");
                let field = error.field.clone().unwrap_or_default();
                prop_assert!(fields.contains_key(&field) && field != name, "{}", field);
                assert_error_shape(error)?;
            }
        }
    }
}

fn query(pairs: &[(&str, &str)]) -> QueryParams {
    QueryParams(
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect::<HashMap<_, _>>(),
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn cursors_round_trip(store_cursor in prop_oneof![
        "(wh|we|dl)_[0-9a-z]{26}",
        "-?[0-9]{1,19}:[A-Za-z0-9_.:-]{1,100}",
        any::<String>(),
    ]) {
        // What the API hands out as next_cursor comes back to the store as the store made it.
        let page = Page::<()> { items: Vec::new(), next_cursor: Some(store_cursor.clone()) };
        let shown = ListBody::from_page(page, |item| item).next_cursor.expect("a cursor");
        let url_safe = shown
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
        prop_assert!(url_safe, "{:?} must travel in a query string as it is", shown);
        let read = query(&[("cursor", &shown)]).page().expect("a cursor it made");
        prop_assert_eq!(read.cursor, Some(store_cursor));
    }

    #[test]
    fn any_cursor_is_a_value_or_invalid_cursor(cursor in any::<String>()) {
        match query(&[("cursor", &cursor)]).page() {
            Ok(page) => prop_assert!(page.cursor.is_some()),
            Err(error) => {
                prop_assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY);
                prop_assert_eq!(error.code, "invalid_cursor");
                prop_assert_eq!(error.field.as_deref(), Some("cursor"));
                assert_error_shape(error)?;
            }
        }
    }

    #[test]
    fn limits_are_1_to_100(limit in prop_oneof![
        (0_u32..200).prop_map(|n| n.to_string()),
        "[+-]?[0-9]{1,12}",
        any::<String>(),
    ]) {
        let expected = limit.parse::<u32>().ok().filter(|n| (1..=100).contains(n));
        match query(&[("limit", &limit)]).page() {
            Ok(page) => prop_assert_eq!(Some(page.limit), expected),
            Err(error) => {
                prop_assert!(expected.is_none(), "refused {:?}", limit);
                prop_assert_eq!(error.field.as_deref(), Some("limit"));
                assert_error_shape(error)?;
            }
        }
    }
}
