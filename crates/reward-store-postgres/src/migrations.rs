//! Schema migrations, applied in order on start. `reward_migrations` records which ran.
//!
//! Several nodes may start at once: each migrates inside one transaction that first takes an
//! advisory lock, so one applies the migrations and the others then find them applied. PostgreSQL's
//! DDL is transactional, so a failed migration leaves nothing half-done.

use thiserror::Error;
use tokio_postgres::Client;

use crate::errors::describe;
use crate::statements::Db;

#[derive(Debug, Error)]
pub enum MigrateError {
    #[error("{}", describe(.0))]
    Database(#[from] tokio_postgres::Error),
    #[error(
        "its schema is at version {found}, newer than this build of Reward knows ({known}): a \
         newer release migrated it; run that release or a newer one on every node"
    )]
    Newer { found: usize, known: usize },
}

/// Each entry is one migration, numbered from 1; append, never edit.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_initial.sql"),
    include_str!("../migrations/0002_sessions.sql"),
    include_str!("../migrations/0003_unfinished_deliveries_index.sql"),
    include_str!("../migrations/0004_balance_bound.sql"),
    include_str!("../migrations/0005_previous_secrets.sql"),
    include_str!("../migrations/0006_webhook_settings.sql"),
    include_str!("../migrations/0007_delivery_search_indexes.sql"),
    include_str!("../migrations/0008_attempt_rollups.sql"),
    include_str!("../migrations/0009_idempotent_responses.sql"),
    include_str!("../migrations/0010_rate_limit_slots.sql"),
    include_str!("../migrations/0011_user_order.sql"),
    include_str!("../migrations/0012_event_trace.sql"),
    include_str!("../migrations/0013_rollup_shards.sql"),
    include_str!("../migrations/0014_due_unleased_index.sql"),
    include_str!("../migrations/0015_delivery_keys.sql"),
    include_str!("../migrations/0016_delivery_keys_kept_by_triggers.sql"),
];

/// The schema version this build migrates a database to.
pub const COUNT: usize = MIGRATIONS.len();

/// The schema version of a migrated database: the newest migration applied to it, by this
/// release or another.
pub async fn applied(db: &impl Db) -> Result<usize, tokio_postgres::Error> {
    let row = db
        .query_one(
            "SELECT COALESCE(max(version), 0) FROM reward_migrations",
            &[],
        )
        .await?;
    Ok(usize::try_from(row.get::<_, i32>(0)).unwrap_or(0))
}

/// Any number, as long as no other advisory lock on the database uses it: "reward" in ASCII.
const MIGRATION_LOCK: i64 = 0x7265_7761_7264;

/// Brings the schema up to date; returns how many migrations ran.
pub async fn migrate(client: &mut Client) -> Result<usize, MigrateError> {
    migrate_to(client, MIGRATIONS.len()).await
}

