//! Reading columns back into domain types, and paging.

use reward_core::event::EventType;
use reward_core::names::WebhookUrl;
use reward_core::rotation::Retired;
use reward_core::signing::WebhookSecret;
use reward_core::time::Timestamp;
use reward_store::records::{DeliveryStatus, Page};
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

pub fn event_types(row: &Row, index: usize) -> StoreResult<Vec<EventType>> {
    let names: Vec<String> =
        serde_json::from_str(get::<&str>(row, index)?).map_err(|_| corrupt(index, "event list"))?;
    names
        .iter()
        .map(|name| EventType::parse(name).ok_or_else(|| corrupt(index, "event type")))
        .collect()
}

/// The same JSON text the SQLite store keeps, so the column means the same in both.
pub fn event_types_json(events: &[EventType]) -> String {
    let names: Vec<&str> = events.iter().map(|kind| kind.as_str()).collect();
    serde_json::to_string(&names).unwrap_or_else(|_| "[]".into())
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

/// Cuts a newest-first result fetched with `limit + 1` rows into a page.
pub fn page_of<T>(mut rows: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> String) -> Page<T> {
    let limit = limit as usize;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if more {
        rows.last().map(cursor_of)
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

/// `LIMIT` of a page query: one row more than the page, to know whether another page follows.
pub fn fetch_limit(limit: u32) -> i64 {
    i64::from(limit) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_are_replaced_not_refused() {
        assert_eq!(storable_text(Some("a\0b")), Some("a\u{FFFD}b".to_owned()));
        assert_eq!(storable_text(None), None);
    }

    #[test]
    fn a_page_says_whether_more_follow() {
        let page = page_of(vec![3, 2, 1], 2, ToString::to_string);
        assert_eq!(page.items, vec![3, 2]);
        assert_eq!(page.next_cursor.as_deref(), Some("2"));
        let last = page_of(vec![1], 2, ToString::to_string);
        assert_eq!(last.next_cursor, None);
    }
}
