//! Reading a filter as a customer sent it into the tree `tree.rs` matches, refusing anything
//! the module doc does not define. The limits are checked first (`exceeds_limits`), so the rest
//! only ever reads a small, shallow value.

use std::cmp::Ordering;
use std::io;

use serde_json::{Map, Value};

use super::error::{FilterError, Problem};
use super::tree::{Check, Clause, Clauses, FieldTest, Path, Segment};
use super::value::{Bound, Literal, Num};
use super::{MAX_FILTER_BYTES, MAX_FILTER_DEPTH};

/// The operators a path's value can be tested with.
const FIELD_OPERATORS: [&str; 13] = [
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$exists",
    "$startsWith",
    "$and",
    "$or",
    "$not",
];

/// The depth is checked before the size: serializing walks as deep as the value goes, while
/// the depth check stops one level past the limit.
pub(super) fn exceeds_limits(value: &Value) -> Option<Problem> {
    if nests_deeper_than(value, MAX_FILTER_DEPTH) {
        Some(Problem::TooDeep)
    } else if compact_size_exceeds(value, MAX_FILTER_BYTES) {
        Some(Problem::TooLarge)
    } else {
        None
    }
}

/// Whether objects and arrays nest more than `levels` deep (a scalar has no level).
fn nests_deeper_than(value: &Value, levels: usize) -> bool {
    match value {
        Value::Array(items) => {
            levels == 0 || items.iter().any(|item| nests_deeper_than(item, levels - 1))
        }
        Value::Object(members) => {
            levels == 0
                || members
                    .values()
                    .any(|member| nests_deeper_than(member, levels - 1))
        }
        _ => false,
    }
}

/// Whether the compact serialization passes `limit` bytes, found without building it: the
/// writer counts, and gives up as soon as the limit is passed.
fn compact_size_exceeds(value: &Value, limit: usize) -> bool {
    struct Counter {
        written: usize,
        limit: usize,
    }
    impl io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.written += bytes.len();
            if self.written > self.limit {
                Err(io::Error::other("over the limit"))
            } else {
                Ok(bytes.len())
            }
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    // Writing a `Value` fails only when the writer does.
    serde_json::to_writer(&mut Counter { written: 0, limit }, value).is_err()
}

/// A filter object at `place` ("" for the whole filter).
pub(super) fn filter(value: &Value, place: &str) -> Result<Clauses, FilterError> {
    let Value::Object(members) = value else {
        return Err(FilterError::new(place, Problem::NotAnObject));
    };
    members
        .iter()
        .map(|(key, value)| clause(key, value, place))
        .collect::<Result<_, _>>()
        .map(Clauses)
}

fn clause(key: &str, value: &Value, place: &str) -> Result<Clause, FilterError> {
    let here = within(place, key);
    match key {
        "$and" => filters(value, "$and", place, &here).map(Clause::All),
        "$or" => filters(value, "$or", place, &here).map(Clause::Any),
        "$not" => match value {
            Value::Object(_) => filter(value, &here).map(|negated| Clause::Not(Box::new(negated))),
            _ => Err(wrong_operand(place, "$not", "a filter (a JSON object)")),
        },
        _ if key.starts_with('$') => Err(FilterError::new(
            place,
            if FIELD_OPERATORS.contains(&key) {
                Problem::OperatorWithoutPath(key.to_owned())
            } else {
                Problem::UnknownOperator(key.to_owned())
            },
        )),
        _ => Ok(Clause::Field {
            path: path(key, &here)?,
            test: field_test(value, &here)?,
        }),
    }
}

/// The operand of a filter-level `$and` or `$or`.
fn filters(
    value: &Value,
    operator: &'static str,
    place: &str,
    here: &str,
) -> Result<Vec<Clauses>, FilterError> {
    match value {
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(position, item)| filter(item, &format!("{here}[{position}]")))
            .collect(),
        _ => Err(wrong_operand(
            place,
            operator,
            "a non-empty array of filters",
        )),
    }
}

fn path(key: &str, place: &str) -> Result<Path, FilterError> {
    key.split('.')
        .map(|segment| {
            if segment.is_empty() {
                return Err(FilterError::new(place, Problem::EmptyPathSegment));
            }
            Ok(Segment {
                key: segment.into(),
                index: array_index(segment),
            })
        })
        .collect::<Result<_, _>>()
        .map(Path)
}

