//! Reading the events an account was sent.

use reward_core::event::EventType;
use reward_core::ids::{AccountId, EventId};
use reward_core::time::Timestamp;
use reward_store::records::{Event, Page, PageRequest};
use reward_store::{StoreError, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::errors::from_sqlite;
use crate::rows;

fn from_row(row: &Row) -> rusqlite::Result<Event> {
    Ok(Event {
        id: EventId::from_trusted(row.get(0)?),
        event_type: rows::event_type(row, 1)?,
        created_at: rows::timestamp(row, 2)?,
        payload: row.get(3)?,
    })
}

pub fn list(
    connection: &Connection,
    account: &AccountId,
    event_type: Option<EventType>,
    page: &PageRequest,
) -> StoreResult<Page<Event>> {
    let after = crate::cursor::id_cursor::<EventId>(page)?;
    let mut statement = connection
        .prepare_cached(
            "SELECT id, event_type, created_at, payload FROM events WHERE account_id = ?1
             AND (?2 IS NULL OR event_type = ?2) AND id < ?3 ORDER BY id DESC LIMIT ?4",
        )
        .map_err(from_sqlite)?;
    let found = statement
        .query_map(
            params![
                account.as_str(),
                event_type.map(EventType::as_str),
                after,
                page.limit + 1
            ],
            from_row,
        )
        .and_then(Iterator::collect)
        .map_err(from_sqlite)?;
    Ok(rows::page_of(found, page.limit, |event: &Event| {
        event.id.to_string()
    }))
}

pub fn get(connection: &Connection, account: &AccountId, id: &EventId) -> StoreResult<Event> {
    connection
        .prepare_cached(
            "SELECT id, event_type, created_at, payload FROM events WHERE account_id = ?1 AND id = ?2",
        )
        .and_then(|mut statement| statement.query_row(params![account.as_str(), id.as_str()], from_row).optional())
        .map_err(from_sqlite)?
        .ok_or(StoreError::NotFound)
}

/// Drops events past retention, with their deliveries and attempts, and stale idempotency keys.
pub fn purge_expired(
    connection: &Connection,
    events_before: Timestamp,
    idempotency_before: Timestamp,
) -> StoreResult<()> {
    let events_before = events_before.as_millis();
    connection
        .execute_batch(&format!(
            "DELETE FROM attempts WHERE (account_id, delivery_id) IN
               (SELECT d.account_id, d.id FROM deliveries d JOIN events e
                  ON e.account_id = d.account_id AND e.id = d.event_id
                WHERE e.created_at < {events_before} AND d.status != 'pending');
             DELETE FROM deliveries WHERE status != 'pending' AND (account_id, event_id) IN
               (SELECT account_id, id FROM events WHERE created_at < {events_before});
             DELETE FROM events WHERE created_at < {events_before} AND NOT EXISTS
               (SELECT 1 FROM deliveries d WHERE d.account_id = events.account_id AND d.event_id = events.id);
             DELETE FROM idempotency_keys WHERE created_at < {};",
            idempotency_before.as_millis()
        ))
        .map_err(from_sqlite)
}
