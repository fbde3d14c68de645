//! The transactional outbox: an event and one pending delivery per subscribed, enabled webhook,
//! written inside the same transaction as the change that caused them.
//!
//! When this process's worker takes hand-offs ([`reward_store::handoff`]), each new delivery is
//! written already leased and collected in the [`Outbox`], to be handed to the worker once the
//! transaction has committed.

use reward_core::event::{NewEvent, UserPosition};
use reward_core::ids::{AccountId, DeliveryId, WebhookId};
use reward_core::time::Timestamp;
use reward_store::handoff::Outbox;
use reward_store::records::Delivery;
use reward_store::rules;
use reward_store::StoreResult;
use rusqlite::{params, params_from_iter, Connection, ToSql};

use crate::errors::from_sqlite;
use crate::webhooks::{self, Subscriber};

/// Stores the event and queues it for every webhook subscribed to its type.
pub fn emit(
    connection: &Connection,
    account: &AccountId,
    event: &NewEvent,
    outbox: &mut Outbox,
) -> StoreResult<Vec<Delivery>> {
    insert_event(connection, account, event)?;
    webhooks::subscribed(connection, account, event, outbox.cipher())?
        .into_iter()
        .map(|subscriber| queue_for(connection, account, subscriber, event, outbox))
        .collect()
}

/// One subscriber's delivery: leased and handed off when its target was loaded.
fn queue_for(
    connection: &Connection,
    account: &AccountId,
    subscriber: Subscriber,
    event: &NewEvent,
    outbox: &mut Outbox,
) -> StoreResult<Delivery> {
    // Only deliveries handed off are leased (a rate-limited webhook's have no target). One that
    // waits its turn is never handed off, whatever the subscriber was loaded with: only a claim
    // may decide that its turn has come.
    let order = rules::delivery_order(subscriber.ordering, event);
    let target = subscriber.target.filter(|_| order.is_none());
    let handed_off = target.is_some();
    let lease = outbox.lease().filter(|_| handed_off).map(|lease| {
        Timestamp::now().plus_millis(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
    });
    let delivery = insert_delivery(connection, account, &subscriber.id, event, order, lease)?;
    outbox.add(account, delivery.id.clone(), subscriber.id, event, target);
    Ok(delivery)
}

pub fn insert_event(
    connection: &Connection,
    account: &AccountId,
    event: &NewEvent,
) -> StoreResult<()> {
    connection
        .prepare_cached(
            "INSERT INTO events (account_id, id, event_type, created_at, payload, user_id,
             user_position, trace_parent) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .and_then(|mut statement| {
            let position = event.user_position.as_ref();
            statement.execute(params![
                account.as_str(),
                event.id.as_str(),
                event.event_type.as_str(),
                event.time.as_millis(),
                event.payload,
                position.map(|position| position.user.as_str()),
                position.map(|position| position.position),
                event.trace.map(|trace| trace.to_string()),
            ])
        })
        .map_err(from_sqlite)?;
    Ok(())
}

/// A new pending delivery, due now; waiting its turn at `order` when given (see
/// [`rules::delivery_order`]): then, behind an earlier pending delivery of its user to the same
/// webhook, it waits unscheduled (no `next_attempt_at`) until that one ends; leased until `lease`
/// when given (handed off).
pub fn insert_delivery(
    connection: &Connection,
    account: &AccountId,
    webhook: &WebhookId,
    event: &NewEvent,
    order: Option<&UserPosition>,
    lease: Option<Timestamp>,
) -> StoreResult<Delivery> {
    let now = Timestamp::now();
    let mut delivery = rules::new_delivery(DeliveryId::generate(), webhook, event, now);
    let (created_at, lease_until) = (now.as_millis(), lease.map(|until| until.as_millis()));
    // ?1 to ?7 of both statements.
    let row: [&dyn ToSql; 7] = [
        &account.as_str(),
        &delivery.id.as_str(),
        &webhook.as_str(),
        &event.id.as_str(),
        &event.event_type.as_str(),
        &created_at,
        &lease_until,
    ];
    let Some(order) = order else {
        // Unordered: due now, and nothing to look up (most deliveries; the hot path).
        connection
            .prepare_cached(
                "INSERT INTO deliveries (account_id, id, webhook_id, event_id, event_type, status,
                 next_attempt_at, lease_expires_at, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7, ?6, ?6)",
            )
            .and_then(|mut statement| statement.execute(&row[..]))
            .map_err(from_sqlite)?;
        return Ok(delivery);
    };
    let scheduled: Option<i64> = connection
        .prepare_cached(
            "INSERT INTO deliveries (account_id, id, webhook_id, event_id, event_type, status,
             next_attempt_at, lease_expires_at, created_at, updated_at, order_user, order_position)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending',
                     CASE WHEN EXISTS (
                         SELECT 1 FROM deliveries p
                         WHERE p.account_id = ?1 AND p.webhook_id = ?3 AND p.order_user = ?8
                           AND p.order_user IS NOT NULL AND p.status = 'pending'
                           AND p.order_position < ?9) THEN NULL ELSE ?6 END,
                     ?7, ?6, ?6, ?8, ?9)
             RETURNING next_attempt_at",
        )
        .and_then(|mut statement| {
            let (user, position) = (order.user.as_str(), order.position);
            let ordered = row.iter().copied().chain([&user as &dyn ToSql, &position]);
            statement.query_row(params_from_iter(ordered), |found| found.get(0))
        })
        .map_err(from_sqlite)?;
    delivery.next_attempt_at = scheduled.map(Timestamp::from_millis);
    Ok(delivery)
}
