//! Disabling webhooks whose every delivery attempt has failed for too long
//! (`REWARD_DISABLE_AFTER`): the rule is `reward_store::statements::DISABLE_FAILING_WEBHOOKS`.

use deadpool_postgres::GenericClient;
use reward_core::ids::WebhookId;
use reward_core::time::Timestamp;
use reward_store::statements::DISABLE_FAILING_WEBHOOKS;
use reward_store::StoreResult;

use crate::errors::from_pg;

/// Disables every enabled webhook failing since `failing_since` or earlier, with `reason`;
/// returns the webhooks disabled.
pub async fn disable_failing(
    client: &impl GenericClient,
    failing_since: Timestamp,
    now: Timestamp,
    reason: &str,
) -> StoreResult<Vec<WebhookId>> {
    let rows = client
        .query(
            DISABLE_FAILING_WEBHOOKS,
            &[&failing_since.as_millis(), &now.as_millis(), &reason],
        )
        .await
        .map_err(from_pg)?;
    Ok(rows
        .iter()
        .map(|row| WebhookId::from_trusted(row.get(0)))
        .collect())
}
