//! Bodies of `/v1/webhooks`: create, patch, rotate a secret, send a test event, recover failed
//! deliveries.

use reward_core::endpoint::headers::{self as extra_headers, ExtraHeaders};
use reward_core::endpoint::selection::EVERY_TYPE;
use reward_core::endpoint::{Description, EventSelection, Metadata, Ordering, RateLimit};
use reward_core::event::EventType;
use reward_core::filter::{PayloadFilter, MAX_FILTER_BYTES, MAX_FILTER_DEPTH};
use reward_core::names::{Name, TargetPolicy, WebhookUrl};
use reward_core::signing::WebhookSecret;
use reward_core::time::Timestamp;
use reward_store::records::{WebhookPatch, WebhookSettings};
use serde_json::Value;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Schema,
    SchemaFormat, SchemaType, Type,
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
const FILTER: &str = "filter";
const HEADERS: &str = "headers";
const DESCRIPTION: &str = "description";
const METADATA: &str = "metadata";
const RATE_LIMIT: &str = "rate_limit";
const ORDERING: &str = "ordering";
const SECRET: &str = "secret";
/// What a patch may name, in this order (unknown-field errors list them).
const PATCH_FIELDS: [&str; 10] = [
    NAME,
    URL,
    EVENTS,
    ENABLED,
    FILTER,
    HEADERS,
    DESCRIPTION,
    METADATA,
    RATE_LIMIT,
    ORDERING,
];
/// What create may name: a patch's fields, and the secret.
const CREATE_FIELDS: [&str; 11] = [
    NAME,
    URL,
    EVENTS,
    ENABLED,
    FILTER,
    HEADERS,
    DESCRIPTION,
    METADATA,
    RATE_LIMIT,
    ORDERING,
    SECRET,
];

const TYPE: &str = "type";
const SINCE: &str = "since";

/// `POST /v1/webhooks`.
pub struct WebhookCreateBody {
    pub name: Name,
    pub url: WebhookUrl,
    pub events: EventSelection,
    /// Absent means true.
    pub enabled: bool,
    pub settings: WebhookSettings,
    /// The customer's own secret (moving from another provider); absent means a new one.
    pub secret: Option<WebhookSecret>,
}

/// `PATCH /v1/webhooks/{id}`: a field left out is `None` and stays as it is. `null` clears the
/// fields that can be empty (filter, headers, description, metadata, rate_limit) and is refused
/// for the others.
pub struct WebhookPatchBody(pub WebhookPatch);

/// `POST /v1/webhooks/{id}/secret/rotate`: an empty body, or `{"secret"}` to choose it.
pub struct RotateSecretBody {
    pub secret: Option<WebhookSecret>,
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

fn parse_events(names: Vec<String>) -> ApiResult<EventSelection> {
    // One type alone keeps the message that lists the known types.
    if let [name] = names.as_slice() {
        if name != EVERY_TYPE {
            parse_event_type(EVENTS, name)?;
        }
    }
    EventSelection::parse(&names, MAX_EVENT_LIST_ENTRIES)
        .map_err(|error| ApiError::invalid(EVENTS, error.0))
}

/// A field `null` may clear: absent is `None`, `null` is `Some(None)`.
fn clearable<T>(
    body: &mut JsonObject,
    name: &str,
    read: impl FnOnce(Value) -> ApiResult<T>,
) -> ApiResult<Option<Option<T>>> {
    match body.take(name) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(value) => read(value).map(|read| Some(Some(read))),
    }
}

fn parse_filter(value: Value) -> ApiResult<PayloadFilter> {
    if !value.is_object() {
        return Err(ApiError::wrong_type(FILTER, "an object or null"));
    }
    PayloadFilter::parse(&value).map_err(|error| ApiError::invalid(FILTER, error.to_string()))
}

