//! The body of `PUT /v1/triggers/{id}`, and the credit rule it carries (answered back as it was
//! given, so `views.rs` describes a trigger's rule with the same schema).

use reward_core::credit::{CreditRule, MAX_POINTS};
use reward_core::names::Name;
use utoipa::openapi::schema::{
    KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use super::{add_component, closed_object, example, name_schema, parse_name};
use crate::api::error::{ApiError, ApiResult};
use crate::api::input::JsonObject;

const NAME: &str = "name";
const CREDIT_POINTS: &str = "credit_points";
const PER_UNIT: &str = "per_unit";
const FIXED: &str = "fixed";

/// Largest `per_unit`: with values and points both bounded, a rule's arithmetic stays meaningful.
const MAX_PER_UNIT: i32 = 1_000_000_000;

/// `PUT /v1/triggers/{id}`.
pub struct TriggerBody {
    pub name: Name,
    /// Absent and `null` both mean no points.
    pub credit_points: Option<CreditRule>,
}

impl TriggerBody {
    pub fn read(mut body: JsonObject) -> ApiResult<Self> {
        body.only(&[NAME, CREDIT_POINTS])?;
        let name = parse_name(NAME, &body.string(NAME)?)?;
        let credit_points = read_rule(&mut body)?;
        Ok(Self {
            name,
            credit_points,
        })
    }
}

fn read_rule(body: &mut JsonObject) -> ApiResult<Option<CreditRule>> {
    let Some(mut rule) = body.optional_object(CREDIT_POINTS)? else {
        return Ok(None);
    };
    rule.only(&[PER_UNIT, FIXED])?;
    let both_or_neither = rule.has(PER_UNIT) == rule.has(FIXED);
    if both_or_neither {
        return Err(ApiError::invalid(
            CREDIT_POINTS,
            "credit_points must be {\"per_unit\": n} or {\"fixed\": n}, or null.",
        ));
    }
    if rule.has(PER_UNIT) {
        let field = rule.field_path(PER_UNIT);
        let per_unit = rule.number(PER_UNIT)?;
        let in_range = per_unit
            .as_f64()
            .is_some_and(|n| n > 0.0 && n <= f64::from(MAX_PER_UNIT));
        if !in_range {
            return Err(ApiError::invalid(
                &field,
                "per_unit must be a number above 0 and at most 1e9.",
            ));
        }
        return Ok(Some(CreditRule::PerUnit(per_unit)));
    }
    let field = rule.field_path(FIXED);
    let fixed = rule.integer(FIXED)?;
    if !(1..=MAX_POINTS).contains(&fixed) {
        return Err(ApiError::invalid(
            &field,
            "fixed must be a whole number from 1 to 10^12.",
        ));
    }
    Ok(Some(CreditRule::Fixed(fixed)))
}

impl PartialSchema for TriggerBody {
    fn schema() -> RefOr<Schema> {
        let no_rule = ObjectBuilder::new().schema_type(Type::Null);
        closed_object()
            .property(NAME, example(name_schema(), "Successful payment"))
            .required(NAME)
            .property(
                CREDIT_POINTS,
                OneOfBuilder::new()
                    .item(no_rule)
                    .item(Ref::from_schema_name(CreditPointsBody::name())),
            )
            .into()
    }
}

impl ToSchema for TriggerBody {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        add_component::<CreditPointsBody>(schemas);
    }
}

/// A trigger's rule, `{"per_unit": n}` or `{"fixed": n}`: a schema only (read into a
/// `CreditRule`).
pub struct CreditPointsBody;

/// `{"per_unit": n}`: a schema only.
pub struct PerUnitRule;

/// `{"fixed": n}`: a schema only.
pub struct FixedRule;

impl PartialSchema for CreditPointsBody {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some(
                "A trigger's rule: `{\"per_unit\": n}` (floor(value × n) points) or `{\"fixed\": n}`.",
            ))
            .item(Ref::from_schema_name(PerUnitRule::name()))
            .item(Ref::from_schema_name(FixedRule::name()))
            .into()
    }
}

impl ToSchema for CreditPointsBody {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        add_component::<PerUnitRule>(schemas);
        add_component::<FixedRule>(schemas);
    }
}

impl PartialSchema for PerUnitRule {
    fn schema() -> RefOr<Schema> {
        let per_unit = ObjectBuilder::new()
            .schema_type(Type::Number)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
            .description(Some(
                "Points per unit of the trigger event's value; above 0, at most 1e9.",
            ))
            .exclusive_minimum(Some(0))
            .maximum(Some(MAX_PER_UNIT));
        closed_object()
            .property(PER_UNIT, per_unit)
            .required(PER_UNIT)
            .into()
    }
}

impl ToSchema for PerUnitRule {}

impl PartialSchema for FixedRule {
    fn schema() -> RefOr<Schema> {
        let fixed = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .description(Some("Points for every trigger event, whatever its value."))
            .minimum(Some(1))
            .maximum(Some(MAX_POINTS));
        closed_object()
            .property(FIXED, fixed)
            .required(FIXED)
            .into()
    }
}

impl ToSchema for FixedRule {}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> ApiResult<TriggerBody> {
        TriggerBody::read(JsonObject::parse(text.as_bytes()).expect("an object"))
    }

    #[test]
    fn a_rule_is_one_of_per_unit_or_fixed_or_null() {
        assert!(read(r#"{"name": "Paid", "credit_points": null}"#)
            .expect("no rule")
            .credit_points
            .is_none());
        let fixed = read(r#"{"name": "Paid", "credit_points": {"fixed": 5}}"#).expect("fixed");
        assert!(matches!(fixed.credit_points, Some(CreditRule::Fixed(5))));
        let both = read(r#"{"name": "Paid", "credit_points": {"fixed": 5, "per_unit": 1}}"#)
            .err()
            .expect("both refused");
        assert_eq!(both.field.as_deref(), Some(CREDIT_POINTS));
    }

    #[test]
    fn limits_name_the_nested_field() {
        let error = read(r#"{"name": "Paid", "credit_points": {"per_unit": 1000000001}}"#)
            .err()
            .expect("over the limit");
        assert_eq!(error.field.as_deref(), Some("credit_points.per_unit"));
        assert!(read(r#"{"name": "Paid", "credit_points": {"per_unit": 1e9}}"#).is_ok());
        let error = read(r#"{"name": "Paid", "credit_points": {"fixed": 1000000000001}}"#)
            .err()
            .expect("over the limit");
        assert_eq!(error.field.as_deref(), Some("credit_points.fixed"));
    }
}
