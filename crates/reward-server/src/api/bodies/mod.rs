//! The request bodies, one type each: the type reads the body and describes it in the OpenAPI
//! document, from the same field-name constants and the same limits (the validating newtypes of
//! `reward_core::names` and their `MAX_LEN`/`PATTERN`), so the description cannot drift from what
//! is accepted.
//!
//! Decisions:
//!
//! - Each body has an inherent `read(JsonObject, ...)` that the handler calls, rather than being an
//!   extractor of its own: a handler checks its path id (404) or its headers first and only then
//!   the body's fields, and that order is part of what the API answers.
//! - Reading stays field by field on `JsonObject` (serde's derive would word errors its own way
//!   and could not say which field failed, nor refuse a present `null` only where PATCH must):
//!   the codes, `field` values and messages are those the API has always given.
//! - Each schema is written with utoipa's builders (`impl PartialSchema`), since its derive takes
//!   only literals for patterns and limits; the component names are the types' names.

mod api_keys;
mod events;
mod trigger_events;
mod triggers;
mod users;
mod webhooks;

pub use api_keys::ApiKeyCreateBody;
pub use events::ResendBody;
pub use trigger_events::TriggerEventBody;
pub use triggers::{CreditPointsBody, FixedRule, PerUnitRule, TriggerBody};
pub use users::CreditsBody;
pub use webhooks::{
    event_selection_item, ordering_schema, RecoverBody, RotateSecretBody, TestEventBody,
    WebhookCreateBody, WebhookPatchBody,
};

use reward_core::event::EventType;
use reward_core::names::{Name, TriggerId, UserId};
use serde_json::Value;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};

/// An object that refuses fields it does not name, as `JsonObject::only` does.
fn closed_object() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
}

/// Sets `example`, as utoipa's derive writes it for the rest of the document (the builder marks
/// it deprecated in favour of 3.1's `examples`).
#[allow(deprecated)]
fn example(schema: ObjectBuilder, value: impl Into<Value>) -> ObjectBuilder {
    schema.example(Some(value.into()))
}

/// A string with a length and a pattern.
fn text(max_length: usize, pattern: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(max_length))
        .pattern(Some(pattern))
}

/// A [`Name`] (of a webhook, trigger or API key).
pub fn name_schema() -> ObjectBuilder {
    text(Name::MAX_LEN, Name::PATTERN)
}

/// A [`UserId`], in a body or a path.
pub fn user_id_schema() -> ObjectBuilder {
    text(UserId::MAX_LEN, UserId::PATTERN)
}

/// A [`TriggerId`], in a body or a path.
pub fn trigger_id_schema() -> ObjectBuilder {
    text(TriggerId::MAX_LEN, TriggerId::PATTERN)
}

/// The component of type `T` and those it refers to, for a body's `ToSchema::schemas`.
fn add_component<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
}

/// A name field's text as a [`Name`].
fn parse_name(field: &str, text: &str) -> ApiResult<Name> {
    Name::parse(text).map_err(|error| ApiError::invalid(field, error.0))
}

/// An event type given as text (in a body or a query), `field` naming where.
pub fn parse_event_type(field: &str, text: &str) -> ApiResult<EventType> {
    EventType::parse(text).ok_or_else(|| {
        let known: Vec<&str> = EventType::ALL.iter().map(|kind| kind.as_str()).collect();
        ApiError::invalid(
            field,
            format!(
                "Unknown event type '{text}'. Known types: {}.",
                known.join(", ")
            ),
        )
    })
}