fn parse_description(value: Value) -> ApiResult<Description> {
    match value {
        Value::String(text) => {
            Description::parse(text).map_err(|error| ApiError::invalid(DESCRIPTION, error.0))
        }
        _ => Err(ApiError::wrong_type(DESCRIPTION, "a string or null")),
    }
}

fn parse_rate_limit(value: Value) -> ApiResult<RateLimit> {
    let whole = value.as_i64().or_else(|| {
        value
            .as_f64()
            .filter(|float| float.fract() == 0.0 && float.abs() < 1e15)
            .map(|float| float as i64)
    });
    let Some(whole) = whole else {
        return Err(ApiError::wrong_type(
            RATE_LIMIT,
            "a whole number of deliveries per second, or null",
        ));
    };
    RateLimit::new(whole).map_err(|error| ApiError::invalid(RATE_LIMIT, error.0))
}

/// Ordering when the field is present (`null` is refused: it has a value, `none` by default).
fn read_ordering(body: &mut JsonObject) -> ApiResult<Option<Ordering>> {
    body.string_if_present(ORDERING)?
        .map(|text| Ordering::parse(&text).map_err(|error| ApiError::invalid(ORDERING, error.0)))
        .transpose()
}

/// Headers when the field is present (`null` and `{}` both mean none).
fn read_headers(body: &mut JsonObject) -> ApiResult<Option<ExtraHeaders>> {
    if !body.has(HEADERS) {
        return Ok(None);
    }
    let pairs = body.optional_string_map(HEADERS)?.unwrap_or_default();
    ExtraHeaders::parse(pairs)
        .map(Some)
        .map_err(|error| ApiError::invalid(HEADERS, error.0))
}

/// Metadata when the field is present (`null` and `{}` both mean none).
fn read_metadata(body: &mut JsonObject) -> ApiResult<Option<Metadata>> {
    if !body.has(METADATA) {
        return Ok(None);
    }
    let pairs = body.optional_string_map(METADATA)?.unwrap_or_default();
    Metadata::parse(pairs)
        .map(Some)
        .map_err(|error| ApiError::invalid(METADATA, error.0))
}

fn parse_secret(text: &str) -> ApiResult<WebhookSecret> {
    WebhookSecret::parse(text).map_err(|error| {
        ApiError::invalid(
            SECRET,
            format!("Not a usable secret: {error} (whsec_ followed by base64 of 24 to 64 bytes)."),
        )
    })
}

/// The settings fields, in one place for create and patch.
fn read_settings(body: &mut JsonObject) -> ApiResult<SettingsFields> {
    Ok(SettingsFields {
        filter: clearable(body, FILTER, parse_filter)?,
        headers: read_headers(body)?,
        description: clearable(body, DESCRIPTION, parse_description)?,
        metadata: read_metadata(body)?,
        rate_limit: clearable(body, RATE_LIMIT, parse_rate_limit)?,
        ordering: read_ordering(body)?,
    })
}

struct SettingsFields {
    filter: Option<Option<PayloadFilter>>,
    headers: Option<ExtraHeaders>,
    description: Option<Option<Description>>,
    metadata: Option<Metadata>,
    rate_limit: Option<Option<RateLimit>>,
    ordering: Option<Ordering>,
}

impl WebhookCreateBody {
    pub fn read(mut body: JsonObject, targets: TargetPolicy) -> ApiResult<Self> {
        body.only(&CREATE_FIELDS)?;
        let name = parse_name(NAME, &body.string(NAME)?)?;
        let url = parse_url(&body.string(URL)?, targets)?;
        let events = parse_events(body.string_list(EVENTS)?)?;
        let enabled = body.bool_if_present(ENABLED)?.unwrap_or(true);
        let fields = read_settings(&mut body)?;
        let secret = body
            .string_if_present(SECRET)?
            .map(|text| parse_secret(&text))
            .transpose()?;
        Ok(Self {
            name,
            url,
            events,
            enabled,
            settings: WebhookSettings {
                filter: fields.filter.flatten(),
                headers: fields.headers.unwrap_or_default(),
                description: fields.description.flatten(),
                metadata: fields.metadata.unwrap_or_default(),
                rate_limit: fields.rate_limit.flatten(),
                ordering: fields.ordering.unwrap_or_default(),
            },
            secret,
        })
    }
}

