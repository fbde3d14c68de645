//! A webhook's rate limit: at most so many attempts start per second, across every node.
//!
//! Stores keep, per limited webhook, its next free start (microseconds since the epoch). A claim
//! hands that webhook's due deliveries start slots one [`RateLimit::spacing_micros`] apart from
//! `max(next free start, now)`, only slots before `now + SLOT_HORIZON_MICROS`, and writes the
//! next free start past the last slot it granted in the same transaction ([`SlotGrant`]). Slots
//! are never granted in the past of the stored next free start, so an idle webhook earns no burst.

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

/// How far ahead of now one claim grants start slots: short, so what waits stays pending in the
/// database rather than in a worker's memory, and far below any lease (the wait is leased too).
pub const SLOT_HORIZON_MICROS: i64 = 1_000_000;

/// A limited webhook is claimed again once its next free start is less than this ahead of now:
/// about two claims a second refill its slots, whatever its limit.
pub const REFILL_AHEAD_MICROS: i64 = SLOT_HORIZON_MICROS / 2;

/// How long after its slot an attempt may still start, at least: timers and schedulers are not
/// exact to the microsecond, and a high limit's slots are closer than that.
pub const MIN_START_WINDOW_MICROS: i64 = 20_000;

/// The start slots one claim grants one rate-limited webhook, taken one per delivery in due order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotGrant {
    /// The next slot to hand out.
    next: i64,
    /// Slots at or after this are beyond the horizon.
    end: i64,
    spacing: i64,
    granted: u32,
}

impl SlotGrant {
    /// Slots from `max(next_free, now)` up to (not including) `now + SLOT_HORIZON_MICROS`.
    /// `next_free` is the webhook's stored next free start, `None` when it never had one.
    pub fn new(limit: RateLimit, next_free: Option<i64>, now: i64) -> Self {
        Self {
            next: next_free.map_or(now, |next| next.max(now)),
            end: now.saturating_add(SLOT_HORIZON_MICROS),
            spacing: i64::try_from(limit.spacing_micros()).unwrap_or(i64::MAX),
            granted: 0,
        }
    }

    /// The next start slot, or `None` once the horizon is reached.
    pub fn take(&mut self) -> Option<i64> {
        if self.next >= self.end {
            return None;
        }
        let slot = self.next;
        self.next = self.next.saturating_add(self.spacing);
        self.granted += 1;
        Some(slot)
    }

    /// The next free start to store, when any slot was granted (else the stored one stands).
    pub fn next_free(&self) -> Option<i64> {
        (self.granted > 0).then_some(self.next)
    }

    /// How long after its slot an attempt may still start: half a spacing (so the starts of
    /// slots missed by a stalled process are not bunched with the next ones, and two starts are
    /// at least half a spacing apart, a margin for what delays a request on its way), at least
    /// [`MIN_START_WINDOW_MICROS`].
    pub fn window_micros(&self) -> i64 {
        (self.spacing / 2).max(MIN_START_WINDOW_MICROS)
    }

    /// Whether no slot is left before the horizon.
    pub fn exhausted(&self) -> bool {
        self.next >= self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(per_second: i64) -> RateLimit {
        RateLimit::new(per_second).expect("a valid limit")
    }

    fn all_slots(grant: &mut SlotGrant) -> Vec<i64> {
        std::iter::from_fn(|| grant.take()).collect()
    }

    #[test]
    fn a_fresh_webhook_gets_one_horizon_of_slots_from_now() {
        let mut grant = SlotGrant::new(limit(20), None, 1_000);
        let slots = all_slots(&mut grant);
        assert_eq!(slots.len(), 20);
        assert_eq!(slots[0], 1_000);
        assert!(slots.windows(2).all(|pair| pair[1] - pair[0] == 50_000));
        assert_eq!(grant.next_free(), Some(1_000 + 20 * 50_000));
        assert!(grant.exhausted());
        assert_eq!(grant.window_micros(), 25_000);
    }

    #[test]
    fn slots_continue_from_the_stored_next_free_start() {
        let now = 10_000_000;
        let mut grant = SlotGrant::new(limit(20), Some(now + 700_000), now);
        // 700 ms of the horizon are taken: 300 ms left, six slots of 50 ms.
        assert_eq!(
            all_slots(&mut grant),
            vec![
                now + 700_000,
                now + 750_000,
                now + 800_000,
                now + 850_000,
                now + 900_000,
                now + 950_000
            ]
        );
        assert_eq!(grant.next_free(), Some(now + 1_000_000));
    }

    #[test]
    fn a_stale_next_free_start_earns_no_burst() {
        let now = 10_000_000;
        let mut grant = SlotGrant::new(limit(2), Some(now - 5_000_000), now);
        assert_eq!(all_slots(&mut grant), vec![now, now + 500_000]);
    }

    #[test]
    fn nothing_is_granted_beyond_the_horizon() {
        let now = 10_000_000;
        let mut grant = SlotGrant::new(limit(20), Some(now + SLOT_HORIZON_MICROS), now);
        assert!(grant.exhausted());
        assert_eq!(grant.take(), None);
        assert_eq!(grant.next_free(), None, "the stored next free start stands");
    }

    #[test]
    fn taking_fewer_slots_stores_only_those() {
        let mut grant = SlotGrant::new(limit(10_000), None, 0);
        assert_eq!(grant.take(), Some(0));
        assert_eq!(grant.take(), Some(100));
        assert_eq!(grant.next_free(), Some(200));
        assert!(!grant.exhausted());
        assert_eq!(grant.window_micros(), MIN_START_WINDOW_MICROS);
    }

    #[test]
    fn consecutive_claims_never_start_faster_than_the_limit() {
        // Claims at arbitrary moments, each taking what it can: no one-second window of starts
        // holds more than the limit.
        let limit = limit(20);
        let mut stored = None;
        let mut starts = Vec::new();
        for now in [0, 10_000, 400_000, 400_001, 900_000, 2_500_000, 2_600_000] {
            let mut grant = SlotGrant::new(limit, stored, now);
            starts.extend(std::iter::from_fn(|| grant.take()));
            stored = grant.next_free().or(stored);
        }
        for (index, first) in starts.iter().enumerate() {
            let in_window = starts[index..]
                .iter()
                .take_while(|start| **start < first + 1_000_000)
                .count();
            assert!(in_window <= 20, "{in_window} starts within 1 s of {first}");
        }
        assert!(starts.windows(2).all(|pair| pair[1] - pair[0] >= 50_000));
    }

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
