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

/// Reward's tables whose plans depend on their size, with the columns analyzed: all but the
/// wide ones no query filters on (a payload or a response body is most of what sampling them
/// costs: `ANALYZE events` took 200 ms under load).
const TABLES: [(&str, &str); 9] = [
    ("deliveries", ""),
    ("delivery_keys", ""),
    (
        "attempts",
        "(account_id, delivery_id, id, number, started_at, duration_ms, status_code)",
    ),
    (
        "events",
        "(account_id, id, event_type, created_at, user_id, user_position)",
    ),
    ("webhooks", ""),
    ("trigger_events", ""),
    ("users", ""),
    ("idempotency_keys", ""),
    ("api_keys", ""),
];

/// Taken for the length of a refresh, so nodes started together (and checking together) do not
/// each analyze the same tables: "reward" in ASCII, plus one (migrations take the plain one).
const REFRESH_LOCK: i64 = 0x7265_7761_7264 + 1;

/// Analyzes the tables whose statistics are missing or stale; returns their names. Runs in the
/// caller's transaction: while another node is refreshing, this one does nothing (its tables'
/// statistics are on their way).
pub async fn refresh(client: &impl Db) -> StoreResult<Vec<String>> {
    let ours: bool = client
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&REFRESH_LOCK])
        .await
        .map_err(from_pg)?
        .try_get(0)
        .map_err(from_pg)?;
    if !ours {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = TABLES.iter().map(|(name, _)| *name).collect();
    let stale = client
        .query(
            "SELECT relname::text FROM pg_stat_user_tables
             WHERE schemaname = current_schema() AND relname = ANY($1::text[])
               AND n_mod_since_analyze > 50 + 0.2 * n_live_tup",
            &[&names],
        )
        .await
        .map_err(from_pg)?;
    let mut refreshed = Vec::with_capacity(stale.len());
    for row in &stale {
        let name: String = row.try_get(0).map_err(from_pg)?;
        // Only names and columns from TABLES reach this statement.
        if let Some((table, columns)) = TABLES.iter().find(|(table, _)| *table == name) {
            client
                .batch_execute(&format!("ANALYZE {table} {columns}"))
                .await
                .map_err(from_pg)?;
            refreshed.push(name);
        }
    }
    Ok(refreshed)
}
