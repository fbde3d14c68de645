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
/// Then the ones that now wait behind an earlier delivery of their user wait unscheduled, and
/// the ones that no longer do are scheduled now ([`schedule_waiting`]).
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
    let now = Timestamp::now().as_millis();
    let reordered = connection
        .prepare_cached(sql)
        .and_then(|mut statement| {
            statement.execute(params![account.as_str(), webhook.as_str(), now])
        })
        .map_err(from_sqlite)?;
    if ordering == Ordering::PerUser {
        connection
            .prepare_cached(
                "UPDATE deliveries SET next_attempt_at = NULL
                 WHERE account_id = ?1 AND webhook_id = ?2 AND status = 'pending'
                   AND order_user IS NOT NULL AND next_attempt_at IS NOT NULL
                   AND manual_attempt_at IS NULL
                   AND (lease_expires_at IS NULL OR lease_expires_at <= ?3)
                   AND EXISTS (
                     SELECT 1 FROM deliveries p
                     WHERE p.account_id = deliveries.account_id
                       AND p.webhook_id = deliveries.webhook_id
                       AND p.order_user = deliveries.order_user AND p.order_user IS NOT NULL
                       AND p.status = 'pending' AND p.order_position < deliveries.order_position)",
            )
            .and_then(|mut statement| {
                statement.execute(params![account.as_str(), webhook.as_str(), now])
            })
            .map_err(from_sqlite)?;
    }
    schedule_waiting(connection, Some((account, webhook)), u32::MAX)?;
    Ok(reordered)
}

