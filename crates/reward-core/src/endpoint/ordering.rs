//! A webhook's delivery order: `none` (each delivery on its own, as fast as the endpoint takes
//! them) or `per_user` (the deliveries of one user's events are attempted one at a time, in the
//! order the events were recorded; different users never wait for each other).

use crate::names::Invalid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ordering {
    #[default]
    None,
    PerUser,
}

impl Ordering {
    pub const ALL: [Ordering; 2] = [Ordering::None, Ordering::PerUser];

    pub fn as_str(self) -> &'static str {
        match self {
            Ordering::None => "none",
            Ordering::PerUser => "per_user",
        }
    }

    pub fn parse(text: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|ordering| ordering.as_str() == text)
            .ok_or_else(|| Invalid("ordering is \"none\" or \"per_user\".".into()))
    }

    /// Reads a value back from our own store, which only holds valid ones (a CHECK constraint).
    pub fn from_trusted(text: &str) -> Self {
        Self::parse(text).unwrap_or_default()
    }

    pub fn is_per_user(self) -> bool {
        self == Ordering::PerUser
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_others_are_refused() {
        for ordering in Ordering::ALL {
            assert_eq!(Ordering::parse(ordering.as_str()), Ok(ordering));
        }
        assert!(Ordering::parse("per_webhook").is_err());
        assert!(Ordering::parse("").is_err());
        assert_eq!(Ordering::default(), Ordering::None);
    }
}
