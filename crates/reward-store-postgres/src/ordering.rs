//! A webhook's ordering changed: its deliveries not yet started follow the new one.

use reward_core::endpoint::Ordering;
use reward_core::ids::{AccountId, WebhookId};
use reward_core::time::Timestamp;
use reward_store::StoreResult;

use crate::errors::from_pg;
use crate::statements::Db;

/// Gives the webhook's pending deliveries that no worker holds (not leased, or leased no longer,
/// on the database's clock like every lease) and no manual retry asked for their events'
/// positions (`per_user`; events about no user stay unordered), or takes the positions away
/// (`none`). Leased ones are under way: they keep theirs. Then the ones that now wait behind an
/// earlier delivery of their user wait unscheduled, and the ones that no longer do are scheduled
/// now ([`schedule_waiting`]). Runs in the transaction of the patch, which holds the webhook's
/// row.
pub async fn reorder_pending(
    client: &impl Db,
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
    let reordered = client
        .execute(sql, &[&account.as_str(), &webhook.as_str()])
        .await
        .map_err(from_pg)?;
    if ordering == Ordering::PerUser {
        client
            .execute(
                "UPDATE deliveries d SET next_attempt_at = NULL
                 WHERE d.account_id = $1 AND d.webhook_id = $2 AND d.status = 'pending'
                   AND d.order_user IS NOT NULL AND d.next_attempt_at IS NOT NULL
                   AND d.manual_attempt_at IS NULL
                   AND (d.lease_expires_at IS NULL
                        OR d.lease_expires_at
                           <= (extract(epoch FROM clock_timestamp()) * 1000)::bigint)
                   AND EXISTS (
                     SELECT 1 FROM deliveries p
                     WHERE p.account_id = d.account_id AND p.webhook_id = d.webhook_id
                       AND p.order_user = d.order_user AND p.order_user IS NOT NULL
                       AND p.status = 'pending' AND p.order_position < d.order_position)",
                &[&account.as_str(), &webhook.as_str()],
            )
            .await
            .map_err(from_pg)?;
    }
    schedule_waiting(client, Some((account, webhook)), i64::MAX).await?;
    Ok(reordered)
}

/// Schedules now, up to `limit`, the pending deliveries that wait unscheduled (no
/// `next_attempt_at`) with nothing to wait for: unordered, or no earlier pending delivery of
/// their user to the same webhook. Of one webhook, when given; else of every webhook (the upkeep's
/// safety net: recording an ended delivery, a manual retry and a change of ordering schedule
/// what they free themselves). Returns how many.
pub async fn schedule_waiting(
    client: &impl Db,
    webhook: Option<(&AccountId, &WebhookId)>,
    limit: i64,
) -> StoreResult<u64> {
    client
        .execute(
            "UPDATE deliveries SET next_attempt_at = $3
             WHERE (account_id, id) IN (
               SELECT d.account_id, d.id FROM deliveries d
               WHERE d.status = 'pending' AND d.next_attempt_at IS NULL
                 AND ($1::text IS NULL OR (d.account_id = $1 AND d.webhook_id = $2))
                 AND (d.order_user IS NULL OR NOT EXISTS (
                   SELECT 1 FROM deliveries p
                   WHERE p.account_id = d.account_id AND p.webhook_id = d.webhook_id
                     AND p.order_user = d.order_user AND p.order_user IS NOT NULL
                     AND p.status = 'pending' AND p.order_position < d.order_position))
               LIMIT $4)
               AND status = 'pending' AND next_attempt_at IS NULL",
            &[
                &webhook.map(|(account, _)| account.as_str()),
                &webhook.map(|(_, webhook)| webhook.as_str()),
                &Timestamp::now().as_millis(),
                &limit,
            ],
        )
        .await
        .map_err(from_pg)
}

