//! Schema migrations, applied in order on start. `PRAGMA user_version` records how many ran.

use rusqlite::Connection;

/// Each entry is one migration; append, never edit.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_sessions.sql"),
    include_str!("migrations/0003_webhook_deletions.sql"),
    include_str!("migrations/0004_failed_deliveries_index.sql"),
    include_str!("migrations/0005_previous_secrets.sql"),
    include_str!("migrations/0006_webhook_settings.sql"),
    include_str!("migrations/0007_delivery_search_indexes.sql"),
    include_str!("migrations/0008_attempt_rollups.sql"),
    include_str!("migrations/0009_idempotent_responses.sql"),
    include_str!("migrations/0010_rate_limit_slots.sql"),
    include_str!("migrations/0011_user_order.sql"),
    include_str!("migrations/0012_event_trace.sql"),
    include_str!("migrations/0013_events_purged_by_rowid.sql"),
    include_str!("migrations/0014_attempts_walked_by_rowid.sql"),
];

/// The schema version of a database this build has migrated (`PRAGMA user_version`).
pub const COUNT: usize = MIGRATIONS.len();

/// Brings the schema up to date. Safe to run from several processes at once: the check and the
/// migrations share one immediate (write-locked) transaction.
pub fn migrate(connection: &mut Connection) -> rusqlite::Result<usize> {
    let transaction =
        connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let applied: usize = transaction.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for migration in MIGRATIONS.iter().skip(applied) {
        transaction.execute_batch(migration)?;
    }
    transaction.pragma_update(None, "user_version", MIGRATIONS.len())?;
    transaction.commit()?;
    Ok(MIGRATIONS.len().saturating_sub(applied))
}
