//! Integration tests: the real server on a random loopback port, a fresh database per test (SQLite,
//! or PostgreSQL with `REWARD_TEST_BACKEND=postgres`), driven over HTTP like its users drive it.
//! One binary, one module per area.

mod common;
mod databases;
#[path = "../../../reward-store-postgres/tests/support/pgbouncer.rs"]
mod pgbouncer;
mod receiver;

mod api_keys;
mod backup;
mod bench;
mod cli;
mod copy;
mod credits;
mod dashboard;
mod delivery;
mod delivery_faults;
mod delivery_search;
mod edge;
mod endpoint_controls;
mod faults;
mod fuzzing;
mod hardening;
mod idempotency;
mod idempotent_posts;
mod isolation;
mod many_nodes;
mod openapi_tools;
mod operations;
mod ordering;
mod ordering_field;
mod outbox;
mod prometheus;
mod resend;
mod resources;
mod retention;
mod rotation;
mod schemathesis;
mod sequence;
mod throughput;
mod traces;
mod validation;
mod webhook_disabled;
mod webhook_stats;
