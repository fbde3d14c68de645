//! Reading request bodies field by field, so every rejection names the field at fault and says
//! what was expected. Unknown fields are refused: a typo must not be silently ignored.

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

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
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
            })?;
        Self::parse(&bytes)
    }
}

impl JsonObject {
    pub fn parse(bytes: &[u8]) -> ApiResult<Self> {
        let value: Value = serde_json::from_slice(bytes).map_err(|error| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("The request body is not valid JSON: {error}."),
            )
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

    pub fn field_path(&self, name: &str) -> String {
        self.path(name)
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
}
