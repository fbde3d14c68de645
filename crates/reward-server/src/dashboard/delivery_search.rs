//! The delivery search's form (a GET form: its fields are the query string): reading it into the
//! store's [`DeliveryQuery`], with an error beside each field that does not read, and writing it
//! back as a query string for the pager and after a resend.
//!
//! Times come from `datetime-local` inputs, which carry no zone: they are read as UTC (the page
//! says so). "From" is inclusive and "to" exclusive, so from 10:00 to 11:00 is that hour.

use reward_core::event::EventType;
use reward_core::ids::WebhookId;
use reward_core::time::Timestamp;
use reward_store::records::{DeliveryQuery, DeliveryStatus};

use super::form::FormFields;

/// The fields as given, shown back in the form.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SearchForm {
    pub webhook: String,
    pub event_type: String,
    pub status: String,
    pub from: String,
    pub to: String,
}

/// Why a field was not used; the search does not run while any is set.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SearchErrors {
    pub webhook: Option<&'static str>,
    pub event_type: Option<&'static str>,
    pub status: Option<&'static str>,
    pub from: Option<&'static str>,
    pub to: Option<&'static str>,
}

impl SearchErrors {
    pub fn any(&self) -> bool {
        self.webhook.is_some()
            || self.event_type.is_some()
            || self.status.is_some()
            || self.from.is_some()
            || self.to.is_some()
    }
}

const FIELDS: [&str; 5] = ["webhook", "event_type", "status", "from", "to"];

impl SearchForm {
    /// Reads the fields (the first of each name; others are ignored), trimmed.
    pub fn from_fields(fields: &FormFields) -> Self {
        let field = |name| fields.text(name).trim().to_owned();
        Self {
            webhook: field("webhook"),
            event_type: field("event_type"),
            status: field("status"),
            from: field("from"),
            to: field("to"),
        }
    }

    /// The store's query, or what is wrong with each field. `webhooks` are the account's: any
    /// other id is refused rather than searched (it would only find nothing).
    pub fn query(&self, webhooks: &[WebhookId]) -> Result<DeliveryQuery, SearchErrors> {
        let mut errors = SearchErrors::default();
        let mut query = DeliveryQuery::default();
        if !self.webhook.is_empty() {
            match WebhookId::parse(&self.webhook) {
                Ok(id) if webhooks.contains(&id) => query.webhook = Some(id),
                _ => errors.webhook = Some("Not a webhook of this account."),
            }
        }
        if !self.event_type.is_empty() {
            query.event_type = EventType::parse(&self.event_type);
            if query.event_type.is_none() {
                errors.event_type = Some("Not an event type Reward sends.");
            }
        }
        if !self.status.is_empty() {
            query.status = DeliveryStatus::parse(&self.status);
            if query.status.is_none() {
                errors.status = Some("Choose pending, succeeded or failed.");
            }
        }
        const NOT_A_TIME: &str = "Not a date and time: write it as 2024-12-14T15:29 (UTC).";
        let from = read_time(&self.from, &mut errors.from, NOT_A_TIME);
        let to = read_time(&self.to, &mut errors.to, NOT_A_TIME);
        if let (Some(from), Some(to)) = (from, to) {
            if to <= from {
                errors.to = Some("Must be later than “From”.");
            }
        }
        // Inclusive "from" on the store's exclusive bound: strictly after one millisecond before.
        query.created_after = from.map(|from| from.plus_millis(-1));
        query.created_before = to;
        if errors.any() {
            Err(errors)
        } else {
            Ok(query)
        }
    }

    /// The non-empty fields as a query string (without `?`), e.g. `status=failed`.
    pub fn query_string(&self) -> String {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in FIELDS.iter().zip(self.values()) {
            if !value.is_empty() {
                serializer.append_pair(name, value);
            }
        }
        serializer.finish()
    }

    fn values(&self) -> [&str; 5] {
        [
            &self.webhook,
            &self.event_type,
            &self.status,
            &self.from,
            &self.to,
        ]
    }
}

