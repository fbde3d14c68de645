//! The filters of list routes, read from the query string: each bad value is a 422 naming its
//! parameter. A well-formed id that names nothing is not an error: it matches nothing.

use reward_core::ids::{EventId, WebhookId};
use reward_core::time::Timestamp;
use reward_store::records::{DeliveryQuery, DeliveryStatus, EventQuery};

use super::bodies::parse_event_type;
use super::error::{ApiError, ApiResult};
use super::extract::QueryParams;

/// `GET /v1/deliveries`: every filter of the account-wide search.
pub fn delivery_search(query: &QueryParams) -> ApiResult<DeliveryQuery> {
    let (created_after, created_before) = created(query)?;
    Ok(DeliveryQuery {
        webhook: id(
            query,
            "webhook_id",
            WebhookId::parse,
            "a webhook id (wh_...)",
        )?,
        event: id(query, "event_id", EventId::parse, "an event id (we_...)")?,
        event_type: query
            .get("event_type")
            .map(|text| parse_event_type("event_type", text))
            .transpose()?,
        status: status(query)?,
        created_after,
        created_before,
    })
}

/// `GET /v1/webhooks/{id}/deliveries`: its status and time filters.
pub fn webhook_deliveries(query: &QueryParams, webhook: WebhookId) -> ApiResult<DeliveryQuery> {
    let (created_after, created_before) = created(query)?;
    Ok(DeliveryQuery {
        webhook: Some(webhook),
        status: status(query)?,
        created_after,
        created_before,
        ..DeliveryQuery::default()
    })
}

/// `GET /v1/events`: `type` and the time filters.
pub fn events(query: &QueryParams) -> ApiResult<EventQuery> {
    let (created_after, created_before) = created(query)?;
    Ok(EventQuery {
        event_type: query
            .get("type")
            .map(|text| parse_event_type("type", text))
            .transpose()?,
        created_after,
        created_before,
    })
}

fn status(query: &QueryParams) -> ApiResult<Option<DeliveryStatus>> {
    query
        .get("status")
        .map(|text| {
            DeliveryStatus::parse(text).ok_or_else(|| {
                ApiError::invalid(
                    "status",
                    "status must be one of pending, succeeded, failed.",
                )
            })
        })
        .transpose()
}

/// `created_after` and `created_before`: RFC 3339 times, both exclusive.
fn created(query: &QueryParams) -> ApiResult<(Option<Timestamp>, Option<Timestamp>)> {
    Ok((
        time(query, "created_after")?,
        time(query, "created_before")?,
    ))
}

fn time(query: &QueryParams, name: &str) -> ApiResult<Option<Timestamp>> {
    query
        .get(name)
        .map(|text| {
            Timestamp::parse_rfc3339(text).ok_or_else(|| {
                ApiError::invalid(
                    name,
                    format!(
                        "{name} must be an RFC 3339 time, e.g. 2024-12-14T15:29:18.821Z \
                         (a '+' in an offset written %2B)."
                    ),
                )
            })
        })
        .transpose()
}

fn id<T, E>(
    query: &QueryParams,
    name: &str,
    parse: impl Fn(&str) -> Result<T, E>,
    what: &str,
) -> ApiResult<Option<T>> {
    query
        .get(name)
        .map(|text| {
            parse(text).map_err(|_| ApiError::invalid(name, format!("{name} must be {what}.")))
        })
        .transpose()
}
