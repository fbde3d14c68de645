//! Extra request headers a webhook's deliveries carry (a gateway's token, a tenant name).
//!
//! Names are HTTP tokens of at most [`MAX_NAME_LEN`] characters, each at most once (names are
//! case-insensitive); values are visible ASCII and spaces, 1–[`MAX_VALUE_BYTES`] bytes. Names
//! Reward sets itself or that change how the request travels are refused, so a customer can
//! neither forge a signature header nor break the framing. Values can be credentials (an
//! `Authorization` value is a secret): the stores keep them sealed, and `Debug` never prints them.

use std::fmt;

use crate::names::Invalid;

pub const MAX_HEADERS: usize = 20;
pub const MAX_NAME_LEN: usize = 100;
pub const MAX_VALUE_BYTES: usize = 1024;

/// Names Reward sets on every delivery, or that change the transport: never the customer's.
pub const RESERVED: [&str; 12] = [
    "content-type",
    "content-length",
    "host",
    "user-agent",
    "connection",
    "transfer-encoding",
    "te",
    "upgrade",
    "keep-alive",
    "proxy-connection",
    "trailer",
    "expect",
];
/// Every name starting with this is reserved too (`webhook-id`, `webhook-signature`, ...).
pub const RESERVED_PREFIX: &str = "webhook-";

/// What a header name may be: an HTTP token (RFC 9110 `tchar`), as a regular expression.
pub const NAME_PATTERN: &str = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";
/// What a value may be: visible ASCII and spaces, as a regular expression.
pub const VALUE_PATTERN: &str = "^[\\x20-\\x7e]+$";

#[derive(Clone, Default, PartialEq, Eq)]
pub struct ExtraHeaders(Vec<(String, String)>);

impl fmt::Debug for ExtraHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.names().collect();
        write!(f, "ExtraHeaders({names:?}, values hidden)")
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Whether Reward keeps this header name for itself.
pub fn is_reserved(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    RESERVED.contains(&lower.as_str()) || lower.starts_with(RESERVED_PREFIX)
}

fn check_name(name: &str) -> Result<(), Invalid> {
    if name.is_empty() || name.len() > MAX_NAME_LEN || !name.chars().all(is_token_char) {
        return Err(Invalid(format!(
            "Header name '{}' is not an HTTP token of 1–{MAX_NAME_LEN} characters (letters, digits and !#$%&'*+-.^_`|~).",
            name.escape_debug()
        )));
    }
    if is_reserved(name) {
        return Err(Invalid(format!(
            "Header '{name}' is set by Reward or changes the transport, so it cannot be set here (reserved: {}, and any webhook-*).",
            RESERVED.join(", ")
        )));
    }
    Ok(())
}

fn check_value(name: &str, value: &str) -> Result<(), Invalid> {
    if value.is_empty() || value.len() > MAX_VALUE_BYTES {
        return Err(Invalid(format!(
            "The value of header '{name}' must hold 1–{MAX_VALUE_BYTES} bytes."
        )));
    }
    if !value.bytes().all(|byte| (0x20..=0x7e).contains(&byte)) {
        return Err(Invalid(format!(
            "The value of header '{name}' may hold only visible ASCII characters and spaces."
        )));
    }
    Ok(())
}

impl ExtraHeaders {
    /// No extra headers.
    pub fn none() -> Self {
        Self::default()
    }

    /// Headers as a customer sent them, in their order.
    pub fn parse(pairs: Vec<(String, String)>) -> Result<Self, Invalid> {
        if pairs.len() > MAX_HEADERS {
            return Err(Invalid(format!("Set at most {MAX_HEADERS} headers.")));
        }
        for (index, (name, value)) in pairs.iter().enumerate() {
            check_name(name)?;
            check_value(name, value)?;
            if pairs[..index]
                .iter()
                .any(|(earlier, _)| earlier.eq_ignore_ascii_case(name))
            {
                return Err(Invalid(format!(
                    "Header '{name}' is named twice (header names ignore case)."
                )));
            }
        }
        Ok(Self(pairs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Each name and value, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(name, _)| name.as_str())
    }

    /// The headers as JSON (an object, in order): what the stores seal.
    pub fn to_json(&self) -> String {
        let object: serde_json::Map<String, serde_json::Value> = self
            .0
            .iter()
            .map(|(name, value)| (name.clone(), serde_json::Value::String(value.clone())))
            .collect();
        serde_json::Value::Object(object).to_string()
    }

    /// Headers read back from [`Self::to_json`]; `None` when the text is not valid headers.
    pub fn from_json(text: &str) -> Option<Self> {
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).ok()?;
        let pairs = object
            .into_iter()
            .map(|(name, value)| match value {
                serde_json::Value::String(value) => Some((name, value)),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        Self::parse(pairs).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn valid_headers_keep_their_order_and_round_trip() {
        let headers = ExtraHeaders::parse(pairs(&[
            ("X-Tenant", "acme"),
            ("Authorization", "Bearer abc def"),
        ]))
        .expect("valid");
        assert_eq!(
            headers.names().collect::<Vec<_>>(),
            ["X-Tenant", "Authorization"]
        );
        assert_eq!(
            ExtraHeaders::from_json(&headers.to_json()),
            Some(headers.clone())
        );
        assert!(
            !format!("{headers:?}").contains("abc"),
            "Debug hides values"
        );
    }

    #[test]
    fn reserved_names_are_refused_whatever_their_case() {
        for name in [
            "Content-Type",
            "HOST",
            "webhook-signature",
            "Webhook-Id",
            "te",
            "Upgrade",
        ] {
            let error = ExtraHeaders::parse(pairs(&[(name, "x")])).expect_err(name);
            assert!(error.0.contains("set by Reward"), "{name}: {error}");
        }
    }

    #[test]
    fn bad_names_values_repeats_and_too_many_are_refused() {
        let too_long = "v".repeat(MAX_VALUE_BYTES + 1);
        for list in [
            vec![("X Bad", "x")],
            vec![("", "x")],
            vec![("X-A", "")],
            vec![("X-A", "line\nbreak")],
            vec![("X-A", "é")],
            vec![("X-A", too_long.as_str())],
            vec![("X-A", "1"), ("x-a", "2")],
        ] {
            assert!(ExtraHeaders::parse(pairs(&list)).is_err(), "{list:?}");
        }
        let many: Vec<(String, String)> = (0..=MAX_HEADERS)
            .map(|n| (format!("X-{n}"), "v".to_owned()))
            .collect();
        assert!(ExtraHeaders::parse(many).is_err());
        assert_eq!(ExtraHeaders::from_json("[]"), None);
    }
}
