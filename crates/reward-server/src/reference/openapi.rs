//! Finishing the OpenAPI document generated from the handlers: the error answers routes share
//! ([`CommonErrors`]), the bearer scheme, each event type's payload schema with its example
//! (components), and the outgoing webhooks themselves (OpenAPI 3.1's `webhooks` section).

use reward_core::event::EventType;
use serde_json::{json, Map, Value};
use utoipa::Modify;

use crate::api::schemas::CommonErrors;

/// The component name of an event type's payload schema, e.g. `TriggerEventCreatedEvent`.
pub fn event_schema_name(kind: EventType) -> String {
    let mut name = String::new();
    for word in kind.as_str().split(['.', '_']) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            name.extend(first.to_uppercase());
            name.push_str(chars.as_str());
        }
    }
    name.push_str("Event");
    name
}

/// The whole payload schema of an event type: `{id, type, time, data}` with `data` as the type's
/// own schema.
pub fn event_payload_schema(kind: EventType) -> Value {
    let mut data = kind.data_schema();
    if let Some(object) = data.as_object_mut() {
        // The document as a whole declares its dialect; a nested `$schema` only confuses tools.
        object.remove("$schema");
    }
    json!({
        "type": "object",
        "description": kind.description(),
        "required": ["id", "type", "time", "data"],
        "properties": {
            "id": {"type": "string", "pattern": "^we_[0-9a-z]{26}$", "description": "The event's id: the same on every retry and for every webhook (also sent as the webhook-id header)."},
            "type": {"type": "string", "const": kind.as_str()},
            "time": {"type": "string", "format": "date-time", "description": "When the change happened (RFC 3339, UTC, milliseconds)."},
            "data": data,
        },
        "examples": [kind.example()],
    })
}

fn webhook_operation(kind: EventType) -> Value {
    let header = |name: &str, description: &str| json!({"name": name, "in": "header", "required": true, "description": description, "schema": {"type": "string"}});
    json!({
        "post": {
            "summary": kind.as_str(),
            "description": format!("{} Sent as a signed POST to every enabled webhook subscribed to `{}`; retried until a 2xx answer.", kind.description(), kind.as_str()),
            "parameters": [
                header("webhook-id", "The event id; the same on retries. Use it to ignore duplicates."),
                header("webhook-timestamp", "Unix seconds when this attempt was signed."),
                header("webhook-signature", "Space-separated `v1,<base64 HMAC-SHA256 of {id}.{timestamp}.{body}>` entries (two during a secret rotation)."),
            ],
            "requestBody": {
                "required": true,
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{}", event_schema_name(kind))}}},
            },
            "responses": {
                "2XX": {"description": "Acknowledged: the delivery succeeded."},
                "410": {"description": "Gone: Reward disables the webhook."},
                "default": {"description": "Anything else is a failed attempt, retried with exponential backoff."},
            },
        }
    })
}

/// The document as served at `/openapi.json`.
pub fn finish(mut document: utoipa::openapi::OpenApi) -> Value {
    CommonErrors.modify(&mut document);
    let mut value = serde_json::to_value(&document).unwrap_or_else(|_| json!({}));
    let Some(root) = value.as_object_mut() else {
        return value;
    };
    let components = root
        .entry("components")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let mut components = components;
    let schemas = components.entry("schemas").or_insert_with(|| json!({}));
    if let Some(schemas) = schemas.as_object_mut() {
        for kind in EventType::ALL {
            schemas.insert(event_schema_name(kind), event_payload_schema(kind));
        }
    }
    components.insert(
        "securitySchemes".into(),
        json!({"api_key": {"type": "http", "scheme": "bearer", "description": "An account's API key: `Authorization: Bearer rwd_...`."}}),
    );
    root.insert("components".into(), Value::Object(components));
    let webhooks: Map<String, Value> = EventType::ALL
        .into_iter()
        .map(|kind| (kind.as_str().to_owned(), webhook_operation(kind)))
        .collect();
    root.insert("webhooks".into(), Value::Object(webhooks));
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_read_well() {
        assert_eq!(
            event_schema_name(EventType::TriggerEventCreated),
            "TriggerEventCreatedEvent"
        );
        assert_eq!(
            event_schema_name(EventType::BalanceCreditPointsIssued),
            "BalanceCreditPointsIssuedEvent"
        );
    }
}
