//! The Create Webhook / edit form's fields: what it shows and how a posted form is validated.
//! Every field is checked by the same types the API uses (`Name`, `WebhookUrl`,
//! `EventSelection`, `PayloadFilter`, `ExtraHeaders`, `Description`, `Metadata`, `RateLimit`,
//! `Ordering`);
//! a refused form comes back with each error beside its field and the input kept.
//!
//! Decisions:
//! - The filter is JSON text; empty means no filter.
//! - Headers and metadata are name/value rows (repeated `header_name`/`header_value` and
//!   `metadata_key`/`metadata_value` fields, paired by position); a row left empty is ignored.
//!   Rows rather than `key=value` lines, so a metadata key holding `=` survives an edit.
//! - A stored header's value is shown only as its start and a mask ([`mask`]). The mask's
//!   bullets can never be part of a real value (values are visible ASCII), so a posted value
//!   equal to the mask of the stored value under the same name keeps that value; any other
//!   masked text is refused and asks for the value in full.
//! - Header names and values are trimmed (HTTP drops the spaces around a value anyway);
//!   metadata is kept exactly as typed, as the API keeps it; a description's line breaks are
//!   kept as LF (browsers post CRLF).

use reward_core::endpoint::headers::MAX_HEADERS;
use reward_core::endpoint::selection::EVERY_TYPE;
use reward_core::endpoint::{
    Description, EventSelection, ExtraHeaders, Metadata, Ordering, RateLimit,
};
use reward_core::event::EventType;
use reward_core::filter::PayloadFilter;
use reward_core::names::{Name, TargetPolicy, WebhookUrl};
use reward_core::signing::WebhookSecret;
use reward_store::records::{Webhook, WebhookSettings};

use super::form::FormFields;

/// Empty rows offered below the filled ones, to add headers or metadata without JavaScript.
const EMPTY_ROWS: usize = 3;
/// What replaces the hidden part of a stored header value.
const MASK: &str = "••••••••";
/// The most characters of a stored header value shown back.
const SHOWN_CHARS: usize = 4;

/// One event type's checkbox.
pub struct EventChoice {
    pub value: &'static str,
    pub description: &'static str,
    pub checked: bool,
}

/// One name/value row of headers or metadata, as shown.
pub struct Row {
    pub name: String,
    pub value: String,
}

/// Why each field was refused, if it was.
#[derive(Default)]
pub struct FieldErrors {
    pub name: Option<String>,
    pub url: Option<String>,
    pub events: Option<String>,
    pub filter: Option<String>,
    pub headers: Option<String>,
    pub description: Option<String>,
    pub metadata: Option<String>,
    pub rate_limit: Option<String>,
    pub ordering: Option<String>,
    pub secret: Option<String>,
}

impl FieldErrors {
    fn any(&self) -> bool {
        [
            &self.name,
            &self.url,
            &self.events,
            &self.filter,
            &self.headers,
            &self.description,
            &self.metadata,
            &self.rate_limit,
            &self.ordering,
            &self.secret,
        ]
        .iter()
        .any(|error| error.is_some())
    }
}

/// The form's values as the person typed them (or as stored), and its errors.
pub struct WebhookForm {
    pub name: String,
    pub url: String,
    pub events: Vec<EventChoice>,
    pub filter: String,
    pub headers: Vec<Row>,
    pub description: String,
    pub metadata: Vec<Row>,
    pub rate_limit: String,
    /// The chosen ordering's name (`none` or `per_user`), as posted or stored.
    pub ordering: String,
    /// The customer's own signing secret, on the Create form only (empty: Reward makes one).
    /// An edit never changes the secret: rotation does, on the webhook's page.
    pub secret: String,
    pub errors: FieldErrors,
}

/// A webhook's fields once every one is valid.
pub struct ValidWebhook {
    pub name: Name,
    pub url: WebhookUrl,
    pub events: EventSelection,
    pub settings: WebhookSettings,
    /// The secret given on the Create form, if one was.
    pub secret: Option<WebhookSecret>,
}