impl WebhookPatchBody {
    pub fn read(mut body: JsonObject, targets: TargetPolicy) -> ApiResult<Self> {
        body.only(&PATCH_FIELDS)?;
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
        let fields = read_settings(&mut body)?;
        Ok(Self(WebhookPatch {
            name,
            url,
            events,
            enabled,
            filter: fields.filter,
            headers: fields.headers,
            description: fields.description,
            metadata: fields.metadata,
            rate_limit: fields.rate_limit,
            ordering: fields.ordering,
        }))
    }
}

impl RotateSecretBody {
    /// No body asks for a new random secret.
    pub fn read(body: Option<JsonObject>) -> ApiResult<Self> {
        let Some(mut body) = body else {
            return Ok(Self { secret: None });
        };
        body.only(&[SECRET])?;
        let secret = body
            .string_if_present(SECRET)?
            .map(|text| parse_secret(&text))
            .transpose()?;
        Ok(Self { secret })
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

/// One entry of `events`: a known type, or `*` alone for every type.
pub fn event_selection_item() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(Ref::from_schema_name(EventTypeName::name()))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([EVERY_TYPE]))
                .description(Some(
                    "Every event type, also those added later (alone in the list).",
                )),
        )
        .into()
}

fn events_schema() -> ArrayBuilder {
    ArrayBuilder::new()
        .items(event_selection_item())
        .min_items(Some(1))
        .max_items(Some(MAX_EVENT_LIST_ENTRIES))
}

fn boolean() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Boolean)
}

fn nullable(kind: Type) -> SchemaType {
    SchemaType::from_iter([kind, Type::Null])
}

fn filter_schema() -> ObjectBuilder {
    example(
        ObjectBuilder::new()
            .schema_type(nullable(Type::Object))
            .description(Some(format!(
                "Only events this matches are delivered (null: every event of the selected types). Keys are dotted paths into the event `{{id, type, time, data}}` (e.g. `data.trigger.id`); a value is a literal (equality) or an object of operators `$eq`, `$ne`, `$gt`, `$gte`, `$lt`, `$lte`, `$in`, `$nin`, `$exists`, `$startsWith`; `$and`/`$or` (arrays of filters) and `$not` (a filter) combine them at any level. Several keys must all hold. At most {MAX_FILTER_BYTES} bytes and {MAX_FILTER_DEPTH} levels deep."
            ))),
        serde_json::json!({"type": "balance.credit_points_issued", "data.points": {"$gte": 100}}),
    )
}

fn headers_schema() -> ObjectBuilder {
    let value = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(extra_headers::MAX_VALUE_BYTES))
        .pattern(Some(extra_headers::VALUE_PATTERN));
    let name = ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(extra_headers::MAX_NAME_LEN))
        .pattern(Some(extra_headers::NAME_PATTERN));
    example(
        ObjectBuilder::new()
            .schema_type(nullable(Type::Object))
            .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(value.into()))))
            .property_names(Some(name))
            .max_properties(Some(extra_headers::MAX_HEADERS))
            .description(Some(format!(
                "Extra request headers sent with every delivery (null or {{}}: none). Names are HTTP tokens; {} and any webhook-* are reserved. Values are kept encrypted.",
                extra_headers::RESERVED.join(", ")
            ))),
        serde_json::json!({"Authorization": "Bearer gateway-token"}),
    )
}

fn description_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(nullable(Type::String))
        .max_length(Some(Description::MAX_CHARS))
        .description(Some("Your own note; returned as given."))
}

