//! Disabling webhooks whose every delivery attempt has failed for too long
//! (`REWARD_DISABLE_AFTER`): the rule is `reward_store::statements::DISABLE_FAILING_WEBHOOKS`.
//! Each webhook disabled is announced (`webhook.disabled`) in the same transaction.

use reward_core::event::{DisabledReason, NewEvent};
use reward_core::ids::{AccountId, WebhookId};
use reward_core::time::Timestamp;
use reward_store::handoff::Outbox;
use reward_store::statements::DISABLE_FAILING_WEBHOOKS;
use reward_store::StoreResult;

use crate::errors::from_pg;
use crate::statements::Db;
use crate::{outbox, rows};

/// Disables every enabled webhook failing since `failing_since` or earlier, with `reason`, and
/// emits `webhook.disabled` for each through `outbox`; returns the webhooks disabled.
pub async fn disable_failing(
    client: &impl Db,
    failing_since: Timestamp,
    now: Timestamp,
    reason: &str,
    outbox: &mut Outbox,
) -> StoreResult<Vec<WebhookId>> {
    let rows = client
        .query(
            DISABLE_FAILING_WEBHOOKS,
            &[&failing_since.as_millis(), &now.as_millis(), &reason],
        )
        .await
        .map_err(from_pg)?;
    let mut disabled = Vec::with_capacity(rows.len());
    for row in &rows {
        let account = AccountId::from_trusted(rows::get(row, 0)?);
        let id = WebhookId::from_trusted(rows::get(row, 1)?);
        let name: String = rows::get(row, 2)?;
        let event = NewEvent::webhook_disabled(now, &id, &name, DisabledReason::Failing);
        outbox::emit(client, &account, &event, outbox).await?;
        disabled.push(id);
    }
    Ok(disabled)
}
