//! When the worker claims again after recording attempts: the decision is the worker's; the store
//! only says what a claim passed over ([`PassedOver`]).
//!
//! Recorded attempts free their webhooks' slots, so they call for a claim only when the last claim
//! passed over due deliveries of busy webhooks. A claim that saw them (SQLite walks them) is
//! believed; one that left busy webhooks out unseen (PostgreSQL) counts only while work announced
//! (a commit that left deliveries to claiming, here or on another node) may still wait: in the
//! steady state, where every delivery is handed off and nothing is announced, recording costs no
//! claim, and a claim on a large queue of leased deliveries is a scan the database pays for.
//! Attempts recorded while a claim runs may free slots that claim counted as taken, so a claim that
//! ends having passed webhooks over after such a recording is followed by another at once.
//!
//! An ordered delivery that ended (succeeded or failed) without passing its turn on to its user's
//! next delivery (there was none due, or it could not go at once) frees its slot, and its user's
//! next delivery, if any, is now one a claim may take: that always calls for a claim, at once or,
//! while one runs (it may have read the ended delivery as still pending), as soon as it ends.

use reward_store::records::PassedOver;

#[derive(Debug)]
pub(super) struct ReclaimPolicy {
    /// Work was announced, or a claim that took announced work passed busy webhooks over, and no
    /// claim has started since.
    announced: bool,
    /// The running claim started with announced work.
    claim_took_announced: bool,
    /// The last claim that ended passed over due deliveries of busy webhooks, and no recorded
    /// batch has called for a claim since.
    passed_over_busy: bool,
    /// Attempts were recorded since the running claim started.
    recorded_while_claiming: bool,
    /// Ordered deliveries ended since the running claim started.
    turns_ended_while_claiming: bool,
    /// The last claim that ended passed over due deliveries of busy webhooks: until one ends
    /// having passed nothing over, this worker's claims wait for slots that recorded attempts
    /// free, so finished attempts are not held long for company.
    slots_wanted: bool,
}

impl Default for ReclaimPolicy {
    fn default() -> Self {
        Self {
            // Work may be waiting from before this process started.
            announced: true,
            claim_took_announced: false,
            passed_over_busy: false,
            recorded_while_claiming: false,
            turns_ended_while_claiming: false,
            slots_wanted: false,
        }
    }
}

impl ReclaimPolicy {
    /// The store said work may be due.
    pub(super) fn work_announced(&mut self) {
        self.announced = true;
    }

    pub(super) fn claim_started(&mut self) {
        self.claim_took_announced = std::mem::take(&mut self.announced);
        self.passed_over_busy = false;
        self.recorded_while_claiming = false;
        self.turns_ended_while_claiming = false;
    }

    /// The claim ended; returns whether to claim again at once.
    pub(super) fn claim_ended(&mut self, passed_over: PassedOver) -> bool {
        self.passed_over_busy = match passed_over {
            PassedOver::Nothing => false,
            PassedOver::BusyWebhooks => true,
            PassedOver::BusyWebhooksUnseen => self.claim_took_announced,
        };
        self.slots_wanted = self.passed_over_busy;
        // Announced work the claim left behind still waits for the next one.
        if self.passed_over_busy && self.claim_took_announced {
            self.announced = true;
        }
        (self.passed_over_busy && self.recorded_while_claiming)
            || std::mem::take(&mut self.turns_ended_while_claiming)
    }

    /// Whether this worker's claims wait for the slots of busy webhooks (see `slots_wanted`).
    pub(super) fn slots_wanted(&self) -> bool {
        self.slots_wanted
    }

    /// The claim failed: whatever was announced still waits.
    pub(super) fn claim_failed(&mut self) {
        self.announced |= self.claim_took_announced;
        self.passed_over_busy = false;
    }