fn metadata_schema() -> ObjectBuilder {
    let value = ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(Metadata::MAX_VALUE_CHARS));
    let key = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(Metadata::MAX_KEY_CHARS));
    ObjectBuilder::new()
        .schema_type(nullable(Type::Object))
        .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(value.into()))))
        .property_names(Some(key))
        .max_properties(Some(Metadata::MAX_KEYS))
        .description(Some(
            "Your own string keys and values; returned as given (null or {}: none).",
        ))
}

fn rate_limit_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(nullable(Type::Integer))
        .minimum(Some(RateLimit::MIN))
        .maximum(Some(RateLimit::MAX))
        .description(Some("At most this many deliveries start per second, across every node; the rest wait in the database (null: no limit)."))
}

/// What `ordering` promises, in the words the reference and /docs show.
pub const ORDERING_DESCRIPTION: &str = "How this webhook's deliveries wait for each other. `none` (default): each delivery on its own, as fast as the endpoint takes them. `per_user`: for each user, the deliveries of that user's events (`trigger_event.created`, `balance.credit_points_issued`) are attempted one at a time, in the order the events were recorded; different users never wait for each other. A delivery being retried holds back that user's later deliveries until it succeeds or ends `failed` (then the next goes: the receiver sees the gap in `sequence`). Manual retry, resend and recover are explicit and go out of order; `webhook.disabled` and test events are not ordered. A change takes effect for deliveries not yet started.";

/// `ordering`: its names, its default and what it promises (the bodies and the view share it).
pub fn ordering_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(Ordering::ALL.map(Ordering::as_str)))
        .default(Some(Value::from(Ordering::default().as_str())))
        .description(Some(ORDERING_DESCRIPTION))
}

fn secret_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^whsec_[A-Za-z0-9+/]+={0,2}$"))
        .description(Some(
            "Your own signing secret, `whsec_` + base64 of 24–64 bytes (to move an endpoint from another provider without changing its verification). Absent: a new random one.",
        ))
}

/// The settings' properties, the same on create and patch.
fn with_settings(object: ObjectBuilder) -> ObjectBuilder {
    object
        .property(FILTER, filter_schema())
        .property(HEADERS, headers_schema())
        .property(DESCRIPTION, description_schema())
        .property(METADATA, metadata_schema())
        .property(RATE_LIMIT, rate_limit_schema())
        .property(ORDERING, ordering_schema())
}

impl PartialSchema for WebhookCreateBody {
    fn schema() -> RefOr<Schema> {
        let object = closed_object()
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
                events_schema().description(Some(
                    "Each a known event type (duplicates are ignored), or [\"*\"] for every type, also those added later.",
                )),
            )
            .required(EVENTS)
            .property(ENABLED, boolean().description(Some("Default true.")));
        with_settings(object)
            .property(SECRET, secret_schema())
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
        // No field is required; name, url, events and enabled cannot be null.
        let object = closed_object()
            .description(Some(
                "Any of the fields; each validated as on create. A field left out is left as it is; null clears filter, headers, description, metadata and rate_limit.",
            ))
            .property(NAME, name_schema())
            .property(URL, url_schema())
            .property(EVENTS, events_schema())
            .property(ENABLED, boolean());
        with_settings(object).into()
    }
}

impl ToSchema for WebhookPatchBody {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        add_component::<EventTypeName>(schemas);
    }
}

impl PartialSchema for RotateSecretBody {
    fn schema() -> RefOr<Schema> {
        closed_object()
            .description(Some("Optional: send no body for a new random secret."))
            .property(SECRET, secret_schema())
            .into()
    }
}

