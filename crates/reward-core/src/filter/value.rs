//! How a filter compares JSON values: numbers by value, exactly (an integer beyond 2^53 is not
//! rounded to the nearest f64 first), strings by bytes, never one type against another.

use std::cmp::Ordering;

use serde_json::{Number, Value};

/// A JSON number ready to compare: every integer serde_json reads fits an i128 exactly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Num {
    Integer(i128),
    Float(f64),
}

impl Num {
    pub(super) fn of(number: &Number) -> Num {
        if let Some(integer) = number.as_i64() {
            Num::Integer(i128::from(integer))
        } else if let Some(integer) = number.as_u64() {
            Num::Integer(i128::from(integer))
        } else {
            // JSON has no NaN or infinity, so this is a finite float.
            Num::Float(number.as_f64().unwrap_or(0.0))
        }
    }

    pub(super) fn compare(self, other: Num) -> Option<Ordering> {
        match (self, other) {
            (Num::Integer(a), Num::Integer(b)) => Some(a.cmp(&b)),
            (Num::Float(a), Num::Float(b)) => a.partial_cmp(&b),
            (Num::Integer(a), Num::Float(b)) => integer_against_float(a, b),
            (Num::Float(a), Num::Integer(b)) => integer_against_float(b, a).map(Ordering::reverse),
        }
    }
}

/// Compares an integer with a float without rounding either: the float's integral part is
/// exact as an i128 (JSON integers stay within ±2^64, far inside i128), and its fraction breaks
/// a tie.
fn integer_against_float(integer: i128, float: f64) -> Option<Ordering> {
    if float.is_nan() {
        return None;
    }
    // 2^100 is beyond every integer serde_json gives us and within i128.
    const BEYOND_ANY_INTEGER: f64 = 1.267_650_600_228_229_4e30;
    if float >= BEYOND_ANY_INTEGER {
        return Some(Ordering::Less);
    }
    if float <= -BEYOND_ANY_INTEGER {
        return Some(Ordering::Greater);
    }
    let integral = float.trunc();
    // Exact: `integral` has no fraction and lies well inside i128.
    let integral_as_integer = integral as i128;
    Some(match integer.cmp(&integral_as_integer) {
        Ordering::Equal => integral.partial_cmp(&float).unwrap_or(Ordering::Equal),
        unequal => unequal,
    })
}

/// What an ordering operator (`$gt`, `$gte`, `$lt`, `$lte`) compares against.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Bound {
    Number(Num),
    Text(Box<str>),
}

impl Bound {
    /// How `value` stands against this bound, or `None` when they are of different types.
    pub(super) fn order_of(&self, value: &Value) -> Option<Ordering> {
        match (value, self) {
            (Value::Number(number), Bound::Number(bound)) => Num::of(number).compare(*bound),
            (Value::String(text), Bound::Text(bound)) => Some(text.as_str().cmp(bound)),
            _ => None,
        }
    }
}

/// A value an event's field is tested for equality with (`$eq`, `$ne`, `$in`, `$nin`, a plain
/// literal), with scalars prepared so that matching converts nothing.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Literal {
    Null,
    Bool(bool),
    Number(Num),
    Text(Box<str>),
    /// An array or object: equal to a value with the same members, numbers compared by value.
    Composite(Value),
}

impl Literal {
    pub(super) fn of(value: &Value) -> Literal {
        match value {
            Value::Null => Literal::Null,
            Value::Bool(flag) => Literal::Bool(*flag),
            Value::Number(number) => Literal::Number(Num::of(number)),
            Value::String(text) => Literal::Text(text.as_str().into()),
            Value::Array(_) | Value::Object(_) => Literal::Composite(value.clone()),
        }
    }

    pub(super) fn equals(&self, value: &Value) -> bool {
        match (self, value) {
            (Literal::Null, Value::Null) => true,
            (Literal::Bool(a), Value::Bool(b)) => a == b,
            (Literal::Number(a), Value::Number(b)) => {
                a.compare(Num::of(b)) == Some(Ordering::Equal)
            }
            (Literal::Text(a), Value::String(b)) => **a == **b,
            (Literal::Composite(a), b) => json_equal(a, b),
            _ => false,
        }
    }
}

/// JSON equality, except that numbers are equal by value (`[100]` equals `[100.0]`); the order
/// of an object's keys does not matter.
pub(super) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            Num::of(x).compare(Num::of(y)) == Some(Ordering::Equal)
        }
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(xs), Value::Object(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .all(|(key, x)| ys.get(key).is_some_and(|y| json_equal(x, y)))
        }
        _ => a == b,
    }
}
