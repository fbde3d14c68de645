//! The transactional outbox: an event and one pending delivery per subscribed, enabled webhook,
//! written inside the same transaction as the change that caused them. Deliveries handed to this
//! node's worker ([`reward_store::handoff`]) are written already leased to it.

use std::time::Duration;

use deadpool_postgres::GenericClient;
use reward_core::event::NewEvent;
use reward_core::ids::{AccountId, DeliveryId, WebhookId};
use reward_core::time::Timestamp;
use reward_store::handoff::Outbox;
use reward_store::records::{Delivery, DeliveryStatus};
use reward_store::secrets::SecretCipher;
use reward_store::StoreResult;

use crate::errors::from_pg;
use crate::webhooks::{self, Subscriber};

/// Stores the event and queues it for every webhook subscribed to its type.
pub async fn emit(
    client: &impl GenericClient,
    account: &AccountId,
    event: &NewEvent,
    outbox: &mut Outbox,
) -> StoreResult<()> {
    let subscribers = store_event(client, account, event, outbox.cipher()).await?;
    queue(client, account, event, subscribers, outbox).await
}

/// Inserts the event and finds the webhooks subscribed to it. Both statements go out at once
/// (tokio-postgres pipelines queries polled together): one round trip instead of two.
pub async fn store_event(
    client: &impl GenericClient,
    account: &AccountId,
    event: &NewEvent,
    cipher: Option<&SecretCipher>,
) -> StoreResult<Vec<Subscriber>> {
    let ((), subscribers) = tokio::try_join!(
        insert_event(client, account, event),
        webhooks::subscribed(client, account, event.event_type, cipher),
    )?;
    Ok(subscribers)
}

/// One pending delivery of `event` per subscriber, all in one statement, each handed to the
/// outbox (leased to this node when it takes hand-offs, on the database's clock).
pub async fn queue(
    client: &impl GenericClient,
    account: &AccountId,
    event: &NewEvent,
    subscribers: Vec<Subscriber>,
    outbox: &mut Outbox,
) -> StoreResult<()> {
    if subscribers.is_empty() {
        return Ok(());
    }
    let now = Timestamp::now();
    let ids: Vec<DeliveryId> = subscribers.iter().map(|_| DeliveryId::generate()).collect();
    let id_texts: Vec<&str> = ids.iter().map(DeliveryId::as_str).collect();
    let webhook_texts: Vec<&str> = subscribers.iter().map(|s| s.id.as_str()).collect();
    let lease = outbox
        .lease()
        .map(|lease| i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
    let statement = client
        .prepare_cached(
            "INSERT INTO deliveries (account_id, id, webhook_id, event_id, event_type, status,
             next_attempt_at, lease_expires_at, created_at, updated_at)
             SELECT $1, new.id, new.webhook_id, $2, $3, 'pending', $4,
                    (extract(epoch FROM clock_timestamp()) * 1000)::bigint + $5::bigint, $4, $4
             FROM unnest($6::text[], $7::text[]) AS new(id, webhook_id)",
        )
        .await
        .map_err(from_pg)?;
    client
        .execute(
            &statement,
            &[
                &account.as_str(),
                &event.id.as_str(),
                &event.event_type.as_str(),
                &now.as_millis(),
                &lease,
                &id_texts,
                &webhook_texts,
            ],
        )
        .await
        .map_err(from_pg)?;
    for (id, subscriber) in ids.into_iter().zip(subscribers) {
        outbox.add(account, id, subscriber.id, event, subscriber.target);
    }
    Ok(())
}

pub async fn insert_event(
    client: &impl GenericClient,
    account: &AccountId,
    event: &NewEvent,
) -> StoreResult<()> {
    let statement = client
        .prepare_cached(
            "INSERT INTO events (account_id, id, event_type, created_at, payload)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .await
        .map_err(from_pg)?;
    client
        .execute(
            &statement,
            &[
                &account.as_str(),
                &event.id.as_str(),
                &event.event_type.as_str(),
                &event.time.as_millis(),
                &event.payload,
            ],
        )
        .await
        .map_err(from_pg)?;
    Ok(())
}

/// A new pending delivery, due now; when `lease` is given (handed off), leased to this node for
/// that long, on the database's clock like every lease.
pub async fn insert_delivery(
    client: &impl GenericClient,
    account: &AccountId,
    webhook: &WebhookId,
    event: &NewEvent,
    lease: Option<Duration>,
) -> StoreResult<Delivery> {
    let now = Timestamp::now();
    let delivery = Delivery {
        id: DeliveryId::generate(),
        event_id: event.id.clone(),
        webhook_id: webhook.clone(),
        event_type: event.event_type,
        status: DeliveryStatus::Pending,
        attempt_count: 0,
        next_attempt_at: Some(now),
        last_status_code: None,
        created_at: now,
        updated_at: now,
    };
    let statement = client
        .prepare_cached(
            "INSERT INTO deliveries (account_id, id, webhook_id, event_id, event_type, status,
             next_attempt_at, lease_expires_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'pending', $6,
                     (extract(epoch FROM clock_timestamp()) * 1000)::bigint + $7::bigint, $6, $6)",
        )
        .await
        .map_err(from_pg)?;
    client
        .execute(
            &statement,
            &[
                &account.as_str(),
                &delivery.id.as_str(),
                &webhook.as_str(),
                &event.id.as_str(),
                &event.event_type.as_str(),
                &now.as_millis(),
                &lease.map(|lease| i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)),
            ],
        )
        .await
        .map_err(from_pg)?;
    Ok(delivery)
}
