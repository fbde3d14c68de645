//! API keys this node has recently found valid, so most requests authenticate without a round
//! trip to the database.
//!
//! Measured on PostgreSQL (2026-12-04, `scripts/measure-throughput.sh`, 32 clients, medians of
//! 3, alternating builds): a lookup per request (coalesced, but rarely more than two at once on
//! three nodes) was four fifths of the database's transactions, and without it trigger events
//! acknowledged per second went from 3,750 to 4,390 on one node and from 2,970 to 3,750 on three.
//!
//! A revoked key must stop working at once on every node, also when `reward accounts rotate-key`
//! revoked it from another process. So:
//! - revoking a key notifies every node in the revoking transaction (`pg_notify` on
//!   [`CHANNEL`], delivered when it commits), and each node's listening connection (the one that
//!   carries new-work notifications, `signal`) forgets every cached key when one arrives;
//! - the cache is used only while that connection listens: it starts empty each time listening
//!   (re)starts, since notifications sent meanwhile were lost, and is off while it is down;
//! - a lookup that was under way when keys were forgotten does not put its answer in the cache
//!   (a generation counter), since it may have read the key before the revocation committed;
//! - and an entry is trusted for [`MAX_AGE`] at most, which bounds what a listening connection
//!   that died without noticing could leave stale.
//!
//! Only keys found valid are kept (an unknown key is looked up every time, so guessing keys
//! cannot fill the cache), at most [`CAPACITY`] of them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reward_core::ids::AccountId;

/// The channel revocations are announced on.
pub const CHANNEL: &str = "reward_keys";
/// How long a cached key is trusted without a lookup.
pub const MAX_AGE: Duration = Duration::from_secs(1);
/// Keys kept at most; the cache starts over when full.
pub const CAPACITY: usize = 10_000;

#[derive(Debug, Default)]
pub struct KeyCache {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Whether revocations reach this node now.
    listening: bool,
    /// Moves on each time every key is forgotten.
    generation: u64,
    entries: HashMap<String, (AccountId, Instant)>,
}

/// Where a lookup started from: its answer may be cached only if nothing was forgotten since.
#[derive(Debug, Clone, Copy)]
pub struct LookupStart(Option<u64>);

impl KeyCache {
    /// The account of a key found valid less than [`MAX_AGE`] ago, while revocations reach this
    /// node.
    pub fn get(&self, key_hash: &str) -> Option<AccountId> {
        let state = self.lock();
        if !state.listening {
            return None;
        }
        state
            .entries
            .get(key_hash)
            .filter(|(_, found_at)| found_at.elapsed() < MAX_AGE)
            .map(|(account, _)| account.clone())
    }

    /// Call before looking a key up in the database.
    pub fn lookup_starts(&self) -> LookupStart {
        let state = self.lock();
        LookupStart(state.listening.then_some(state.generation))
    }

    /// Keeps a key the database found valid, unless keys were forgotten since the lookup began.
    pub fn remember(&self, start: LookupStart, key_hash: &str, account: &AccountId) {
        let mut state = self.lock();
        if !state.listening || start.0 != Some(state.generation) {
            return;
        }
        if state.entries.len() >= CAPACITY {
            state.entries.clear();
        }
        state
            .entries
            .insert(key_hash.to_owned(), (account.clone(), Instant::now()));
    }

    /// A key was revoked somewhere: nothing cached is trusted any more.
    pub fn forget_all(&self) {
        let mut state = self.lock();
        state.generation += 1;
        state.entries.clear();
    }

    /// Revocations reach this node from now on (`true`), or no longer (`false`); either way what
    /// was cached is forgotten.
    pub fn set_listening(&self, listening: bool) {
        let mut state = self.lock();
        state.listening = listening;
        state.generation += 1;
        state.entries.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is consistent after every statement: a panic elsewhere cannot break it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> AccountId {
        AccountId::generate()
    }

    fn listening() -> KeyCache {
        let cache = KeyCache::default();
        cache.set_listening(true);
        cache
    }

    #[test]
    fn nothing_is_cached_while_revocations_cannot_arrive() {
        let cache = KeyCache::default();
        let start = cache.lookup_starts();
        cache.remember(start, "hash", &account());
        assert_eq!(cache.get("hash"), None);

        let cache = listening();
        let start = cache.lookup_starts();
        cache.remember(start, "hash", &account());
        cache.set_listening(false);
        assert_eq!(cache.get("hash"), None, "the connection dropped");
        cache.set_listening(true);
        assert_eq!(
            cache.get("hash"),
            None,
            "what was cached before is forgotten"
        );
    }

    #[test]
    fn a_key_found_valid_is_answered_from_the_cache_until_a_revocation() {
        let cache = listening();
        let owner = account();
        let start = cache.lookup_starts();
        cache.remember(start, "hash", &owner);
        assert_eq!(cache.get("hash"), Some(owner));
        assert_eq!(cache.get("other"), None);
        cache.forget_all();
        assert_eq!(cache.get("hash"), None);
    }

    #[test]
    fn a_lookup_under_way_during_a_revocation_is_not_cached() {
        let cache = listening();
        let start = cache.lookup_starts();
        // The revocation's notification arrives while the lookup reads the key.
        cache.forget_all();
        cache.remember(start, "hash", &account());
        assert_eq!(cache.get("hash"), None);
    }

    #[test]
    fn an_entry_is_trusted_for_a_second_at_most() {
        let cache = listening();
        let start = cache.lookup_starts();
        cache.remember(start, "hash", &account());
        {
            let mut state = cache.lock();
            let entry = state.entries.get_mut("hash").expect("cached");
            entry.1 = Instant::now()
                .checked_sub(MAX_AGE)
                .expect("a monotonic clock past one second");
        }
        assert_eq!(cache.get("hash"), None);
    }

    #[test]
    fn a_full_cache_starts_over() {
        let cache = listening();
        for n in 0..CAPACITY {
            cache.remember(cache.lookup_starts(), &format!("hash-{n}"), &account());
        }
        assert!(cache.get("hash-0").is_some());
        cache.remember(cache.lookup_starts(), "one-more", &account());
        assert!(cache.get("hash-0").is_none());
        assert!(cache.get("one-more").is_some());
    }
}
