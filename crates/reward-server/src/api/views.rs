//! The JSON shapes the API answers with, one per resource (SPEC §4).

use reward_core::credit::CreditRule;
use reward_core::event::EventType;
use reward_core::time::Timestamp;
use reward_store::records::{
    Attempt, CreditsIssued, Delivery, DeliveryWithAttempts, Event, Trigger, TriggerEvent, User,
    Webhook,
};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

#[derive(Serialize)]
pub struct WebhookView {
    pub id: String,
    pub name: String,
    pub url: String,
    pub events: Vec<&'static str>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Only in the answer to create.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<Webhook> for WebhookView {
    fn from(webhook: Webhook) -> Self {
        Self {
            id: webhook.id.to_string(),
            name: webhook.name.to_string(),
            url: webhook.url.as_str().to_owned(),
            events: webhook.events.iter().map(|kind| kind.as_str()).collect(),
            enabled: webhook.enabled,
            disabled_reason: webhook.disabled_reason,
            created_at: webhook.created_at,
            updated_at: webhook.updated_at,
            secret: None,
        }
    }
}

#[derive(Serialize)]
pub struct DeliveryView {
    pub id: String,
    pub event_id: String,
    pub webhook_id: String,
    pub event_type: &'static str,
    pub status: &'static str,
    pub attempt_count: u32,
    pub next_attempt_at: Option<Timestamp>,
    pub last_status_code: Option<u16>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
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

#[derive(Serialize)]
pub struct AttemptView {
    pub id: String,
    pub number: u32,
    pub started_at: Timestamp,
    pub duration_ms: u64,
    pub status_code: Option<u16>,
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

/// An event is shown as the payload its webhooks received, byte for byte.
pub fn event_view(event: Event) -> Box<RawValue> {
    RawValue::from_string(event.payload).unwrap_or_else(|_| {
        // Payloads are written by us as JSON; this only guards a damaged row.
        RawValue::from_string("null".to_owned()).unwrap_or_else(|_| unreachable!("null is JSON"))
    })
}

pub fn event_type_view(kind: EventType) -> Value {
    json!({
        "type": kind.as_str(),
        "description": kind.description(),
        "schema": kind.data_schema(),
        "example": kind.example(),
    })
}

#[derive(Serialize)]
pub struct TriggerView {
    pub id: String,
    pub name: String,
    pub credit_points: Option<CreditRule>,
    pub created_at: Timestamp,
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

pub fn trigger_event_view(recorded: &TriggerEvent) -> Value {
    json!({
        "id": recorded.id,
        "user": {"id": recorded.user},
        "trigger": {"id": recorded.trigger},
        "value": recorded.value,
        "created_at": recorded.created_at,
        "credit_points_issued": recorded.credit_points_issued,
    })
}

pub fn credits_view(issued: &CreditsIssued) -> Value {
    json!({
        "user": {"id": issued.user},
        "points": issued.points,
        "balance": issued.balance,
    })
}

pub fn user_view(user: &User) -> Value {
    json!({
        "id": user.id,
        "balance": user.balance,
        "created_at": user.created_at,
    })
}
