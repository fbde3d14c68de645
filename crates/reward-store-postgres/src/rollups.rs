//! Attempt roll-ups (see `reward_store::rollups`): upserted with each recorded batch in one
//! statement, read back for a webhook's statistics, purged by upkeep.
//!
//! Each node writes roll-up rows of its own ([`RollupShard`]): a roll-up row is locked from its
//! upsert until its transaction's commit is flushed, so with one shared row per webhook, hour and
//! latency bucket, every node's recording waited for the others' commits (`Lock:transactionid`,
//! docs/scaling.md). A node's recorder writes one batch at a time, so its own rows never wait.
//! Reading adds the shards up.
//!
//! A webhook's failure run is written only when the batch changes it: in the steady state (every
//! attempt succeeding) each batch would otherwise lock and rewrite the same row on every node.
//! The check reads the row without locking it, so two nodes may race; as for recording order in
//! general (`reward_store::rollups`), the next batch settles it.

use reward_core::ids::{AccountId, WebhookId};
use reward_core::stats::StatsPeriod;
use reward_core::time::Timestamp;
use reward_store::records::{AttemptRecord, WebhookStats};
use reward_store::rollups::{self, RolledUp};
use reward_store::StoreResult;

use crate::errors::from_pg;
use crate::statements::{Db, Param};

/// The roll-up rows one node (one store) writes: picked at random when it opens, so two nodes
/// share rows only by a rare chance, which costs waiting, never a wrong count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollupShard(i16);

impl RollupShard {
    pub fn pick() -> Self {
        Self(rand::random_range(0..=i16::MAX))
    }
}

/// A batch's roll-up increments and failure-run changes, rows passed as arrays, both tables in
/// one statement. Rows come sorted by key (`reward_store::rollups`), so concurrent batches lock
/// them in the same order; each key appears once, as one statement may update a row only once.
/// A failure run is left out when the stored one already says what the batch would leave (`$10`
/// restarts it: it must equal the batch's; else any run under way continues).
pub const RECORD: &str = r#"WITH counted AS (
    INSERT INTO attempt_rollups (account_id, webhook_id, hour_start, latency_bucket, succeeded,
                                 failed, shard)
    SELECT *, $11::smallint FROM unnest($1::text[], $2::text[], $3::bigint[], $4::smallint[],
                                        $5::bigint[], $6::bigint[])
    ON CONFLICT (account_id, webhook_id, hour_start, latency_bucket, shard) DO UPDATE SET
        succeeded = attempt_rollups.succeeded + excluded.succeeded,
        failed = attempt_rollups.failed + excluded.failed
)
INSERT INTO webhook_failure_runs AS runs (account_id, webhook_id, failing_since)
SELECT account_id, webhook_id, failing_since
FROM unnest($7::text[], $8::text[], $9::bigint[], $10::bool[])
    AS given(account_id, webhook_id, failing_since, restarts)
WHERE NOT EXISTS (
    SELECT 1 FROM webhook_failure_runs stored
    WHERE stored.account_id = given.account_id AND stored.webhook_id = given.webhook_id
      AND CASE WHEN given.restarts
               THEN stored.failing_since IS NOT DISTINCT FROM given.failing_since
               ELSE stored.failing_since IS NOT NULL END)
ON CONFLICT (account_id, webhook_id) DO UPDATE SET failing_since =
    CASE WHEN (SELECT g.restarts FROM unnest($7::text[], $8::text[], $10::bool[])
                 AS g(account_id, webhook_id, restarts)
               WHERE g.account_id = excluded.account_id AND g.webhook_id = excluded.webhook_id)
         THEN excluded.failing_since
         ELSE COALESCE(runs.failing_since, excluded.failing_since) END
"#;

/// Counts a recorded batch in its roll-ups (the node's `shard`) and failure runs.
pub async fn record(
    client: &impl Db,
    shard: RollupShard,
    records: &[AttemptRecord],
) -> StoreResult<()> {
    let Some(columns) = RollupColumns::of(shard, records) else {
        return Ok(());
    };
    client
        .execute(RECORD, &columns.params())
        .await
        .map_err(from_pg)?;
    Ok(())
}

/// A batch's roll-up rows as [`RECORD`]'s parameters: one array per column.
pub struct RollupColumns<'a> {
    accounts: Vec<&'a str>,
    webhooks: Vec<&'a str>,
    hour_starts: Vec<i64>,
    latency_buckets: Vec<i16>,
    succeeded: Vec<i64>,
    failed: Vec<i64>,
    run_accounts: Vec<&'a str>,
    run_webhooks: Vec<&'a str>,
    failing_since: Vec<Option<i64>>,
    restarts: Vec<bool>,
    shard: i16,
}