/// Below the API, on a database of the test's own (at `REWARD_TEST_POSTGRES_URL`, default the
/// local server; skipped with one line when none answers): what a new delivery is written with
/// (its place in its user's order, its lease, its search keys).
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use reward_core::endpoint::EventSelection;
    use reward_core::event::{EventType, NewEvent};
    use reward_core::ids::{ApiKeyId, DeliveryId};
    use reward_core::names::{Name, TargetPolicy, UserId, WebhookUrl};
    use reward_core::signing::WebhookSecret;
    use reward_core::time::Timestamp;
    use reward_store::handoff::{Handoff, Outbox};
    use reward_store::records::{NewApiKeyRecord, NewWebhook, WebhookSettings};
    use reward_store::secrets::SecretCipher;

    use crate::connect;

    use super::*;

    #[tokio::test]
    async fn an_event_about_a_user_waits_its_turn_on_a_per_user_webhook_only() {
        let Some(database) = crate::testing::ScratchDatabase::create("reward_ordering").await
        else {
            return;
        };
        let url = database.url();
        let pool = connect::pool(
            connect::config_from_url(url).expect("url"),
            &connect::ConnectOptions::default(),
        )
        .expect("pool");
        let mut client = pool.get().await.expect("connect");
        crate::migrations::migrate(client.client_mut())
            .await
            .expect("migrate");

        let key = NewApiKeyRecord {
            id: ApiKeyId::generate(),
            name: Name::parse("default").expect("name"),
            hash: "key-hash".into(),
            display_prefix: "rwd_abcdefgh".into(),
        };
        let account = crate::accounts::create(&client, &Name::parse("Acme").expect("name"), &key)
            .await
            .expect("account")
            .id;
        let cipher = SecretCipher::new([7; 32]);
        let webhook = |ordering| NewWebhook {
            name: Name::parse("Hook").expect("name"),
            url: WebhookUrl::parse("https://example.com/hook", TargetPolicy::SecureOnly)
                .expect("url"),
            events: EventSelection::Every,
            enabled: true,
            secret: WebhookSecret::generate(),
            settings: WebhookSettings {
                ordering,
                ..WebhookSettings::default()
            },
        };
        let (ordered_new, plain_new) = (webhook(Ordering::PerUser), webhook(Ordering::None));
        let ordered = crate::webhooks::create(&client, &account, &ordered_new, &cipher)
            .await
            .expect("webhook")
            .id;
        let plain = crate::webhooks::create(&client, &account, &plain_new, &cipher)
            .await
            .expect("webhook")
            .id;

        let handoff = Handoff::new(Duration::from_secs(60), 100);
        let mut outbox = Outbox::new(Some(&handoff), &cipher);
        let user = UserId::parse("user-1").expect("user");
        let event = NewEvent::test_event(Timestamp::now(), EventType::TriggerEventCreated)
            .at_user_position(&user, 3);
        crate::outbox::emit(&client, &account, &event, &mut outbox)
            .await
            .expect("emit");
        let order_of = |webhook: &WebhookId| {
            let sql = format!(
                "SELECT id, order_user, order_position, lease_expires_at IS NOT NULL
                 FROM deliveries WHERE webhook_id = '{webhook}'"
            );
            let client = &client;
            async move {
                let row = client.query_one(&sql, &[]).await.expect("one delivery");
                (
                    DeliveryId::from_trusted(row.get::<_, String>(0)),
                    row.get::<_, Option<String>>(1),
                    row.get::<_, Option<i64>>(2),
                    row.get::<_, bool>(3),
                )
            }
        };
        let (delivery, user_of, position, leased) = order_of(&ordered).await;
        assert_eq!(
            (user_of.as_deref(), position, leased),
            (Some("user-1"), Some(3), false),
            "ordered: its user's place, left unleased for claiming"
        );
        let (_, user_of, position, leased) = order_of(&plain).await;
        assert_eq!(
            (user_of, position, leased),
            (None, None, true),
            "handed off"
        );
        assert!(outbox.committed(Some(&handoff)), "one left for claiming");
        assert_eq!(
            handoff.take(10).len(),
            1,
            "only the unordered one handed off"
        );

        // A manual retry goes out of order.
        crate::deliveries::request_retry(&client, &account, &delivery)
            .await
            .expect("retry");
        let (_, user_of, position, _) = order_of(&ordered).await;
        assert_eq!((user_of, position), (None, None));

        // Each delivery is written with its search keys, and a webhook's deletion takes both.
        let keys_and_deliveries = || {
            let client = &client;
            async move {
                let row = client
                    .query_one(
                        "SELECT (SELECT count(*) FROM delivery_keys k
                                 JOIN deliveries d ON d.account_id = k.account_id
                                  AND d.id = k.delivery_id AND d.webhook_id = k.webhook_id
                                  AND d.event_id = k.event_id AND d.event_type = k.event_type),
                                (SELECT count(*) FROM delivery_keys),
                                (SELECT count(*) FROM deliveries)",
                        &[],
                    )
                    .await
                    .expect("counts");
                (
                    row.get::<_, i64>(0),
                    row.get::<_, i64>(1),
                    row.get::<_, i64>(2),
                )
            }
        };
        assert_eq!(keys_and_deliveries().await, (2, 2, 2));
        crate::webhooks::delete(&client, &account, &plain)
            .await
            .expect("delete");
        assert_eq!(keys_and_deliveries().await, (1, 1, 1));

        drop(client);
        pool.close();
    }
}
