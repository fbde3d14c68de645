//! The body of `POST /v1/trigger_events`.

use reward_core::names::{TriggerId, UserId};
use serde_json::Number;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use super::{closed_object, example, trigger_id_schema, user_id_schema};
use crate::api::error::{ApiError, ApiResult};
use crate::api::input::JsonObject;

const USER_ID: &str = "user_id";
const TRIGGER_ID: &str = "trigger_id";
const VALUE: &str = "value";

/// `POST /v1/trigger_events`.
pub struct TriggerEventBody {
    pub user_id: UserId,
    pub trigger_id: TriggerId,
    /// Kept as written: the rule reads it exactly, and the idempotency fingerprint spells it.
    pub value: Option<Number>,
}

impl TriggerEventBody {
    pub fn read(mut body: JsonObject) -> ApiResult<Self> {
        body.only(&[USER_ID, TRIGGER_ID, VALUE])?;
        let user_id = UserId::parse(&body.string(USER_ID)?)
            .map_err(|error| ApiError::invalid(USER_ID, error.0))?;
        let trigger_id = TriggerId::parse(&body.string(TRIGGER_ID)?)
            .map_err(|error| ApiError::invalid(TRIGGER_ID, error.0))?;
        let value = body.optional_number(VALUE)?;
        Ok(Self {
            user_id,
            trigger_id,
            value,
        })
    }
}

impl PartialSchema for TriggerEventBody {
    fn schema() -> RefOr<Schema> {
        let user_id = user_id_schema().description(Some(format!(
            "Your id of the user: 1–{} characters, no whitespace, `/`, `?`, `#` or `%`.",
            UserId::MAX_LEN
        )));
        let trigger_id = trigger_id_schema().description(Some(
            "The id of a trigger of this account (an unknown one answers 422 `unknown_trigger`).",
        ));
        let value = ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::Number, Type::Null]))
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
            .description(Some("E.g. a payment's amount."));
        closed_object()
            .property(
                USER_ID,
                example(user_id, "ca9bb5c2-25a6-43e9-972e-862d28241a47"),
            )
            .required(USER_ID)
            .property(TRIGGER_ID, example(trigger_id, "successful_payment"))
            .required(TRIGGER_ID)
            .property(VALUE, example(value, 2.99))
            .into()
    }
}

impl ToSchema for TriggerEventBody {}
