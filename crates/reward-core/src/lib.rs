//! Reward's domain, free of I/O.
//!
//! - [`ids`]: prefixed ULID identifiers (`wh_`, `we_`, `dl_`, `at_`, `te_`, ...).
//! - [`time`]: millisecond UTC timestamps and their RFC 3339 form.
//! - [`event`]: the event types, their JSON Schemas and examples, and payload building.
//! - [`credit`]: how a trigger's rule turns a trigger event's value into credit points.
//! - [`names`]: validated newtypes for user-supplied names, user ids, trigger ids and URLs.
//! - [`special_addresses`]: the IANA special-purpose address registries, for the secure-target check.
//! - [`retry`]: the retry schedule (backoff, jitter, give-up); [`delivery`]: the state after an attempt.
//! - [`signing`]: webhook secrets and Standard Webhooks signatures; [`rotation`]: which secrets
//!   sign after rotations.
//! - [`stats`]: a webhook's statistics as maths: periods, latency buckets, percentiles, failure runs.
//! - [`idempotency`]: how long an `Idempotency-Key` is remembered.
//! - [`filter`]: the payload filter a webhook may set, and matching events against it.
//! - [`endpoint`]: what a customer sets on a webhook (event selection, headers, notes, rate limit).
//! - [`api_key`]: API key generation and hashing; [`digest`]: SHA-256 hex.
//! - [`trace`]: the W3C trace context stored with an event, so its deliveries join its trace.

pub mod api_key;
pub mod credit;
pub mod delivery;
pub mod digest;
pub mod endpoint;
pub mod event;
pub mod filter;
pub mod idempotency;
pub mod ids;
pub mod names;
pub mod retry;
pub mod rotation;
pub mod signing;
pub mod special_addresses;
pub mod stats;
pub mod time;
pub mod trace;
