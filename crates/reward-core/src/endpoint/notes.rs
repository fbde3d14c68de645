//! The customer's own notes on a webhook: a description and string metadata. Reward reads
//! neither; it keeps them and returns them as given (metadata in the order given).
//!
//! Control characters are refused (but a description may hold line breaks and tabs): PostgreSQL
//! cannot store NUL, and the others only hide text in the dashboard.

use crate::names::Invalid;

/// A description: at most [`Description::MAX_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    pub const MAX_CHARS: usize = 1000;

    pub fn parse(text: String) -> Result<Self, Invalid> {
        if text.chars().count() > Self::MAX_CHARS {
            return Err(Invalid(format!(
                "A description holds at most {} characters.",
                Self::MAX_CHARS
            )));
        }
        if text
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(Invalid(
                "A description may not hold control characters other than line breaks and tabs."
                    .into(),
            ));
        }
        Ok(Self(text))
    }

    /// Wraps a description read back from our own store, which only holds valid ones.
    pub fn from_trusted(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Metadata: at most [`Metadata::MAX_KEYS`] keys of 1–[`Metadata::MAX_KEY_CHARS`] characters,
/// each with a string value of at most [`Metadata::MAX_VALUE_CHARS`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata(Vec<(String, String)>);

impl Metadata {
    pub const MAX_KEYS: usize = 50;
    pub const MAX_KEY_CHARS: usize = 64;
    pub const MAX_VALUE_CHARS: usize = 512;

    /// Pairs as a customer sent them (an object's keys are already distinct).
    pub fn parse(pairs: Vec<(String, String)>) -> Result<Self, Invalid> {
        if pairs.len() > Self::MAX_KEYS {
            return Err(Invalid(format!(
                "Metadata holds at most {} keys.",
                Self::MAX_KEYS
            )));
        }
        for (key, value) in &pairs {
            let length = key.chars().count();
            if length == 0 || length > Self::MAX_KEY_CHARS || key.chars().any(char::is_control) {
                return Err(Invalid(format!(
                    "Metadata key '{}' must hold 1–{} characters and no control characters.",
                    key.escape_debug(),
                    Self::MAX_KEY_CHARS
                )));
            }
            if value.chars().count() > Self::MAX_VALUE_CHARS || value.chars().any(char::is_control)
            {
                return Err(Invalid(format!(
                    "The value of metadata key '{key}' must hold at most {} characters and no control characters.",
                    Self::MAX_VALUE_CHARS
                )));
            }
        }
        Ok(Self(pairs))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The metadata as a JSON object, in order: what the API returns and the stores keep.
    pub fn to_json_value(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.0
                .iter()
                .map(|(key, value)| (key.clone(), serde_json::Value::String(value.clone())))
                .collect(),
        )
    }

    pub fn to_json(&self) -> String {
        self.to_json_value().to_string()
    }

    /// Metadata read back from [`Self::to_json`]; `None` when the text is not valid metadata.
    pub fn from_json(text: &str) -> Option<Self> {
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).ok()?;
        let pairs = object
            .into_iter()
            .map(|(key, value)| match value {
                serde_json::Value::String(value) => Some((key, value)),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        Self::parse(pairs).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_counts_characters_not_bytes() {
        assert!(Description::parse("é".repeat(Description::MAX_CHARS)).is_ok());
        assert!(Description::parse("a".repeat(Description::MAX_CHARS + 1)).is_err());
        assert!(Description::parse("two\nlines\tand a tab".into()).is_ok());
        assert!(Description::parse("nul\0".into()).is_err());
    }

    #[test]
    fn metadata_keeps_its_order_and_round_trips() {
        let metadata = Metadata::parse(vec![
            ("team".into(), "payments".into()),
            ("cost_center".into(), "".into()),
        ])
        .expect("valid");
        assert_eq!(
            metadata.to_json(),
            r#"{"team":"payments","cost_center":""}"#
        );
        assert_eq!(Metadata::from_json(&metadata.to_json()), Some(metadata));
    }

    #[test]
    fn metadata_limits_are_enforced() {
        let many = (0..=Metadata::MAX_KEYS)
            .map(|n| (format!("k{n}"), "v".to_owned()))
            .collect();
        assert!(Metadata::parse(many).is_err());
        assert!(Metadata::parse(vec![("".into(), "v".into())]).is_err());
        assert!(Metadata::parse(vec![("k".repeat(65), "v".into())]).is_err());
        assert!(Metadata::parse(vec![("k".into(), "v".repeat(513))]).is_err());
        assert!(Metadata::parse(vec![("k".into(), "nul\0".into())]).is_err());
    }
}
