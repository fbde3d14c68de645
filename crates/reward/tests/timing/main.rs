//! Tests whose assertions are about time (how late a retry arrives, how long an API read takes
//! while DNS is stalled, how fast a rate-limited webhook's attempts start). They are a test
//! binary of their own because cargo runs test binaries one after another: the integration
//! suite's other tests, running beside them, would stretch every figure they measure on a
//! two-core machine. Same harness as `tests/it`.

// Shared with the integration suite, which uses more of it than these tests do.
#[path = "../it/common.rs"]
#[allow(unused_imports)]
mod common;
#[path = "../it/databases.rs"]
mod databases;
#[path = "../it/receiver.rs"]
mod receiver;

mod dns;
mod rate_limits;
mod retries;
