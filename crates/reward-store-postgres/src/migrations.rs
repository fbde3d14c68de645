//! Schema migrations, applied in order on start. `reward_migrations` records which ran.
//!
//! Several nodes may start at once: each migrates inside one transaction that first takes an
//! advisory lock, so one applies the migrations and the others then find them applied. PostgreSQL's
//! DDL is transactional, so a failed migration leaves nothing half-done.

use tokio_postgres::Client;

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
];

/// Any number, as long as no other advisory lock on the database uses it: "reward" in ASCII.
const MIGRATION_LOCK: i64 = 0x7265_7761_7264;

/// Brings the schema up to date; returns how many migrations ran.
pub async fn migrate(client: &mut Client) -> Result<usize, tokio_postgres::Error> {
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
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
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
    Ok(MIGRATIONS.len().saturating_sub(applied))
}
