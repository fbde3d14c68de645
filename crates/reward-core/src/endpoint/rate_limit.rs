//! A webhook's rate limit: at most so many attempts start per second, across every node.

use crate::names::Invalid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit(u32);

impl RateLimit {
    pub const MIN: u32 = 1;
    pub const MAX: u32 = 10_000;

    pub fn new(per_second: i64) -> Result<Self, Invalid> {
        u32::try_from(per_second)
            .ok()
            .filter(|n| (Self::MIN..=Self::MAX).contains(n))
            .map(Self)
            .ok_or_else(|| {
                Invalid(format!(
                    "rate_limit is deliveries per second, from {} to {}, or null for no limit.",
                    Self::MIN,
                    Self::MAX
                ))
            })
    }

    /// Wraps a limit read back from our own store, which only holds valid ones.
    pub fn from_trusted(per_second: u32) -> Self {
        Self(per_second)
    }

    pub fn per_second(self) -> u32 {
        self.0
    }

    /// The time between two attempts' starts, in microseconds (at least 100).
    pub fn spacing_micros(self) -> u64 {
        1_000_000 / u64::from(self.0.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_outside_one_to_ten_thousand_are_refused() {
        for bad in [0, -1, 10_001, i64::MAX] {
            assert!(RateLimit::new(bad).is_err(), "{bad}");
        }
        assert_eq!(
            RateLimit::new(20).map(|limit| limit.spacing_micros()),
            Ok(50_000)
        );
        assert_eq!(
            RateLimit::new(10_000).map(RateLimit::per_second),
            Ok(10_000)
        );
    }
}
