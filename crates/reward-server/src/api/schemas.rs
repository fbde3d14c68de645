//! OpenAPI schemas of the shapes shared by several answers, of the parameters (paths, lists and
//! filters) and of the error sets. Request bodies describe themselves (`bodies/`).

#![allow(dead_code)] // Doc-only types: constructed by nobody, read by utoipa.

use reward_core::event::EventType;
use serde::Serialize;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{Discriminator, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{OpenApi, Ref, RefOr, Required};
use utoipa::{IntoParams, IntoResponses, Modify, PartialSchema, ToSchema};

use super::api_keys::ApiKeyView;
use super::bodies::{trigger_id_schema, user_id_schema};
use super::views::{DeliveryView, EventTypeView, TriggerView, WebhookView};
use crate::reference::openapi::event_schema_name;

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
    #[serde(rename = "webhook.disabled")]
    WebhookDisabled,
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

/// An event as delivered: `{"id", "type", "time", "data"}`. Each event type has its own schema
/// (`TriggerEventCreatedEvent`, `BalanceCreditPointsIssuedEvent`, added by
/// `reference::openapi::finish`); `type` tells which, so generated clients get typed events.
pub struct EventView;

impl PartialSchema for EventView {
    fn schema() -> RefOr<Schema> {
        let mut one_of = OneOfBuilder::new().description(Some(
            "An event as its webhooks received it; `type` tells which schema its `data` follows.",
        ));
        let mut discriminator = Discriminator::new("type");
        for kind in EventType::ALL {
            let name = event_schema_name(kind);
            let reference = Ref::from_schema_name(name.as_str());
            discriminator
                .mapping
                .insert(kind.as_str().to_owned(), reference.ref_location.clone());
            one_of = one_of.item(reference);
        }
        one_of.discriminator(Some(discriminator)).into()
    }
}

impl ToSchema for EventView {}

// One list type per item type, rather than a generic `List<T>`: utoipa copies a generic
// argument's schema into the list, and generated clients would then get a class per list
// (`ListDeliveryViewDataItem`) instead of the item's own (`DeliveryView`).
macro_rules! list_schema {
    ($list:ident, $item:ty, $what:literal) => {
        #[doc = concat!("A page of ", $what, ": `{\"data\": [...], \"next_cursor\": ...}`, newest first.")]
        #[derive(ToSchema)]
        pub struct $list {
            pub data: Vec<$item>,
            /// Pass as `?cursor=` for the next page; null on the last (always present).
            #[schema(required = true)]
            pub next_cursor: Option<String>,
        }
    };
}

list_schema!(WebhookList, WebhookView, "webhooks");
list_schema!(DeliveryList, DeliveryView, "deliveries");
list_schema!(EventList, EventView, "events");
list_schema!(TriggerList, TriggerView, "triggers");
list_schema!(ApiKeyList, ApiKeyView, "API keys");
list_schema!(
    EventTypeList,
    EventTypeView,
    "event types (all on one page)"
);

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: HealthStatus,
}

/// Always `ok`: a server that answers at all is up.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Ok,
}

#[derive(Serialize, ToSchema)]
pub struct Ready {
    pub status: ReadyStatus,
}

/// Always `ready`: the database answered (a node that cannot reach it answers 503).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadyStatus {
    Ready,
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

/// `{id}` of `/v1/triggers/{id}`, a trigger id.
pub struct TriggerIdPath;

impl IntoParams for TriggerIdPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let description = "The trigger id, chosen by you (e.g. successful_payment)";
        vec![path_param("id", description, trigger_id_schema())]
    }
}

/// `{user_id}` of `/v1/users/{user_id}`.
pub struct UserIdPath;

impl IntoParams for UserIdPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![path_param(
            "user_id",
            "Your id of the user",
            user_id_schema(),
        )]
    }
}

fn path_param(name: &str, description: &str, schema: ObjectBuilder) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryFilter {
    /// Only deliveries in this state.
    pub status: Option<DeliveryStatusName>,
}

/// A delivery's state: `pending` while attempts are to come, `succeeded` once one was answered
/// with a 2xx, `failed` once the retries ran out (it can still be retried or recovered by hand).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatusName {
    Pending,
    Succeeded,
    Failed,
}

