//! Mapping SQLite's errors onto the store's: a busy, locked, full, read-only or failing disk is
//! "unavailable" (the API answers 503 and the caller may retry); anything else is internal.

use reward_store::StoreError;
use rusqlite::ErrorCode;

pub fn from_sqlite(error: rusqlite::Error) -> StoreError {
    let unavailable = matches!(
        error.sqlite_error_code(),
        Some(
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::DiskFull
                | ErrorCode::ReadOnly
                | ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen
                | ErrorCode::OutOfMemory
        )
    );
    if unavailable {
        StoreError::Unavailable(error.to_string())
    } else {
        StoreError::Internal(error.to_string())
    }
}
