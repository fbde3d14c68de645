//! Reading the events an account was sent, and retention.

use reward_core::ids::{AccountId, EventId};
use reward_core::time::Timestamp;
use reward_store::paging::page_of;
use reward_store::records::{Event, EventQuery, Page, PageRequest};
use reward_store::{StoreError, StoreResult};
use tokio_postgres::Row;

use crate::errors::from_pg;
use crate::rows;
use crate::statements::Db;

const COLUMNS: &str = "id, event_type, created_at, payload";

fn from_row(row: &Row) -> StoreResult<Event> {
    Ok(Event {
        id: EventId::from_trusted(rows::get(row, 0)?),
        event_type: rows::event_type(row, 1)?,
        created_at: rows::timestamp(row, 2)?,
        payload: rows::get(row, 3)?,
    })
}

/// The account's events that `query` keeps, newest first.
pub async fn list(
    client: &impl Db,
    account: &AccountId,
    query: &EventQuery,
    page: &PageRequest,
) -> StoreResult<Page<Event>> {
    let statement = reward_store::search::events(account.as_str(), query, page)?;
    let found = crate::search::rows(client, COLUMNS, "events", &statement).await?;
    let events = found
        .iter()
        .map(from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(page_of(events, page.limit, |event: &Event| {
        event.id.to_string()
    }))
}

pub async fn get(client: &impl Db, account: &AccountId, id: &EventId) -> StoreResult<Event> {
    let found = client
        .query_opt(
            "SELECT id, event_type, created_at, payload FROM events
             WHERE account_id = $1 AND id = $2",
            &[&account.as_str(), &id.as_str()],
        )
        .await
        .map_err(from_pg)?;
    found
        .as_ref()
        .map(from_row)
        .transpose()?
        .ok_or(StoreError::NotFound)
}

/// Drops events past retention, with their finished deliveries and attempts, and stale
/// idempotency keys and kept answers (what `Store::purge_expired` promises; SQLite does it in
/// chunks). Events that still have a pending delivery stay until it is done.
pub async fn purge_expired(
    client: &impl Db,
    events_before: Timestamp,
    idempotency_before: Timestamp,
) -> StoreResult<()> {
    let events_before = events_before.as_millis();
    let steps: [(&str, i64); 5] = [
        (
            "DELETE FROM attempts WHERE (account_id, delivery_id) IN
               (SELECT d.account_id, d.id FROM deliveries d JOIN events e
                  ON e.account_id = d.account_id AND e.id = d.event_id
                WHERE e.created_at < $1 AND d.status <> 'pending')",
            events_before,
        ),
        (
            "DELETE FROM deliveries WHERE status <> 'pending' AND (account_id, event_id) IN
               (SELECT account_id, id FROM events WHERE created_at < $1)",
            events_before,
        ),
        (
            "DELETE FROM events WHERE created_at < $1 AND NOT EXISTS
               (SELECT 1 FROM deliveries d
                WHERE d.account_id = events.account_id AND d.event_id = events.id)",
            events_before,
        ),
        (
            "DELETE FROM idempotency_keys WHERE created_at < $1",
            idempotency_before.as_millis(),
        ),
        (
            "DELETE FROM idempotent_responses WHERE created_at < $1",
            idempotency_before.as_millis(),
        ),
    ];
    for (sql, before) in steps {
        client.execute(sql, &[&before]).await.map_err(from_pg)?;
    }
    Ok(())
}