    /// A recorded batch ended ordered deliveries that freed their slots; returns whether to
    /// claim now (or else the running claim is followed by another once it ends).
    pub(super) fn turns_ended(&mut self, claim_running: bool) -> bool {
        if claim_running {
            self.turns_ended_while_claiming = true;
            return false;
        }
        true
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
    use reward_store::records::PassedOver::{BusyWebhooks, BusyWebhooksUnseen, Nothing};

    use super::ReclaimPolicy;

    /// A policy past its first claim, with nothing announced since.
    fn settled() -> ReclaimPolicy {
        let mut policy = ReclaimPolicy::default();
        policy.claim_started();
        assert!(!policy.claim_ended(Nothing));
        policy
    }

    #[test]
    fn recording_costs_no_claim_when_nothing_was_passed_over() {
        let mut policy = settled();
        policy.claim_started();
        assert!(!policy.claim_ended(Nothing));
        assert!(!policy.recorded(false));
        assert!(!policy.recorded(false));
    }

    #[test]
    fn the_first_recording_after_a_claim_passed_webhooks_over_claims_once() {
        let mut policy = settled();
        policy.claim_started();
        assert!(!policy.claim_ended(BusyWebhooks));
        assert!(policy.recorded(false));
        assert!(
            !policy.recorded(false),
            "one claim per claim that passed some over"
        );
    }

    #[test]
    fn a_recording_while_the_claim_ran_claims_again_once_it_ends() {
        let mut policy = settled();
        policy.claim_started();
        assert!(!policy.recorded(true));
        assert!(policy.claim_ended(BusyWebhooks));

        policy.claim_started();
        assert!(!policy.recorded(true));
        assert!(!policy.claim_ended(Nothing), "nothing was passed over");
        assert!(!policy.recorded(false));
    }

    #[test]
    fn slots_are_wanted_from_a_claim_that_passed_webhooks_over_to_one_that_did_not() {
        let mut policy = settled();
        assert!(!policy.slots_wanted());
        policy.claim_started();
        assert!(!policy.claim_ended(BusyWebhooks));
        assert!(policy.slots_wanted());
        assert!(policy.recorded(false));
        assert!(policy.slots_wanted(), "until a claim sees them free");
        policy.claim_started();
        assert!(policy.slots_wanted(), "while that claim runs");
        assert!(!policy.claim_ended(Nothing));
        assert!(!policy.slots_wanted());
        // Unseen busy webhooks count only when the claim took announced work.
        policy.claim_started();
        assert!(!policy.claim_ended(BusyWebhooksUnseen));
        assert!(!policy.slots_wanted());
        policy.work_announced();
        policy.claim_started();
        assert!(!policy.claim_ended(BusyWebhooksUnseen));
        assert!(policy.slots_wanted());
    }

    #[test]
    fn a_new_claim_forgets_what_the_last_one_passed_over() {
        let mut policy = settled();
        policy.claim_started();
        assert!(!policy.claim_ended(BusyWebhooks));
        policy.claim_started();
        assert!(!policy.claim_ended(Nothing));
        assert!(!policy.recorded(false));
    }

    #[test]
    fn unseen_busy_webhooks_cost_no_claim_in_the_steady_state() {
        let mut policy = settled();
        policy.claim_started();
        assert!(!policy.claim_ended(BusyWebhooksUnseen));
        assert!(
            !policy.recorded(false),
            "nothing was announced: every delivery of the busy webhooks was handed off"
        );
    }

    #[test]
    fn unseen_busy_webhooks_hold_announced_work_until_a_claim_finds_none() {
        let mut policy = settled();
        policy.work_announced();
        policy.claim_started();
        assert!(!policy.claim_ended(BusyWebhooksUnseen));
        assert!(policy.recorded(false), "announced work may wait for them");
        // The claim that recording called for still carries the announcement.
        policy.claim_started();
        assert!(!policy.claim_ended(BusyWebhooksUnseen));
        assert!(policy.recorded(false));
        // Once a claim passes nothing over, the announcement is spent.
        policy.claim_started();
        assert!(!policy.claim_ended(Nothing));
        policy.claim_started();
        assert!(!policy.claim_ended(BusyWebhooksUnseen));
        assert!(!policy.recorded(false));
    }

    #[test]
    fn an_ended_turn_claims_at_once_or_right_after_the_running_claim() {
        let mut policy = settled();
        assert!(policy.turns_ended(false));
        policy.claim_started();
        assert!(!policy.turns_ended(true));
        assert!(
            policy.claim_ended(Nothing),
            "the running claim may have read the ended delivery as pending"
        );
        policy.claim_started();
        assert!(!policy.claim_ended(Nothing), "once only");
    }

    #[test]
    fn a_failed_claim_keeps_what_was_announced() {
        let mut policy = settled();
        policy.work_announced();
        policy.claim_started();
        policy.claim_failed();
        policy.claim_started();
        assert!(!policy.claim_ended(BusyWebhooksUnseen));
        assert!(policy.recorded(false));
    }
}
