//! The body of `POST /v1/api_keys`.

use reward_core::names::Name;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use super::{closed_object, example, name_schema, parse_name};
use crate::api::error::ApiResult;
use crate::api::input::JsonObject;

const NAME: &str = "name";

/// `POST /v1/api_keys`.
pub struct ApiKeyCreateBody {
    pub name: Name,
}

impl ApiKeyCreateBody {
    pub fn read(mut body: JsonObject) -> ApiResult<Self> {
        body.only(&[NAME])?;
        let name = parse_name(NAME, &body.string(NAME)?)?;
        Ok(Self { name })
    }
}

impl PartialSchema for ApiKeyCreateBody {
    fn schema() -> RefOr<Schema> {
        closed_object()
            .property(NAME, example(name_schema(), "CI deploys"))
            .required(NAME)
            .into()
    }
}

impl ToSchema for ApiKeyCreateBody {}
