//! Clearing the response bodies of old attempts (`REWARD_ATTEMPT_BODY_RETENTION`): the attempt's
//! status, timing and error stay. One account at a time through `attempts_by_time`
//! (account_id, started_at), in chunks of about [`CHUNK`] attempts, each its own short write, so
//! the writer is never held for long however much there is to clear.

use reward_core::time::Timestamp;
use reward_store::StoreResult;
use rusqlite::{params, Connection, OptionalExtension};

use crate::errors::from_sqlite;

/// Attempts looked at per chunk (kept short: API writes wait behind each, see events.rs).
pub const CHUNK: i64 = 500;

/// Every account's id: retention walks each one's attempts by its index.
pub fn account_ids(connection: &Connection) -> StoreResult<Vec<String>> {
    connection
        .prepare_cached("SELECT id FROM accounts ORDER BY id")
        .and_then(|mut statement| statement.query_map([], |row| row.get(0))?.collect())
        .map_err(from_sqlite)
}

/// Clears the bodies of the account's attempts that started from `from` on, up to about
/// [`CHUNK`] of them and never at or after `before`. Returns how many were cleared and where the
/// next chunk starts (`None`: nothing is left before `before`).
pub fn clear_bodies_chunk(
    connection: &Connection,
    account: &str,
    from: Timestamp,
    before: Timestamp,
) -> StoreResult<(usize, Option<Timestamp>)> {
    let (from, before) = (from.as_millis(), before.as_millis());
    // The start time CHUNK attempts on bounds this chunk (read from the index alone).
    let bound: Option<i64> = connection
        .prepare_cached(
            "SELECT started_at FROM attempts
             WHERE account_id = ?1 AND started_at >= ?2 AND started_at < ?3
             ORDER BY started_at LIMIT 1 OFFSET ?4",
        )
        .and_then(|mut statement| {
            statement
                .query_row(params![account, from, before, CHUNK], |row| row.get(0))
                .optional()
        })
        .map_err(from_sqlite)?;
    // More than a chunk started in one millisecond: take that millisecond whole.
    let until = bound.map_or(before, |bound| bound.max(from + 1));
    let cleared = connection
        .prepare_cached(
            "UPDATE attempts SET response_body = NULL
             WHERE account_id = ?1 AND started_at >= ?2 AND started_at < ?3
               AND response_body IS NOT NULL",
        )
        .and_then(|mut statement| statement.execute(params![account, from, until]))
        .map_err(from_sqlite)?;
    let next = (until < before).then(|| Timestamp::from_millis(until));
    Ok((cleared, next))
}
