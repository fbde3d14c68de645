//! Scenarios every backend must pass, run by each backend's own tests (feature `testing`): one
//! body, so the stores cannot drift apart on what they promise.

mod refills;

pub use refills::a_refill_due_since_the_last_claim_is_announced;