fn event_choices(checked: &[&str]) -> Vec<EventChoice> {
    std::iter::once(EventChoice {
        value: EVERY_TYPE,
        description: "Every event type, also those added later.",
        checked: checked.contains(&EVERY_TYPE),
    })
    .chain(EventType::ALL.iter().map(|kind| EventChoice {
        value: kind.as_str(),
        description: kind.description(),
        checked: checked.contains(&kind.as_str()),
    }))
    .collect()
}

/// Filled rows, then empty ones up to `most` rows (at least the filled ones).
fn with_empty_rows(mut rows: Vec<Row>, most: usize) -> Vec<Row> {
    let wanted = (rows.len() + EMPTY_ROWS).min(most).max(rows.len());
    rows.resize_with(wanted, || Row {
        name: String::new(),
        value: String::new(),
    });
    rows
}

/// A stored header value as the dashboard shows it: at most [`SHOWN_CHARS`] characters and never
/// more than a quarter of the value, then the mask.
pub fn mask(value: &str) -> String {
    let shown = (value.chars().count() / 4).min(SHOWN_CHARS);
    let start: String = value.chars().take(shown).collect();
    format!("{start}{MASK}")
}

impl WebhookForm {
    /// The empty Create Webhook form.
    pub fn blank() -> Self {
        Self {
            name: String::new(),
            url: String::new(),
            events: event_choices(&[]),
            filter: String::new(),
            headers: with_empty_rows(Vec::new(), MAX_HEADERS),
            description: String::new(),
            metadata: with_empty_rows(Vec::new(), Metadata::MAX_KEYS),
            rate_limit: String::new(),
            ordering: Ordering::default().as_str().to_owned(),
            secret: String::new(),
            errors: FieldErrors::default(),
        }
    }

    /// The edit form of a stored webhook: header values masked.
    pub fn of(webhook: &Webhook) -> Self {
        let settings = &webhook.settings;
        let headers = settings
            .headers
            .iter()
            .map(|(name, value)| Row {
                name: name.to_owned(),
                value: mask(value),
            })
            .collect();
        let metadata = settings
            .metadata
            .iter()
            .map(|(key, value)| Row {
                name: key.to_owned(),
                value: value.to_owned(),
            })
            .collect();
        Self {
            name: webhook.name.as_str().to_owned(),
            url: webhook.url.as_str().to_owned(),
            events: event_choices(&webhook.events.names()),
            filter: settings
                .filter
                .as_ref()
                .and_then(|filter| serde_json::to_string_pretty(filter.as_json()).ok())
                .unwrap_or_default(),
            headers: with_empty_rows(headers, MAX_HEADERS),
            description: settings
                .description
                .as_ref()
                .map(|description| description.as_str().to_owned())
                .unwrap_or_default(),
            metadata: with_empty_rows(metadata, Metadata::MAX_KEYS),
            rate_limit: settings
                .rate_limit
                .map(|limit| limit.per_second().to_string())
                .unwrap_or_default(),
            ordering: settings.ordering.as_str().to_owned(),
            secret: String::new(),
            errors: FieldErrors::default(),
        }
    }

    /// The form as posted, to show again.
    pub fn posted(fields: &FormFields) -> Self {
        let filled = |names: &str, values: &str| -> Vec<Row> {
            posted_rows(fields, names, values)
                .into_iter()
                .map(|(name, value)| Row {
                    name: name.to_owned(),
                    value: value.to_owned(),
                })
                .collect()
        };
        Self {
            name: fields.text("name").to_owned(),
            url: fields.text("url").to_owned(),
            events: event_choices(&fields.all("events")),
            filter: fields.text("filter").to_owned(),
            headers: with_empty_rows(filled("header_name", "header_value"), MAX_HEADERS),
            description: fields.text("description").to_owned(),
            metadata: with_empty_rows(filled("metadata_key", "metadata_value"), Metadata::MAX_KEYS),
            rate_limit: fields.text("rate_limit").to_owned(),
            ordering: fields.text("ordering").to_owned(),
            secret: fields.text("secret").trim().to_owned(),
            errors: FieldErrors::default(),
        }
    }

