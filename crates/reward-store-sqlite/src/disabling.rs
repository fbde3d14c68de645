//! Disabling webhooks whose every delivery attempt has failed for too long
//! (`REWARD_DISABLE_AFTER`): the rule is `reward_store::statements::DISABLE_FAILING_WEBHOOKS`.
//! Each webhook disabled is announced (`webhook.disabled`) in the same transaction.

use reward_core::event::{DisabledReason, NewEvent};
use reward_core::ids::{AccountId, WebhookId};
use reward_core::time::Timestamp;
use reward_store::handoff::Outbox;
use reward_store::statements::DISABLE_FAILING_WEBHOOKS;
use reward_store::StoreResult;
use rusqlite::{named_params, Connection};

use crate::errors::from_sqlite;
use crate::outbox;

/// Disables every enabled webhook failing since `failing_since` or earlier, with `reason`, and
/// emits `webhook.disabled` for each through `outbox`; returns the webhooks disabled.
pub fn disable_failing(
    connection: &Connection,
    failing_since: Timestamp,
    now: Timestamp,
    reason: &str,
    outbox: &mut Outbox,
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
            |row| {
                Ok((
                    AccountId::from_trusted(row.get(0)?),
                    WebhookId::from_trusted(row.get(1)?),
                    row.get::<_, String>(2)?,
                ))
            },
        )
        .map_err(from_sqlite)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(from_sqlite)?;
    drop(statement);
    let mut ids = Vec::with_capacity(disabled.len());
    for (account, id, name) in disabled {
        let event = NewEvent::webhook_disabled(now, &id, &name, DisabledReason::Failing);
        outbox::emit(connection, &account, &event, outbox)?;
        ids.push(id);
    }
    Ok(ids)
}
