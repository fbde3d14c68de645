//! The body of `POST /v1/users/{user_id}/credits`.

use reward_core::credit::MAX_POINTS;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use super::closed_object;
use crate::api::error::{ApiError, ApiResult};
use crate::api::input::JsonObject;

const POINTS: &str = "points";
const REASON: &str = "reason";

/// Longest reason accepted, in characters.
const MAX_REASON: usize = 500;

/// `POST /v1/users/{user_id}/credits`.
pub struct CreditsBody {
    /// 1 to `MAX_POINTS`.
    pub points: i64,
    pub reason: Option<String>,
}

impl CreditsBody {
    pub fn read(mut body: JsonObject) -> ApiResult<Self> {
        body.only(&[POINTS, REASON])?;
        let points = body.integer(POINTS)?;
        if !(1..=MAX_POINTS).contains(&points) {
            return Err(ApiError::invalid(
                POINTS,
                "points must be a whole number from 1 to 10^12.",
            ));
        }
        let reason = body.optional_string(REASON)?;
        if reason
            .as_ref()
            .is_some_and(|reason| reason.chars().count() > MAX_REASON)
        {
            return Err(ApiError::invalid(
                REASON,
                format!("reason may be at most {MAX_REASON} characters long."),
            ));
        }
        Ok(Self { points, reason })
    }
}

impl PartialSchema for CreditsBody {
    fn schema() -> RefOr<Schema> {
        let points = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(1))
            .maximum(Some(MAX_POINTS));
        let reason = ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .max_length(Some(MAX_REASON));
        closed_object()
            .property(POINTS, points)
            .required(POINTS)
            .property(REASON, reason)
            .into()
    }
}

impl ToSchema for CreditsBody {}
