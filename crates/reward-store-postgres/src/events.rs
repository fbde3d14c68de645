//! Reading the events an account was sent (retention: `crate::retention`).

use reward_core::ids::{AccountId, EventId};
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
    let found = crate::search::rows(client, COLUMNS, &statement).await?;
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
