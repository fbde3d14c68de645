//! Disabling webhooks whose every delivery attempt has failed for too long
//! (`REWARD_DISABLE_AFTER`): the rule is `reward_store::statements::DISABLE_FAILING_WEBHOOKS`.

use reward_core::ids::WebhookId;
use reward_core::time::Timestamp;
use reward_store::statements::DISABLE_FAILING_WEBHOOKS;
use reward_store::StoreResult;
use rusqlite::{named_params, Connection};

use crate::errors::from_sqlite;

/// Disables every enabled webhook failing since `failing_since` or earlier, with `reason`;
/// returns the webhooks disabled.
pub fn disable_failing(
    connection: &Connection,
    failing_since: Timestamp,
    now: Timestamp,
    reason: &str,
) -> StoreResult<Vec<WebhookId>> {
    let mut statement = connection
        .prepare_cached(DISABLE_FAILING_WEBHOOKS)
        .map_err(from_sqlite)?;
    // By name: SQLite numbers `$n` parameters in the order they first appear, not by `n`.
    let disabled = statement
        .query_map(
            named_params! {
                "$1": failing_since.as_millis(),
                "$2": now.as_millis(),
                "$3": reason,
            },
            |row| row.get::<_, String>(0),
        )
        .map_err(from_sqlite)?
        .map(|id| id.map(WebhookId::from_trusted))
        .collect::<Result<Vec<_>, _>>()
        .map_err(from_sqlite)?;
    Ok(disabled)
}
