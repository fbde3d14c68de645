//! Schema migrations, applied in order on start. `PRAGMA user_version` records how many ran.

use rusqlite::Connection;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum MigrateError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "its schema is at version {found}, newer than this build of Reward knows ({known}): a \
         newer release migrated it; run that release or a newer one"
    )]
    Newer { found: usize, known: usize },
}

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

/// The schema version of a database: how many migrations ran on it, by this release or another.
pub fn applied(connection: &Connection) -> rusqlite::Result<usize> {
    connection.query_row("PRAGMA user_version", [], |row| row.get(0))
}

/// Brings the schema up to date. Safe to run from several processes at once: the check and the
/// migrations share one immediate (write-locked) transaction. A database migrated by a newer
/// release is refused, changing nothing: its schema may no longer be what this build writes.
pub fn migrate(connection: &mut Connection) -> Result<usize, MigrateError> {
    let transaction =
        connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let applied = applied(&transaction)?;
    if applied > MIGRATIONS.len() {
        return Err(MigrateError::Newer {
            found: applied,
            known: MIGRATIONS.len(),
        });
    }
    for migration in MIGRATIONS.iter().skip(applied) {
        transaction.execute_batch(migration)?;
    }
    transaction.pragma_update(None, "user_version", MIGRATIONS.len())?;
    transaction.commit()?;
    Ok(MIGRATIONS.len().saturating_sub(applied))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_migrated_by_a_newer_release_is_refused_and_left_as_it_is() {
        let mut connection = Connection::open_in_memory().expect("open");
        migrate(&mut connection).expect("migrate");
        let newer = MIGRATIONS.len() + 1;
        connection
            .pragma_update(None, "user_version", newer)
            .expect("version");
        let refused = migrate(&mut connection).expect_err("refused");
        assert!(
            matches!(refused, MigrateError::Newer { found, known } if found == newer && known == COUNT),
            "{refused}"
        );
        let version: usize = connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .expect("version");
        assert_eq!(version, newer, "left as it was");
        assert!(refused.to_string().contains("newer release"), "{refused}");
    }
}
