//! How domain values are spelled in columns, the same in every backend's schema: a credit rule
//! as `rule_kind` + `rule_amount`, a webhook's event types as a JSON list of names. Each backend
//! only moves these values in and out of its own row type.

use reward_core::credit::CreditRule;
use reward_core::event::EventType;

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

/// A webhook's `events` column: the types' names as a JSON list.
pub fn event_types_json(events: &[EventType]) -> String {
    let names: Vec<&str> = events.iter().map(|kind| kind.as_str()).collect();
    serde_json::to_string(&names).unwrap_or_else(|_| "[]".into())
}

/// The event types [`event_types_json`] wrote; `None` when the text is not such a list (a
/// corrupt row, which the backend reports in its own terms).
pub fn event_types_from_json(text: &str) -> Option<Vec<EventType>> {
    let names: Vec<&str> = serde_json::from_str(text).ok()?;
    names.iter().map(|name| EventType::parse(name)).collect()
}

#[cfg(test)]
mod tests {
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
        let all = EventType::ALL.to_vec();
        let text = event_types_json(&all);
        assert_eq!(
            text,
            r#"["trigger_event.created","balance.credit_points_issued","webhook.disabled"]"#
        );
        assert_eq!(event_types_from_json(&text), Some(all));
        assert_eq!(event_types_from_json("[]"), Some(Vec::new()));
        assert_eq!(event_types_from_json(r#"["nope"]"#), None);
        assert_eq!(event_types_from_json("not json"), None);
    }
}