impl ToSchema for RotateSecretBody {}

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
        let WebhookPatchBody(patch) =
            WebhookPatchBody::read(object(r#"{"enabled": false}"#), TargetPolicy::SecureOnly)
                .expect("valid");
        assert!(patch.name.is_none() && patch.url.is_none() && patch.events.is_none());
        assert!(patch.filter.is_none() && patch.headers.is_none() && patch.rate_limit.is_none());
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
        assert_eq!(
            created.events,
            EventSelection::Only(vec![EventType::TriggerEventCreated])
        );
        assert_eq!(created.settings, WebhookSettings::default());
        assert!(created.secret.is_none());
    }

    #[test]
    fn an_unknown_field_is_named_with_the_known_ones() {
        let error = WebhookCreateBody::read(object(r#"{"nme": "x"}"#), TargetPolicy::SecureOnly)
            .err()
            .expect("refused");
        assert_eq!(error.code, "unknown_field");
        assert_eq!(
            error.message,
            "Unknown field 'nme'. Known fields: name, url, events, enabled, filter, headers, description, metadata, rate_limit, ordering, secret."
        );
    }

    #[test]
    fn a_patch_clears_with_null_and_sets_with_values() {
        let WebhookPatchBody(patch) = WebhookPatchBody::read(
            object(
                r#"{"filter": null, "headers": null, "description": null, "metadata": null, "rate_limit": null}"#,
            ),
            TargetPolicy::SecureOnly,
        )
        .expect("valid");
        assert_eq!(patch.filter, Some(None));
        assert_eq!(patch.headers, Some(ExtraHeaders::none()));
        assert_eq!(patch.description, Some(None));
        assert_eq!(patch.metadata, Some(Metadata::default()));
        assert_eq!(patch.rate_limit, Some(None));
        let WebhookPatchBody(patch) = WebhookPatchBody::read(
            object(r#"{"rate_limit": 20, "events": ["*"], "headers": {"X-Tenant": "acme"}}"#),
            TargetPolicy::SecureOnly,
        )
        .expect("valid");
        assert_eq!(patch.rate_limit, Some(RateLimit::new(20).ok()));
        assert_eq!(patch.ordering, None);
        assert_eq!(patch.events, Some(EventSelection::Every));
        assert_eq!(patch.headers.map(|headers| headers.len()), Some(1));
    }

    #[test]
    fn each_new_field_names_itself_when_refused() {
        let cases = [
            (r#"{"filter": []}"#, "invalid_type", FILTER),
            (r#"{"headers": {"Host": "x"}}"#, "invalid_value", HEADERS),
            (r#"{"headers": {"X-A": 1}}"#, "invalid_type", HEADERS),
            (r#"{"description": 5}"#, "invalid_type", DESCRIPTION),
            (r#"{"metadata": {"k": 1}}"#, "invalid_type", METADATA),
            (r#"{"rate_limit": 0}"#, "invalid_value", RATE_LIMIT),
            (r#"{"rate_limit": 1.5}"#, "invalid_type", RATE_LIMIT),
            (r#"{"ordering": "fifo"}"#, "invalid_value", ORDERING),
            (r#"{"ordering": null}"#, "invalid_type", ORDERING),
            (r#"{"ordering": 1}"#, "invalid_type", ORDERING),
            (
                r#"{"events": ["*", "trigger_event.created"]}"#,
                "invalid_value",
                EVENTS,
            ),
        ];
        for (body, code, field) in cases {
            let error = WebhookPatchBody::read(object(body), TargetPolicy::SecureOnly)
                .err()
                .unwrap_or_else(|| panic!("{body} refused"));
            assert_eq!(
                (error.code, error.field.as_deref()),
                (code, Some(field)),
                "{body}"
            );
        }
    }

    #[test]
    fn a_rotation_reads_an_empty_body_or_a_secret() {
        assert!(RotateSecretBody::read(None)
            .expect("empty")
            .secret
            .is_none());
        let own = WebhookSecret::generate();
        let body = format!(r#"{{"secret": "{}"}}"#, own.expose());
        let read = RotateSecretBody::read(Some(object(&body))).expect("valid");
        assert_eq!(read.secret, Some(own));
        let error = RotateSecretBody::read(Some(object(r#"{"secret": "whsec_c2hvcnQ="}"#)))
            .err()
            .expect("too short");
        assert_eq!(error.field.as_deref(), Some(SECRET));
    }
}
