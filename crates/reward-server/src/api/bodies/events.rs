//! The body of `POST /v1/events/{id}/resend`.

use reward_core::ids::WebhookId;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use super::{closed_object, example};
use crate::api::error::{ApiError, ApiResult};
use crate::api::input::JsonObject;

const WEBHOOK_ID: &str = "webhook_id";

/// `POST /v1/events/{id}/resend`.
pub struct ResendBody {
    pub webhook_id: WebhookId,
}

impl ResendBody {
    pub fn read(mut body: JsonObject) -> ApiResult<Self> {
        body.only(&[WEBHOOK_ID])?;
        let webhook_id = WebhookId::parse(&body.string(WEBHOOK_ID)?).map_err(|_| {
            ApiError::invalid(
                WEBHOOK_ID,
                "webhook_id must be a webhook's id, e.g. wh_01jf2wkmvcfw6ts1qmgzya291c.",
            )
        })?;
        Ok(Self { webhook_id })
    }
}

impl PartialSchema for ResendBody {
    fn schema() -> RefOr<Schema> {
        let webhook_id = ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "The id of an enabled webhook of this account (wh_...); an unknown one answers 422 `unknown_webhook`, a disabled one 409 `webhook_disabled`.",
            ));
        closed_object()
            .property(
                WEBHOOK_ID,
                example(webhook_id, "wh_01jf2wkmvcfw6ts1qmgzya291c"),
            )
            .required(WEBHOOK_ID)
            .into()
    }
}

impl ToSchema for ResendBody {}
