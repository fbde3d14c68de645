//! Finishing the OpenAPI document generated from the handlers: the error answers routes share
//! ([`CommonErrors`]), the bearer scheme, each event type's payload schema with its example
//! (components), the outgoing webhooks themselves (OpenAPI 3.1's `webhooks` section), the server
//! and an explicit `security` on every operation, so linters and generators take it as it is.

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
            "operationId": kind.as_str().replace('.', "_"),
            "tags": ["Webhooks"],
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
            // Reward calls the receiver, which checks the signature instead.
            "security": [],
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
    // Relative: the document is served by the very server it describes, under whatever address
    // its clients reach it.
    root.insert(
        "servers".into(),
        json!([{"url": "/", "description": "The server this document was read from."}]),
    );
    if let Some(paths) = root.get_mut("paths").and_then(Value::as_object_mut) {
        needs_no_auth_unless_named(paths);
    }
    value
}

/// An operation that names no security scheme needs none: say so (`security: []`), rather than
/// leaving readers to guess.
fn needs_no_auth_unless_named(paths: &mut Map<String, Value>) {
    let operations = paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(Value::as_object_mut)
        .filter(|operation| operation.contains_key("responses"));
    for operation in operations {
        operation
            .entry("security")
            .or_insert_with(|| Value::Array(Vec::new()));
    }
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