/// `?webhook_id=&event_id=&event_type=&status=` of the account-wide delivery search.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliverySearchFilter {
    /// Only deliveries to this webhook (wh_...). An id the account does not have matches nothing.
    #[param(pattern = "^wh_[0-7][0-9a-hjkmnp-tv-z]{25}$")]
    pub webhook_id: Option<String>,
    /// Only deliveries of this event (we_...). An id the account does not have matches nothing.
    #[param(pattern = "^we_[0-7][0-9a-hjkmnp-tv-z]{25}$")]
    pub event_id: Option<String>,
    /// Only deliveries of events of this type.
    pub event_type: Option<EventTypeName>,
    /// Only deliveries in this state.
    pub status: Option<DeliveryStatusName>,
}

/// `?created_after=&created_before=`: a time range, both bounds exclusive.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CreatedFilter {
    /// Only those created strictly after this RFC 3339 time (e.g. `2024-12-14T15:29:18.821Z`;
    /// a `+` of an offset is written `%2B`).
    #[param(format = DateTime)]
    pub created_after: Option<String>,
    /// Only those created strictly before this RFC 3339 time.
    #[param(format = DateTime)]
    pub created_before: Option<String>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilter {
    /// Only events of this type.
    #[param(rename = "type")]
    pub event_type: Option<EventTypeName>,
}

/// Errors of routes that name one resource by id in their path (beside [`CommonErrors`]).
#[derive(IntoResponses)]
pub enum ByIdErrors {
    /// No such resource in this account.
    #[response(status = 404)]
    NotFound(ErrorBody),
}

/// Errors of list routes (beside [`CommonErrors`]).
#[derive(IntoResponses)]
pub enum ListErrors {
    /// A bad limit, cursor or filter; `field` names it.
    #[response(status = 422)]
    Invalid(ErrorBody),
}

/// Adds the answers that do not depend on the route to every operation they can come from, so
/// no handler can forget one (`extract.rs`, `limits.rs`, `input.rs` and `error.rs` give them):
///
/// - every authenticated operation: 401, 429 and 503 (the last two with `Retry-After`);
/// - every operation that reads a JSON body: 400, 408, 413 and 422;
/// - every authenticated operation: 422 for a query parameter it does not take.
///
/// A status a handler documents itself keeps the handler's description.
pub struct CommonErrors;

impl CommonErrors {
    const AUTHENTICATED: [(&'static str, &'static str, bool); 3] = [
        ("401", "No API key, one that is not valid, or more than one `Authorization` header (`unauthorized`).", false),
        ("429", "Over this account's request rate (`rate_limited`); retry after `Retry-After` seconds.", true),
        ("503", "The database is unavailable right now (`store_unavailable`), so the request was not completed. Retry after `Retry-After` seconds, with the same `Idempotency-Key` if one was sent.", true),
    ];
    const WITH_BODY: [(&'static str, &'static str, bool); 4] = [
        ("400", "The body is not valid JSON (`invalid_json`), names a key twice (`duplicate_key`, `field` names it), or could not be read (`invalid_body`).", false),
        ("408", "The body did not arrive whole in time (`request_timeout`).", false),
        ("413", "The body is over 256 KiB (`payload_too_large`).", false),
        ("422", "A missing field, a wrong type, an unknown field or an invalid value; `field` names it.", false),
    ];
    /// `query_contract`: every authenticated operation, also those that take no parameters.
    const WITH_QUERY: (&'static str, &'static str, bool) = (
        "422",
        "A query parameter the operation does not take (`unknown_field`) or one given twice (`invalid_value`); `field` names it.",
        false,
    );

    fn response(description: &str, retry_after: bool) -> Response {
        let mut response = ResponseBuilder::new().description(description).content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        );
        if retry_after {
            let seconds = ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1));
            response = response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(seconds)
                    .description(Some("Whole seconds to wait before trying again."))
                    .build(),
            );
        }
        response.build()
    }

    fn add_to(operation: &mut Operation) {
        let authenticated = operation
            .security
            .as_ref()
            .is_some_and(|requirements| !requirements.is_empty());
        let mut common = Vec::new();
        if authenticated {
            common.extend(Self::AUTHENTICATED);
        }
        if operation.request_body.is_some() {
            common.extend(Self::WITH_BODY);
        }
        if authenticated {
            common.push(Self::WITH_QUERY);
        }
        if common.is_empty() {
            return;
        }
        let responses = &mut operation.responses.responses;
        for (status, description, retry_after) in common {
            if !responses.contains_key(status) {
                let response = Self::response(description, retry_after);
                responses.insert(status.to_owned(), response.into());
            }
        }
        // In status order, as a reader scans them.
        let mut sorted: Vec<_> = std::mem::take(responses).into_iter().collect();
        sorted.sort_by(|(a, _), (b, _)| a.cmp(b));
        responses.extend(sorted);
    }
}

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                Self::add_to(operation);
            }
        }
    }
}
