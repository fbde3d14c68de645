//! How domain values are spelled in columns, the same in every backend's schema: a credit rule
//! as `rule_kind` + `rule_amount`, a webhook's event types as a JSON list of names, its filter,
//! headers (sealed), metadata and rate limit. Each backend
//! only moves these values in and out of its own row type.

use reward_core::credit::CreditRule;
use reward_core::endpoint::{EventSelection, ExtraHeaders, Metadata, RateLimit};
use reward_core::filter::PayloadFilter;

use crate::secrets::SecretCipher;
use crate::{StoreError, StoreResult};

/// `rule_kind` and `rule_amount` of a trigger with this rule (both NULL without one). The amount
/// is the number as JSON spells it, so a per-unit rule keeps its exact decimal digits.
pub fn rule_columns(rule: Option<&CreditRule>) -> (Option<&'static str>, Option<String>) {
    match rule {
        None => (None, None),
        Some(CreditRule::PerUnit(amount)) => (Some("per_unit"), Some(amount.to_string())),
        Some(CreditRule::Fixed(points)) => (Some("fixed"), Some(points.to_string())),
    }
}

/// The rule [`rule_columns`] wrote, from `rule_kind` and `rule_amount` (already read as a JSON
/// number); `None` when the trigger has no rule.
pub fn rule_from_columns(
    kind: Option<&str>,
    amount: Option<serde_json::Number>,
) -> Option<CreditRule> {
    match (kind, amount) {
        (Some("per_unit"), Some(amount)) => Some(CreditRule::PerUnit(amount)),
        (Some("fixed"), Some(amount)) => amount.as_i64().map(CreditRule::Fixed),
        _ => None,
    }
}

/// A webhook's `events` column: `["*"]` or the types' names, as a JSON list.
pub fn event_types_json(events: &EventSelection) -> String {
    events.to_json()
}

/// The selection [`event_types_json`] wrote; `None` when the text is not one (a corrupt row,
/// which the backend reports in its own terms).
pub fn event_types_from_json(text: &str) -> Option<EventSelection> {
    EventSelection::from_json(text)
}

/// A webhook's `filter` column: the filter as JSON, NULL without one.
pub fn filter_column(filter: Option<&PayloadFilter>) -> Option<String> {
    filter.map(|filter| filter.as_json().to_string())
}

/// A stored filter that is not one (a corrupt row, which the backend reports in its own terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorruptFilter;

/// The filter [`filter_column`] wrote.
pub fn filter_from_column(text: Option<&str>) -> Result<Option<PayloadFilter>, CorruptFilter> {
    let Some(text) = text else {
        return Ok(None);
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|_| CorruptFilter)?;
    PayloadFilter::parse(&value)
        .map(Some)
        .map_err(|_| CorruptFilter)
}

/// What a webhook's headers are sealed under: its id and the column, so a sealed value opens
/// nowhere else (not as its secret, not on another webhook).
pub(crate) fn headers_context(webhook_id: &str) -> String {
    format!("{webhook_id}/headers")
}

/// A webhook's `headers` column: empty without headers, else their JSON sealed like secrets
/// (values can be credentials).
pub fn headers_column(cipher: &SecretCipher, webhook_id: &str, headers: &ExtraHeaders) -> String {
    if headers.is_empty() {
        return String::new();
    }
    cipher.seal_text(&headers_context(webhook_id), &headers.to_json())
}

/// The headers [`headers_column`] wrote.
pub fn headers_from_column(
    cipher: &SecretCipher,
    webhook_id: &str,
    stored: &str,
) -> StoreResult<ExtraHeaders> {
    if stored.is_empty() {
        return Ok(ExtraHeaders::none());
    }
    let json = cipher.open_text(&headers_context(webhook_id), stored)?;
    ExtraHeaders::from_json(&json).ok_or_else(|| {
        StoreError::Internal(format!(
            "webhook {webhook_id}: the stored headers are not valid"
        ))
    })
}

/// A webhook's `metadata` column: a JSON object of strings.
pub fn metadata_column(metadata: &Metadata) -> String {
    metadata.to_json()
}

/// The metadata [`metadata_column`] wrote; `None` when the text is not valid metadata.
pub fn metadata_from_column(text: &str) -> Option<Metadata> {
    Metadata::from_json(text)
}

/// A webhook's `rate_limit` column, NULL without a limit.
pub fn rate_limit_column(limit: Option<RateLimit>) -> Option<i64> {
    limit.map(|limit| i64::from(limit.per_second()))
}

/// The limit [`rate_limit_column`] wrote (a value out of range reads as the nearest valid one).
pub fn rate_limit_from_column(stored: Option<i64>) -> Option<RateLimit> {
    stored.map(|n| {
        let clamped = n.clamp(i64::from(RateLimit::MIN), i64::from(RateLimit::MAX));
        RateLimit::from_trusted(u32::try_from(clamped).unwrap_or(RateLimit::MAX))
    })
}

#[cfg(test)]
mod tests {
    use reward_core::event::EventType;

    use super::*;

    fn number(text: &str) -> serde_json::Number {
        serde_json::from_str(text).expect("number")
    }

    #[test]
    fn rules_survive_their_columns() {
        let rules = [
            None,
            Some(CreditRule::Fixed(5)),
            Some(CreditRule::PerUnit(number("0.29"))),
            Some(CreditRule::PerUnit(number("10"))),
        ];
        for rule in rules {
            let (kind, amount) = rule_columns(rule.as_ref());
            let amount = amount.map(|text| number(&text));
            assert_eq!(rule_from_columns(kind, amount), rule);
        }
        assert_eq!(
            rule_columns(Some(&CreditRule::PerUnit(number("0.29")))),
            (Some("per_unit"), Some("0.29".to_owned()))
        );
        // A kind without an amount, or one this build does not know, is no rule.
        assert_eq!(rule_from_columns(Some("fixed"), None), None);
        assert_eq!(rule_from_columns(Some("bonus"), Some(number("3"))), None);
    }

    #[test]
    fn event_types_round_trip_and_corrupt_lists_are_none() {
        let all = EventSelection::Only(EventType::ALL.to_vec());
        let text = event_types_json(&all);
        assert_eq!(
            text,
            r#"["trigger_event.created","balance.credit_points_issued","webhook.disabled"]"#
        );
        assert_eq!(event_types_from_json(&text), Some(all));
        assert_eq!(
            event_types_from_json("[]"),
            Some(EventSelection::Only(Vec::new()))
        );
        assert_eq!(
            event_types_from_json(r#"["*"]"#),
            Some(EventSelection::Every)
        );
        assert_eq!(event_types_from_json(r#"["nope"]"#), None);
        assert_eq!(event_types_from_json("not json"), None);
    }
}
