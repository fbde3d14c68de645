//! Attempt roll-ups (see `reward_store::rollups`): upserted with each recorded batch, read back
//! for a webhook's statistics, purged by upkeep.

use reward_core::ids::{AccountId, WebhookId};
use reward_core::stats::StatsPeriod;
use reward_core::time::Timestamp;
use reward_store::records::{AttemptRecord, WebhookStats};
use reward_store::rollups::{self, RolledUp};
use reward_store::StoreResult;
use rusqlite::{params, Connection};

use crate::errors::from_sqlite;
use crate::rows;

/// Counts a recorded batch in its roll-ups and failure runs: one upsert per row touched, on
/// statements prepared once (SQLite runs them in process, so there is no round trip to save).
pub fn record(connection: &Connection, records: &[AttemptRecord]) -> StoreResult<()> {
    let mut count = connection
        .prepare_cached(
            "INSERT INTO attempt_rollups (account_id, webhook_id, hour_start, latency_bucket,
               succeeded, failed) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (account_id, webhook_id, hour_start, latency_bucket) DO UPDATE SET
               succeeded = succeeded + excluded.succeeded, failed = failed + excluded.failed",
        )
        .map_err(from_sqlite)?;
    for row in rollups::increments(records) {
        count
            .execute(params![
                row.account.as_str(),
                row.webhook.as_str(),
                row.hour_start.as_millis(),
                row.latency_bucket,
                row.succeeded,
                row.failed,
            ])
            .map_err(from_sqlite)?;
    }
    let mut run = connection
        .prepare_cached(
            "INSERT INTO webhook_failure_runs (account_id, webhook_id, failing_since)
             VALUES (?1, ?2, ?3)
             ON CONFLICT (account_id, webhook_id) DO UPDATE SET failing_since =
               CASE WHEN ?4 THEN excluded.failing_since
                    ELSE COALESCE(failing_since, excluded.failing_since) END",
        )
        .map_err(from_sqlite)?;
    for change in rollups::failure_runs(records) {
        run.execute(params![
            change.account.as_str(),
            change.webhook.as_str(),
            change.failing_since().map(Timestamp::as_millis),
            change.restarts(),
        ])
        .map_err(from_sqlite)?;
    }
    Ok(())
}

/// The webhook's statistics: its roll-ups of the period, its pending deliveries and its run of
/// failures. `NotFound` unless the account has the webhook.
pub fn webhook_stats(
    connection: &Connection,
    account: &AccountId,
    webhook: &WebhookId,
    period: StatsPeriod,
    now: Timestamp,
) -> StoreResult<WebhookStats> {
    crate::webhooks::ensure_exists(connection, account, webhook)?;
    let keys = (account.as_str(), webhook.as_str());
    let rolled_up = connection
        .prepare_cached(
            "SELECT hour_start, latency_bucket, succeeded, failed FROM attempt_rollups
             WHERE account_id = ?1 AND webhook_id = ?2 AND hour_start >= ?3",
        )
        .and_then(|mut statement| {
            statement
                .query_map(
                    params![keys.0, keys.1, period.since(now).as_millis()],
                    |row| {
                        Ok(RolledUp {
                            hour_start: Timestamp::from_millis(row.get(0)?),
                            latency_bucket: row.get(1)?,
                            succeeded: row.get::<_, i64>(2)?.max(0) as u64,
                            failed: row.get::<_, i64>(3)?.max(0) as u64,
                        })
                    },
                )?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(from_sqlite)?;
    // The queue's own partial index (`deliveries_due`) holds exactly the pending deliveries;
    // counting a webhook's among them reads no succeeded ones, where the index by webhook would
    // read all of them. The unary `+` keeps the planner off that index (no `INDEXED BY`, which
    // would turn a renamed index into an error).
    let pending = connection
        .prepare_cached(
            "SELECT COUNT(*) FROM deliveries
             WHERE status = 'pending' AND +account_id = ?1 AND +webhook_id = ?2",
        )
        .and_then(|mut statement| {
            statement.query_row(params![keys.0, keys.1], |row| row.get::<_, i64>(0))
        })
        .map_err(from_sqlite)?;
    let failing_since = connection
        .prepare_cached(
            "SELECT failing_since FROM webhook_failure_runs WHERE account_id = ?1 AND webhook_id = ?2",
        )
        .and_then(|mut statement| {
            statement
                .query_map(params![keys.0, keys.1], |row| rows::optional_timestamp(row, 0))?
                .next()
                .transpose()
        })
        .map_err(from_sqlite)?
        .flatten();
    Ok(rollups::assemble(
        period,
        now,
        &rolled_up,
        pending.max(0) as u64,
        failing_since,
    ))
}

/// Deletes roll-ups of hours before `before`, and the failure runs of deleted webhooks.
pub fn purge(connection: &Connection, before: Timestamp) -> StoreResult<()> {
    connection
        .execute(
            "DELETE FROM attempt_rollups WHERE hour_start < ?1",
            [before.as_millis()],
        )
        .map_err(from_sqlite)?;
    connection
        .execute(
            "DELETE FROM webhook_failure_runs WHERE NOT EXISTS (
               SELECT 1 FROM webhooks w
               WHERE w.account_id = webhook_failure_runs.account_id
                 AND w.id = webhook_failure_runs.webhook_id)",
            [],
        )
        .map_err(from_sqlite)?;
    Ok(())
}
