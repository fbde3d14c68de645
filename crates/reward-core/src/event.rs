//! Event types and payloads.
//!
//! A payload is built once, when its event is emitted, and its exact bytes are stored and sent on
//! every attempt: a signature covers those bytes, so they must never be re-serialized.

use serde::Serialize;
use serde_json::{json, Value};

use crate::ids::{EventId, TriggerEventId, WebhookId};
use crate::names::{TriggerId, UserId};
use crate::time::Timestamp;
use crate::trace::TraceParent;

/// The kinds of event Reward emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    TriggerEventCreated,
    BalanceCreditPointsIssued,
    WebhookDisabled,
}

impl EventType {
    pub const ALL: [EventType; 3] = [
        EventType::TriggerEventCreated,
        EventType::BalanceCreditPointsIssued,
        EventType::WebhookDisabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::TriggerEventCreated => "trigger_event.created",
            EventType::BalanceCreditPointsIssued => "balance.credit_points_issued",
            EventType::WebhookDisabled => "webhook.disabled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    pub fn description(self) -> &'static str {
        match self {
            EventType::TriggerEventCreated => "Triggered whenever a new trigger event is created.",
            EventType::BalanceCreditPointsIssued => {
                "Triggered when credits are issued to a user, by a trigger's rule or by hand."
            }
            EventType::WebhookDisabled => {
                "Triggered when Reward disables one of your webhooks by itself: its endpoint answered 410 Gone, or every attempt to it failed for too long. Sent to your other webhooks subscribed to it, never to the disabled one."
            }
        }
    }

    /// The JSON Schema (draft 2020-12) of this type's `data`.
    pub fn data_schema(self) -> Value {
        let user = json!({
            "type": "object",
            "required": ["id"],
            "properties": {"id": {"type": "string", "description": "Your identifier of the user."}},
        });
        match self {
            EventType::TriggerEventCreated => json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "required": ["id", "user", "value", "trigger"],
                "properties": {
                    "id": {"type": "string", "pattern": "^te_[0-9a-z]{26}$", "description": "The trigger event's id."},
                    "user": user,
                    "value": {"type": ["number", "null"], "description": "The value recorded with the trigger event, e.g. a payment's amount."},
                    "trigger": {
                        "type": "object",
                        "required": ["id"],
                        "properties": {"id": {"type": "string", "description": "The trigger's id."}},
                    },
                },
            }),
            EventType::BalanceCreditPointsIssued => json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "required": ["user", "points", "balance", "sequence", "trigger_event", "reason"],
                "properties": {
                    "user": user,
                    "points": {"type": "integer", "minimum": 1, "description": "Points added by this issuance."},
                    "balance": {"type": "integer", "description": "The user's balance after it."},
                    "sequence": {"type": "integer", "minimum": 1, "description": "Which change of this user's balance it is: 1 for the first, then one more with every change, without gaps. A receiver that keeps balances ignores an update whose sequence is not above the one it holds: it arrived late."},
                    "trigger_event": {
                        "description": "The trigger event whose trigger rule issued the points; null when issued by hand.",
                        "oneOf": [
                            {"type": "null"},
                            {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
                        ],
                    },
                    "reason": {"type": ["string", "null"], "description": "The reason given when issued by hand; null when a trigger's rule issued them."},
                },
            }),
            EventType::WebhookDisabled => json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "required": ["webhook", "reason"],
                "properties": {
                    "webhook": {
                        "type": "object",
                        "required": ["id", "name"],
                        "properties": {
                            "id": {"type": "string", "pattern": "^wh_[0-9a-z]{26}$", "description": "The webhook disabled."},
                            "name": {"type": "string", "description": "Its name."},
                        },
                    },
                    "reason": {
                        "type": "string",
                        "enum": DisabledReason::ALL.map(DisabledReason::as_str),
                        "description": "`gone`: its endpoint answered 410 Gone; `failing`: every attempt to it failed for REWARD_DISABLE_AFTER. The webhook's `disabled_reason` says it in words.",
                    },
                },
            }),
        }
    }

    /// A whole example payload of this type.
    pub fn example(self) -> Value {
        let (id, data) = self.example_parts();
        json!({
            "id": id,
            "type": self.as_str(),
            "time": "2024-12-14T15:29:18.821Z",
            "data": data,
        })
    }

    /// The example's `data`, used by `POST /v1/webhooks/{id}/test`.
    pub fn example_data(self) -> Value {
        self.example_parts().1
    }

    fn example_parts(self) -> (&'static str, Value) {
        match self {
            EventType::TriggerEventCreated => (
                "we_01jf2wkmvcfw6ts1qmgzya291c",
                json!({
                    "id": "te_01jf2wkmvc2k4m7h1r3b9v6x5d",
                    "user": {"id": "ca9bb5c2-25a6-43e9-972e-862d28241a47"},
                    "value": 2.99,
                    "trigger": {"id": "successful_payment"},
                }),
            ),
            EventType::BalanceCreditPointsIssued => (
                "we_01jf2wkmvd3q8r0n6t2y5a7c9e",
                json!({
                    "user": {"id": "ca9bb5c2-25a6-43e9-972e-862d28241a47"},
                    "points": 29,
                    "balance": 129,
                    "sequence": 4,
                    "trigger_event": {"id": "te_01jf2wkmvc2k4m7h1r3b9v6x5d"},
                    "reason": null,
                }),
            ),
            EventType::WebhookDisabled => (
                "we_01jf2wkmve5t1v3x7z9b2d4f6h",
                json!({
                    "webhook": {"id": "wh_01jf2wkmvb8n4p6r8t0v2x4z6a", "name": "Orders service"},
                    "reason": "gone",
                }),
            ),
        }
    }
}

