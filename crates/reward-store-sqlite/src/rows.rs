//! Reading columns back into domain types (what the columns mean is `reward_store::columns`).

use reward_core::endpoint::{Description, EventSelection, ExtraHeaders, Ordering};
use reward_core::event::EventType;
use reward_core::filter::PayloadFilter;
use reward_core::names::WebhookUrl;
use reward_core::signing::WebhookSecret;
use reward_core::time::Timestamp;
use reward_core::trace::TraceParent;
use reward_store::columns;
use reward_store::records::{DeliveryStatus, WebhookSecrets, WebhookSettings};
use reward_store::secrets::SecretCipher;
use rusqlite::types::Type;
use rusqlite::Row;

fn corrupt(index: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        index,
        Type::Text,
        format!("stored value is not a valid {what}").into(),
    )
}

pub fn timestamp(row: &Row, index: usize) -> rusqlite::Result<Timestamp> {
    row.get::<_, i64>(index).map(Timestamp::from_millis)
}

pub fn optional_timestamp(row: &Row, index: usize) -> rusqlite::Result<Option<Timestamp>> {
    Ok(row
        .get::<_, Option<i64>>(index)?
        .map(Timestamp::from_millis))
}

pub fn event_type(row: &Row, index: usize) -> rusqlite::Result<EventType> {
    let text: String = row.get(index)?;
    EventType::parse(&text).ok_or_else(|| corrupt(index, "event type"))
}

pub fn event_types(row: &Row, index: usize) -> rusqlite::Result<EventSelection> {
    let text: String = row.get(index)?;
    columns::event_types_from_json(&text).ok_or_else(|| corrupt(index, "event list"))
}

pub fn filter(row: &Row, index: usize) -> rusqlite::Result<Option<PayloadFilter>> {
    let text: Option<String> = row.get(index)?;
    columns::filter_from_column(text.as_deref()).map_err(|_| corrupt(index, "filter"))
}

/// A webhook's extra headers, opened from their stored (sealed) form.
pub fn headers(
    row: &Row,
    index: usize,
    cipher: &SecretCipher,
    webhook_id: &str,
) -> rusqlite::Result<ExtraHeaders> {
    let text: String = row.get(index)?;
    columns::headers_from_column(cipher, webhook_id, &text).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(index, Type::Text, error.to_string().into())
    })
}

/// A webhook's settings, from six columns starting at `first`: `filter`, `headers`,
/// `description`, `metadata`, `rate_limit`, `ordering`.
pub fn webhook_settings(
    row: &Row,
    first: usize,
    cipher: &SecretCipher,
    webhook_id: &str,
) -> rusqlite::Result<WebhookSettings> {
    let metadata: String = row.get(first + 3)?;
    Ok(WebhookSettings {
        filter: filter(row, first)?,
        headers: headers(row, first + 1, cipher, webhook_id)?,
        description: row
            .get::<_, Option<String>>(first + 2)?
            .map(Description::from_trusted),
        metadata: columns::metadata_from_column(&metadata)
            .ok_or_else(|| corrupt(first + 3, "metadata"))?,
        rate_limit: columns::rate_limit_from_column(row.get(first + 4)?),
        ordering: Ordering::from_trusted(&row.get::<_, String>(first + 5)?),
    })
}

pub fn delivery_status(row: &Row, index: usize) -> rusqlite::Result<DeliveryStatus> {
    let text: String = row.get(index)?;
    DeliveryStatus::parse(&text).ok_or_else(|| corrupt(index, "delivery status"))
}

pub fn webhook_url(row: &Row, index: usize) -> rusqlite::Result<WebhookUrl> {
    let text: String = row.get(index)?;
    WebhookUrl::from_trusted(&text).ok_or_else(|| corrupt(index, "URL"))
}

/// A webhook's secret, opened from its stored (sealed) form.
pub fn secret(
    row: &Row,
    index: usize,
    cipher: &SecretCipher,
    webhook_id: &str,
) -> rusqlite::Result<WebhookSecret> {
    let text: String = row.get(index)?;
    cipher.open(webhook_id, &text).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(index, Type::Text, error.to_string().into())
    })
}

/// A webhook's signing secrets, from two columns in a row starting at `first`: `secret`,
/// `previous_secrets`.
pub fn webhook_secrets(
    row: &Row,
    first: usize,
    cipher: &SecretCipher,
    webhook_id: &str,
) -> rusqlite::Result<WebhookSecrets> {
    let stored: String = row.get(first + 1)?;
    let previous = cipher.open_previous(webhook_id, &stored).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(first + 1, Type::Text, error.to_string().into())
    })?;
    Ok(WebhookSecrets {
        current: secret(row, first, cipher, webhook_id)?,
        previous,
    })
}

pub fn json_number(row: &Row, index: usize) -> rusqlite::Result<Option<serde_json::Number>> {
    match row.get::<_, Option<String>>(index)? {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|_| corrupt(index, "number")),
    }
}

pub fn status_code(row: &Row, index: usize) -> rusqlite::Result<Option<u16>> {
    Ok(row
        .get::<_, Option<i64>>(index)?
        .and_then(|code| u16::try_from(code).ok()))
}

/// An event's stored trace context. One that does not parse (written by hand) is no trace: a
/// delivery is never refused over its tracing.
pub fn trace_parent(row: &Row, index: usize) -> rusqlite::Result<Option<TraceParent>> {
    let text: Option<String> = row.get(index)?;
    Ok(text.and_then(|text| TraceParent::parse(&text).ok()))
}
