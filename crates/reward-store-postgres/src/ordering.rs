//! A webhook's ordering changed: its deliveries not yet started follow the new one.

use deadpool_postgres::GenericClient;
use reward_core::endpoint::Ordering;
use reward_core::ids::{AccountId, WebhookId};
use reward_store::StoreResult;

use crate::errors::from_pg;

/// Gives the webhook's pending deliveries that no worker holds (not leased, or leased no longer,
/// on the database's clock like every lease) and no manual retry asked for their events'
/// positions (`per_user`; events about no user stay unordered), or takes the positions away
/// (`none`). Leased ones are under way: they keep theirs. Runs in the transaction of the patch,
/// which holds the webhook's row.
pub async fn reorder_pending(
    client: &impl GenericClient,
    account: &AccountId,
    webhook: &WebhookId,
    ordering: Ordering,
) -> StoreResult<u64> {
    let sql = match ordering {
        Ordering::PerUser => {
            "UPDATE deliveries d SET order_user = e.user_id, order_position = e.user_position
             FROM events e
             WHERE e.account_id = d.account_id AND e.id = d.event_id
               AND e.user_id IS NOT NULL AND e.user_position IS NOT NULL
               AND d.account_id = $1 AND d.webhook_id = $2
               AND d.status = 'pending' AND d.manual_attempt_at IS NULL
               AND (d.lease_expires_at IS NULL
                    OR d.lease_expires_at <= (extract(epoch FROM clock_timestamp()) * 1000)::bigint)"
        }
        Ordering::None => {
            "UPDATE deliveries SET order_user = NULL, order_position = NULL
             WHERE account_id = $1 AND webhook_id = $2 AND status = 'pending'
               AND order_user IS NOT NULL
               AND (lease_expires_at IS NULL
                    OR lease_expires_at <= (extract(epoch FROM clock_timestamp()) * 1000)::bigint)"
        }
    };
    let statement = client.prepare_cached(sql).await.map_err(from_pg)?;
    client
        .execute(&statement, &[&account.as_str(), &webhook.as_str()])
        .await
        .map_err(from_pg)
}
