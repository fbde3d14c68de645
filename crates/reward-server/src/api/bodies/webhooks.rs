//! Bodies of `/v1/webhooks`: create, patch, send a test event, recover failed deliveries.

use reward_core::event::EventType;
use reward_core::names::{Name, TargetPolicy, WebhookUrl};
use reward_core::time::Timestamp;
use utoipa::openapi::schema::{
    ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use super::{add_component, closed_object, example, name_schema, parse_event_type, parse_name};
use crate::api::error::{ApiError, ApiResult};
use crate::api::input::JsonObject;
use crate::api::limits::MAX_EVENT_LIST_ENTRIES;
use crate::api::schemas::EventTypeName;

const NAME: &str = "name";
const URL: &str = "url";
const EVENTS: &str = "events";
const ENABLED: &str = "enabled";
/// Create and patch name the same fields, in this order (unknown-field errors list them).
const FIELDS: [&str; 4] = [NAME, URL, EVENTS, ENABLED];

const TYPE: &str = "type";
const SINCE: &str = "since";

/// `POST /v1/webhooks`.
pub struct WebhookCreateBody {
    pub name: Name,
    pub url: WebhookUrl,
    pub events: Vec<EventType>,
    /// Absent means true.
    pub enabled: bool,
}

/// `PATCH /v1/webhooks/{id}`: a field left out is `None` and stays as it is; a present `null` is
/// refused, since no field can be cleared.
pub struct WebhookPatchBody {
    pub name: Option<Name>,
    pub url: Option<WebhookUrl>,
    pub events: Option<Vec<EventType>>,
    pub enabled: Option<bool>,
}

/// `POST /v1/webhooks/{id}/test`.
pub struct TestEventBody {
    pub event_type: EventType,
}

/// `POST /v1/webhooks/{id}/recover`.
pub struct RecoverBody {
    pub since: Timestamp,
}

fn parse_url(text: &str, targets: TargetPolicy) -> ApiResult<WebhookUrl> {
    WebhookUrl::parse(text, targets).map_err(|error| ApiError::invalid(URL, error.0))
}

fn parse_events(names: Vec<String>) -> ApiResult<Vec<EventType>> {
    if names.is_empty() {
        return Err(ApiError::invalid(
            EVENTS,
            "Subscribe to at least one event type.",
        ));
    }
    if names.len() > MAX_EVENT_LIST_ENTRIES {
        return Err(ApiError::invalid(
            EVENTS,
            format!("List at most {MAX_EVENT_LIST_ENTRIES} event types."),
        ));
    }
    let mut events = Vec::with_capacity(names.len());
    for name in &names {
        let kind = parse_event_type(EVENTS, name)?;
        if !events.contains(&kind) {
            events.push(kind);
        }
    }
    Ok(events)
}

impl WebhookCreateBody {
    pub fn read(mut body: JsonObject, targets: TargetPolicy) -> ApiResult<Self> {
        body.only(&FIELDS)?;
        let name = parse_name(NAME, &body.string(NAME)?)?;
        let url = parse_url(&body.string(URL)?, targets)?;
        let events = parse_events(body.string_list(EVENTS)?)?;
        let enabled = body.bool_if_present(ENABLED)?.unwrap_or(true);
        Ok(Self {
            name,
            url,
            events,
            enabled,
        })
    }
}

impl WebhookPatchBody {
    pub fn read(mut body: JsonObject, targets: TargetPolicy) -> ApiResult<Self> {
        body.only(&FIELDS)?;
        let name = body
            .string_if_present(NAME)?
            .map(|text| parse_name(NAME, &text))
            .transpose()?;
        let url = body
            .string_if_present(URL)?
            .map(|text| parse_url(&text, targets))
            .transpose()?;
        let events = body
            .string_list_if_present(EVENTS)?
            .map(parse_events)
            .transpose()?;
        let enabled = body.bool_if_present(ENABLED)?;
        Ok(Self {
            name,
            url,
            events,
            enabled,
        })
    }
}

impl TestEventBody {
    pub fn read(mut body: JsonObject) -> ApiResult<Self> {
        body.only(&[TYPE])?;
        let event_type = parse_event_type(TYPE, &body.string(TYPE)?)?;
        Ok(Self { event_type })
    }
}

impl RecoverBody {
    pub fn read(mut body: JsonObject) -> ApiResult<Self> {
        body.only(&[SINCE])?;
        let text = body.string(SINCE)?;
        let since = Timestamp::parse_rfc3339(&text).ok_or_else(|| {
            ApiError::invalid(
                SINCE,
                "since must be an RFC 3339 time, e.g. 2024-12-14T15:29:18.821Z.",
            )
        })?;
        Ok(Self { since })
    }
}

fn url_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(WebhookUrl::MAX_LEN))
        .pattern(Some(WebhookUrl::PATTERN))
}

