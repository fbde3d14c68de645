//! Credit maths: how a trigger's rule turns a trigger event's value into points, and the bounds
//! on points and balances.

use std::str::FromStr;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::Serialize;
use thiserror::Error;

/// Most points one trigger event, or one manual issuance, may add: 10^12.
pub const MAX_POINTS: i64 = 1_000_000_000_000;

/// The largest balance: 2^53 − 1, the largest whole number a JSON receiver that reads numbers as
/// IEEE doubles (JavaScript's `JSON.parse`, among many) reads exactly. Past it a receiver would
/// see another balance than the one Reward holds.
pub const MAX_BALANCE: i64 = (1 << 53) - 1;

/// A trigger's rule would issue more than [`MAX_POINTS`] for one trigger event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("the trigger's rule would issue more than 10^12 points for this value")]
pub struct TooManyPoints;

/// Adding points would take a balance past [`MAX_BALANCE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("the balance would pass 2^53 - 1")]
pub struct BalanceOverflow;

/// The balance after adding `points` (never negative) to `balance`, when it stays within
/// [`MAX_BALANCE`]. Adding nothing always succeeds: a trigger event that issues no points changes
/// no balance, whatever it holds.
pub fn balance_after(balance: i64, points: i64) -> Result<i64, BalanceOverflow> {
    if points == 0 {
        return Ok(balance);
    }
    balance
        .checked_add(points)
        .filter(|after| *after <= MAX_BALANCE)
        .ok_or(BalanceOverflow)
}

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
    /// floor(value × per_unit) (0 without a value), `fixed` its number. Never negative; more than
    /// [`MAX_POINTS`] is refused rather than capped, so a caller never gets a silently wrong
    /// number.
    pub fn points_for(&self, value: Option<&serde_json::Number>) -> Result<i64, TooManyPoints> {
        let points = self.unbounded_points_for(value);
        if points > MAX_POINTS {
            return Err(TooManyPoints);
        }
        Ok(points)
    }

    /// [`Self::points_for`] before the bound: results beyond what an i64 holds saturate.
    fn unbounded_points_for(&self, value: Option<&serde_json::Number>) -> i64 {
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
        assert_eq!(rule.points_for(Some(&number("2.99"))), Ok(29));
        assert_eq!(rule.points_for(Some(&number("3"))), Ok(30));
        assert_eq!(rule.points_for(Some(&number("0.09"))), Ok(0));
        assert_eq!(rule.points_for(None), Ok(0));
        assert_eq!(rule.points_for(Some(&number("-5"))), Ok(0));
        let cents = CreditRule::PerUnit(number("100"));
        assert_eq!(cents.points_for(Some(&number("0.29"))), Ok(29));
        let half = CreditRule::PerUnit(number("0.5"));
        assert_eq!(half.points_for(Some(&number("3"))), Ok(1));
    }

    #[test]
    fn fixed_ignores_value() {
        let rule = CreditRule::Fixed(5);
        assert_eq!(rule.points_for(None), Ok(5));
        assert_eq!(rule.points_for(Some(&number("1000"))), Ok(5));
    }

    #[test]
    fn more_than_ten_to_the_twelve_points_are_refused_not_capped() {
        let rule = CreditRule::PerUnit(number("1000"));
        assert_eq!(rule.points_for(Some(&number("1e18"))), Err(TooManyPoints));
        assert_eq!(rule.points_for(Some(&number("1e9"))), Ok(MAX_POINTS));
        assert_eq!(
            rule.points_for(Some(&number("1000000000.001"))),
            Err(TooManyPoints)
        );
        // Just under the bound by a fraction: floor keeps it in.
        assert_eq!(
            rule.points_for(Some(&number("1000000000.0009"))),
            Ok(MAX_POINTS)
        );
        let huge = CreditRule::PerUnit(number("1e300"));
        assert_eq!(huge.points_for(Some(&number("1e300"))), Err(TooManyPoints));
        assert_eq!(huge.points_for(Some(&number("-1e300"))), Ok(0));
        let big = CreditRule::PerUnit(number("1000000000"));
        assert_eq!(big.points_for(Some(&number("1e15"))), Err(TooManyPoints));
        assert_eq!(
            CreditRule::Fixed(MAX_POINTS).points_for(None),
            Ok(MAX_POINTS)
        );
        assert_eq!(
            CreditRule::Fixed(MAX_POINTS + 1).points_for(None),
            Err(TooManyPoints)
        );
    }

    #[test]
    fn balances_stop_at_two_to_the_fifty_three_minus_one() {
        assert_eq!(MAX_BALANCE, 9_007_199_254_740_991);
        // The largest balance a double holds exactly, and the next one it does not.
        assert_eq!(MAX_BALANCE as f64 as i64, MAX_BALANCE);
        assert_eq!((MAX_BALANCE + 2) as f64 as i64, MAX_BALANCE + 1);
        assert_eq!(balance_after(0, 5), Ok(5));
        assert_eq!(balance_after(MAX_BALANCE - 5, 5), Ok(MAX_BALANCE));
        assert_eq!(balance_after(MAX_BALANCE - 5, 6), Err(BalanceOverflow));
        assert_eq!(balance_after(i64::MAX, 1), Err(BalanceOverflow));
        // Nothing added: nothing to refuse, even for a balance already past the bound.
        assert_eq!(balance_after(MAX_BALANCE + 1, 0), Ok(MAX_BALANCE + 1));
        assert_eq!(balance_after(MAX_BALANCE + 1, 1), Err(BalanceOverflow));
    }
}
