//! Reading columns back into domain types (what the columns mean is `reward_store::columns`).

use reward_core::endpoint::{Description, EventSelection, ExtraHeaders, Ordering};
use reward_core::event::EventType;
use reward_core::filter::PayloadFilter;
use reward_core::names::WebhookUrl;
use reward_core::rotation::Retired;
use reward_core::signing::WebhookSecret;
use reward_core::time::Timestamp;
use reward_core::trace::TraceParent;
use reward_store::columns;
use reward_store::records::{DeliveryStatus, WebhookSettings};
use reward_store::secrets::SecretCipher;
use reward_store::{StoreError, StoreResult};
use tokio_postgres::types::FromSql;
use tokio_postgres::Row;

use crate::errors::from_pg;

fn corrupt(index: usize, what: &str) -> StoreError {
    StoreError::Internal(format!(
        "stored value in column {index} is not a valid {what}"
    ))
}

pub fn get<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> StoreResult<T> {
    row.try_get(index).map_err(from_pg)
}

pub fn timestamp(row: &Row, index: usize) -> StoreResult<Timestamp> {
    get::<i64>(row, index).map(Timestamp::from_millis)
}

pub fn optional_timestamp(row: &Row, index: usize) -> StoreResult<Option<Timestamp>> {
    Ok(get::<Option<i64>>(row, index)?.map(Timestamp::from_millis))
}

/// An INTEGER count (attempts, a number) as the unsigned value it always is.
pub fn count(row: &Row, index: usize) -> StoreResult<u32> {
    u32::try_from(get::<i32>(row, index)?).map_err(|_| corrupt(index, "count"))
}

/// A BIGINT that is never negative (a duration, a COUNT).
pub fn unsigned(row: &Row, index: usize) -> StoreResult<u64> {
    Ok(get::<i64>(row, index)?.max(0).unsigned_abs())
}

pub fn event_type(row: &Row, index: usize) -> StoreResult<EventType> {
    EventType::parse(get::<&str>(row, index)?).ok_or_else(|| corrupt(index, "event type"))
}

pub fn event_types(row: &Row, index: usize) -> StoreResult<EventSelection> {
    columns::event_types_from_json(get::<&str>(row, index)?)
        .ok_or_else(|| corrupt(index, "event list"))
}

pub fn filter(row: &Row, index: usize) -> StoreResult<Option<PayloadFilter>> {
    columns::filter_from_column(get::<Option<&str>>(row, index)?)
        .map_err(|_| corrupt(index, "filter"))
}

/// A webhook's extra headers, opened from their stored (sealed) form.
pub fn headers(
    row: &Row,
    index: usize,
    cipher: &SecretCipher,
    webhook_id: &str,
) -> StoreResult<ExtraHeaders> {
    columns::headers_from_column(cipher, webhook_id, get::<&str>(row, index)?)
}

/// A webhook's settings, from six columns starting at `first`: `filter`, `headers`,
/// `description`, `metadata`, `rate_limit`, `ordering`.
pub fn webhook_settings(
    row: &Row,
    first: usize,
    cipher: &SecretCipher,
    webhook_id: &str,
) -> StoreResult<WebhookSettings> {
    Ok(WebhookSettings {
        filter: filter(row, first)?,
        headers: headers(row, first + 1, cipher, webhook_id)?,
        description: get::<Option<String>>(row, first + 2)?.map(Description::from_trusted),
        metadata: columns::metadata_from_column(get::<&str>(row, first + 3)?)
            .ok_or_else(|| corrupt(first + 3, "metadata"))?,
        rate_limit: columns::rate_limit_from_column(
            get::<Option<i32>>(row, first + 4)?.map(i64::from),
        ),
        ordering: Ordering::from_trusted(get::<&str>(row, first + 5)?),
    })
}

pub fn delivery_status(row: &Row, index: usize) -> StoreResult<DeliveryStatus> {
    DeliveryStatus::parse(get::<&str>(row, index)?).ok_or_else(|| corrupt(index, "delivery status"))
}

pub fn webhook_url(row: &Row, index: usize) -> StoreResult<WebhookUrl> {
    WebhookUrl::from_trusted(get::<&str>(row, index)?).ok_or_else(|| corrupt(index, "URL"))
}

/// A webhook's secret, opened from its stored (sealed) form.
pub fn secret(
    row: &Row,
    index: usize,
    cipher: &SecretCipher,
    webhook_id: &str,
) -> StoreResult<WebhookSecret> {
    cipher.open(webhook_id, get::<&str>(row, index)?)
}

/// A webhook's secrets rotated out, opened from `previous_secrets`.
pub fn previous_secrets(
    row: &Row,
    index: usize,
    cipher: &SecretCipher,
    webhook_id: &str,
) -> StoreResult<Vec<Retired<WebhookSecret>>> {
    cipher.open_previous(webhook_id, get::<&str>(row, index)?)
}

pub fn json_number(row: &Row, index: usize) -> StoreResult<Option<serde_json::Number>> {
    match get::<Option<&str>>(row, index)? {
        None => Ok(None),
        Some(text) => serde_json::from_str(text)
            .map(Some)
            .map_err(|_| corrupt(index, "number")),
    }
}

pub fn status_code(row: &Row, index: usize) -> StoreResult<Option<u16>> {
    Ok(get::<Option<i32>>(row, index)?.and_then(|code| u16::try_from(code).ok()))
}

/// PostgreSQL's TEXT cannot hold a NUL character, which SQLite's can. What an endpoint answered is
/// the only stored text that comes from outside unchecked, so NULs there become U+FFFD: an answer
/// must never make recording an attempt fail (the delivery would be attempted forever).
pub fn storable_text(text: Option<&str>) -> Option<String> {
    text.map(|text| text.replace('\0', "\u{FFFD}"))
}

/// An event's stored trace context. One that does not parse (written by hand) is no trace: a
/// delivery is never refused over its tracing.
pub fn trace_parent(row: &Row, index: usize) -> StoreResult<Option<TraceParent>> {
    let text: Option<&str> = get(row, index)?;
    Ok(text.and_then(|text| TraceParent::parse(text).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_are_replaced_not_refused() {
        assert_eq!(storable_text(Some("a\0b")), Some("a\u{FFFD}b".to_owned()));
        assert_eq!(storable_text(None), None);
    }
}
