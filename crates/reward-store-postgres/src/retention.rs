//! Retention: dropping what expired (events past `REWARD_EVENT_RETENTION` with their finished
//! deliveries and attempts, idempotency keys and kept answers past 24 h) and clearing the response
//! bodies of old attempts (`REWARD_ATTEMPT_BODY_RETENTION`). Every statement touches a bounded
//! number of rows (200 events and their deliveries, or [`CHUNK`] others) and commits on its own,
//! so no purge holds locks, or a snapshot, long enough to stall the writers, however much expired
//! at once.

use reward_core::time::Timestamp;
use reward_store::StoreResult;

use crate::errors::from_pg;
use crate::statements::Db;

/// Rows per statement.
pub const CHUNK: i64 = 2_000;

/// Expired events looked at per statement (with their deliveries: ten times as many rows at a
/// fan-out of ten).
const EVENTS_PER_CHUNK: i64 = 200;

/// One chunk of expired events, after a cursor (oldest first, through `events_by_age`): their
/// finished deliveries (found by their keys, which go with them) with their attempts, then each
/// of them with no pending delivery. Returns how many events were looked at and the last one,
/// where the next chunk starts. A cursor keeps each chunk's work bounded: events kept for a
/// pending delivery are passed once, not re-read by every later chunk. (`created_at >= $2` lets
/// the index start at the cursor.)
const EVENTS_CHUNK: &str = "
    WITH batch AS (
        SELECT account_id, id, created_at FROM events
        WHERE created_at < $1 AND created_at >= $2 AND (created_at, account_id, id) > ($2, $3, $4)
        ORDER BY created_at, account_id, id
        LIMIT $5),
    doomed AS (
        SELECT k.account_id, k.delivery_id AS id FROM batch b
        JOIN delivery_keys k ON k.account_id = b.account_id AND k.event_id = b.id
        JOIN deliveries d ON d.account_id = k.account_id AND d.id = k.delivery_id
        WHERE d.status <> 'pending'),
    attempts_gone AS (
        DELETE FROM attempts a USING doomed
        WHERE a.account_id = doomed.account_id AND a.delivery_id = doomed.id),
    deliveries_gone AS (
        DELETE FROM deliveries d USING doomed
        WHERE d.account_id = doomed.account_id AND d.id = doomed.id),
    events_gone AS (
        DELETE FROM events e USING batch b
        WHERE e.account_id = b.account_id AND e.id = b.id AND NOT EXISTS (
            SELECT 1 FROM delivery_keys k
            JOIN deliveries d ON d.account_id = k.account_id AND d.id = k.delivery_id
            WHERE k.account_id = e.account_id AND k.event_id = e.id AND d.status = 'pending'))
    SELECT (SELECT count(*) FROM batch), b.created_at, b.account_id, b.id FROM batch b
    ORDER BY b.created_at DESC, b.account_id DESC, b.id DESC
    LIMIT 1";

const IDEMPOTENCY_KEYS: &str = "
    DELETE FROM idempotency_keys WHERE (account_id, key) IN (
        SELECT account_id, key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)";

const IDEMPOTENT_RESPONSES: &str = "
    DELETE FROM idempotent_responses WHERE (account_id, key) IN (
        SELECT account_id, key FROM idempotent_responses WHERE created_at < $1 LIMIT $2)";

/// Drops everything expired, a chunk per statement, until nothing is left.
pub async fn purge_expired(
    client: &impl Db,
    events_before: Timestamp,
    idempotency_before: Timestamp,
) -> StoreResult<()> {
    let mut cursor: (i64, String, String) = (-1, String::new(), String::new());
    loop {
        let last = client
            .query_opt(
                EVENTS_CHUNK,
                &[
                    &events_before.as_millis(),
                    &cursor.0,
                    &cursor.1,
                    &cursor.2,
                    &EVENTS_PER_CHUNK,
                ],
            )
            .await
            .map_err(from_pg)?;
        let Some(last) = last else { break };
        let looked_at: i64 = crate::rows::get(&last, 0)?;
        cursor = (
            crate::rows::get(&last, 1)?,
            crate::rows::get(&last, 2)?,
            crate::rows::get(&last, 3)?,
        );
        if looked_at < EVENTS_PER_CHUNK {
            break;
        }
    }
    for sql in [IDEMPOTENCY_KEYS, IDEMPOTENT_RESPONSES] {
        while client
            .execute(sql, &[&idempotency_before.as_millis(), &CHUNK])
            .await
            .map_err(from_pg)?
            > 0
        {}
    }
    Ok(())
}

/// Every account's id: clearing walks each one's attempts through `attempts_by_time`.
pub async fn account_ids(client: &impl Db) -> StoreResult<Vec<String>> {
    let rows = client
        .query("SELECT id FROM accounts ORDER BY id", &[])
        .await
        .map_err(from_pg)?;
    rows.iter().map(|row| crate::rows::get(row, 0)).collect()
}

/// Clears the bodies of the account's attempts that started from `from` on, up to about
/// [`CHUNK`] of them and never at or after `before`. Returns how many were cleared and where the
/// next chunk starts (`None`: nothing is left before `before`).
pub async fn clear_bodies_chunk(
    client: &impl Db,
    account: &str,
    from: Timestamp,
    before: Timestamp,
) -> StoreResult<(u64, Option<Timestamp>)> {
    let (from, before) = (from.as_millis(), before.as_millis());
    // The start time CHUNK attempts on bounds this chunk (an index-only read).
    let bound: Option<i64> = client
        .query_opt(
            "SELECT started_at FROM attempts
             WHERE account_id = $1 AND started_at >= $2 AND started_at < $3
             ORDER BY started_at OFFSET $4 LIMIT 1",
            &[&account, &from, &before, &CHUNK],
        )
        .await
        .map_err(from_pg)?
        .map(|row| crate::rows::get(&row, 0))
        .transpose()?;
    // More than a chunk started in one millisecond: take that millisecond whole.
    let until = bound.map_or(before, |bound| bound.max(from + 1));
    let cleared = client
        .execute(
            "UPDATE attempts SET response_body = NULL
             WHERE account_id = $1 AND started_at >= $2 AND started_at < $3
               AND response_body IS NOT NULL",
            &[&account, &from, &until],
        )
        .await
        .map_err(from_pg)?;
    let next = (until < before).then(|| Timestamp::from_millis(until));
    Ok((cleared, next))
}
