//! Mapping PostgreSQL's errors onto the store's. What a retry may cure is "unavailable" (the API
//! answers 503 with `Retry-After`, a worker tries again): a lost or refused connection, a pool with
//! no free connection, a server shutting down or out of resources, a deadlock or serialization
//! failure, a cancelled statement. Anything else is internal.

use deadpool_postgres::PoolError;
use reward_store::StoreError;
use tokio_postgres::error::SqlState;

/// SQLSTATE classes that describe the server's state rather than the statement: connection
/// exceptions (08), insufficient resources (53), operator intervention such as shutdown (57) and
/// system errors (58).
const UNAVAILABLE_CLASSES: [&str; 4] = ["08", "53", "57", "58"];

/// A unique violation is internal too: keys that two requests can race for (idempotency keys,
/// users, triggers) are written with `ON CONFLICT`, so one only happens on a bug.
pub fn from_pg(error: tokio_postgres::Error) -> StoreError {
    if is_unavailable(&error) {
        StoreError::Unavailable(describe(&error))
    } else {
        StoreError::Internal(describe(&error))
    }
}

pub fn from_pool(error: PoolError) -> StoreError {
    match error {
        PoolError::Backend(error) => from_pg(error),
        other => StoreError::Unavailable(format!("no database connection: {other}")),
    }
}

/// The check that keeps balances within 2^53 - 1 (migration 0004).
const BALANCE_BOUND: &str = "users_balance_within_exact_doubles";

/// For a statement that adds to balances: a balance past the table's bound, or past `i64::MAX`
/// (BIGINT arithmetic refuses to wrap), fails the statement, and that is the caller's overflow,
/// not a database fault.
pub fn from_balance_update(error: tokio_postgres::Error) -> StoreError {
    let past_the_bound = error.code() == Some(&SqlState::CHECK_VIOLATION)
        && error
            .as_db_error()
            .and_then(|db| db.constraint())
            .is_some_and(|constraint| constraint == BALANCE_BOUND);
    if past_the_bound || error.code() == Some(&SqlState::NUMERIC_VALUE_OUT_OF_RANGE) {
        StoreError::BalanceOverflow
    } else {
        from_pg(error)
    }
}

fn is_unavailable(error: &tokio_postgres::Error) -> bool {
    let Some(code) = error.code() else {
        // No SQLSTATE: the connection itself failed (I/O, closed, timed out).
        return true;
    };
    code == &SqlState::T_R_SERIALIZATION_FAILURE
        || code == &SqlState::T_R_DEADLOCK_DETECTED
        || code == &SqlState::LOCK_NOT_AVAILABLE
        || UNAVAILABLE_CLASSES
            .iter()
            .any(|class| code.code().starts_with(class))
}

/// The server's message with its detail, without the statement's parameters; for a failure
/// below the protocol (connecting, I/O), the error with its causes (tokio-postgres's own text
/// alone is only "db error" or "error connecting to server").
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({}): {detail}", db.message(), db.code().code()),
            None => format!("{} ({})", db.message(), db.code().code()),
        },
        None => {
            let mut text = error.to_string();
            let mut cause = std::error::Error::source(error);
            while let Some(inner) = cause {
                text = format!("{text}: {inner}");
                cause = inner.source();
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_exhaustion_is_unavailable() {
        let error = from_pool(PoolError::Timeout(deadpool_postgres::TimeoutType::Wait));
        assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    }
}