/// `0`, `1`, `12` are positions; `01` or `+1` are only keys, so each position has one spelling.
fn array_index(segment: &str) -> Option<usize> {
    let canonical = segment.bytes().all(|byte| byte.is_ascii_digit())
        && (segment == "0" || !segment.starts_with('0'));
    canonical.then(|| segment.parse().ok()).flatten()
}

/// What a path's value must pass: an object of operators, or a literal it must equal.
fn field_test(value: &Value, place: &str) -> Result<FieldTest, FilterError> {
    match value {
        Value::Object(members) if members.keys().any(|key| key.starts_with('$')) => {
            operators(members, place)
        }
        literal => Ok(FieldTest(vec![Check::Equal(Literal::of(literal))])),
    }
}

fn operators(members: &Map<String, Value>, place: &str) -> Result<FieldTest, FilterError> {
    if !members.keys().all(|key| key.starts_with('$')) {
        return Err(FilterError::new(place, Problem::MixedKeys));
    }
    members
        .iter()
        .map(|(operator, operand)| check(operator, operand, place))
        .collect::<Result<_, _>>()
        .map(FieldTest)
}

fn check(operator: &str, operand: &Value, place: &str) -> Result<Check, FilterError> {
    use Ordering::{Equal, Greater, Less};
    Ok(match operator {
        "$eq" => Check::Equal(Literal::of(operand)),
        "$ne" => Check::NotEqual(Literal::of(operand)),
        "$gt" => order("$gt", operand, &[Greater], place)?,
        "$gte" => order("$gte", operand, &[Greater, Equal], place)?,
        "$lt" => order("$lt", operand, &[Less], place)?,
        "$lte" => order("$lte", operand, &[Less, Equal], place)?,
        "$in" => Check::In(literals("$in", operand, place)?),
        "$nin" => Check::NotIn(literals("$nin", operand, place)?),
        "$exists" => match operand {
            Value::Bool(expected) => Check::Exists(*expected),
            _ => return Err(wrong_operand(place, "$exists", "true or false")),
        },
        "$startsWith" => match operand {
            Value::String(prefix) => Check::StartsWith(prefix.as_str().into()),
            _ => return Err(wrong_operand(place, "$startsWith", "a string")),
        },
        "$and" => Check::All(field_tests("$and", operand, place)?),
        "$or" => Check::Any(field_tests("$or", operand, place)?),
        "$not" => Check::Not(Box::new(field_test(operand, &within(place, "$not"))?)),
        unknown => {
            return Err(FilterError::new(
                place,
                Problem::UnknownOperator(unknown.to_owned()),
            ))
        }
    })
}

fn order(
    operator: &'static str,
    operand: &Value,
    accepted: &'static [Ordering],
    place: &str,
) -> Result<Check, FilterError> {
    let bound = match operand {
        Value::Number(number) => Bound::Number(Num::of(number)),
        Value::String(text) => Bound::Text(text.as_str().into()),
        _ => return Err(wrong_operand(place, operator, "a number or a string")),
    };
    Ok(Check::Order { bound, accepted })
}

fn literals(
    operator: &'static str,
    operand: &Value,
    place: &str,
) -> Result<Vec<Literal>, FilterError> {
    match operand {
        Value::Array(items) => Ok(items.iter().map(Literal::of).collect()),
        _ => Err(wrong_operand(place, operator, "an array")),
    }
}

/// The operand of a path-level `$and` or `$or`: each item is what a path's value can be.
fn field_tests(
    operator: &'static str,
    operand: &Value,
    place: &str,
) -> Result<Vec<FieldTest>, FilterError> {
    match operand {
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(position, item)| field_test(item, &format!("{place}.{operator}[{position}]")))
            .collect(),
        _ => Err(wrong_operand(
            place,
            operator,
            "a non-empty array of conditions",
        )),
    }
}

fn wrong_operand(place: &str, operator: &'static str, expected: &'static str) -> FilterError {
    FilterError::new(place, Problem::WrongOperand { operator, expected })
}

/// The place of `key` inside `place`; an empty key shows as `""` so the message still points
/// somewhere.
fn within(place: &str, key: &str) -> String {
    let key = if key.is_empty() { "\"\"" } else { key };
    if place.is_empty() {
        key.to_owned()
    } else {
        format!("{place}.{key}")
    }
}
