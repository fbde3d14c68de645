//! The storage contract split by role: each front end and background task is given the port it
//! needs, and [`crate::Store`] is all of them together.
//!
//! | port | who uses it |
//! |---|---|
//! | [`Accounts`] | the API's authentication and key routes, the dashboard's keys page, `reward accounts` |
//! | [`Sessions`] | the dashboard's sign-in |
//! | [`Webhooks`] | the API's and the dashboard's webhook pages |
//! | [`Rewards`] | triggers, trigger events, users and credits |
//! | [`EventLog`] | events, deliveries and their attempts as accounts see them; resends; statistics |
//! | [`IdempotentRequests`] | the API's creating `POST`s: answers kept for their `Idempotency-Key` |
//! | [`Housekeeping`] | upkeep: retention, disabling failing webhooks, planner statistics; `/readyz` |
//! | [`DeliveryQueue`] | the delivery worker: claims, records, leases, hand-off, wake-ups |
//!
//! Each backend implements each port in its own `impl` block that only delegates to its SQL.

mod accounts;
mod event_log;
mod housekeeping;
mod idempotent;
mod queue;
mod rewards;
mod webhooks;

pub use accounts::{Accounts, Sessions};
pub use event_log::EventLog;
pub use housekeeping::Housekeeping;
pub use idempotent::IdempotentRequests;
pub use queue::DeliveryQueue;
pub use rewards::Rewards;
pub use webhooks::Webhooks;
