//! The transactional outbox: an event and one pending delivery per subscribed, enabled webhook,
//! written inside the same transaction as the change that caused them.

use reward_core::event::NewEvent;
use reward_core::ids::{AccountId, DeliveryId, WebhookId};
use reward_core::time::Timestamp;
use reward_store::records::{Delivery, DeliveryStatus};
use reward_store::StoreResult;
use rusqlite::{params, Connection};

use crate::errors::from_sqlite;
use crate::webhooks;

/// Stores the event and queues it for every webhook subscribed to its type.
pub fn emit(
    connection: &Connection,
    account: &AccountId,
    event: &NewEvent,
) -> StoreResult<Vec<Delivery>> {
    insert_event(connection, account, event)?;
    webhooks::subscribed(connection, account, event.event_type)?
        .iter()
        .map(|webhook| insert_delivery(connection, account, webhook, event))
        .collect()
}

pub fn insert_event(
    connection: &Connection,
    account: &AccountId,
    event: &NewEvent,
) -> StoreResult<()> {
    connection
        .prepare_cached(
            "INSERT INTO events (account_id, id, event_type, created_at, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                account.as_str(),
                event.id.as_str(),
                event.event_type.as_str(),
                event.time.as_millis(),
                event.payload,
            ])
        })
        .map_err(from_sqlite)?;
    Ok(())
}

/// A new pending delivery, due now.
pub fn insert_delivery(
    connection: &Connection,
    account: &AccountId,
    webhook: &WebhookId,
    event: &NewEvent,
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
    connection
        .prepare_cached(
            "INSERT INTO deliveries (account_id, id, webhook_id, event_id, event_type, status,
             next_attempt_at, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6, ?6)",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                account.as_str(),
                delivery.id.as_str(),
                webhook.as_str(),
                event.id.as_str(),
                event.event_type.as_str(),
                now.as_millis(),
            ])
        })
        .map_err(from_sqlite)?;
    Ok(delivery)
}
