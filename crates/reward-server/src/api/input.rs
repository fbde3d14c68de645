//! Reading request bodies field by field, so every rejection names the field at fault and says
//! what was expected (`bodies/` says which fields each body has). Unknown fields are refused: a typo must not be silently ignored, and so is a
//! key named twice in one object (at any depth): JSON parsers disagree on which one wins, so a
//! proxy or signature check in front of us may have read the other (`strict_json`).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::error::{ApiError, ApiResult};

/// A request body that parsed as a JSON object.
pub struct JsonObject {
    fields: Map<String, Value>,
    /// The field path prefix for nested objects, e.g. `credit_points.`.
    prefix: String,
}

/// The body's bytes, with the API's answers for a body too slow or too large.
async fn body_bytes<S: Send + Sync>(request: Request, state: &S) -> ApiResult<Bytes> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if super::limits::is_body_deadline(&rejection) {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    "The request body did not arrive in time.",
                )
            } else if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "The request body is larger than 256 KiB.",
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_body",
                    rejection.body_text(),
                )
            }
        })
}

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Self::parse(&body_bytes(request, state).await?)
    }
}

/// A body that may be left out: no bytes (or only whitespace) is `None`, else it must be a JSON
/// object.
pub struct OptionalJsonObject(pub Option<JsonObject>);

impl<S: Send + Sync> FromRequest<S> for OptionalJsonObject {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        JsonObject::parse(&bytes).map(|object| Self(Some(object)))
    }
}

