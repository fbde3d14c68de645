//! Which rate-limited webhooks' refills this node's claims have already looked at.
//!
//! A claim refills every limited webhook whose next free start is less than
//! `REFILL_AHEAD_MICROS` ahead of its clock reading: the claim's refill horizon. When the worker
//! then asks when to look again (`next_due_at`), a webhook whose next free start lies past that
//! horizon was not that claim's to refill, even when it has since come within the refill margin
//! (the clock moved on while the claim ran): it is due now. Counting from the asking moment's
//! clock instead would skip exactly that webhook, and its deliveries would wait for the idle poll,
//! a pause of half a second or more in its pacing. Below the horizon nothing is returned again,
//! so a webhook with nothing pending does not make the worker spin.

use std::sync::atomic::{AtomicI64, Ordering};

/// The refill horizon of this node's latest committed claim, in microseconds on the clock the
/// store compares next free starts with.
#[derive(Debug)]
pub struct RefillHorizon(AtomicI64);

impl RefillHorizon {
    pub fn new() -> Self {
        Self(AtomicI64::new(i64::MIN))
    }

    /// A claim with this refill horizon committed.
    pub fn covered(&self, horizon_micros: i64) {
        self.0.fetch_max(horizon_micros, Ordering::SeqCst);
    }

    /// The latest claim's horizon, `None` before the first.
    pub fn latest(&self) -> Option<i64> {
        match self.0.load(Ordering::SeqCst) {
            i64::MIN => None,
            micros => Some(micros),
        }
    }
}

impl Default for RefillHorizon {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_horizon_is_the_furthest_committed() {
        let horizon = RefillHorizon::new();
        assert_eq!(horizon.latest(), None);
        horizon.covered(2_000);
        horizon.covered(1_000);
        assert_eq!(horizon.latest(), Some(2_000));
    }
}
