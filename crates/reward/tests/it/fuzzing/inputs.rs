//! What the fuzzing tests send: strategies for request bodies (noise, any JSON, objects shaped
//! like each endpoint's with random or nearly valid values), path segments and query values.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine;
use proptest::prelude::*;
use reqwest::Method;
use serde_json::{json, Value};

/// Percent-encodes everything but unreserved characters, so any text travels as one path
/// segment or query value.
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(json!(1e308)),
        Just(json!(-1e308)),
        ".{0,30}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,10}", inner, 0..4)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// A value for a field: plausible for that field half the time, anything the other half.
fn field_value(field: &'static str) -> BoxedStrategy<Value> {
    let plausible: BoxedStrategy<Value> = match field {
        "name" | "reason" => prop_oneof!["[A-Za-z0-9 ]{1,30}", ".{0,120}"]
            .prop_map(Value::String)
            .boxed(),
        "url" => prop_oneof![
            "https?://[a-z]{1,10}\\.example(:[0-9]{1,4})?/[a-z/]{0,10}",
            "https?://[a-z0-9.]{1,20}(:[0-9]{1,6})?/[ -~]{0,40}",
            "https?://\\[[0-9a-f:.]{2,30}\\]/",
            "https?://[0-9]{1,3}(\\.[0-9]{1,3}){0,3}/",
            "\\PC{0,30}",
        ]
        .prop_map(Value::String)
        .boxed(),
        "events" => prop::collection::vec(
            prop_oneof![
                3 => Just("trigger_event.created".to_owned()),
                3 => Just("balance.credit_points_issued".to_owned()),
                1 => ".{0,30}",
            ],
            0..4,
        )
        .prop_map(|events| json!(events))
        .boxed(),
        "type" => prop_oneof![
            Just(json!("trigger_event.created")),
            Just(json!("balance.credit_points_issued")),
            ".{0,30}".prop_map(Value::String),
        ]
        .boxed(),
        "enabled" => any::<bool>().prop_map(Value::Bool).boxed(),
        "credit_points" => prop_oneof![
            Just(Value::Null),
            number().prop_map(|n| json!({ "per_unit": n })),
            number().prop_map(|n| json!({ "fixed": n })),
            (number(), number()).prop_map(|(a, b)| json!({"per_unit": a, "fixed": b})),
            Just(json!({})),
        ]
        .boxed(),
        "points" | "value" => number(),
        "user_id" => prop_oneof!["[A-Za-z0-9-]{1,36}", ".{0,130}"]
            .prop_map(Value::String)
            .boxed(),
        "trigger_id" => prop_oneof![
            3 => Just(json!("purchase")),
            1 =>
            "[A-Za-z0-9_.:-]{0,101}".prop_map(Value::String),
        ]
        .boxed(),
        "since" => prop_oneof![
            "20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T[01][0-9]:[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]0[0-9]:[0-5][0-9])",
            "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})",
            ".{0,30}",
        ]
        .prop_map(Value::String)
        .boxed(),
        _ => any_json().boxed(),
    };
    prop_oneof![4 => plausible, 1 => any_json()].boxed()
}

fn number() -> BoxedStrategy<Value> {
    prop_oneof![
        (-5_i64..1_000_000).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(json!(1e308)),
        Just(json!(9_007_199_254_740_993_u64)),
        Just(json!(1_000_000_000_000_i64)),
    ]
    .boxed()
}

/// A valid value for a field, so that bodies changed in one or two places reach past validation.
fn valid_value(field: &str) -> Value {
    match field {
        "name" => json!("Orders"),
        "url" => json!("https://hooks.example/reward"),
        "events" => json!(["trigger_event.created"]),
        "enabled" => json!(true),
        "type" => json!("balance.credit_points_issued"),
        "since" => json!("2024-12-14T15:29:18.821Z"),
        "credit_points" => json!({"per_unit": 10}),
        "points" => json!(5),
        "reason" => json!("A bonus"),
        "value" => json!(2.99),
        "user_id" => json!("ca9bb5c2-25a6-43e9-972e-862d28241a47"),
        "trigger_id" => json!("purchase"),
        _ => Value::Null,
    }
}