fn events_schema() -> ArrayBuilder {
    ArrayBuilder::new()
        .items(Ref::from_schema_name(EventTypeName::name()))
        .min_items(Some(1))
        .max_items(Some(MAX_EVENT_LIST_ENTRIES))
}

fn boolean() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Boolean)
}

impl PartialSchema for WebhookCreateBody {
    fn schema() -> RefOr<Schema> {
        closed_object()
            .property(
                NAME,
                example(
                    name_schema().description(Some(format!(
                        "1–{} characters, not blank.",
                        Name::MAX_LEN
                    ))),
                    "Orders",
                ),
            )
            .required(NAME)
            .property(
                URL,
                example(
                    url_schema().description(Some(
                        "Absolute https:// URL of a public host, with no user name, password or fragment\n(http:// and private hosts only with REWARD_ALLOW_INSECURE_TARGETS).",
                    )),
                    "https://example.com/webhooks/reward",
                ),
            )
            .required(URL)
            .property(
                EVENTS,
                events_schema()
                    .description(Some("Each a known event type; duplicates are ignored.")),
            )
            .required(EVENTS)
            .property(ENABLED, boolean().description(Some("Default true.")))
            .into()
    }
}

impl ToSchema for WebhookCreateBody {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        add_component::<EventTypeName>(schemas);
    }
}

impl PartialSchema for WebhookPatchBody {
    fn schema() -> RefOr<Schema> {
        // No field is required, and none is nullable: `null` is refused.
        closed_object()
            .description(Some(
                "Any of the fields; each validated as on create. A field left out is left as it is.",
            ))
            .property(NAME, name_schema())
            .property(URL, url_schema())
            .property(EVENTS, events_schema())
            .property(ENABLED, boolean())
            .into()
    }
}

impl ToSchema for WebhookPatchBody {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        add_component::<EventTypeName>(schemas);
    }
}

impl PartialSchema for TestEventBody {
    fn schema() -> RefOr<Schema> {
        closed_object()
            .property(TYPE, Ref::from_schema_name(EventTypeName::name()))
            .required(TYPE)
            .into()
    }
}

impl ToSchema for TestEventBody {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        add_component::<EventTypeName>(schemas);
    }
}

impl PartialSchema for RecoverBody {
    fn schema() -> RefOr<Schema> {
        let since = ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some(
                "Failed deliveries created at or after this time are re-queued.",
            ));
        closed_object()
            .property(SINCE, example(since, "2024-12-14T15:29:18.821Z"))
            .required(SINCE)
            .into()
    }
}

impl ToSchema for RecoverBody {}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(text: &str) -> JsonObject {
        JsonObject::parse(text.as_bytes()).expect("an object")
    }

    #[test]
    fn a_patch_leaves_out_what_is_absent_and_refuses_null() {
        let patch =
            WebhookPatchBody::read(object(r#"{"enabled": false}"#), TargetPolicy::SecureOnly)
                .expect("valid");
        assert!(patch.name.is_none() && patch.url.is_none() && patch.events.is_none());
        assert_eq!(patch.enabled, Some(false));
        let error = WebhookPatchBody::read(object(r#"{"name": null}"#), TargetPolicy::SecureOnly)
            .err()
            .expect("null refused");
        assert_eq!(
            (error.code, error.field.as_deref()),
            ("invalid_type", Some(NAME))
        );
    }

    #[test]
    fn create_defaults_to_enabled_and_drops_repeated_event_types() {
        let body = object(
            r#"{"name": "Orders", "url": "https://example.com/h", "events": ["trigger_event.created", "trigger_event.created"]}"#,
        );
        let created = WebhookCreateBody::read(body, TargetPolicy::SecureOnly).expect("valid");
        assert!(created.enabled);
        assert_eq!(created.events, [EventType::TriggerEventCreated]);
    }

    #[test]
    fn an_unknown_field_is_named_with_the_known_ones() {
        let error = WebhookCreateBody::read(object(r#"{"nme": "x"}"#), TargetPolicy::SecureOnly)
            .err()
            .expect("refused");
        assert_eq!(error.code, "unknown_field");
        assert_eq!(
            error.message,
            "Unknown field 'nme'. Known fields: name, url, events, enabled."
        );
    }
}
