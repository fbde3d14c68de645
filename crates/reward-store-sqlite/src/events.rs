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
    let found = crate::search::rows(connection, COLUMNS, &statement, from_row)?;
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

/// Where a purge has got to: the last event looked at, by row id.
#[derive(Debug, Clone, Copy, Default)]
pub struct PurgeCursor {
    rowid: i64,
}

/// Drops one chunk of expired events: looks at the next [`EVENTS_PER_CHUNK`] events after
/// `cursor` in the order they were written (the table's own row ids: no index of their age),
/// deletes their finished deliveries with their attempts, then each of them that has no delivery
/// left (one still pending keeps its event). The first event not yet past retention ends the
/// walk. Returns the rows deleted and where the next chunk starts (`None`: the walk ended). A
/// cursor, rather than a fresh search per chunk, keeps each chunk's work bounded: events kept for
/// a pending delivery are passed once, not re-read.
///
/// Row ids follow the order of writing, and events are written with the time they were created,
/// so an event written after one that is still kept is practically always kept too. Should the
/// clock have gone back, an older event written after a newer one waits for the next purge after
/// the newer one expires: it is purged late, never early. Migration 0013 has the measurement.
pub fn purge_events_chunk(
    connection: &Connection,
    events_before: Timestamp,
    cursor: PurgeCursor,
) -> StoreResult<(usize, Option<PurgeCursor>)> {
    let events: Vec<(i64, i64, String, String)> = connection
        .prepare_cached(
            "SELECT rowid, created_at, account_id, id FROM events
             WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
        )
        .and_then(|mut statement| {
            statement
                .query_map(params![cursor.rowid, EVENTS_PER_CHUNK], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                })?
                .collect()
        })
        .map_err(from_sqlite)?;
    let full_chunk = events.len() as i64 == EVENTS_PER_CHUNK;
    let mut deleted = 0;
    let mut last = None;
    for (rowid, created_at, account, event) in &events {
        if *created_at >= events_before.as_millis() {
            return Ok((deleted, None));
        }
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
        last = Some(*rowid);
    }
    let next = last
        .filter(|_| full_chunk)
        .map(|rowid| PurgeCursor { rowid });
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A migrated in-memory database with the events `(id, created_at)`, written in that order.
    fn database(events: &[(&str, i64)]) -> Connection {
        let mut connection = Connection::open_in_memory().expect("open");
        crate::migrations::migrate(&mut connection).expect("migrate");
        for (id, created_at) in events {
            connection
                .execute(
                    "INSERT INTO events (account_id, id, event_type, created_at, payload)
                     VALUES ('acct', ?1, 'trigger_event.created', ?2, '{}')",
                    params![id, created_at],
                )
                .expect("event");
        }
        connection
    }

    fn remaining(connection: &Connection) -> Vec<String> {
        connection
            .prepare("SELECT id FROM events ORDER BY rowid")
            .and_then(|mut statement| statement.query_map([], |row| row.get(0))?.collect())
            .expect("events")
    }

    /// Purges chunk after chunk, as the store does; returns the rows deleted and the chunks.
    fn purge(connection: &Connection, before: i64) -> (usize, usize) {
        let (mut deleted, mut chunks) = (0, 0);
        let mut cursor = Some(PurgeCursor::default());
        while let Some(from) = cursor {
            let (rows, next) = purge_events_chunk(connection, Timestamp::from_millis(before), from)
                .expect("purge");
            deleted += rows;
            chunks += 1;
            cursor = next;
        }
        (deleted, chunks)
    }

    #[test]
    fn the_walk_ends_at_the_first_event_still_kept_and_never_purges_one_early() {
        // "late" was written after "kept" with an older time (a clock gone back): it waits.
        let connection = database(&[("a", 100), ("b", 200), ("kept", 1_000), ("late", 150)]);
        assert_eq!(purge(&connection, 500), (2, 1));
        assert_eq!(remaining(&connection), ["kept", "late"]);
        assert_eq!(purge(&connection, 2_000), (2, 1));
        assert!(remaining(&connection).is_empty());
    }

    #[test]
    fn a_pending_delivery_keeps_its_event_and_the_walk_goes_on_past_it_in_chunks() {
        let ids: Vec<String> = (0..450).map(|n| format!("e{n:03}")).collect();
        let events: Vec<(&str, i64)> = ids.iter().map(|id| (id.as_str(), 100)).collect();
        let connection = database(&events);
        for (delivery, event, status) in [("d1", "e010", "pending"), ("d2", "e020", "succeeded")] {
            connection
                .execute(
                    "INSERT INTO deliveries (account_id, id, webhook_id, event_id, event_type,
                         status, created_at, updated_at)
                     VALUES ('acct', ?1, 'hook', ?2, 'trigger_event.created', ?3, 100, 100)",
                    params![delivery, event, status],
                )
                .expect("delivery");
        }
        // 449 events and the finished delivery, in three chunks of at most 200 events.
        assert_eq!(purge(&connection, 500), (450, 3));
        assert_eq!(remaining(&connection), ["e010"]);
    }
}
