//! The JSON shapes the API answers with, one per resource (SPEC §4). Each derives its OpenAPI
//! schema, so `/openapi.json` describes exactly what is serialized.

use reward_core::credit::CreditRule;
use reward_core::event::EventType;
use reward_core::time::Timestamp;
use reward_store::records::{
    Attempt, CreditsIssued, Delivery, DeliveryWithAttempts, Event, Trigger, TriggerEvent, User,
    Webhook,
};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;
use utoipa::ToSchema;

use super::bodies::CreditPointsBody;
use super::schemas::{DeliveryStatusName, EventTypeName, EventView, Reference};

#[derive(Serialize, ToSchema)]
pub struct WebhookView {
    #[schema(example = "wh_01jf2wkmvcfw6ts1qmgzya291c")]
    pub id: String,
    pub name: String,
    #[schema(example = "https://example.com/webhooks/reward")]
    pub url: String,
    /// The event types it receives, or `["*"]` for every type.
    #[schema(schema_with = event_selection_schema)]
    pub events: Vec<&'static str>,
    pub enabled: bool,
    /// Why Reward itself disabled the webhook (e.g. the endpoint answered 410 Gone), else null.
    pub disabled_reason: Option<String>,
    /// Only events this matches are delivered; null: every event of the selected types.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
    /// Extra request headers sent with every delivery.
    #[schema(value_type = HashMap<String, String>)]
    pub headers: Value,
    pub description: Option<String>,
    #[schema(value_type = HashMap<String, String>)]
    pub metadata: Value,
    /// At most this many deliveries start per second; null: no limit.
    pub rate_limit: Option<u32>,
    /// `none` or `per_user`.
    #[schema(schema_with = ordering_view_schema)]
    pub ordering: &'static str,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// The signing secret (`whsec_...`); only in the answer to create.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// `ordering`: as the bodies describe it.
fn ordering_view_schema() -> utoipa::openapi::Object {
    super::bodies::ordering_schema().build()
}

/// `events`: a list of known types, or `["*"]`.
fn event_selection_schema() -> utoipa::openapi::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(super::bodies::event_selection_item())
        .build()
}

impl From<Webhook> for WebhookView {
    fn from(webhook: Webhook) -> Self {
        let settings = webhook.settings;
        Self {
            id: webhook.id.to_string(),
            name: webhook.name.to_string(),
            url: webhook.url.as_str().to_owned(),
            events: webhook.events.names(),
            enabled: webhook.enabled,
            disabled_reason: webhook.disabled_reason,
            filter: settings.filter.map(|filter| filter.as_json().clone()),
            headers: Value::Object(
                settings
                    .headers
                    .iter()
                    .map(|(name, value)| (name.to_owned(), Value::String(value.to_owned())))
                    .collect(),
            ),
            description: settings
                .description
                .map(|description| description.as_str().to_owned()),
            metadata: settings.metadata.to_json_value(),
            rate_limit: settings.rate_limit.map(|limit| limit.per_second()),
            ordering: settings.ordering.as_str(),
            created_at: webhook.created_at,
            updated_at: webhook.updated_at,
            secret: None,
        }
    }
}

/// One event on its way to one webhook.
#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    #[schema(example = "dl_01jf2wkmvcfw6ts1qmgzya291c")]
    pub id: String,
    pub event_id: String,
    pub webhook_id: String,
    #[schema(value_type = EventTypeName)]
    pub event_type: &'static str,
    #[schema(value_type = DeliveryStatusName)]
    pub status: &'static str,
    pub attempt_count: u32,
    /// When a pending delivery is attempted next; null otherwise, and null while one waits its
    /// turn behind an earlier delivery of its user (`ordering: per_user`).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<Timestamp>,
    pub last_status_code: Option<u16>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// Only in `GET /v1/deliveries/{id}`: every attempt, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Vec<AttemptView>>,
}

impl From<Delivery> for DeliveryView {
    fn from(delivery: Delivery) -> Self {
        Self {
            id: delivery.id.to_string(),
            event_id: delivery.event_id.to_string(),
            webhook_id: delivery.webhook_id.to_string(),
            event_type: delivery.event_type.as_str(),
            status: delivery.status.as_str(),
            attempt_count: delivery.attempt_count,
            next_attempt_at: delivery.next_attempt_at,
            last_status_code: delivery.last_status_code,
            created_at: delivery.created_at,
            updated_at: delivery.updated_at,
            attempts: None,
        }
    }
}

