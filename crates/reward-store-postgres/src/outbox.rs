//! The transactional outbox: an event and one pending delivery per subscribed, enabled webhook,
//! written inside the same transaction as the change that caused them. Deliveries handed to this
//! node's worker ([`reward_store::handoff`]) are written already leased to it.

use std::collections::HashMap;
use std::time::Duration;

use reward_core::event::{NewEvent, UserPosition};
use reward_core::ids::{AccountId, DeliveryId, WebhookId};
use reward_core::time::Timestamp;
use reward_store::handoff::Outbox;
use reward_store::records::Delivery;
use reward_store::rules;
use reward_store::secrets::SecretCipher;
use reward_store::StoreResult;

use crate::errors::from_pg;
use crate::statements::{Db, Param};
use crate::webhooks::{self, Subscriber};

/// Stores the event and queues it for every webhook subscribed to its type.
pub async fn emit(
    client: &impl Db,
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
    client: &impl Db,
    account: &AccountId,
    event: &NewEvent,
    cipher: Option<&SecretCipher>,
) -> StoreResult<Vec<Subscriber>> {
    let ((), subscribers) = tokio::try_join!(
        insert_event(client, account, event),
        webhooks::subscribed(client, account, event, cipher),
    )?;
    Ok(subscribers)
}

/// One pending delivery of `event` per subscriber, all in one statement, each handed to the
/// outbox (leased to this node when it takes hand-offs, on the database's clock).
pub async fn queue(
    client: &impl Db,
    account: &AccountId,
    event: &NewEvent,
    mut subscribers: Vec<Subscriber>,
    outbox: &mut Outbox,
) -> StoreResult<()> {
    // A delivery that waits its turn is never handed off, whatever the subscriber was loaded
    // with: only a claim may decide that its turn has come (the subscribers of a trigger event's
    // `trigger_event.created` are loaded before the event has its place).
    for subscriber in &mut subscribers {
        if rules::delivery_order(subscriber.ordering, event).is_some() {
            subscriber.target = None;
        }
    }
    let rows: Vec<NewDelivery> = subscribers
        .iter()
        .map(|subscriber| NewDelivery {
            account,
            id: DeliveryId::generate(),
            webhook: &subscriber.id,
            event,
            order: rules::delivery_order(subscriber.ordering, event),
            handed_off: subscriber.target.is_some(),
        })
        .collect();
    insert_deliveries(client, &rows, Timestamp::now(), outbox.lease()).await?;
    let ids: Vec<DeliveryId> = rows.into_iter().map(|row| row.id).collect();
    for (id, subscriber) in ids.into_iter().zip(subscribers) {
        outbox.add(account, id, subscriber.id, event, subscriber.target);
    }
    Ok(())
}

pub async fn insert_event(
    client: &impl Db,
    account: &AccountId,
    event: &NewEvent,
) -> StoreResult<()> {
    insert_events(client, &[(account, event)]).await
}

/// Events of any accounts, in one statement.
pub async fn insert_events(
    client: &impl Db,
    events: &[(&AccountId, &NewEvent)],
) -> StoreResult<()> {
    let columns = EventColumns::of(events);
    client
        .execute(INSERT_EVENTS, &columns.params())
        .await
        .map_err(from_pg)?;
    Ok(())
}

/// Inserts events passed as [`EventColumns`], `$1` to `$8`.
pub const INSERT_EVENTS: &str =
    "INSERT INTO events (account_id, id, event_type, created_at, payload,
                                 user_id, user_position, trace_parent)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[],
                                  $6::text[], $7::bigint[], $8::text[])";

/// How many placeholders [`INSERT_EVENTS`] has.
pub const EVENT_PARAMS: usize = 8;

/// Events as the arrays their insert takes, one element per event.
pub struct EventColumns<'a> {
    accounts: Vec<&'a str>,
    ids: Vec<&'a str>,
    types: Vec<&'a str>,
    times: Vec<i64>,
    payloads: Vec<&'a str>,
    users: Vec<Option<&'a str>>,
    positions: Vec<Option<i64>>,
    traces: Vec<Option<String>>,
}

