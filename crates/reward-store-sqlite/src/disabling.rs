//! Disabling webhooks whose every delivery attempt has failed for too long
//! (`REWARD_DISABLE_AFTER`); the same rule as the PostgreSQL store's `disabling.rs`.

use reward_core::ids::WebhookId;
use reward_core::time::Timestamp;
use reward_store::StoreResult;
use rusqlite::{params, Connection};

use crate::errors::from_sqlite;

/// Disables every enabled webhook with a failed attempt at or before `failing_since`, no
/// successful (2xx) attempt since that one, and no change to the webhook since it either (enabling
/// or editing it restarts the clock). Returns the webhooks disabled.
pub fn disable_failing(
    connection: &Connection,
    failing_since: Timestamp,
    now: Timestamp,
    reason: &str,
) -> StoreResult<Vec<WebhookId>> {
    let mut statement = connection
        .prepare_cached(
            "UPDATE webhooks SET enabled = 0, disabled_reason = ?3, updated_at = ?2
             WHERE enabled = 1 AND EXISTS (
               SELECT 1 FROM deliveries d JOIN attempts a
                 ON a.account_id = d.account_id AND a.delivery_id = d.id
               WHERE d.account_id = webhooks.account_id AND d.webhook_id = webhooks.id
                 AND a.started_at <= ?1 AND a.started_at >= webhooks.updated_at
                 AND (a.status_code IS NULL OR a.status_code NOT BETWEEN 200 AND 299)
                 AND NOT EXISTS (
                   SELECT 1 FROM deliveries sd JOIN attempts s
                     ON s.account_id = sd.account_id AND s.delivery_id = sd.id
                   WHERE sd.account_id = webhooks.account_id AND sd.webhook_id = webhooks.id
                     AND s.started_at >= a.started_at AND s.status_code BETWEEN 200 AND 299))
             RETURNING id",
        )
        .map_err(from_sqlite)?;
    let disabled = statement
        .query_map(
            params![failing_since.as_millis(), now.as_millis(), reason],
            |row| row.get::<_, String>(0),
        )
        .map_err(from_sqlite)?
        .map(|id| id.map(WebhookId::from_trusted))
        .collect::<Result<Vec<_>, _>>()
        .map_err(from_sqlite)?;
    Ok(disabled)
}
