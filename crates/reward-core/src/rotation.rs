//! Secret rotation: which secrets sign a webhook's deliveries, and what a rotation keeps.
//!
//! Every secret rotated out keeps signing for its own 24 hours ([`ROTATION_OVERLAP_MS`]), so a
//! receiver that has not switched yet keeps verifying however often the secret is rotated; at
//! most [`MAX_PREVIOUS_SECRETS`] at a time, so a loop of rotations cannot grow a signature header
//! (and the work of signing) without bound: past it the oldest stops signing first.
//!
//! [`ROTATION_OVERLAP_MS`]: crate::signing::ROTATION_OVERLAP_MS

use std::cmp::Reverse;

use crate::signing::WebhookSecret;
use crate::time::Timestamp;

/// Secrets rotated out that sign at the same time, at most.
pub const MAX_PREVIOUS_SECRETS: usize = 5;

/// A secret rotated out, and when it stops signing. `S` is the secret opened, or as stored (a
/// rotation keeps the stored forms without opening them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retired<S> {
    pub secret: S,
    pub expires_at: Timestamp,
}

/// The secrets rotated out that still sign at `now`: those whose time has not run out, newest
/// first, at most [`MAX_PREVIOUS_SECRETS`].
pub fn still_signing<S>(previous: &[Retired<S>], now: Timestamp) -> Vec<&Retired<S>> {
    let mut signing: Vec<&Retired<S>> = previous
        .iter()
        .filter(|retired| now < retired.expires_at)
        .collect();
    signing.sort_by_key(|retired| Reverse(retired.expires_at));
    signing.truncate(MAX_PREVIOUS_SECRETS);
    signing
}

/// The secrets rotated out after a rotation at `now` that retires `rotated_out`: it, then those
/// of `previous` still signing, newest first; at most [`MAX_PREVIOUS_SECRETS`] (the oldest go).
pub fn after_rotation<S: Clone>(
    rotated_out: Retired<S>,
    previous: &[Retired<S>],
    now: Timestamp,
) -> Vec<Retired<S>> {
    let mut kept = vec![rotated_out];
    kept.extend(still_signing(previous, now).into_iter().cloned());
    kept.sort_by_key(|retired| Reverse(retired.expires_at));
    kept.truncate(MAX_PREVIOUS_SECRETS);
    kept
}

/// The secrets that sign a webhook's deliveries: the current one, and those rotated out, newest
/// first.
#[derive(Debug, Clone)]
pub struct WebhookSecrets {
    pub current: WebhookSecret,
    pub previous: Vec<Retired<WebhookSecret>>,
}

impl WebhookSecrets {
    /// The secrets that sign a message sent at `now`: the current one first, then each one
    /// rotated out that still signs.
    pub fn signing_at(&self, now: Timestamp) -> Vec<&WebhookSecret> {
        let mut secrets = vec![&self.current];
        secrets.extend(
            still_signing(&self.previous, now)
                .into_iter()
                .map(|retired| &retired.secret),
        );
        secrets
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::ROTATION_OVERLAP_MS;

    const HOUR: i64 = 3600 * 1000;

    fn at(hours: i64) -> Timestamp {
        Timestamp::from_millis(1_700_000_000_000 + hours * HOUR)
    }

    /// Rotations at the given hours, as the API does them: each secret rotated out signs for
    /// 24 hours from its rotation. Returns the secrets and the ones made, oldest first.
    fn rotated_at(hours: &[i64]) -> (WebhookSecrets, Vec<WebhookSecret>) {
        let first = WebhookSecret::generate();
        let mut made = vec![first.clone()];
        let mut secrets = WebhookSecrets {
            current: first,
            previous: Vec::new(),
        };
        for &hour in hours {
            let next = WebhookSecret::generate();
            let retired = Retired {
                secret: secrets.current.clone(),
                expires_at: at(hour).plus_millis(ROTATION_OVERLAP_MS),
            };
            secrets = WebhookSecrets {
                previous: after_rotation(retired, &secrets.previous, at(hour)),
                current: next.clone(),
            };
            made.push(next);
        }
        (secrets, made)
    }

    #[test]
    fn each_secret_rotated_out_signs_for_its_own_24_hours() {
        // Rotated at hours 0, 1 and 2: the first secret signs until hour 24, the second until
        // 25, the third until 26.
        let (secrets, made) = rotated_at(&[0, 1, 2]);
        let signing = |hours| secrets.signing_at(at(hours));
        assert_eq!(
            signing(3),
            vec![&made[3], &made[2], &made[1], &made[0]],
            "the current one first, then newest first"
        );
        assert_eq!(signing(23), vec![&made[3], &made[2], &made[1], &made[0]]);
        assert_eq!(signing(24), vec![&made[3], &made[2], &made[1]]);
        assert_eq!(signing(25), vec![&made[3], &made[2]]);
        assert_eq!(signing(26), vec![&made[3]]);
        // One millisecond before its end a secret still signs; at its end it stops.
        let end = at(24);
        assert_eq!(
            secrets
                .signing_at(Timestamp::from_millis(end.as_millis() - 1))
                .len(),
            4
        );
        assert_eq!(secrets.signing_at(end).len(), 3);
    }

    #[test]
    fn a_sixth_rotation_drops_the_oldest() {
        let (five, _) = rotated_at(&[0, 1, 2, 3, 4]);
        assert_eq!(five.previous.len(), 5);
        assert_eq!(five.signing_at(at(5)).len(), 6);
        let (six, made) = rotated_at(&[0, 1, 2, 3, 4, 5]);
        assert_eq!(six.previous.len(), MAX_PREVIOUS_SECRETS);
        // The current one, then the five rotated out last: the first secret no longer signs.
        let expected: Vec<&WebhookSecret> = made[1..].iter().rev().collect();
        assert_eq!(six.signing_at(at(5)), expected);
    }

    #[test]
    fn a_rotation_forgets_secrets_that_stopped_signing() {
        // Rotated at hour 0, then again two days later: the first secret is long gone.
        let (secrets, made) = rotated_at(&[0, 48]);
        assert_eq!(secrets.previous.len(), 1);
        assert_eq!(secrets.previous[0].secret, made[1]);
        assert_eq!(secrets.signing_at(at(48)), vec![&made[2], &made[1]]);
    }

    #[test]
    fn stored_order_does_not_matter() {
        let old = Retired {
            secret: "old",
            expires_at: at(10),
        };
        let new = Retired {
            secret: "new",
            expires_at: at(20),
        };
        let mut previous: Vec<Retired<&str>> = (0..6)
            .map(|n| Retired {
                secret: "older",
                expires_at: at(n),
            })
            .collect();
        previous.push(old.clone());
        let kept = after_rotation(new.clone(), &previous, at(0));
        assert_eq!(kept.len(), MAX_PREVIOUS_SECRETS);
        assert_eq!(kept[0], new);
        assert_eq!(kept[1], old);
        assert_eq!(
            kept[4].expires_at,
            at(3),
            "the newest of the older ones stay"
        );
    }
}