/// Why Reward disabled a webhook by itself (`webhook.disabled`'s `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisabledReason {
    /// The endpoint answered 410 Gone.
    Gone,
    /// Every attempt failed for `REWARD_DISABLE_AFTER`.
    Failing,
}

impl DisabledReason {
    pub const ALL: [DisabledReason; 2] = [DisabledReason::Gone, DisabledReason::Failing];

    pub fn as_str(self) -> &'static str {
        match self {
            DisabledReason::Gone => "gone",
            DisabledReason::Failing => "failing",
        }
    }
}

/// An event ready to store and deliver: its id, type, time and exact payload bytes, and for an
/// event about a user, where it stands among that user's events.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: EventId,
    pub event_type: EventType,
    pub time: Timestamp,
    pub payload: String,
    pub user_position: Option<UserPosition>,
    /// The span that recorded it, when tracing was on: its deliveries' attempts join that trace.
    pub trace: Option<TraceParent>,
}

/// Where an event stands among the events about one user (`trigger_event.created` and balance
/// changes, counted from 1 on the user's row in the transaction that records them): a webhook
/// that orders per user delivers that user's events in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPosition {
    pub user: UserId,
    pub position: i64,
}

impl NewEvent {
    fn build(event_type: EventType, time: Timestamp, data: impl Serialize) -> Self {
        #[derive(Serialize)]
        struct Payload<'a, D> {
            id: &'a EventId,
            #[serde(rename = "type")]
            event_type: &'static str,
            time: Timestamp,
            data: D,
        }
        let id = EventId::generate();
        let payload = serde_json::to_string(&Payload {
            id: &id,
            event_type: event_type.as_str(),
            time,
            data,
        })
        .unwrap_or_else(|_| String::from("{}"));
        Self {
            id,
            event_type,
            time,
            payload,
            user_position: None,
            trace: None,
        }
    }

    /// The event as the `position`-th event about `user`.
    pub fn at_user_position(self, user: &UserId, position: i64) -> Self {
        Self {
            user_position: Some(UserPosition {
                user: user.clone(),
                position,
            }),
            ..self
        }
    }

    /// The event as recorded on behalf of the span `cause` (an API request), when traced: it
    /// gets its own span in that trace ([`TraceParent::for_event`]).
    pub fn caused_by(self, cause: Option<&TraceParent>) -> Self {
        Self {
            trace: cause.map(|cause| cause.for_event(self.event_type.as_str())),
            ..self
        }
    }

    /// `trigger_event.created`.
    pub fn trigger_event_created(
        time: Timestamp,
        trigger_event: &TriggerEventId,
        user: &UserId,
        value: Option<&serde_json::Number>,
        trigger: &TriggerId,
    ) -> Self {
        Self::build(
            EventType::TriggerEventCreated,
            time,
            json!({
                "id": trigger_event,
                "user": {"id": user.as_str()},
                "value": value,
                "trigger": {"id": trigger.as_str()},
            }),
        )
    }

    /// `balance.credit_points_issued`.
    pub fn credit_points_issued(
        time: Timestamp,
        user: &UserId,
        points: i64,
        balance: i64,
        sequence: i64,
        trigger_event: Option<&TriggerEventId>,
        reason: Option<&str>,
    ) -> Self {
        Self::build(
            EventType::BalanceCreditPointsIssued,
            time,
            json!({
                "user": {"id": user.as_str()},
                "points": points,
                "balance": balance,
                "sequence": sequence,
                "trigger_event": trigger_event.map(|id| json!({"id": id})),
                "reason": reason,
            }),
        )
    }

    /// `webhook.disabled`.
    pub fn webhook_disabled(
        time: Timestamp,
        webhook: &WebhookId,
        name: &str,
        reason: DisabledReason,
    ) -> Self {
        Self::build(
            EventType::WebhookDisabled,
            time,
            json!({
                "webhook": {"id": webhook, "name": name},
                "reason": reason.as_str(),
            }),
        )
    }

    /// A test event: the type's example data under a fresh id and the current time.
    pub fn test_event(time: Timestamp, event_type: EventType) -> Self {
        Self::build(event_type, time, event_type.example_data())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_has_seed_shape_and_field_order() {
        let user = UserId::parse("ca9bb5c2-25a6-43e9-972e-862d28241a47").expect("valid");
        let trigger = TriggerId::parse("successful_payment").expect("valid");
        let te = TriggerEventId::generate();
        let value = serde_json::Number::from_f64(2.99).expect("finite");
        let time = Timestamp::from_millis(1_734_190_158_821);
        let event = NewEvent::trigger_event_created(time, &te, &user, Some(&value), &trigger);
        let expected = format!(
            r#"{{"id":"{}","type":"trigger_event.created","time":"2024-12-14T15:29:18.821Z","data":{{"id":"{}","user":{{"id":"ca9bb5c2-25a6-43e9-972e-862d28241a47"}},"value":2.99,"trigger":{{"id":"successful_payment"}}}}}}"#,
            event.id, te
        );
        assert_eq!(event.payload, expected);
    }

    #[test]
    fn examples_parse_back_and_types_round_trip() {
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
            assert_eq!(kind.example()["type"], kind.as_str());
        }
        assert_eq!(EventType::parse("nope"), None);
    }
}