impl From<DeliveryWithAttempts> for DeliveryView {
    fn from(found: DeliveryWithAttempts) -> Self {
        let mut view = DeliveryView::from(found.delivery);
        view.attempts = Some(found.attempts.into_iter().map(AttemptView::from).collect());
        view
    }
}

/// One HTTP attempt of a delivery.
#[derive(Serialize, ToSchema)]
pub struct AttemptView {
    pub id: String,
    /// 1 for the first attempt.
    pub number: u32,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    pub duration_ms: u64,
    /// The receiver's status; null when none came back (timeout, connection error, refusal).
    pub status_code: Option<u16>,
    /// The first 1 KiB of the receiver's answer.
    pub response_body: Option<String>,
    pub error: Option<String>,
}

impl From<Attempt> for AttemptView {
    fn from(attempt: Attempt) -> Self {
        Self {
            id: attempt.id.to_string(),
            number: attempt.number,
            started_at: attempt.started_at,
            duration_ms: attempt.duration_ms,
            status_code: attempt.status_code,
            response_body: attempt.response_body,
            error: attempt.error,
        }
    }
}

/// An event is shown as the payload its webhooks received, byte for byte (schema: `EventView`).
pub fn event_view(event: Event) -> Box<RawValue> {
    RawValue::from_string(event.payload).unwrap_or_else(|_| {
        // Payloads are written by us as JSON; this only guards a damaged row.
        RawValue::from_string("null".to_owned()).unwrap_or_else(|_| unreachable!("null is JSON"))
    })
}

/// An event type: what it means, the JSON Schema of its `data`, and a whole example payload.
#[derive(Serialize, ToSchema)]
pub struct EventTypeView {
    #[serde(rename = "type")]
    #[schema(value_type = EventTypeName)]
    pub event_type: &'static str,
    pub description: &'static str,
    /// JSON Schema (2020-12) of the payload's `data`.
    #[schema(value_type = Object)]
    pub schema: Value,
    /// A whole example payload.
    #[schema(value_type = EventView)]
    pub example: Value,
}

impl From<EventType> for EventTypeView {
    fn from(kind: EventType) -> Self {
        Self {
            event_type: kind.as_str(),
            description: kind.description(),
            schema: kind.data_schema(),
            example: kind.example(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TriggerView {
    #[schema(example = "successful_payment")]
    pub id: String,
    pub name: String,
    #[schema(value_type = Option<CreditPointsBody>)]
    pub credit_points: Option<CreditRule>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl From<Trigger> for TriggerView {
    fn from(trigger: Trigger) -> Self {
        Self {
            id: trigger.id.to_string(),
            name: trigger.name.to_string(),
            credit_points: trigger.credit_points,
            created_at: trigger.created_at,
            updated_at: trigger.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TriggerEventView {
    #[schema(example = "te_01jf2wkmvc2k4m7h1r3b9v6x5d")]
    pub id: String,
    pub user: Reference,
    pub trigger: Reference,
    #[schema(value_type = Option<f64>)]
    pub value: Option<serde_json::Number>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Points the trigger's rule issued (0 when none).
    pub credit_points_issued: i64,
}

impl From<&TriggerEvent> for TriggerEventView {
    fn from(recorded: &TriggerEvent) -> Self {
        Self {
            id: recorded.id.to_string(),
            user: Reference::new(recorded.user.as_str()),
            trigger: Reference::new(recorded.trigger.as_str()),
            value: recorded.value.clone(),
            created_at: recorded.created_at,
            credit_points_issued: recorded.credit_points_issued,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreditsView {
    pub user: Reference,
    pub points: i64,
    /// The balance after this issuance.
    pub balance: i64,
}

impl From<&CreditsIssued> for CreditsView {
    fn from(issued: &CreditsIssued) -> Self {
        Self {
            user: Reference::new(issued.user.as_str()),
            points: issued.points,
            balance: issued.balance,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub balance: i64,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.to_string(),
            balance: user.balance,
            created_at: user.created_at,
        }
    }
}