/// Schedules now, up to `limit`, the pending deliveries that wait unscheduled (no
/// `next_attempt_at`) with nothing to wait for: unordered, or no earlier pending delivery of
/// their user to the same webhook. Of one webhook, when given; else of every webhook (the upkeep's
/// safety net: recording an ended delivery, a manual retry and a change of ordering schedule
/// what they free themselves). Returns how many.
pub fn schedule_waiting(
    connection: &Connection,
    webhook: Option<(&AccountId, &WebhookId)>,
    limit: u32,
) -> StoreResult<usize> {
    connection
        .prepare_cached(
            "UPDATE deliveries SET next_attempt_at = ?3
             WHERE (account_id, id) IN (
               SELECT d.account_id, d.id FROM deliveries d
               WHERE d.status = 'pending' AND d.next_attempt_at IS NULL
                 AND (?1 IS NULL OR (d.account_id = ?1 AND d.webhook_id = ?2))
                 AND (d.order_user IS NULL OR NOT EXISTS (
                   SELECT 1 FROM deliveries p
                   WHERE p.account_id = d.account_id AND p.webhook_id = d.webhook_id
                     AND p.order_user = d.order_user AND p.order_user IS NOT NULL
                     AND p.status = 'pending' AND p.order_position < d.order_position))
               LIMIT ?4)",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                webhook.map(|(account, _)| account.as_str()),
                webhook.map(|(_, webhook)| webhook.as_str()),
                Timestamp::now().as_millis(),
                limit,
            ])
        })
        .map_err(from_sqlite)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use reward_core::event::{EventType, NewEvent};
    use reward_core::ids::DeliveryId;
    use reward_core::names::UserId;
    use reward_store::handoff::{Handoff, Outbox};
    use reward_store::records::{WebhookPatch, WebhookSettings};
    use reward_store::secrets::SecretCipher;

    use super::*;
    use crate::test_fixtures;

    /// A migrated in-memory database with one account.
    fn database() -> (Connection, AccountId) {
        let mut connection = Connection::open_in_memory().expect("open");
        crate::migrations::migrate(&mut connection).expect("migrate");
        let account = test_fixtures::add_account(&connection);
        (connection, account)
    }

    fn webhook(
        connection: &Connection,
        account: &AccountId,
        ordering: Ordering,
        cipher: &SecretCipher,
    ) -> WebhookId {
        let settings = WebhookSettings {
            ordering,
            ..WebhookSettings::default()
        };
        test_fixtures::add_webhook(connection, account, settings, cipher)
    }

    /// (order_user, order_position, leased) of the webhook's only delivery.
    fn order_of(
        connection: &Connection,
        webhook: &WebhookId,
    ) -> (Option<String>, Option<i64>, bool) {
        connection
            .query_row(
                "SELECT order_user, order_position, lease_expires_at IS NOT NULL
                 FROM deliveries WHERE webhook_id = ?1",
                [webhook.as_str()],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .expect("one delivery")
    }

    fn delivery_of(connection: &Connection, webhook: &WebhookId) -> DeliveryId {
        let id: String = connection
            .query_row(
                "SELECT id FROM deliveries WHERE webhook_id = ?1",
                [webhook.as_str()],
                |row| row.get(0),
            )
            .expect("one delivery");
        DeliveryId::from_trusted(id)
    }

    #[test]
    fn an_event_about_a_user_waits_its_turn_on_a_per_user_webhook_only_and_is_not_handed_off() {
        let (connection, account) = database();
        let cipher = SecretCipher::new([7; 32]);
        let ordered = webhook(&connection, &account, Ordering::PerUser, &cipher);
        let plain = webhook(&connection, &account, Ordering::None, &cipher);
        let handoff = Handoff::new(Duration::from_secs(60), 100);
        let mut outbox = Outbox::new(Some(&handoff), &cipher);
        let user = UserId::parse("user-1").expect("user");
        let event = NewEvent::test_event(Timestamp::now(), EventType::TriggerEventCreated)
            .at_user_position(&user, 3);
        crate::outbox::emit(&connection, &account, &event, &mut outbox).expect("emit");

        assert_eq!(
            order_of(&connection, &ordered),
            (Some("user-1".into()), Some(3), false),
            "ordered: its user's place, left unleased for claiming"
        );
        assert_eq!(
            order_of(&connection, &plain),
            (None, None, true),
            "unordered: handed off as always"
        );
        assert!(
            outbox.committed(Some(&handoff)),
            "one was left for claiming"
        );
        assert_eq!(
            handoff.take(10).len(),
            1,
            "only the unordered one handed off"
        );

        // An event about no user goes unordered on either webhook.
        connection
            .execute_batch("DELETE FROM deliveries")
            .expect("clear");
        let mut outbox = Outbox::new(None, &cipher);
        let untold = NewEvent::test_event(Timestamp::now(), EventType::TriggerEventCreated);
        crate::outbox::emit(&connection, &account, &untold, &mut outbox).expect("emit");
        assert_eq!(order_of(&connection, &ordered), (None, None, false));
    }

    #[test]
    fn a_patch_of_ordering_reorders_pending_deliveries_and_a_retry_goes_out_of_order() {
        let (connection, account) = database();
        let cipher = SecretCipher::new([7; 32]);
        let id = webhook(&connection, &account, Ordering::None, &cipher);
        let user = UserId::parse("user-1").expect("user");
        let event = NewEvent::test_event(Timestamp::now(), EventType::TriggerEventCreated)
            .at_user_position(&user, 5);
        let mut outbox = Outbox::new(None, &cipher);
        crate::outbox::emit(&connection, &account, &event, &mut outbox).expect("emit");
        assert_eq!(order_of(&connection, &id), (None, None, false));
        // The event's place, as the store records it for events about a user.
        connection
            .execute(
                "UPDATE events SET user_id = 'user-1', user_position = 5 WHERE id = ?1",
                [event.id.as_str()],
            )
            .expect("position");

        let to = |ordering| WebhookPatch {
            ordering: Some(ordering),
            ..WebhookPatch::default()
        };
        crate::webhooks::update(&connection, &account, &id, &to(Ordering::PerUser), &cipher)
            .expect("patch");
        assert_eq!(
            order_of(&connection, &id),
            (Some("user-1".into()), Some(5), false)
        );
        crate::webhooks::update(&connection, &account, &id, &to(Ordering::None), &cipher)
            .expect("patch");
        assert_eq!(order_of(&connection, &id), (None, None, false));

        crate::webhooks::update(&connection, &account, &id, &to(Ordering::PerUser), &cipher)
            .expect("patch");
        let delivery = delivery_of(&connection, &id);
        crate::deliveries::request_retry(&connection, &account, &delivery).expect("retry");
        assert_eq!(order_of(&connection, &id), (None, None, false));
    }
}
