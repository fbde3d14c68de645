//! A parsed filter, and how it is matched against an event. Everything here was prepared at
//! parse time (paths split, literals converted), so matching walks it without allocating.

use std::cmp::Ordering;

use serde_json::Value;

use super::value::{Bound, Literal};

/// A filter object: every clause must hold (no clauses: every event passes).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Clauses(pub(super) Vec<Clause>);

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Clause {
    /// `"data.points": ...`: the value at a path passes a test.
    Field {
        path: Path,
        test: FieldTest,
    },
    All(Vec<Clauses>),
    Any(Vec<Clauses>),
    Not(Box<Clauses>),
}

/// What a path's value must pass: every check holds.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FieldTest(pub(super) Vec<Check>);

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Check {
    Equal(Literal),
    NotEqual(Literal),
    /// `$gt` / `$gte` / `$lt` / `$lte`: the value's order against the bound is one of `accepted`.
    Order {
        bound: Bound,
        accepted: &'static [Ordering],
    },
    In(Vec<Literal>),
    NotIn(Vec<Literal>),
    Exists(bool),
    StartsWith(Box<str>),
    All(Vec<FieldTest>),
    Any(Vec<FieldTest>),
    Not(Box<FieldTest>),
}

/// A dotted path, split once.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Path(pub(super) Box<[Segment]>);

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Segment {
    /// The key looked up in an object.
    pub(super) key: Box<str>,
    /// The position taken in an array, when the segment is a canonical decimal number.
    pub(super) index: Option<usize>,
}

impl Path {
    /// The value at this path, or `None` when some step has nothing there.
    fn resolve<'a>(&self, event: &'a Value) -> Option<&'a Value> {
        self.0.iter().try_fold(event, |value, segment| match value {
            Value::Object(members) => members.get(&*segment.key),
            Value::Array(items) => segment.index.and_then(|index| items.get(index)),
            _ => None,
        })
    }
}

impl Clauses {
    pub(super) fn matches(&self, event: &Value) -> bool {
        self.0.iter().all(|clause| clause.matches(event))
    }
}

impl Clause {
    fn matches(&self, event: &Value) -> bool {
        match self {
            Clause::Field { path, test } => test.passes(path.resolve(event)),
            Clause::All(filters) => filters.iter().all(|filter| filter.matches(event)),
            Clause::Any(filters) => filters.iter().any(|filter| filter.matches(event)),
            Clause::Not(filter) => !filter.matches(event),
        }
    }
}

impl FieldTest {
    /// Whether the value found at a path (`None`: the path is missing) passes.
    fn passes(&self, value: Option<&Value>) -> bool {
        self.0.iter().all(|check| check.passes(value))
    }
}

impl Check {
    /// Only the negative checks can hold where nothing is: a missing path equals nothing, is in
    /// no list, and has no order or prefix.
    fn passes(&self, value: Option<&Value>) -> bool {
        match self {
            Check::Equal(literal) => value.is_some_and(|value| literal.equals(value)),
            Check::NotEqual(literal) => value.is_none_or(|value| !literal.equals(value)),
            Check::Order { bound, accepted } => value
                .and_then(|value| bound.order_of(value))
                .is_some_and(|order| accepted.contains(&order)),
            Check::In(literals) => value.is_some_and(|value| is_in(literals, value)),
            Check::NotIn(literals) => value.is_none_or(|value| !is_in(literals, value)),
            Check::Exists(expected) => value.is_some() == *expected,
            Check::StartsWith(prefix) => value
                .and_then(Value::as_str)
                .is_some_and(|text| text.starts_with(&**prefix)),
            Check::All(tests) => tests.iter().all(|test| test.passes(value)),
            Check::Any(tests) => tests.iter().any(|test| test.passes(value)),
            Check::Not(test) => !test.passes(value),
        }
    }
}

fn is_in(literals: &[Literal], value: &Value) -> bool {
    literals.iter().any(|literal| literal.equals(value))
}
