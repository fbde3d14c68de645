//! Disabling webhooks whose every delivery attempt has failed for too long
//! (`REWARD_DISABLE_AFTER`); the same rule as the SQLite store's `disabling.rs`. One statement, so
//! nodes sweeping at the same moment disable each webhook once.

use deadpool_postgres::GenericClient;
use reward_core::ids::WebhookId;
use reward_core::time::Timestamp;
use reward_store::StoreResult;

use crate::errors::from_pg;

/// Disables every enabled webhook with a failed attempt at or before `failing_since`, no
/// successful (2xx) attempt since that one, and no change to the webhook since it either (enabling
/// or editing it restarts the clock). Returns the webhooks disabled.
pub async fn disable_failing(
    client: &impl GenericClient,
    failing_since: Timestamp,
    now: Timestamp,
    reason: &str,
) -> StoreResult<Vec<WebhookId>> {
    let rows = client
        .query(
            "UPDATE webhooks SET enabled = FALSE, disabled_reason = $3, updated_at = $2
             WHERE enabled AND EXISTS (
               SELECT 1 FROM deliveries d JOIN attempts a
                 ON a.account_id = d.account_id AND a.delivery_id = d.id
               WHERE d.account_id = webhooks.account_id AND d.webhook_id = webhooks.id
                 AND a.started_at <= $1 AND a.started_at >= webhooks.updated_at
                 AND (a.status_code IS NULL OR a.status_code NOT BETWEEN 200 AND 299)
                 AND NOT EXISTS (
                   SELECT 1 FROM deliveries sd JOIN attempts s
                     ON s.account_id = sd.account_id AND s.delivery_id = sd.id
                   WHERE sd.account_id = webhooks.account_id AND sd.webhook_id = webhooks.id
                     AND s.started_at >= a.started_at AND s.status_code BETWEEN 200 AND 299))
             RETURNING id",
            &[&failing_since.as_millis(), &now.as_millis(), &reason],
        )
        .await
        .map_err(from_pg)?;
    Ok(rows
        .iter()
        .map(|row| WebhookId::from_trusted(row.get(0)))
        .collect())
}