    pub fn has_errors(&self) -> bool {
        self.errors.any()
    }
}

/// The rows that were filled in: pairs of `names[i]`, `values[i]` not both empty.
fn posted_rows<'a>(fields: &'a FormFields, names: &str, values: &str) -> Vec<(&'a str, &'a str)> {
    fields
        .all(names)
        .into_iter()
        .zip(fields.all(values))
        .filter(|(name, value)| !name.is_empty() || !value.is_empty())
        .collect()
}

/// A secret typed in (the Create form, or Rotate): empty means Reward makes one.
pub fn read_secret(text: &str) -> Result<Option<WebhookSecret>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    WebhookSecret::parse(text).map(Some).map_err(|error| {
        format!("Not a usable secret: {error} (whsec_ followed by base64 of 24 to 64 bytes).")
    })
}

fn read_filter(text: &str) -> Result<Option<PayloadFilter>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|error| format!("This is not valid JSON: {error}."))?;
    PayloadFilter::parse(&value)
        .map(Some)
        .map_err(|error| format!("The filter was refused: {error}."))
}

/// Headers from their rows; a masked value keeps the stored value of the same header.
fn read_headers(fields: &FormFields, stored: &ExtraHeaders) -> Result<ExtraHeaders, String> {
    let mut pairs = Vec::new();
    for (name, value) in posted_rows(fields, "header_name", "header_value") {
        let name = name.trim();
        let value = if value.contains(MASK) {
            stored
                .iter()
                .find(|(stored_name, stored_value)| {
                    stored_name.eq_ignore_ascii_case(name) && mask(stored_value) == value
                })
                .map(|(_, stored_value)| stored_value)
                .ok_or_else(|| {
                    format!(
                        "The value of header '{name}' is hidden; type the value in full to change it."
                    )
                })?
        } else {
            value.trim()
        };
        pairs.push((name.to_owned(), value.to_owned()));
    }
    ExtraHeaders::parse(pairs).map_err(|error| error.0)
}

/// A description; browsers send a textarea's line breaks as CRLF whatever was shown, so they
/// are kept as LF (else an edit of another field would rewrite an API-made description).
fn read_description(text: &str) -> Result<Option<Description>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    Description::parse(text.replace("\r\n", "\n"))
        .map(Some)
        .map_err(|error| error.0)
}

fn read_metadata(fields: &FormFields) -> Result<Metadata, String> {
    let rows = posted_rows(fields, "metadata_key", "metadata_value");
    for (index, (key, _)) in rows.iter().enumerate() {
        if rows[..index].iter().any(|(earlier, _)| earlier == key) {
            return Err(format!("Metadata key '{key}' is given twice."));
        }
    }
    let pairs = rows
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    Metadata::parse(pairs).map_err(|error| error.0)
}

fn read_rate_limit(text: &str) -> Result<Option<RateLimit>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<i64>()
        .ok()
        .and_then(|number| RateLimit::new(number).ok())
        .map(Some)
        .ok_or_else(|| {
            format!(
                "Enter a whole number of deliveries per second from {} to {}, or leave it empty for no limit.",
                RateLimit::MIN,
                RateLimit::MAX
            )
        })
}

/// The chosen ordering; a form that sends none (from before the field) keeps the default.
fn read_ordering(text: &str) -> Result<Ordering, String> {
    if text.is_empty() {
        return Ok(Ordering::default());
    }
    Ordering::parse(text).map_err(|_| "Choose none or per user.".to_owned())
}