impl<'a> RollupColumns<'a> {
    /// What the batch adds; `None` when it adds nothing.
    pub fn of(shard: RollupShard, records: &'a [AttemptRecord]) -> Option<Self> {
        let increments = rollups::increments(records);
        if increments.is_empty() {
            return None;
        }
        let runs = rollups::failure_runs(records);
        Some(Self {
            accounts: increments.iter().map(|row| row.account.as_str()).collect(),
            webhooks: increments.iter().map(|row| row.webhook.as_str()).collect(),
            hour_starts: increments
                .iter()
                .map(|row| row.hour_start.as_millis())
                .collect(),
            latency_buckets: increments
                .iter()
                .map(|row| i16::from(row.latency_bucket))
                .collect(),
            succeeded: increments.iter().map(|row| row.succeeded).collect(),
            failed: increments.iter().map(|row| row.failed).collect(),
            run_accounts: runs.iter().map(|run| run.account.as_str()).collect(),
            run_webhooks: runs.iter().map(|run| run.webhook.as_str()).collect(),
            failing_since: runs
                .iter()
                .map(|run| run.failing_since().map(Timestamp::as_millis))
                .collect(),
            restarts: runs.iter().map(|run| run.restarts()).collect(),
            shard: shard.0,
        })
    }

    pub fn params(&self) -> Vec<&dyn Param> {
        vec![
            &self.accounts,
            &self.webhooks,
            &self.hour_starts,
            &self.latency_buckets,
            &self.succeeded,
            &self.failed,
            &self.run_accounts,
            &self.run_webhooks,
            &self.failing_since,
            &self.restarts,
            &self.shard,
        ]
    }
}

/// The webhook's statistics: its roll-ups of the period, its pending deliveries and its run of
/// failures, read together. `NotFound` unless the account has the webhook.
pub async fn webhook_stats(
    client: &impl Db,
    account: &AccountId,
    webhook: &WebhookId,
    period: StatsPeriod,
    now: Timestamp,
) -> StoreResult<WebhookStats> {
    let since = period.since(now).as_millis();
    let (account_id, webhook_id) = (account.as_str(), webhook.as_str());
    let (_, rolled_up, pending, failing_since) = tokio::try_join!(
        crate::webhooks::ensure_exists(client, account, webhook),
        async {
            client
                .query(
                    "SELECT hour_start, latency_bucket, sum(succeeded)::bigint,
                            sum(failed)::bigint
                     FROM attempt_rollups
                     WHERE account_id = $1 AND webhook_id = $2 AND hour_start >= $3
                     GROUP BY hour_start, latency_bucket",
                    &[&account_id, &webhook_id, &since],
                )
                .await
                .map_err(from_pg)
        },
        async {
            // `deliveries_unfinished_by_webhook` holds exactly the unfinished ones.
            client
                .query_one(
                    "SELECT count(*) FROM deliveries
                     WHERE account_id = $1 AND webhook_id = $2 AND status = 'pending'",
                    &[&account_id, &webhook_id],
                )
                .await
                .map_err(from_pg)
        },
        async {
            client
                .query_opt(
                    "SELECT failing_since FROM webhook_failure_runs
                     WHERE account_id = $1 AND webhook_id = $2",
                    &[&account_id, &webhook_id],
                )
                .await
                .map_err(from_pg)
        },
    )?;
    let rolled_up: Vec<RolledUp> = rolled_up
        .iter()
        .map(|row| RolledUp {
            hour_start: Timestamp::from_millis(row.get(0)),
            latency_bucket: u8::try_from(row.get::<_, i16>(1)).unwrap_or(0),
            succeeded: row.get::<_, i64>(2).max(0) as u64,
            failed: row.get::<_, i64>(3).max(0) as u64,
        })
        .collect();
    let pending = pending.get::<_, i64>(0).max(0) as u64;
    let failing_since = failing_since
        .and_then(|row| row.get::<_, Option<i64>>(0))
        .map(Timestamp::from_millis);
    Ok(rollups::assemble(
        period,
        now,
        &rolled_up,
        pending,
        failing_since,
    ))
}

/// Deletes roll-ups of hours before `before`, and the failure runs of deleted webhooks.
pub async fn purge(client: &impl Db, before: Timestamp) -> StoreResult<()> {
    client
        .execute(
            "DELETE FROM attempt_rollups WHERE hour_start < $1",
            &[&before.as_millis()],
        )
        .await
        .map_err(from_pg)?;
    client
        .execute(
            "DELETE FROM webhook_failure_runs r WHERE NOT EXISTS (
               SELECT 1 FROM webhooks w WHERE w.account_id = r.account_id AND w.id = r.webhook_id)",
            &[],
        )
        .await
        .map_err(from_pg)?;
    Ok(())
}
