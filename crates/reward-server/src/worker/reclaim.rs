//! When the worker claims again after recording attempts: the decision is the worker's, the
//! store only says whether a claim passed over due deliveries of busy webhooks.

/// Whether recorded attempts call for another claim: only when the last claim passed over due
/// deliveries of webhooks at their limit, whose slots the recorded attempts freed. Attempts
/// recorded while a claim runs may free slots that claim counted as taken, so a claim that ends
/// having passed webhooks over after such a recording is followed by another at once.
#[derive(Debug, Default)]
pub(super) struct ReclaimPolicy {
    /// The last claim that ended passed over due deliveries of busy webhooks, and no recorded
    /// batch has called for a claim since.
    passed_over_busy: bool,
    /// Attempts were recorded since the running claim started.
    recorded_while_claiming: bool,
}

impl ReclaimPolicy {
    pub(super) fn claim_started(&mut self) {
        self.passed_over_busy = false;
        self.recorded_while_claiming = false;
    }

    /// The claim ended; returns whether to claim again at once.
    pub(super) fn claim_ended(&mut self, passed_over_busy: bool) -> bool {
        self.passed_over_busy = passed_over_busy;
        passed_over_busy && self.recorded_while_claiming
    }

    /// A batch of attempts was recorded; returns whether to claim now.
    pub(super) fn recorded(&mut self, claim_running: bool) -> bool {
        if claim_running {
            self.recorded_while_claiming = true;
            return false;
        }
        std::mem::take(&mut self.passed_over_busy)
    }
}

#[cfg(test)]
mod tests {
    use super::ReclaimPolicy;

    #[test]
    fn recording_costs_no_claim_when_nothing_was_passed_over() {
        let mut policy = ReclaimPolicy::default();
        policy.claim_started();
        assert!(!policy.claim_ended(false));
        assert!(!policy.recorded(false));
        assert!(!policy.recorded(false));
    }

    #[test]
    fn the_first_recording_after_a_claim_passed_webhooks_over_claims_once() {
        let mut policy = ReclaimPolicy::default();
        policy.claim_started();
        assert!(!policy.claim_ended(true));
        assert!(policy.recorded(false));
        assert!(
            !policy.recorded(false),
            "one claim per claim that passed some over"
        );
    }

    #[test]
    fn a_recording_while_the_claim_ran_claims_again_once_it_ends() {
        let mut policy = ReclaimPolicy::default();
        policy.claim_started();
        assert!(!policy.recorded(true));
        assert!(policy.claim_ended(true));

        policy.claim_started();
        assert!(!policy.recorded(true));
        assert!(!policy.claim_ended(false), "nothing was passed over");
        assert!(!policy.recorded(false));
    }

    #[test]
    fn a_new_claim_forgets_what_the_last_one_passed_over() {
        let mut policy = ReclaimPolicy::default();
        policy.claim_started();
        assert!(!policy.claim_ended(true));
        policy.claim_started();
        assert!(!policy.claim_ended(false));
        assert!(!policy.recorded(false));
    }
}
