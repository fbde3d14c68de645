//! A user's counters, kept on the user's row and moved together in the transaction that records
//! a change: the balance, `sequence` (how many times the balance changed: what each
//! `balance.credit_points_issued` carries, so a receiver can drop an update that arrived late) and
//! `event_position` (how many events about the user were recorded: their order, which a webhook
//! that orders per user follows).
//!
//! What a change adds is decided here once ([`UserCounters::added_by_trigger_event`],
//! [`UserCounters::added_by_credits`]); the database adds it to the row, so nodes never overwrite
//! each other, and a writer of several changes at once (PostgreSQL's batches) adds their sum and
//! walks back from the row's final values ([`UserCounters::before`]) to each change's own.

use reward_core::credit;

use crate::records::TriggerEvent;
use crate::{rules, StoreError};

/// A user's counters, or what one change adds to them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserCounters {
    pub balance: i64,
    pub sequence: i64,
    pub event_position: i64,
}

impl UserCounters {
    /// What recording a trigger event adds: its points; a change of the balance only when it
    /// issued some (`balance.credit_points_issued` is emitted only then); its events
    /// (`trigger_event.created`, then that balance change).
    pub fn added_by_trigger_event(recorded: &TriggerEvent) -> Self {
        let changes = i64::from(rules::issues_points(recorded));
        Self {
            balance: recorded.credit_points_issued,
            sequence: changes,
            event_position: 1 + changes,
        }
    }

    /// What issuing `points` by hand adds: always a change and its one event (the API refuses
    /// points that are not positive).
    pub fn added_by_credits(points: i64) -> Self {
        Self {
            balance: points,
            sequence: 1,
            event_position: 1,
        }
    }

    /// The counters after `added`, when the balance stays within [`credit::MAX_BALANCE`] (the
    /// counters themselves grow by at most a few per change and cannot reach `i64::MAX`).
    pub fn after(self, added: Self) -> Result<Self, credit::BalanceOverflow> {
        Ok(Self {
            balance: credit::balance_after(self.balance, added.balance)?,
            sequence: self.sequence + added.sequence,
            event_position: self.event_position + added.event_position,
        })
    }

    /// Two changes' additions summed (a batch's, per user). A sum past `i64::MAX` is an overflow
    /// of the balance, which the batch refuses as a whole.
    pub fn plus(self, added: Self) -> Result<Self, StoreError> {
        Ok(Self {
            balance: self
                .balance
                .checked_add(added.balance)
                .ok_or(StoreError::BalanceOverflow)?,
            sequence: self.sequence + added.sequence,
            event_position: self.event_position + added.event_position,
        })
    }

    /// The counters before `added` was added to reach these: walking back from a row's final
    /// values through the changes of a batch, last first.
    pub fn before(self, added: Self) -> Self {
        Self {
            balance: self.balance - added.balance,
            sequence: self.sequence - added.sequence,
            event_position: self.event_position - added.event_position,
        }
    }
}

#[cfg(test)]
mod tests {
    use reward_core::ids::TriggerEventId;
    use reward_core::names::{TriggerId, UserId};
    use reward_core::time::Timestamp;

    use super::*;

    fn trigger_event(points: i64) -> TriggerEvent {
        TriggerEvent {
            id: TriggerEventId::generate(),
            user: UserId::parse("user-1").expect("valid"),
            trigger: TriggerId::parse("signup").expect("valid"),
            value: None,
            credit_points_issued: points,
            created_at: Timestamp::from_millis(0),
        }
    }

    #[test]
    fn only_a_change_of_the_balance_moves_the_sequence() {
        let none = UserCounters::added_by_trigger_event(&trigger_event(0));
        assert_eq!(
            (none.balance, none.sequence, none.event_position),
            (0, 0, 1)
        );
        let some = UserCounters::added_by_trigger_event(&trigger_event(29));
        assert_eq!(
            (some.balance, some.sequence, some.event_position),
            (29, 1, 2)
        );
        let credits = UserCounters::added_by_credits(7);
        assert_eq!(
            (credits.balance, credits.sequence, credits.event_position),
            (7, 1, 1)
        );
    }

    #[test]
    fn walking_back_a_sum_gives_each_change_its_own_counters() {
        let changes = [
            UserCounters::added_by_trigger_event(&trigger_event(29)),
            UserCounters::added_by_trigger_event(&trigger_event(0)),
            UserCounters::added_by_credits(7),
        ];
        let start = UserCounters {
            balance: 100,
            sequence: 3,
            event_position: 5,
        };
        let one_by_one: Vec<UserCounters> = changes
            .iter()
            .scan(start, |counters, added| {
                *counters = counters.after(*added).expect("within bounds");
                Some(*counters)
            })
            .collect();
        let sum = changes
            .iter()
            .try_fold(UserCounters::default(), |sum, added| sum.plus(*added))
            .expect("within bounds");
        let mut walked = Vec::new();
        let mut counters = start.after(sum).expect("within bounds");
        for added in changes.iter().rev() {
            walked.push(counters);
            counters = counters.before(*added);
        }
        walked.reverse();
        assert_eq!(walked, one_by_one);
        assert_eq!(counters, start);
        assert_eq!(
            one_by_one.iter().map(|c| c.sequence).collect::<Vec<_>>(),
            [4, 4, 5]
        );
    }

    #[test]
    fn a_balance_past_the_bound_is_refused() {
        let full = UserCounters {
            balance: credit::MAX_BALANCE,
            ..UserCounters::default()
        };
        assert!(full.after(UserCounters::added_by_credits(1)).is_err());
        assert!(UserCounters::added_by_credits(i64::MAX)
            .plus(UserCounters::added_by_credits(1))
            .is_err());
    }
}
