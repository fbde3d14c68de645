//! Integration tests: the real server on a random loopback port, a fresh SQLite file per test,
//! driven over HTTP like its users drive it. One binary, one module per area.

mod common;
mod receiver;

mod credits;
mod delivery;
mod delivery_faults;
mod idempotency;
mod isolation;
mod outbox;
mod resources;
mod validation;
