//! OpenAPI schemas of what the API reads, and shapes shared by several answers. Request bodies
//! are read field by field (`input.rs`) for precise errors; these types document those same
//! fields and are checked against the server by the schema tests.

#![allow(dead_code)] // Doc-only types: constructed by nobody, read by utoipa.

use serde::Serialize;
use utoipa::{IntoParams, IntoResponses, ToSchema};

/// `{"id": ...}`: a reference to a user, trigger or trigger event.
#[derive(Serialize, ToSchema)]
pub struct Reference {
    pub id: String,
}

impl Reference {
    pub fn new(id: &str) -> Self {
        Self { id: id.to_owned() }
    }
}

/// The event types Reward emits.
#[derive(Serialize, ToSchema)]
pub enum EventTypeName {
    #[serde(rename = "trigger_event.created")]
    TriggerEventCreated,
    #[serde(rename = "balance.credit_points_issued")]
    BalanceCreditPointsIssued,
}

/// A trigger's rule: `{"per_unit": n}` (floor(value × n) points) or `{"fixed": n}`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum CreditPointsBody {
    PerUnit {
        /// Points per unit of the trigger event's value; above 0, at most 1e9.
        #[schema(minimum = 0, maximum = 1e9, exclusive_minimum = 0)]
        per_unit: f64,
    },
    Fixed {
        /// Points for every trigger event, whatever its value.
        #[schema(minimum = 1, maximum = 1_000_000_000_000_i64)]
        fixed: i64,
    },
}

#[derive(ToSchema)]
pub struct WebhookCreateBody {
    /// 1–100 characters.
    #[schema(min_length = 1, max_length = 100, example = "Orders")]
    pub name: String,
    /// Absolute https:// URL (http:// and private hosts only with REWARD_ALLOW_INSECURE_TARGETS).
    #[schema(max_length = 2048, example = "https://example.com/webhooks/reward")]
    pub url: String,
    #[schema(min_items = 1)]
    pub events: Vec<EventTypeName>,
    /// Default true.
    pub enabled: Option<bool>,
}

/// Any of the fields; each validated as on create. A field left out is left as it is.
#[derive(ToSchema)]
pub struct WebhookPatchBody {
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    #[schema(min_items = 1)]
    pub events: Option<Vec<EventTypeName>>,
    pub enabled: Option<bool>,
}

#[derive(ToSchema)]
pub struct TestEventBody {
    #[schema(rename = "type")]
    pub event_type: EventTypeName,
}

#[derive(ToSchema)]
pub struct RecoverBody {
    /// Failed deliveries created at or after this time are re-queued.
    #[schema(format = DateTime, example = "2024-12-14T15:29:18.821Z")]
    pub since: String,
}

#[derive(Serialize, ToSchema)]
pub struct RecoveredView {
    /// How many failed deliveries were re-queued.
    pub recovered: u64,
}

#[derive(Serialize, ToSchema)]
pub struct SecretView {
    /// `whsec_` + base64 of 32 random bytes.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct RotatedSecretView {
    pub secret: String,
    /// Until then the previous secret signs beside the new one.
    #[schema(format = DateTime)]
    pub previous_secret_expires_at: String,
}

#[derive(ToSchema)]
pub struct TriggerBody {
    #[schema(min_length = 1, max_length = 100, example = "Successful payment")]
    pub name: String,
    pub credit_points: Option<CreditPointsBody>,
}

#[derive(ToSchema)]
pub struct TriggerEventBody {
    /// Your id of the user: 1–128 characters, no whitespace, `/`, `?`, `#` or `%`.
    #[schema(
        min_length = 1,
        max_length = 128,
        example = "ca9bb5c2-25a6-43e9-972e-862d28241a47"
    )]
    pub user_id: String,
    #[schema(min_length = 1, max_length = 100, example = "successful_payment")]
    pub trigger_id: String,
    /// E.g. a payment's amount.
    #[schema(example = 2.99)]
    pub value: Option<f64>,
}

#[derive(ToSchema)]
pub struct ApiKeyCreateBody {
    #[schema(min_length = 1, max_length = 100, example = "CI deploys")]
    pub name: String,
}

#[derive(ToSchema)]
pub struct CreditsBody {
    #[schema(minimum = 1, maximum = 1_000_000_000_000_i64)]
    pub points: i64,
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

/// An event as delivered: `{"id", "type", "time", "data"}`; the `data` of each type is described
/// by its own schema (`TriggerEventCreatedEvent`, `BalanceCreditPointsIssuedEvent`).
#[derive(Serialize, ToSchema)]
pub struct EventView {
    #[schema(example = "we_01jf2wkmvcfw6ts1qmgzya291c")]
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: EventTypeName,
    #[schema(format = DateTime)]
    pub time: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// `{"data": [...], "next_cursor": ...}`, newest first.
#[derive(Serialize, ToSchema)]
pub struct List<T: ToSchema> {
    pub data: Vec<T>,
    /// Pass as `?cursor=` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

/// `{"error": {"code", "message", "field"?}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable snake_case code, e.g. `invalid_value`.
    #[schema(example = "invalid_value")]
    pub code: String,
    /// A sentence for a person.
    pub message: String,
    /// The input field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// `?limit=&cursor=` of every list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// 1–100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the page before.
    pub cursor: Option<String>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryFilter {
    /// Only deliveries in this state.
    #[param(inline)]
    pub status: Option<DeliveryStatusName>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatusName {
    Pending,
    Succeeded,
    Failed,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilter {
    /// Only events of this type.
    #[param(rename = "type", inline)]
    pub event_type: Option<EventTypeName>,
}

/// Errors of routes that read one resource by id.
#[derive(IntoResponses)]
pub enum ReadErrors {
    /// No or wrong API key.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// No such resource in this account.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The database is unavailable; nothing changed. Retry.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// Errors of list routes.
#[derive(IntoResponses)]
pub enum ListErrors {
    /// No or wrong API key.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// A bad limit, cursor or filter.
    #[response(status = 422)]
    Invalid(ErrorBody),
    /// The database is unavailable. Retry.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// Errors of routes that take a JSON body.
#[derive(IntoResponses)]
pub enum WriteErrors {
    /// The body is not JSON.
    #[response(status = 400)]
    BadJson(ErrorBody),
    /// No or wrong API key.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// No such resource in this account.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The body is over 256 KiB.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// A missing field, a wrong type or an invalid value; `field` names it.
    #[response(status = 422)]
    Invalid(ErrorBody),
    /// The database is unavailable; nothing changed. Retry.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}