/// An empty field is no bound; anything else must read as a time, or `error` is set.
fn read_time(
    text: &str,
    error: &mut Option<&'static str>,
    message: &'static str,
) -> Option<Timestamp> {
    if text.is_empty() {
        return None;
    }
    let time = parse_utc_local(text);
    if time.is_none() {
        *error = Some(message);
    }
    time
}

/// A `datetime-local` value (`2024-12-14T15:29`, seconds and milliseconds optional) as UTC.
fn parse_utc_local(text: &str) -> Option<Timestamp> {
    // The value carries no zone; one that already has an offset is not what the input sends.
    let shape_ok = text.is_ascii()
        && text.len() >= 16
        && !text.contains(['Z', 'z', '+'])
        && !text[10..].contains('-');
    if !shape_ok {
        return None;
    }
    let with_seconds = if text.len() == 16 {
        format!("{text}:00Z")
    } else {
        format!("{text}Z")
    };
    Timestamp::parse_rfc3339(&with_seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(query: &str) -> SearchForm {
        SearchForm::from_fields(&FormFields::parse(query.as_bytes()))
    }

    fn webhook() -> WebhookId {
        WebhookId::generate()
    }

    #[test]
    fn an_empty_form_searches_everything() {
        let query = form("").query(&[]).expect("query");
        assert!(query.webhook.is_none() && query.event_type.is_none() && query.status.is_none());
        assert!(query.created_after.is_none() && query.created_before.is_none());
    }

    #[test]
    fn every_field_reads() {
        let id = webhook();
        let query = form(&format!(
            "webhook={id}&event_type=trigger_event.created&status=failed\
             &from=2024-12-14T15:29&to=2024-12-14T16:00:30"
        ))
        .query(std::slice::from_ref(&id))
        .expect("query");
        assert_eq!(query.webhook, Some(id));
        assert_eq!(query.event_type, Some(EventType::TriggerEventCreated));
        assert_eq!(query.status, Some(DeliveryStatus::Failed));
        let from = Timestamp::parse_rfc3339("2024-12-14T15:29:00Z").expect("time");
        assert_eq!(query.created_after, Some(from.plus_millis(-1)));
        assert_eq!(
            query.created_before,
            Timestamp::parse_rfc3339("2024-12-14T16:00:30Z")
        );
    }

    #[test]
    fn each_bad_field_has_its_error() {
        let errors = form(
            "webhook=wh_nope&event_type=order.paid&status=lost&from=yesterday\
             &to=2024-12-14T15:29%2B01:00",
        )
        .query(&[webhook()])
        .expect_err("errors");
        assert!(errors.webhook.is_some());
        assert!(errors.event_type.is_some());
        assert!(errors.status.is_some());
        assert!(errors.from.is_some());
        assert!(errors.to.is_some());
    }

    #[test]
    fn another_accounts_webhook_is_refused() {
        let errors = form(&format!("webhook={}", webhook()))
            .query(&[webhook()])
            .expect_err("errors");
        assert!(errors.webhook.is_some());
    }

    #[test]
    fn to_must_follow_from() {
        let errors = form("from=2024-12-14T15:29&to=2024-12-14T15:29")
            .query(&[])
            .expect_err("errors");
        assert_eq!(errors.from, None);
        assert!(errors.to.is_some());
    }

    #[test]
    fn the_query_string_keeps_only_known_non_empty_fields() {
        let form = form("status=failed&from=2024-12-14T15:29&evil=%2F%2Fx.test&webhook=");
        assert_eq!(form.query_string(), "status=failed&from=2024-12-14T15%3A29");
        assert_eq!(
            SearchForm::from_fields(&FormFields::parse(form.query_string().as_bytes())),
            form
        );
    }

    #[test]
    fn local_times_read_as_utc() {
        assert_eq!(
            parse_utc_local("2024-12-14T15:29:18.821"),
            Some(Timestamp::from_millis(1_734_190_158_821))
        );
        assert_eq!(parse_utc_local("2024-12-14T15:29Z"), None);
        assert_eq!(parse_utc_local("2024-12-14T15:29-05:00"), None);
        assert_eq!(parse_utc_local("2024-12-14"), None);
        assert_eq!(parse_utc_local("2024-02-30T10:00"), None);
        assert_eq!(parse_utc_local("2024-12-14T15:2é"), None);
    }
}