impl<'a> EventColumns<'a> {
    pub fn of(events: &[(&'a AccountId, &'a NewEvent)]) -> Self {
        Self {
            accounts: events.iter().map(|(account, _)| account.as_str()).collect(),
            ids: events.iter().map(|(_, event)| event.id.as_str()).collect(),
            types: events
                .iter()
                .map(|(_, event)| event.event_type.as_str())
                .collect(),
            times: events
                .iter()
                .map(|(_, event)| event.time.as_millis())
                .collect(),
            payloads: events
                .iter()
                .map(|(_, event)| event.payload.as_str())
                .collect(),
            users: events
                .iter()
                .map(|(_, event)| event.user_position.as_ref().map(|at| at.user.as_str()))
                .collect(),
            positions: events
                .iter()
                .map(|(_, event)| event.user_position.as_ref().map(|at| at.position))
                .collect(),
            traces: events
                .iter()
                .map(|(_, event)| event.trace.map(|trace| trace.to_string()))
                .collect(),
        }
    }

    /// The eight arrays, in the order of [`INSERT_EVENTS`]'s placeholders.
    pub fn params(&self) -> [&dyn Param; EVENT_PARAMS] {
        [
            &self.accounts,
            &self.ids,
            &self.types,
            &self.times,
            &self.payloads,
            &self.users,
            &self.positions,
            &self.traces,
        ]
    }
}

/// A pending delivery about to be written.
pub struct NewDelivery<'a> {
    pub account: &'a AccountId,
    pub id: DeliveryId,
    pub webhook: &'a WebhookId,
    pub event: &'a NewEvent,
    /// Where it waits its turn, if it does ([`rules::delivery_order`]).
    pub order: Option<&'a UserPosition>,
    /// Leased to this node when a lease is given (a rate-limited webhook's never are: they are
    /// claimed, which grants start slots; nor are ordered ones).
    pub handed_off: bool,
}

/// A new pending delivery, due now; when `lease` is given (handed off), leased to this node for
/// that long, on the database's clock like every lease.
pub async fn insert_delivery(
    client: &impl Db,
    account: &AccountId,
    webhook: &WebhookId,
    event: &NewEvent,
    lease: Option<Duration>,
) -> StoreResult<Delivery> {
    let now = Timestamp::now();
    let row = NewDelivery {
        account,
        id: DeliveryId::generate(),
        webhook,
        event,
        // Only test events and resends come one at a time: never ordered.
        order: None,
        handed_off: lease.is_some(),
    };
    insert_deliveries(client, std::slice::from_ref(&row), now, lease).await?;
    Ok(rules::new_delivery(row.id, webhook, event, now))
}

/// Pending deliveries, due `now`, in one statement; those handed off leased for `lease` when
/// given. An ordered one behind an earlier pending delivery of its user to the same webhook (in
/// the database or in this batch) waits unscheduled (no `next_attempt_at`) until that one ends.
/// The user's row is locked by the transaction that recorded the event, and the transaction that
/// ends the earlier delivery locks it too before scheduling the next one (`queue::advance_turns`),
/// so one of them always sees the other.
pub async fn insert_deliveries(
    client: &impl Db,
    deliveries: &[NewDelivery<'_>],
    now: Timestamp,
    lease: Option<Duration>,
) -> StoreResult<()> {
    if deliveries.is_empty() {
        return Ok(());
    }
    let columns = DeliveryColumns::of(deliveries, now, lease);
    client
        .execute(INSERT_DELIVERIES, &columns.params())
        .await
        .map_err(from_pg)?;
    Ok(())
}

/// Inserts deliveries passed as [`DeliveryColumns`], `$1` to `$11`. Their search keys are
/// written by the database (migration 0016's trigger into `delivery_keys`).
pub const INSERT_DELIVERIES: &str = "INSERT INTO deliveries (account_id, id, webhook_id, event_id,
             event_type, status, next_attempt_at, lease_expires_at, created_at, updated_at,
             order_user, order_position)
             SELECT new.account_id, new.id, new.webhook_id, new.event_id, new.event_type,
                    'pending',
                    CASE WHEN new.order_user IS NOT NULL AND (new.behind OR EXISTS (
                             SELECT 1 FROM deliveries p
                             WHERE p.account_id = new.account_id
                               AND p.webhook_id = new.webhook_id
                               AND p.order_user = new.order_user AND p.order_user IS NOT NULL
                               AND p.status = 'pending'
                               AND p.order_position < new.order_position))
                         THEN NULL ELSE $6::bigint END,
                    CASE WHEN new.handed_off
                         THEN (extract(epoch FROM clock_timestamp()) * 1000)::bigint + $7::bigint
                    END, $6, $6, new.order_user, new.order_position
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $8::bool[],
                         $9::text[], $10::bigint[], $11::bool[])
               AS new(account_id, id, webhook_id, event_id, event_type, handed_off, order_user,
                      order_position, behind)";

