//! Reading the events an account was sent.

use reward_core::ids::{AccountId, EventId};
use reward_core::time::Timestamp;
use reward_store::paging::page_of;
use reward_store::records::{Event, EventQuery, Page, PageRequest};
use reward_store::{StoreError, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::errors::from_sqlite;
use crate::rows;

const COLUMNS: &str = "id, event_type, created_at, payload";

fn from_row(row: &Row) -> rusqlite::Result<Event> {
    Ok(Event {
        id: EventId::from_trusted(row.get(0)?),
        event_type: rows::event_type(row, 1)?,
        created_at: rows::timestamp(row, 2)?,
        payload: row.get(3)?,
    })
}

/// The account's events that `query` keeps, newest first.
pub fn list(
    connection: &Connection,
    account: &AccountId,
    query: &EventQuery,
    page: &PageRequest,
) -> StoreResult<Page<Event>> {
    let statement = reward_store::search::events(account.as_str(), query, page)?;
    let found = crate::search::rows(connection, COLUMNS, "events", &statement, from_row)?;
    Ok(page_of(found, page.limit, |event: &Event| {
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

/// Rows deleted per purge transaction, per kind. The writer is one queue: API writes wait behind
/// a chunk, so a chunk must stay short. Measured with `reward bench --scenarios purge` (a
/// million deliveries): chunks of 2,000 held the writer about 200 ms each.
const PURGE_CHUNK: i64 = 250;

/// Drops one chunk of what has expired: finished deliveries of events past retention (with their
/// attempts), events past retention with no delivery left, and stale idempotency keys and kept
/// answers (`idempotent_responses`). Returns how many rows went; the caller repeats
/// until none do, one transaction per chunk, so memory stays bounded however much expired.
pub fn purge_expired_chunk(
    connection: &Connection,
    events_before: Timestamp,
    idempotency_before: Timestamp,
) -> StoreResult<usize> {
    let events_before = events_before.as_millis();
    let finished: Vec<(String, String)> = connection
        .prepare_cached(
            "SELECT d.account_id, d.id FROM deliveries d JOIN events e
               ON e.account_id = d.account_id AND e.id = d.event_id
             WHERE e.created_at < ?1 AND d.status != 'pending'
             LIMIT ?2",
        )
        .and_then(|mut statement| {
            statement
                .query_map(params![events_before, PURGE_CHUNK], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })?
                .collect()
        })
        .map_err(from_sqlite)?;
    for (account, id) in &finished {
        crate::deliveries::delete_with_attempts(connection, account, std::slice::from_ref(id))?;
    }
    let events = connection
        .prepare_cached(
            "DELETE FROM events WHERE rowid IN (
               SELECT rowid FROM events WHERE created_at < ?1 AND NOT EXISTS
                 (SELECT 1 FROM deliveries d
                  WHERE d.account_id = events.account_id AND d.event_id = events.id)
               LIMIT ?2)",
        )
        .and_then(|mut statement| statement.execute(params![events_before, PURGE_CHUNK]))
        .map_err(from_sqlite)?;
    let keys = connection
        .prepare_cached(
            "DELETE FROM idempotency_keys WHERE rowid IN (
               SELECT rowid FROM idempotency_keys WHERE created_at < ?1 LIMIT ?2)",
        )
        .and_then(|mut statement| {
            statement.execute(params![idempotency_before.as_millis(), PURGE_CHUNK])
        })
        .map_err(from_sqlite)?;
    let answers = crate::idempotent::purge_chunk(connection, idempotency_before, PURGE_CHUNK)?;
    Ok(finished.len() + events + keys + answers)
}
