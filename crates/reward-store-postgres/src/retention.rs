//! Retention: dropping what expired (events past `REWARD_EVENT_RETENTION` with their finished
//! deliveries and attempts, idempotency keys and kept answers past 24 h) and clearing the response
//! bodies of old attempts (`REWARD_ATTEMPT_BODY_RETENTION`). Every statement touches at most
//! about [`CHUNK`] rows and commits on its own, so no purge holds locks, or a snapshot, long
//! enough to stall the writers, however much expired at once.

use reward_core::time::Timestamp;
use reward_store::StoreResult;

use crate::errors::from_pg;
use crate::statements::Db;

/// Rows per statement.
pub const CHUNK: i64 = 2_000;

/// Finished deliveries of expired events, with their attempts (deleted in the same statement).
const FINISHED_DELIVERIES: &str = "
    WITH doomed AS (
        SELECT d.account_id, d.id FROM events e
        JOIN deliveries d ON d.account_id = e.account_id AND d.event_id = e.id
        WHERE e.created_at < $1 AND d.status <> 'pending'
        LIMIT $2),
    attempts_gone AS (
        DELETE FROM attempts a USING doomed
        WHERE a.account_id = doomed.account_id AND a.delivery_id = doomed.id)
    DELETE FROM deliveries d USING doomed
    WHERE d.account_id = doomed.account_id AND d.id = doomed.id";

/// Expired events with no delivery left (one still pending keeps its event until it is done).
const EVENTS: &str = "
    DELETE FROM events WHERE (account_id, id) IN (
        SELECT account_id, id FROM events e WHERE created_at < $1 AND NOT EXISTS
            (SELECT 1 FROM deliveries d WHERE d.account_id = e.account_id AND d.event_id = e.id)
        LIMIT $2)";

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
    let steps = [
        (FINISHED_DELIVERIES, events_before),
        (EVENTS, events_before),
        (IDEMPOTENCY_KEYS, idempotency_before),
        (IDEMPOTENT_RESPONSES, idempotency_before),
    ];
    for (sql, before) in steps {
        while client
            .execute(sql, &[&before.as_millis(), &CHUNK])
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
