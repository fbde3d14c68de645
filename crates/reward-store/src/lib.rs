//! The storage contract every backend implements.
//!
//! - [`ports`]: the contract split by role ([`Accounts`], [`Sessions`], [`Webhooks`],
//!   [`Rewards`], [`EventLog`], [`Housekeeping`], [`DeliveryQueue`]), so each part of the server
//!   is given only what it uses: the worker holds a `dyn DeliveryQueue`, upkeep a
//!   `dyn Housekeeping`.
//! - [`Store`]: every port at once, what the API and the dashboard hold. Each mutating operation
//!   is atomic: a domain change, the events it emits and one pending delivery per subscribed,
//!   enabled webhook commit together, before the call returns (the transactional outbox).
//! - [`records`]: what operations take and return.
//! - [`rules`]: the domain's decisions on those records, each made once for both backends (what a
//!   trigger event, a manual credit, a webhook change and an attempt's outcome produce, and the
//!   events each emits); [`paging`], [`columns`], [`statements`] and [`search`] (the statements
//!   of filtered lists): storage helpers both share.
//! - [`user_counters`]: a user's balance, `sequence` and event position, and what each change
//!   adds to them.
//! - [`rollups`]: a webhook's attempts counted per hour and latency bucket as they are recorded,
//!   and its statistics read back from those counts.
//! - [`chunks`]: long maintenance work walked in short transactions.
//! - [`refills`]: which rate-limited webhooks' refills the latest claim covered.
//! - [`handoff`]: new deliveries handed straight to this process's worker; [`secrets`]: secrets
//!   sealed at rest; [`idempotent`]: answers kept for `Idempotency-Key`s.
//! - [`transfer`]: every table's columns as both schemas hold them, for `reward copy` (rows moved
//!   between backends as they are, secrets sealed again under the target's key).
//! - [`StoreError`]: what can go wrong, split into the caller's mistakes and the store's troubles.
//!
//! Every operation on an account's data takes that account's id, and backends key every such table
//! by `account_id` first, so an account can never read another's rows and the schema can later be
//! distributed by account.

pub mod chunks;
pub mod columns;
mod error;
pub mod handoff;
pub mod idempotent;
pub mod paging;
pub mod ports;
pub mod records;
pub mod refills;
pub mod rollups;
pub mod rules;
pub mod search;
pub mod secrets;
pub mod statements;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod transfer;
pub mod user_counters;

pub use error::StoreError;
pub use ports::{
    Accounts, DeliveryQueue, EventLog, Housekeeping, IdempotentRequests, Rewards, Sessions,
    Webhooks,
};

pub type StoreResult<T> = Result<T, StoreError>;

/// Every port: what a backend is. Implemented for any type that implements them all, so a
/// backend only implements the ports.
pub trait Store:
    Accounts
    + Sessions
    + Webhooks
    + Rewards
    + EventLog
    + IdempotentRequests
    + Housekeeping
    + DeliveryQueue
{
}

impl<T> Store for T where
    T: Accounts
        + Sessions
        + Webhooks
        + Rewards
        + EventLog
        + IdempotentRequests
        + Housekeeping
        + DeliveryQueue
        + ?Sized
{
}
