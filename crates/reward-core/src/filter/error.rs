//! Why a filter was refused: a place in the filter and what is wrong there, shown to a person as
//! one sentence (the API's 422 message, with `field: "filter"`).

use thiserror::Error;

use super::{MAX_FILTER_BYTES, MAX_FILTER_DEPTH};

/// A refused filter. Displays as `place: problem`, e.g.
/// `data.points: $gte takes a number or a string`, or just the problem when it concerns the
/// whole filter.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{}{problem}", place_prefix(.place))]
pub struct FilterError {
    place: String,
    problem: Problem,
}

impl FilterError {
    pub(super) fn new(place: &str, problem: Problem) -> FilterError {
        FilterError {
            place: place.to_owned(),
            problem,
        }
    }

    /// Where in the filter the problem is: the path, with the logical operators leading to it
    /// (`$or[1].data.points`, `data.points.$not`); empty for the filter as a whole.
    pub fn place(&self) -> &str {
        &self.place
    }

    pub fn problem(&self) -> &Problem {
        &self.problem
    }
}

fn place_prefix(place: &str) -> String {
    if place.is_empty() {
        String::new()
    } else {
        format!("{place}: ")
    }
}

/// What is wrong at a filter's place.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum Problem {
    #[error("the filter is larger than {MAX_FILTER_BYTES} bytes as compact JSON")]
    TooLarge,
    #[error("the filter nests objects and arrays more than {MAX_FILTER_DEPTH} levels deep")]
    TooDeep,
    #[error("a filter must be a JSON object")]
    NotAnObject,
    #[error("a path cannot have an empty segment (two dots in a row, or a dot at either end)")]
    EmptyPathSegment,
    #[error(
        "unknown operator {0}; the operators are $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, \
         $exists, $startsWith, $and, $or and $not"
    )]
    UnknownOperator(String),
    #[error(
        "{0} tests a path's value, so it goes under a path: {{\"data.points\": {{\"{0}\": ...}}}}"
    )]
    OperatorWithoutPath(String),
    #[error(
        "an object cannot mix operators ($...) and plain keys; to match an object exactly, \
         give it without operators or under $eq"
    )]
    MixedKeys,
    #[error("{operator} takes {expected}")]
    WrongOperand {
        operator: &'static str,
        expected: &'static str,
    },
}