/// Applies the migrations up to `version` (included) that have not run yet. A database migrated
/// by a newer release is refused, changing nothing: its schema may no longer be what this build
/// writes (a node left on the older release while another upgrades stops at its next start).
async fn migrate_to(client: &mut Client, version: usize) -> Result<usize, MigrateError> {
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS reward_migrations (
                 version     INTEGER PRIMARY KEY,
                 applied_at  BIGINT NOT NULL
             )",
        )
        .await?;
    let applied: i32 = transaction
        .query_one(
            "SELECT COALESCE(max(version), 0) FROM reward_migrations",
            &[],
        )
        .await?
        .get(0);
    let applied = usize::try_from(applied).unwrap_or(0);
    if applied > MIGRATIONS.len() {
        return Err(MigrateError::Newer {
            found: applied,
            known: MIGRATIONS.len(),
        });
    }
    let wanted = &MIGRATIONS[..version.min(MIGRATIONS.len())];
    for (index, migration) in wanted.iter().enumerate().skip(applied) {
        transaction.batch_execute(migration).await?;
        let version = i32::try_from(index + 1).unwrap_or(i32::MAX);
        transaction
            .execute(
                "INSERT INTO reward_migrations (version, applied_at)
                 VALUES ($1, (extract(epoch FROM now()) * 1000)::bigint)",
                &[&version],
            )
            .await?;
    }
    transaction.commit().await?;
    Ok(wanted.len().saturating_sub(applied))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ScratchDatabase;

    /// A database of the test's own, not migrated yet, and a connection to it.
    async fn scratch() -> Option<(ScratchDatabase, Client)> {
        let database = ScratchDatabase::create("reward_migrations").await?;
        let (client, connection) = tokio_postgres::connect(database.url(), tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        Some((database, client))
    }

    #[tokio::test]
    async fn deliveries_stored_before_their_keys_moved_apart_get_them() {
        let Some((_database, mut client)) = scratch().await else {
            return;
        };
        migrate_to(&mut client, 14).await.expect("migrate to 14");
        client
            .batch_execute(
                "INSERT INTO deliveries (account_id, id, webhook_id, event_id, event_type, status,
                   created_at, updated_at)
                 VALUES ('acc_1', 'dl_1', 'wh_1', 'we_1', 'trigger_event.created', 'succeeded', 1, 1),
                        ('acc_1', 'dl_2', 'wh_2', 'we_1', 'trigger_event.created', 'pending', 2, 2)",
            )
            .await
            .expect("deliveries");

        assert_eq!(
            migrate(&mut client).await.expect("migrate"),
            MIGRATIONS.len() - 14
        );
        let keys: Vec<(String, String, String, String, String)> = client
            .query(
                "SELECT account_id, delivery_id, webhook_id, event_id, event_type
                 FROM delivery_keys ORDER BY delivery_id",
                &[],
            )
            .await
            .expect("keys")
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4)))
            .collect();
        let key = |delivery: &str, webhook: &str| {
            let text = |value: &str| value.to_owned();
            (
                text("acc_1"),
                text(delivery),
                text(webhook),
                text("we_1"),
                text("trigger_event.created"),
            )
        };
        assert_eq!(keys, vec![key("dl_1", "wh_1"), key("dl_2", "wh_2")]);
        let indexes: Vec<String> = client
            .query(
                "SELECT indexname::text FROM pg_indexes WHERE tablename = 'deliveries'
                 AND indexname IN ('deliveries_by_webhook', 'deliveries_by_event',
                                   'deliveries_by_type')",
                &[],
            )
            .await
            .expect("indexes")
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert!(indexes.is_empty(), "{indexes:?}");

        // Deliveries written and deleted without a word about keys (a node of a release before
        // 0015, an operator's SQL) keep theirs in step: the database writes them.
        client
            .batch_execute(
                "INSERT INTO deliveries (account_id, id, webhook_id, event_id, event_type, status,
                   created_at, updated_at)
                 VALUES ('acc_1', 'dl_3', 'wh_3', 'we_2', 'webhook.disabled', 'pending', 3, 3);
                 DELETE FROM deliveries WHERE id = 'dl_1'",
            )
            .await
            .expect("written and deleted");
        let kept: Vec<(String, String)> = client
            .query(
                "SELECT delivery_id, webhook_id FROM delivery_keys ORDER BY delivery_id",
                &[],
            )
            .await
            .expect("keys")
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        let pair = |delivery: &str, webhook: &str| (delivery.to_owned(), webhook.to_owned());
        assert_eq!(kept, vec![pair("dl_2", "wh_2"), pair("dl_3", "wh_3")]);
    }

    #[tokio::test]
    async fn a_database_migrated_by_a_newer_release_is_refused_and_left_as_it_is() {
        let Some((_database, mut client)) = scratch().await else {
            return;
        };
        migrate(&mut client).await.expect("migrate");
        let newer = i32::try_from(MIGRATIONS.len() + 1).expect("version");
        client
            .execute(
                "INSERT INTO reward_migrations (version, applied_at) VALUES ($1, 0)",
                &[&newer],
            )
            .await
            .expect("a newer release's migration");
        let refused = migrate(&mut client).await.expect_err("refused");
        assert!(
            matches!(refused, MigrateError::Newer { found, known }
                if found == MIGRATIONS.len() + 1 && known == MIGRATIONS.len()),
            "{refused}"
        );
        assert!(refused.to_string().contains("newer release"), "{refused}");
    }
}
