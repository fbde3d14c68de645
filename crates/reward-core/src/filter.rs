//! Payload filters: which events a webhook receives beyond their type (issue 16). A filter is
//! JSON the customer writes, checked once by [`PayloadFilter::parse`] and then matched against
//! each event `{id, type, time, data}` by [`PayloadFilter::matches`], which allocates nothing.
//!
//! # The language
//!
//! - A **filter** is a JSON object; every key in it must hold (so `{}` lets every event through).
//!   A key is a dotted **path** into the event (`"type"`, `"data.trigger.id"`), or `$and` / `$or`
//!   (a non-empty array of filters: all / at least one must hold), or `$not` (a filter that must
//!   not hold).
//! - A path's segments step into objects by key; a segment written as a canonical decimal number
//!   (`0`, `12`, not `01`) steps into an array by position (and into an object by that key).
//!   Keys containing a dot cannot be reached, and empty segments (`a..b`, `.a`) are refused. A
//!   filter-level key starting with `$` is an operator, never a path, so a top-level field named
//!   `$x` cannot be reached either (events have none).
//! - A path's **value** is either an **operator object** (every key starts with `$`; all must
//!   hold) or a **literal** the value must equal (any JSON without `$` keys in its outer object,
//!   including `{}`). An object mixing `$` keys and plain keys is refused; to match an object
//!   that has `$` keys exactly, put it under `$eq`. Only the outer object of a literal is looked
//!   at: inside, `$` keys are plain data.
//! - Operators: `$eq`, `$ne` (any JSON); `$gt`, `$gte`, `$lt`, `$lte` (a number or a string);
//!   `$in`, `$nin` (an array, possibly empty, of values compared as `$eq` would); `$exists`
//!   (`true` / `false`); `$startsWith` (a string); `$and`, `$or` (non-empty arrays, each item what
//!   a path's value can be: operators or a literal) and `$not` (likewise). Any other `$` key is
//!   refused.
//!
//! # Matching
//!
//! - A **missing** path (some step finds no key, no position, or a scalar) passes only `$ne`,
//!   `$nin`, `$exists: false`, and a `$not` of something that fails. `null` is a value, not a
//!   missing path: `{"data.x": null}` needs `x` present and null (unlike MongoDB).
//! - **Numbers** compare by value and exactly: `100` equals `100.0`, and an integer beyond 2^53
//!   is not rounded to a float first. **Strings** compare by their UTF-8 bytes. Values of
//!   different types are never equal and never ordered: `{"$gt": 5}` fails on `"6"`.
//! - Arrays and objects are equal when their members are (numbers by value, key order
//!   ignored). There is no implicit "any element" match as in MongoDB: `{"data.tags": "a"}` fails
//!   on `["a"]`; name a position (`data.tags.0`) or the whole array.
//! - `$startsWith` passes only strings.
//!
//! # Limits
//!
//! At most [`MAX_FILTER_BYTES`] bytes of compact JSON (UTF-8, keys in the order given) and
//! [`MAX_FILTER_DEPTH`] levels of objects and arrays (the filter object itself is level 1),
//! checked before anything else.

mod error;
mod parse;
mod tree;
mod value;

#[cfg(test)]
mod tests;

use serde_json::Value;

pub use error::{FilterError, Problem};

/// The largest filter, as its compact serialization.
pub const MAX_FILTER_BYTES: usize = 4096;
/// The deepest nesting of JSON objects and arrays in a filter.
pub const MAX_FILTER_DEPTH: usize = 8;

/// A checked filter: what the customer sent, and the same prepared for matching.
#[derive(Debug, Clone)]
pub struct PayloadFilter {
    /// Kept as given, so the API returns and the store keeps exactly what was sent.
    given: Value,
    /// The same, with paths split and literals converted once.
    root: tree::Clauses,
}

impl PayloadFilter {
    /// Checks a filter as a customer sent it (a JSON object).
    pub fn parse(value: &Value) -> Result<PayloadFilter, FilterError> {
        if let Some(problem) = parse::exceeds_limits(value) {
            return Err(FilterError::new("", problem));
        }
        Ok(PayloadFilter {
            given: value.clone(),
            root: parse::filter(value, "")?,
        })
    }

    /// Whether an event `{id, type, time, data}` (the parsed payload) passes.
    pub fn matches(&self, event: &Value) -> bool {
        self.root.matches(event)
    }

    /// The filter as given (what the API returns and the store keeps, as JSON text).
    pub fn as_json(&self) -> &Value {
        &self.given
    }
}

/// Two filters are the same when they were given the same; the prepared form follows from it.
impl PartialEq for PayloadFilter {
    fn eq(&self, other: &PayloadFilter) -> bool {
        self.given == other.given
    }
}
