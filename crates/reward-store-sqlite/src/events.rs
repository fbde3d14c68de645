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

/// Expired events looked at per purge transaction (with their deliveries: up to ten times as
/// many rows at a fan-out of ten). The writer is one queue and API writes wait behind a chunk.
const EVENTS_PER_CHUNK: i64 = 200;
/// Idempotency keys and kept answers deleted per purge transaction, each.
const KEYS_PER_CHUNK: i64 = 2_000;

/// Where a purge has got to among the expired events: the last one looked at, by age.
#[derive(Debug, Clone, Copy, Default)]
pub struct PurgeCursor {
    created_at: i64,
    rowid: i64,
}

/// Drops one chunk of expired events: looks at the next [`EVENTS_PER_CHUNK`] events past
/// retention after `cursor` (oldest first, through `events_by_age`), deletes their finished
/// deliveries with their attempts, then each of them that has no delivery left (one still
/// pending keeps its event). Returns the rows deleted and where the next chunk starts (`None`:
/// every expired event was looked at). A cursor, rather than a fresh search per chunk, keeps
/// each chunk's work bounded: events kept for a pending delivery are passed once, not re-read.
pub fn purge_events_chunk(
    connection: &Connection,
    events_before: Timestamp,
    cursor: PurgeCursor,
) -> StoreResult<(usize, Option<PurgeCursor>)> {
    let events: Vec<(i64, i64, String, String)> = connection
        .prepare_cached(
            "SELECT rowid, created_at, account_id, id FROM events
             WHERE created_at < ?1 AND (created_at, rowid) > (?2, ?3)
             ORDER BY created_at, rowid LIMIT ?4",
        )
        .and_then(|mut statement| {
            statement
                .query_map(
                    params![
                        events_before.as_millis(),
                        cursor.created_at,
                        cursor.rowid,
                        EVENTS_PER_CHUNK
                    ],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
                )?
                .collect()
        })
        .map_err(from_sqlite)?;
    let mut deleted = 0;
    for (rowid, _, account, event) in &events {
        let finished: Vec<String> = connection
            .prepare_cached(
                "SELECT id FROM deliveries
                 WHERE account_id = ?1 AND event_id = ?2 AND status != 'pending'",
            )
            .and_then(|mut statement| {
                statement
                    .query_map(params![account, event], |row| row.get(0))?
                    .collect()
            })
            .map_err(from_sqlite)?;
        crate::deliveries::delete_with_attempts(connection, account, &finished)?;
        deleted += finished.len();
        deleted += connection
            .prepare_cached(
                "DELETE FROM events WHERE rowid = ?1 AND NOT EXISTS
                   (SELECT 1 FROM deliveries d WHERE d.account_id = ?2 AND d.event_id = ?3)",
            )
            .and_then(|mut statement| statement.execute(params![rowid, account, event]))
            .map_err(from_sqlite)?;
    }
    let next = match events.last() {
        Some((rowid, created_at, _, _)) if events.len() as i64 == EVENTS_PER_CHUNK => {
            Some(PurgeCursor {
                created_at: *created_at,
                rowid: *rowid,
            })
        }
        _ => None,
    };
    Ok((deleted, next))
}

/// Drops one chunk of stale idempotency keys and kept answers (`idempotent_responses`); returns
/// how many went. Every row it reads is one it deletes, so the caller repeats until none do.
pub fn purge_keys_chunk(connection: &Connection, before: Timestamp) -> StoreResult<usize> {
    let keys = connection
        .prepare_cached(
            "DELETE FROM idempotency_keys WHERE rowid IN (
               SELECT rowid FROM idempotency_keys WHERE created_at < ?1 LIMIT ?2)",
        )
        .and_then(|mut statement| statement.execute(params![before.as_millis(), KEYS_PER_CHUNK]))
        .map_err(from_sqlite)?;
    let answers = crate::idempotent::purge_chunk(connection, before, KEYS_PER_CHUNK)?;
    Ok(keys + answers)
}