/// How many placeholders [`INSERT_DELIVERIES`] has.
pub const DELIVERY_PARAMS: usize = 11;

/// Deliveries as the arrays (and values) their insert takes.
pub struct DeliveryColumns<'a> {
    accounts: Vec<&'a str>,
    ids: Vec<&'a str>,
    webhooks: Vec<&'a str>,
    events: Vec<&'a str>,
    types: Vec<&'a str>,
    now: i64,
    lease: Option<i64>,
    handed_off: Vec<bool>,
    order_users: Vec<Option<&'a str>>,
    order_positions: Vec<Option<i64>>,
    behind_in_batch: Vec<bool>,
}

impl<'a> DeliveryColumns<'a> {
    /// Pending deliveries due `now`; those handed off leased for `lease` when given.
    pub fn of(deliveries: &'a [NewDelivery<'a>], now: Timestamp, lease: Option<Duration>) -> Self {
        Self {
            accounts: deliveries.iter().map(|d| d.account.as_str()).collect(),
            ids: deliveries.iter().map(|d| d.id.as_str()).collect(),
            webhooks: deliveries.iter().map(|d| d.webhook.as_str()).collect(),
            events: deliveries.iter().map(|d| d.event.id.as_str()).collect(),
            types: deliveries
                .iter()
                .map(|d| d.event.event_type.as_str())
                .collect(),
            now: now.as_millis(),
            lease: lease.map(|lease| i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)),
            handed_off: deliveries.iter().map(|d| d.handed_off).collect(),
            order_users: deliveries
                .iter()
                .map(|d| d.order.map(|order| order.user.as_str()))
                .collect(),
            order_positions: deliveries
                .iter()
                .map(|d| d.order.map(|order| order.position))
                .collect(),
            behind_in_batch: behind_in_batch(deliveries),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The eleven values, in the order of [`INSERT_DELIVERIES`]'s placeholders.
    pub fn params(&self) -> [&dyn Param; DELIVERY_PARAMS] {
        [
            &self.accounts,
            &self.ids,
            &self.webhooks,
            &self.events,
            &self.types,
            &self.now,
            &self.lease,
            &self.handed_off,
            &self.order_users,
            &self.order_positions,
            &self.behind_in_batch,
        ]
    }
}

/// For each delivery, whether an ordered delivery of the same user and webhook with an earlier
/// place is in the same batch (the insert's own check sees only rows stored before it).
fn behind_in_batch(deliveries: &[NewDelivery<'_>]) -> Vec<bool> {
    let mut earliest: HashMap<(&str, &str, &str), i64> = HashMap::new();
    for delivery in deliveries {
        if let Some(order) = delivery.order {
            let key = (
                delivery.account.as_str(),
                delivery.webhook.as_str(),
                order.user.as_str(),
            );
            let first = earliest.entry(key).or_insert(order.position);
            *first = (*first).min(order.position);
        }
    }
    deliveries
        .iter()
        .map(|delivery| {
            delivery.order.is_some_and(|order| {
                let key = (
                    delivery.account.as_str(),
                    delivery.webhook.as_str(),
                    order.user.as_str(),
                );
                earliest
                    .get(&key)
                    .is_some_and(|first| *first < order.position)
            })
        })
        .collect()
}