impl JsonObject {
    pub fn parse(bytes: &[u8]) -> ApiResult<Self> {
        let value = strict_json::parse(bytes).map_err(|error| match error {
            strict_json::Error::DuplicateKey { path, line, column } => ApiError::new(
                StatusCode::BAD_REQUEST,
                "duplicate_key",
                format!(
                    "The request body names the key '{path}' twice (line {line}, column {column}); send each key once."
                ),
            )
            .with_field(path),
            strict_json::Error::Syntax(error) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("The request body is not valid JSON: {error}."),
            ),
        })?;
        match value {
            Value::Object(fields) => Ok(Self {
                fields,
                prefix: String::new(),
            }),
            _ => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_type",
                "The request body must be a JSON object.",
            )),
        }
    }

    fn path(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Refuses any field not in `known`.
    pub fn only(&self, known: &[&str]) -> ApiResult<()> {
        match self
            .fields
            .keys()
            .find(|key| !known.contains(&key.as_str()))
        {
            None => Ok(()),
            Some(unknown) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_field",
                format!(
                    "Unknown field '{}'. Known fields: {}.",
                    self.path(unknown),
                    known.join(", ")
                ),
            )
            .with_field(self.path(unknown))),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The object as JSON text with every object's keys in order, so two bodies that differ only
    /// in key order or spacing read the same (an `Idempotency-Key`'s request fingerprint). Its own
    /// members given as `null` are left out: every request reads a field's `null` as its absence
    /// ([`Self::optional`]), so `{"reason": null}` and `{}` are the same request, as on trigger
    /// events. Nested `null`s stay (in a filter, `null` is a value to compare with).
    pub fn canonical_text(&self) -> String {
        fn sorted(value: &Value) -> Value {
            match value {
                Value::Object(fields) => {
                    let mut keys: Vec<&String> = fields.keys().collect();
                    keys.sort();
                    Value::Object(
                        keys.into_iter()
                            .map(|key| (key.clone(), sorted(&fields[key])))
                            .collect(),
                    )
                }
                Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
                other => other.clone(),
            }
        }
        let given: serde_json::Map<String, Value> = self
            .fields
            .iter()
            .filter(|(_, value)| !value.is_null())
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        sorted(&Value::Object(given)).to_string()
    }

    pub fn has(&self, name: &str) -> bool {
        self.fields.contains_key(name)
    }

    /// The field's value; absent and `null` are both `None`.
    fn optional(&mut self, name: &str) -> Option<Value> {
        self.fields.remove(name).filter(|value| !value.is_null())
    }

    /// The field's value, refusing absent and (unless `nullable`) `null`.
    fn present(&mut self, name: &str) -> ApiResult<Value> {
        match self.fields.remove(name) {
            None => Err(ApiError::missing(&self.path(name))),
            Some(Value::Null) => Err(ApiError::wrong_type(&self.path(name), "present, not null")),
            Some(value) => Ok(value),
        }
    }

    pub fn string(&mut self, name: &str) -> ApiResult<String> {
        match self.present(name)? {
            Value::String(text) => Ok(text),
            _ => Err(ApiError::wrong_type(&self.path(name), "a string")),
        }
    }

    /// A string, or `None` when absent or null.
    pub fn optional_string(&mut self, name: &str) -> ApiResult<Option<String>> {
        match self.optional(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(ApiError::wrong_type(&self.path(name), "a string or null")),
        }
    }

    /// A string when present; a present `null` is refused (for PATCH).
    pub fn string_if_present(&mut self, name: &str) -> ApiResult<Option<String>> {
        if !self.has(name) {
            return Ok(None);
        }
        self.string(name).map(Some)
    }

    pub fn bool_if_present(&mut self, name: &str) -> ApiResult<Option<bool>> {
        if !self.has(name) {
            return Ok(None);
        }
        match self.present(name)? {
            Value::Bool(flag) => Ok(Some(flag)),
            _ => Err(ApiError::wrong_type(&self.path(name), "true or false")),
        }
    }

    pub fn string_list(&mut self, name: &str) -> ApiResult<Vec<String>> {
        let path = self.path(name);
        match self.present(name)? {
            Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(text) => Ok(text),
                    _ => Err(ApiError::wrong_type(&path, "an array of strings")),
                })
                .collect(),
            _ => Err(ApiError::wrong_type(&path, "an array of strings")),
        }
    }

    pub fn string_list_if_present(&mut self, name: &str) -> ApiResult<Option<Vec<String>>> {
        if !self.has(name) {
            return Ok(None);
        }
        self.string_list(name).map(Some)
    }

    /// A number, or `None` when absent or null.
    pub fn optional_number(&mut self, name: &str) -> ApiResult<Option<serde_json::Number>> {
        match self.optional(name) {
            None => Ok(None),
            Some(Value::Number(number)) => Ok(Some(number)),
            Some(_) => Err(ApiError::wrong_type(&self.path(name), "a number or null")),
        }
    }

    pub fn number(&mut self, name: &str) -> ApiResult<serde_json::Number> {
        match self.present(name)? {
            Value::Number(number) => Ok(number),
            _ => Err(ApiError::wrong_type(&self.path(name), "a number")),
        }
    }

    /// A whole number that fits `i64`. JSON does not tell `5` from `5.0` (nor does JSON Schema's
    /// `integer`), so a float with no fraction is one too.
    pub fn integer(&mut self, name: &str) -> ApiResult<i64> {
        let whole = match self.present(name)? {
            Value::Number(number) => number.as_i64().or_else(|| {
                number
                    .as_f64()
                    .filter(|float| float.fract() == 0.0)
                    // 2^63 itself is out: `i64::MAX as f64` rounds up to it.
                    .filter(|float| (i64::MIN as f64..i64::MAX as f64).contains(float))
                    .map(|float| float as i64)
            }),
            _ => None,
        };
        whole.ok_or_else(|| ApiError::wrong_type(&self.path(name), "a whole number"))
    }

    /// A nested object, or `None` when absent or null.
    pub fn optional_object(&mut self, name: &str) -> ApiResult<Option<JsonObject>> {
        let path = self.path(name);
        match self.optional(name) {
            None => Ok(None),
            Some(Value::Object(fields)) => Ok(Some(JsonObject {
                fields,
                prefix: format!("{path}."),
            })),
            Some(_) => Err(ApiError::wrong_type(&path, "an object or null")),
        }
    }

    /// The field as sent, `null` included: `None` only when absent (for fields a PATCH may clear
    /// with `null`).
    pub fn take(&mut self, name: &str) -> Option<Value> {
        self.fields.remove(name)
    }

    /// An object whose values are all strings, in the order sent; `None` when absent or null.
    pub fn optional_string_map(&mut self, name: &str) -> ApiResult<Option<Vec<(String, String)>>> {
        let path = self.path(name);
        let expected = || ApiError::wrong_type(&path, "an object of strings, or null");
        match self.optional(name) {
            None => Ok(None),
            Some(Value::Object(fields)) => fields
                .into_iter()
                .map(|(key, value)| match value {
                    Value::String(text) => Ok((key, text)),
                    _ => Err(expected()),
                })
                .collect::<ApiResult<Vec<_>>>()
                .map(Some),
            Some(_) => Err(expected()),
        }
    }

    pub fn field_path(&self, name: &str) -> String {
        self.path(name)
    }
}

/// JSON to a `serde_json::Value` in one pass, refusing an object that names a key twice. The same
/// work as `serde_json::from_slice::<Value>` plus one map lookup per key, which it does anyway to
/// insert; where the key was is only spelled out when there is a duplicate.
mod strict_json {
    use std::cell::RefCell;
    use std::fmt;

    use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
    use serde_json::map::Entry;
    use serde_json::{Map, Number, Value};

    pub enum Error {
        /// `path` is the key's place in the body, e.g. `credit_points.amount` or `items[2].id`.
        DuplicateKey {
            path: String,
            line: usize,
            column: usize,
        },
        Syntax(serde_json::Error),
    }

    pub fn parse(bytes: &[u8]) -> Result<Value, Error> {
        let duplicate = RefCell::new(None);
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let parsed = Strict {
            at: None,
            duplicate: &duplicate,
        }
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
        parsed.map_err(|error| match duplicate.into_inner() {
            Some(path) => Error::DuplicateKey {
                path,
                line: error.line(),
                column: error.column(),
            },
            None => Error::Syntax(error),
        })
    }

    /// One step from the body's root: a key of an object or an index of an array.
    enum Step<'a> {
        Key(&'a str),
        Index(usize),
    }

