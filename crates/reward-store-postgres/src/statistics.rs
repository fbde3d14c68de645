//! Keeping the planner's statistics fresh even where autovacuum does not.
//!
//! The claim query walks the due index in order and stops after a batch, but only when the planner
//! knows the table is large: with no statistics (a new table, or `autovacuum = off`, as on some
//! hosts) it sorted every due delivery instead, and one claim over 200,000 queued deliveries took
//! 3 s instead of 10 ms. So each node checks now and then which of Reward's tables changed by
//! more than a fifth (plus 50 rows) since they were last analyzed, and analyzes them. Where
//! autovacuum runs (its default threshold is a tenth) it gets there first and this does nothing.
//! A role that does not own the tables only gets PostgreSQL's "skipping" warning: nothing fails.

use reward_store::StoreResult;

use crate::errors::from_pg;
use crate::statements::Db;

/// Reward's tables whose plans depend on their size.
const TABLES: [&str; 8] = [
    "deliveries",
    "attempts",
    "events",
    "webhooks",
    "trigger_events",
    "users",
    "idempotency_keys",
    "api_keys",
];

/// Analyzes the tables whose statistics are missing or stale; returns their names.
pub async fn refresh(client: &impl Db) -> StoreResult<Vec<String>> {
    let stale = client
        .query(
            "SELECT relname::text FROM pg_stat_user_tables
             WHERE schemaname = current_schema() AND relname = ANY($1::text[])
               AND n_mod_since_analyze > 50 + 0.2 * n_live_tup",
            &[&TABLES.as_slice()],
        )
        .await
        .map_err(from_pg)?;
    let mut refreshed = Vec::with_capacity(stale.len());
    for row in &stale {
        let name: String = row.try_get(0).map_err(from_pg)?;
        // Only names from TABLES reach this statement.
        if let Some(table) = TABLES.iter().find(|table| **table == name) {
            client
                .batch_execute(&format!("ANALYZE {table}"))
                .await
                .map_err(from_pg)?;
            refreshed.push(name);
        }
    }
    Ok(refreshed)
}
