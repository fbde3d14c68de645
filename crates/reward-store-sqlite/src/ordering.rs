//! A webhook's ordering changed: its deliveries not yet started follow the new one.

use reward_core::endpoint::Ordering;
use reward_core::ids::{AccountId, WebhookId};
use reward_core::time::Timestamp;
use reward_store::StoreResult;
use rusqlite::{params, Connection};

use crate::errors::from_sqlite;

/// Gives the webhook's pending deliveries that no worker holds (not leased, or leased no longer)
/// and no manual retry asked for their events' positions (`per_user`; events about no user stay
/// unordered), or takes the positions away (`none`). Leased ones are under way: they keep theirs.
pub fn reorder_pending(
    connection: &Connection,
    account: &AccountId,
    webhook: &WebhookId,
    ordering: Ordering,
) -> StoreResult<usize> {
    let sql = match ordering {
        Ordering::PerUser => {
            "UPDATE deliveries SET order_user = events.user_id,
                    order_position = events.user_position
             FROM events
             WHERE events.account_id = deliveries.account_id AND events.id = deliveries.event_id
               AND events.user_id IS NOT NULL AND events.user_position IS NOT NULL
               AND deliveries.account_id = ?1 AND deliveries.webhook_id = ?2
               AND deliveries.status = 'pending' AND deliveries.manual_attempt_at IS NULL
               AND (deliveries.lease_expires_at IS NULL OR deliveries.lease_expires_at <= ?3)"
        }
        Ordering::None => {
            "UPDATE deliveries SET order_user = NULL, order_position = NULL
             WHERE account_id = ?1 AND webhook_id = ?2 AND status = 'pending'
               AND order_user IS NOT NULL
               AND (lease_expires_at IS NULL OR lease_expires_at <= ?3)"
        }
    };
    connection
        .prepare_cached(sql)
        .and_then(|mut statement| {
            statement.execute(params![
                account.as_str(),
                webhook.as_str(),
                Timestamp::now().as_millis()
            ])
        })
        .map_err(from_sqlite)
}
