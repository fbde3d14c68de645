//! Prefixed ULID identifiers.
//!
//! Every id is a short type prefix followed by a ULID in lowercase Crockford base32, so ids sort
//! by creation time and a reader can tell what an id names. Ids made in one process are strictly
//! increasing (a monotonic generator), which keeps "newest first" lists and cursors exact.

use std::fmt;
use std::sync::Mutex;

use thiserror::Error;
use ulid::{Generator, Ulid};

/// The length of a ULID in Crockford base32.
const ULID_LEN: usize = 26;

/// A ULID's clock: 48 bits of milliseconds since the Unix epoch.
const ULID_MAX_MILLIS: u64 = (1 << 48) - 1;

static GENERATOR: Mutex<Option<Generator>> = Mutex::new(None);

/// A new ULID, strictly greater than any other made by this process.
fn next_ulid() -> Ulid {
    let mut guard = GENERATOR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let generator = guard.get_or_insert_with(Generator::new);
    // `generate` only fails when 2^80 ids were made in one millisecond; a fresh ULID is then
    // still unique, only not monotonic.
    generator.generate().unwrap_or_else(|_| Ulid::new())
}

#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("expected an id of the form {prefix}<26 lowercase base32 characters>")]
pub struct InvalidId {
    pub prefix: &'static str,
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new id, later than every id this process made before.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, next_ulid().to_string().to_lowercase()))
            }

            /// The smallest id made at `time`, by the clock in the id: a bound for ranges of ids
            /// by creation time. `None` before 1970 or past ULID's clock (year 10889).
            pub fn lowest_at(time: crate::time::Timestamp) -> Option<Self> {
                let millis = u64::try_from(time.as_millis()).ok()?;
                (millis <= ULID_MAX_MILLIS).then(|| {
                    let ulid = Ulid::from_parts(millis, 0);
                    Self(format!("{}{}", $prefix, ulid.to_string().to_lowercase()))
                })
            }

            /// Accepts exactly the form `generate` produces (upper case is folded to lower).
            pub fn parse(text: &str) -> Result<Self, InvalidId> {
                let invalid = InvalidId { prefix: $prefix };
                let body = text.strip_prefix($prefix).ok_or(invalid.clone())?;
                // 26 base32 digits hold 130 bits; a ULID's first digit is at most 7, and a
                // larger one would silently wrap to another id.
                if body.len() != ULID_LEN || !body.starts_with(|c: char| ('0'..='7').contains(&c)) {
                    return Err(invalid);
                }
                let ulid = Ulid::from_string(body).map_err(|_| invalid)?;
                Ok(Self(format!("{}{}", $prefix, ulid.to_string().to_lowercase())))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Wraps a value read back from our own store, which only ever holds valid ids.
            pub fn from_trusted(text: String) -> Self {
                Self(text)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// An account: one business using Reward.
    AccountId,
    "acc_"
);
prefixed_id!(
    /// An API key's public identifier (the secret part is never stored).
    ApiKeyId,
    "key_"
);
prefixed_id!(
    /// A webhook endpoint.
    WebhookId,
    "wh_"
);
prefixed_id!(
    /// An event, the same for every webhook and every retry that carries it.
    EventId,
    "we_"
);
prefixed_id!(
    /// One event on its way to one webhook.
    DeliveryId,
    "dl_"
);
prefixed_id!(
    /// One HTTP attempt of a delivery.
    AttemptId,
    "at_"
);
prefixed_id!(
    /// A recorded trigger event.
    TriggerEventId,
    "te_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_have_prefix_and_lowercase_ulid() {
        let id = EventId::generate();
        assert!(id.as_str().starts_with("we_"));
        assert_eq!(id.as_str().len(), 3 + ULID_LEN);
        assert_eq!(id.as_str(), id.as_str().to_lowercase());
        assert_eq!(EventId::parse(id.as_str()), Ok(id));
    }

    #[test]
    fn generated_ids_increase() {
        let ids: Vec<_> = (0..1000).map(|_| DeliveryId::generate()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn parse_rejects_wrong_prefix_length_and_alphabet() {
        assert!(WebhookId::parse("we_01jf2wkmvcfw6ts1qmgzya291c").is_err());
        assert!(WebhookId::parse("wh_01jf2wkmvcfw6ts1qmgzya291").is_err());
        assert!(WebhookId::parse("wh_01jf2wkmvcfw6ts1qmgzya291u").is_err());
        assert!(WebhookId::parse("").is_err());
        assert!(WebhookId::parse("wh_01jf2wkmvcfw6ts1qmgzya291c").is_ok());
    }

    #[test]
    fn lowest_at_bounds_the_ids_made_from_that_millisecond() {
        use crate::time::Timestamp;
        let before = Timestamp::now();
        let id = DeliveryId::generate();
        let after = Timestamp::now().plus_millis(1);
        let low = DeliveryId::lowest_at(before).expect("in range");
        let high = DeliveryId::lowest_at(after).expect("in range");
        assert!(low <= id && id < high, "{low} <= {id} < {high}");
        assert_eq!(DeliveryId::parse(low.as_str()), Ok(low));
        assert_eq!(DeliveryId::lowest_at(Timestamp::from_millis(-1)), None);
        assert_eq!(DeliveryId::lowest_at(Timestamp::from_millis(1 << 48)), None);
        assert!(DeliveryId::lowest_at(Timestamp::from_millis((1 << 48) - 1)).is_some());
    }

    #[test]
    fn parse_folds_upper_case() {
        let id = WebhookId::parse("wh_01JF2WKMVCFW6TS1QMGZYA291C").expect("valid");
        assert_eq!(id.as_str(), "wh_01jf2wkmvcfw6ts1qmgzya291c");
    }
}