/// Validates the posted fields as the API does; on refusal, the form to show again.
/// `stored_headers` are the webhook's current headers (none when creating one), whose masked
/// values the form may send back unchanged.
pub fn validate(
    fields: &FormFields,
    targets: TargetPolicy,
    stored_headers: &ExtraHeaders,
) -> Result<ValidWebhook, Box<WebhookForm>> {
    let mut form = WebhookForm::posted(fields);
    let errors = &mut form.errors;
    let name = Name::parse(fields.text("name"))
        .map_err(|error| errors.name = Some(error.0))
        .ok();
    let url = WebhookUrl::parse(fields.text("url"), targets)
        .map_err(|error| errors.url = Some(error.0))
        .ok();
    let checked = fields.all("events");
    let events = if checked.is_empty() {
        errors.events = Some("Select at least one event type.".into());
        None
    } else {
        EventSelection::parse(&checked, EventType::ALL.len() + 1)
            .map_err(|error| errors.events = Some(error.0))
            .ok()
    };
    let filter = read_filter(fields.text("filter"))
        .map_err(|error| errors.filter = Some(error))
        .ok();
    let headers = read_headers(fields, stored_headers)
        .map_err(|error| errors.headers = Some(error))
        .ok();
    let description = read_description(fields.text("description"))
        .map_err(|error| errors.description = Some(error))
        .ok();
    let metadata = read_metadata(fields)
        .map_err(|error| errors.metadata = Some(error))
        .ok();
    let rate_limit = read_rate_limit(fields.text("rate_limit"))
        .map_err(|error| errors.rate_limit = Some(error))
        .ok();
    let ordering = read_ordering(fields.text("ordering"))
        .map_err(|error| errors.ordering = Some(error))
        .ok();
    let secret = read_secret(fields.text("secret"))
        .map_err(|error| errors.secret = Some(error))
        .ok();
    match (
        name,
        url,
        events,
        filter,
        headers,
        description,
        metadata,
        rate_limit,
        ordering,
        secret,
    ) {
        (
            Some(name),
            Some(url),
            Some(events),
            Some(filter),
            Some(headers),
            Some(description),
            Some(metadata),
            Some(rate_limit),
            Some(ordering),
            Some(secret),
        ) if !form.has_errors() => Ok(ValidWebhook {
            name,
            url,
            events,
            secret,
            settings: WebhookSettings {
                filter,
                headers,
                description,
                metadata,
                rate_limit,
                ordering,
            },
        }),
        _ => Err(Box::new(form)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> FormFields {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        FormFields::parse(body.as_bytes())
    }

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("name", "Orders"),
            ("url", "https://example.com/hook"),
            ("events", "*"),
        ]
    }

    fn stored() -> ExtraHeaders {
        ExtraHeaders::parse(vec![(
            "Authorization".to_owned(),
            "Bearer gateway-token".to_owned(),
        )])
        .expect("valid")
    }

    fn refused(pairs: &[(&str, &str)]) -> WebhookForm {
        match validate(&fields(pairs), TargetPolicy::SecureOnly, &stored()) {
            Ok(_) => panic!("{pairs:?} accepted"),
            Err(form) => *form,
        }
    }

    #[test]
    fn masks_show_at_most_four_characters_and_a_quarter() {
        assert_eq!(mask("Bearer gateway-token"), "Bear••••••••");
        assert_eq!(mask("acme"), "a••••••••");
        assert_eq!(mask("abc"), "••••••••");
    }

    #[test]
    fn every_field_is_read_and_empty_rows_are_ignored() {
        let mut pairs = base();
        pairs.extend([
            ("filter", r#"{"data.points": {"$gte": 100}}"#),
            ("header_name", " X-Tenant "),
            ("header_value", "acme"),
            ("header_name", ""),
            ("header_value", ""),
            ("description", "Orders\r\nfeed"),
            ("metadata_key", "team"),
            ("metadata_value", ""),
            ("metadata_key", "env=prod"),
            ("metadata_value", "x"),
            ("rate_limit", " 20 "),
            ("ordering", "per_user"),
        ]);
        let valid = validate(&fields(&pairs), TargetPolicy::SecureOnly, &stored())
            .ok()
            .expect("valid");
        let settings = valid.settings;
        assert!(settings.filter.is_some());
        assert_eq!(
            settings.headers.iter().collect::<Vec<_>>(),
            [("X-Tenant", "acme")]
        );
        assert_eq!(
            settings.description.as_ref().map(Description::as_str),
            Some("Orders\nfeed")
        );
        assert_eq!(
            settings.metadata.iter().collect::<Vec<_>>(),
            [("team", ""), ("env=prod", "x")]
        );
        assert_eq!(settings.rate_limit, RateLimit::new(20).ok());
        assert_eq!(settings.ordering, Ordering::PerUser);
        assert_eq!(valid.events, EventSelection::Every);
    }

    #[test]
    fn empty_optional_fields_mean_none() {
        let valid = validate(&fields(&base()), TargetPolicy::SecureOnly, &stored())
            .ok()
            .expect("valid");
        assert_eq!(valid.settings, WebhookSettings::default());
    }

    #[test]
    fn an_unchanged_mask_keeps_the_stored_value_and_another_is_refused() {
        let shown = mask("Bearer gateway-token");
        let mut pairs = base();
        pairs.extend([("header_name", "authorization"), ("header_value", &shown)]);
        let valid = validate(&fields(&pairs), TargetPolicy::SecureOnly, &stored())
            .ok()
            .expect("valid");
        assert_eq!(
            valid.settings.headers.iter().collect::<Vec<_>>(),
            [("authorization", "Bearer gateway-token")]
        );

        let mut pairs = base();
        pairs.extend([("header_name", "X-Other"), ("header_value", &shown)]);
        let form = refused(&pairs);
        assert!(form.errors.headers.expect("error").contains("hidden"));
    }

    #[test]
    fn each_field_names_its_own_error() {
        /// Which field's error a case expects.
        type ErrorOf = fn(&FieldErrors) -> &Option<String>;
        let cases: [(&str, &str, ErrorOf, &str); 8] = [
            ("filter", "{not json", |e| &e.filter, "not valid JSON"),
            ("filter", "[1]", |e| &e.filter, "must be a JSON object"),
            (
                "filter",
                r#"{"data.points": {"$gte": true}}"#,
                |e| &e.filter,
                "data.points",
            ),
            ("rate_limit", "0", |e| &e.rate_limit, "from 1 to 10000"),
            ("rate_limit", "fast", |e| &e.rate_limit, "whole number"),
            ("ordering", "fifo", |e| &e.ordering, "per user"),
            ("header_name", "Host", |e| &e.headers, "reserved"),
            ("description", "\u{7}", |e| &e.description, "control"),
        ];
        for (name, value, error_of, expected) in cases {
            let mut pairs = base();
            pairs.push((name, value));
            if name == "header_name" {
                pairs.push(("header_value", "x"));
            }
            let form = refused(&pairs);
            let error = error_of(&form.errors).clone().expect(value);
            assert!(error.contains(expected), "{value}: {error}");
            assert_eq!(form.name, "Orders", "the input is kept");
        }
    }

    #[test]
    fn repeated_metadata_keys_are_refused() {
        let mut pairs = base();
        pairs.extend([
            ("metadata_key", "a"),
            ("metadata_value", "1"),
            ("metadata_key", "a"),
            ("metadata_value", "2"),
        ]);
        let form = refused(&pairs);
        assert!(form.errors.metadata.expect("error").contains("twice"));
    }

    #[test]
    fn rows_offer_three_empty_ones_up_to_the_limit() {
        let form = WebhookForm::blank();
        assert_eq!(form.headers.len(), EMPTY_ROWS);
        let full: Vec<Row> = (0..MAX_HEADERS)
            .map(|n| Row {
                name: format!("X-{n}"),
                value: "v".into(),
            })
            .collect();
        assert_eq!(with_empty_rows(full, MAX_HEADERS).len(), MAX_HEADERS);
    }
}
