//! Credit maths: how a trigger's rule turns a trigger event's value into points.

use std::str::FromStr;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::Serialize;

/// A trigger's rule. `PerUnit` multiplies the event's value; `Fixed` ignores it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CreditRule {
    /// Points per unit of value, e.g. 10 points per currency unit; a positive number.
    PerUnit(serde_json::Number),
    /// The same points for every event; a positive integer.
    Fixed(i64),
}

/// The decimal that a JSON number spells, so `0.29 × 100` is exactly 29, as the caller wrote it,
/// not the 28.999… a binary float would give.
fn decimal_of(number: &serde_json::Number) -> Option<Decimal> {
    if let Some(integer) = number.as_i64() {
        return Some(Decimal::from(integer));
    }
    // serde_json prints the shortest text that reads back as the same f64: the caller's digits.
    Decimal::from_str(&number.to_string())
        .or_else(|_| Decimal::from_scientific(&number.to_string()))
        .ok()
}

impl CreditRule {
    /// Points this rule issues for a trigger event with `value`: `per_unit` gives
    /// floor(value × per_unit) (0 without a value), `fixed` its number. Never negative; results
    /// beyond what an i64 holds are capped.
    pub fn points_for(&self, value: Option<&serde_json::Number>) -> i64 {
        match self {
            CreditRule::Fixed(points) => (*points).max(0),
            CreditRule::PerUnit(per_unit) => {
                let Some(value) = value else {
                    return 0;
                };
                let exact = decimal_of(value)
                    .zip(decimal_of(per_unit))
                    .and_then(|(value, per_unit)| value.checked_mul(per_unit))
                    .map(|product| {
                        // Past i64 either way, saturate on the product's own side.
                        let saturated = if product.is_sign_negative() {
                            i64::MIN
                        } else {
                            i64::MAX
                        };
                        product.floor().to_i64().unwrap_or(saturated)
                    });
                // Beyond what a decimal holds (about 7.9e28) precision no longer matters.
                let points = exact.unwrap_or_else(|| {
                    let product = value.as_f64().unwrap_or(0.0) * per_unit.as_f64().unwrap_or(0.0);
                    // `as` saturates: +inf and huge values become i64::MAX, NaN becomes 0.
                    product.floor() as i64
                });
                points.max(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(text: &str) -> serde_json::Number {
        serde_json::from_str(text).expect("number")
    }

    #[test]
    fn per_unit_floors_exactly() {
        let rule = CreditRule::PerUnit(number("10"));
        assert_eq!(rule.points_for(Some(&number("2.99"))), 29);
        assert_eq!(rule.points_for(Some(&number("3"))), 30);
        assert_eq!(rule.points_for(Some(&number("0.09"))), 0);
        assert_eq!(rule.points_for(None), 0);
        assert_eq!(rule.points_for(Some(&number("-5"))), 0);
        let cents = CreditRule::PerUnit(number("100"));
        assert_eq!(cents.points_for(Some(&number("0.29"))), 29);
        let half = CreditRule::PerUnit(number("0.5"));
        assert_eq!(half.points_for(Some(&number("3"))), 1);
    }

    #[test]
    fn fixed_ignores_value() {
        let rule = CreditRule::Fixed(5);
        assert_eq!(rule.points_for(None), 5);
        assert_eq!(rule.points_for(Some(&number("1000"))), 5);
    }

    #[test]
    fn huge_products_cap_instead_of_overflowing() {
        let rule = CreditRule::PerUnit(number("1e300"));
        assert_eq!(rule.points_for(Some(&number("1e300"))), i64::MAX);
        assert_eq!(rule.points_for(Some(&number("-1e300"))), 0);
        let big = CreditRule::PerUnit(number("1000000000"));
        assert_eq!(big.points_for(Some(&number("1e15"))), i64::MAX);
    }
}