/// An object with some of `fields`, each valid with probability `valid` and random otherwise,
/// and sometimes one field no endpoint knows.
fn shaped_object(fields: &'static [&'static str], valid: f64) -> BoxedStrategy<Value> {
    let values: Vec<BoxedStrategy<Option<Value>>> = fields
        .iter()
        .map(|field| {
            let value = if valid > 0.0 {
                prop::option::weighted(valid, Just(valid_value(field)))
                    .prop_flat_map(move |kept| match kept {
                        Some(value) => Just(value).boxed(),
                        None => field_value(field),
                    })
                    .boxed()
            } else {
                field_value(field)
            };
            prop::option::weighted(0.95, value).boxed()
        })
        .collect();
    (values, prop::option::weighted(0.05, "[a-z_]{1,12}"))
        .prop_map(move |(values, unknown)| {
            let mut object = serde_json::Map::new();
            for (field, value) in fields.iter().zip(values) {
                if let Some(value) = value {
                    object.insert((*field).to_owned(), value);
                }
            }
            if let Some(unknown) = unknown {
                object.insert(unknown, json!(1));
            }
            Value::Object(object)
        })
        .boxed()
}

/// A body: noise, any JSON, an object shaped like the endpoint's with random values, or a valid
/// one changed here and there.
fn body(fields: &'static [&'static str]) -> BoxedStrategy<Vec<u8>> {
    let json = |value: Value| value.to_string().into_bytes();
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..200),
        1 => "[\\[\\]{}\":,0-9a-z .eE+-]{0,60}".prop_map(String::into_bytes),
        2 => any_json().prop_map(json),
        3 => shaped_object(fields, 0.0).prop_map(json),
        3 => shaped_object(fields, 0.8).prop_map(json),
    ]
    .boxed()
}

/// Any text as one path segment; not `.` or `..`, which a client resolves away (even encoded).
fn path_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => ".{1,30}",
        2 => "[A-Za-z0-9_.:-]{1,40}",
        1 => Just("purchase".to_owned()),
    ]
    .prop_filter("a dot segment", |segment| {
        !segment.trim_matches('.').is_empty()
    })
}

/// One request to an endpoint that reads a body. `{webhook}` is replaced by a real webhook's id.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// The route, e.g. `/v1/triggers/{id}`, to count answers by.
    pub template: &'static str,
    pub path: String,
    pub body: Vec<u8>,
    pub idempotency_key: Option<String>,
}

pub fn request() -> impl Strategy<Value = Request> {
    let simple = |method: Method, path: &'static str, fields: &'static [&'static str]| {
        body(fields).prop_map(move |body| Request {
            method: method.clone(),
            template: path,
            path: path.to_owned(),
            body,
            idempotency_key: None,
        })
    };
    prop_oneof![
        simple(
            Method::POST,
            "/v1/webhooks",
            &["name", "url", "events", "enabled"]
        ),
        simple(
            Method::PATCH,
            "/v1/webhooks/{webhook}",
            &["name", "url", "events", "enabled"]
        ),
        simple(Method::POST, "/v1/webhooks/{webhook}/test", &["type"]),
        simple(Method::POST, "/v1/webhooks/{webhook}/recover", &["since"]),
        simple(Method::POST, "/v1/api_keys", &["name"]),
        (path_segment(), body(&["name", "credit_points"])).prop_map(|(id, body)| Request {
            method: Method::PUT,
            template: "/v1/triggers/{id}",
            path: format!("/v1/triggers/{}", percent_encode(&id)),
            body,
            idempotency_key: None,
        }),
        (
            body(&["user_id", "trigger_id", "value"]),
            prop::option::weighted(0.3, prop_oneof![3 => "[!-~]{1,20}", 1 => "[ -~]{0,300}"]),
        )
            .prop_map(|(body, idempotency_key)| Request {
                method: Method::POST,
                template: "/v1/trigger_events",
                path: "/v1/trigger_events".to_owned(),
                body,
                idempotency_key,
            }),
        (path_segment(), body(&["points", "reason"])).prop_map(|(user, body)| Request {
            method: Method::POST,
            template: "/v1/users/{id}/credits",
            path: format!("/v1/users/{}/credits", percent_encode(&user)),
            body,
            idempotency_key: None,
        }),
    ]
}

/// A list endpoint and the query parameters it takes besides `limit` and `cursor`.
pub fn list_path() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("/v1/webhooks"),
        Just("/v1/events"),
        Just("/v1/triggers"),
        Just("/v1/api_keys"),
        Just("/v1/webhooks/{webhook}/deliveries"),
    ]
}

pub fn query_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_-]{0,60}",
        // Cursors that decode, so the store's own cursor parsing is reached.
        prop_oneof![
            "(wh|we|dl)_[0-9a-zA-Z]{24,28}",
            "-?[0-9]{1,20}:[A-Za-z0-9_.:-]{0,30}",
            ".{0,40}",
        ]
        .prop_map(|cursor| BASE64URL.encode(cursor)),
        (0_i64..200).prop_map(|n| n.to_string()),
        Just("trigger_event.created".to_owned()),
        Just("failed".to_owned()),
    ]
}