    /// Where a value sits, as a chain up to the root (borrowed: nothing is built unless needed).
    struct Place<'a> {
        step: Step<'a>,
        parent: Option<&'a Place<'a>>,
    }

    fn spell(place: Option<&Place<'_>>, last: &str) -> String {
        let mut steps = Vec::new();
        let mut current = place;
        while let Some(place) = current {
            steps.push(&place.step);
            current = place.parent;
        }
        let mut path = String::new();
        for step in steps.into_iter().rev() {
            match step {
                Step::Key(key) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                }
                Step::Index(index) => path.push_str(&format!("[{index}]")),
            }
        }
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(last);
        path
    }

    #[derive(Clone, Copy)]
    struct Strict<'a> {
        at: Option<&'a Place<'a>>,
        /// Set to the duplicated key's path when one is found.
        duplicate: &'a RefCell<Option<String>>,
    }

    impl<'de> DeserializeSeed<'de> for Strict<'_> {
        type Value = Value;

        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Strict<'_> {
        type Value = Value;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("any JSON value")
        }

        fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
            Ok(Value::Bool(value))
        }

        fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
            Ok(Value::Number(value.into()))
        }

        fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
            Ok(Value::Number(value.into()))
        }

        fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
            Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
        }

        fn visit_str<E>(self, value: &str) -> Result<Value, E> {
            Ok(Value::String(value.to_owned()))
        }

        fn visit_string<E>(self, value: String) -> Result<Value, E> {
            Ok(Value::String(value))
        }

        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Value, A::Error> {
            let mut array = Vec::with_capacity(items.size_hint().unwrap_or(0));
            loop {
                let here = Place {
                    step: Step::Index(array.len()),
                    parent: self.at,
                };
                let seed = Strict {
                    at: Some(&here),
                    duplicate: self.duplicate,
                };
                match items.next_element_seed(seed)? {
                    Some(item) => array.push(item),
                    None => return Ok(Value::Array(array)),
                }
            }
        }

        fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Value, A::Error> {
            let mut fields = Map::new();
            while let Some(key) = entries.next_key::<String>()? {
                let here = Place {
                    step: Step::Key(&key),
                    parent: self.at,
                };
                let value = entries.next_value_seed(Strict {
                    at: Some(&here),
                    duplicate: self.duplicate,
                })?;
                match fields.entry(key) {
                    Entry::Vacant(vacant) => {
                        vacant.insert(value);
                    }
                    Entry::Occupied(occupied) => {
                        *self.duplicate.borrow_mut() = Some(spell(self.at, occupied.key()));
                        return Err(A::Error::custom("a key named twice"));
                    }
                }
            }
            Ok(Value::Object(fields))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_float_is_an_integer_within_i64() {
        let mut body = JsonObject::parse(
            br#"{"a": 5, "b": 5.0, "c": 5.5, "d": 1e300, "e": 18446744073709551615}"#,
        )
        .expect("object");
        assert_eq!(body.integer("a").expect("5"), 5);
        assert_eq!(body.integer("b").expect("5.0"), 5);
        for name in ["c", "d", "e"] {
            assert_eq!(body.integer(name).expect_err(name).code, "invalid_type");
        }
    }

    fn duplicate(body: &str) -> (String, String) {
        let error = JsonObject::parse(body.as_bytes())
            .err()
            .expect("a duplicate key is refused");
        assert_eq!(error.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error.code, "duplicate_key", "{body}");
        (error.field.unwrap_or_default(), error.message)
    }

    #[test]
    fn a_key_named_twice_is_refused_at_any_depth() {
        let (field, message) = duplicate(r#"{"name": "a", "url": "x", "name": "b"}"#);
        assert_eq!(field, "name");
        assert!(
            message.contains("'name'") && message.contains("column"),
            "{message}"
        );
        let (field, _) = duplicate(r#"{"credit_points": {"type": "fixed", "type": "per_unit"}}"#);
        assert_eq!(field, "credit_points.type");
        let (field, _) = duplicate(r#"{"a": [1, {"b": {"c": 1, "c": 2}}]}"#);
        assert_eq!(field, "a[1].b.c");
        let (field, _) = duplicate(r#"[{"x": 1, "x": 1}]"#);
        assert_eq!(field, "[0].x");
        // Escapes that spell the same key are the same key.
        let (field, _) = duplicate(r#"{"name": 1, "n\u0061me": 2}"#);
        assert_eq!(field, "name");
    }

    #[test]
    fn strict_parsing_reads_what_serde_json_reads() {
        for body in [
            r#"{"a": 1, "b": [true, null, -2, 3.5, 1e300, 18446744073709551615], "c": {"d": "e"}}"#,
            r#"{"same": {"x": 1}, "other": {"x": 1}}"#,
            "{}",
        ] {
            let strict = JsonObject::parse(body.as_bytes()).expect(body).fields;
            let loose: Value = serde_json::from_slice(body.as_bytes()).expect(body);
            assert_eq!(Value::Object(strict), loose);
        }
        for broken in ["{", "{\"a\": 1} x", "", "{\"a\" 1}"] {
            let error = JsonObject::parse(broken.as_bytes()).err().expect(broken);
            assert_eq!(error.code, "invalid_json", "{broken}");
        }
    }
}
