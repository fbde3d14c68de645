//! Background upkeep, every [`Upkeep::every`] (an hour by default): events are kept
//! `REWARD_EVENT_RETENTION` (30 days), attempts' response bodies `REWARD_ATTEMPT_BODY_RETENTION`
//! (30 days), idempotency keys 24 hours, attempt roll-ups (webhook statistics) 8 days. Every purge
//! works in small chunks, each its own short write. On its own cadence ([`disable_check_every`]),
//! a webhook whose every delivery attempt has failed for `REWARD_DISABLE_AFTER` is disabled,
//! saying why in `disabled_reason`. Upkeep sees the store only through [`Housekeeping`].

use std::sync::Arc;
use std::time::Duration;

use reward_core::time::Timestamp;
use reward_store::Housekeeping;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// How long events (with their finished deliveries and attempts) are kept, by default.
pub const DEFAULT_EVENT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long attempts keep their response bodies, by default.
pub const DEFAULT_ATTEMPT_BODY_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// Attempts are recorded after they start (up to a lease later): each run clears bodies from
/// this long before where the previous run stopped, so none recorded late is missed.
const BODY_CLEARING_OVERLAP_MS: i64 = 6 * 3_600_000;
/// How often upkeep runs, by default.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(3600);
/// How long a webhook's attempts may all fail before it is disabled, by default.
pub const DEFAULT_DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);
/// The shortest pause between two sweeps for failing webhooks.
const MIN_DISABLE_CHECK: Duration = Duration::from_secs(1);

/// What upkeep does, and how often.
#[derive(Debug, Clone, Copy)]
pub struct Upkeep {
    pub every: Duration,
    /// `REWARD_DISABLE_AFTER`.
    pub disable_after: Duration,
    /// `REWARD_EVENT_RETENTION`.
    pub event_retention: Duration,
    /// `REWARD_ATTEMPT_BODY_RETENTION`.
    pub attempt_body_retention: Duration,
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

pub async fn run(store: Arc<dyn Housekeeping>, upkeep: Upkeep, shutdown: CancellationToken) {
    // Where the previous run's clearing of attempt bodies stopped: from the beginning at start.
    let mut bodies_cleared_before = Timestamp::from_millis(0);
    loop {
        let now = Timestamp::now();
        let events_before = now.plus_millis(-millis(upkeep.event_retention));
        let idempotency_before = now.plus_millis(-reward_core::idempotency::WINDOW_MS);
        if let Err(error) = store.purge_expired(events_before, idempotency_before).await {
            tracing::warn!(%error, "purging expired events failed; will try again");
        }
        let bodies_before = now.plus_millis(-millis(upkeep.attempt_body_retention));
        let since = bodies_cleared_before.plus_millis(-BODY_CLEARING_OVERLAP_MS);
        match store.clear_attempt_bodies(since, bodies_before).await {
            Ok(cleared) => {
                bodies_cleared_before = bodies_before.max(bodies_cleared_before);
                if cleared > 0 {
                    tracing::info!(cleared, "cleared the response bodies of old attempts");
                }
            }
            Err(error) => {
                tracing::warn!(%error, "clearing old attempts' bodies failed; will try again")
            }
        }
        let rollups_before = now.plus_millis(-reward_store::rollups::RETENTION_MS);
        if let Err(error) = store.purge_rollups(rollups_before).await {
            tracing::warn!(%error, "purging old attempt roll-ups failed; will try again");
        }
        tokio::select! {
            () = tokio::time::sleep(upkeep.every) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// How often webhooks failing for `disable_after` are looked for: a twentieth of it, at least a
/// second apart and at most as far apart as the rest of upkeep (`every`). A webhook is therefore
/// disabled at most 5% of `REWARD_DISABLE_AFTER` late, and never more than an hour by default;
/// an operator who sets a short window (minutes, in a staging setup) sees it hold to the
/// second, not to the next hourly run. The sweep is one statement over enabled webhooks.
pub fn disable_check_every(disable_after: Duration, every: Duration) -> Duration {
    (disable_after / 20).max(MIN_DISABLE_CHECK).min(every)
}

/// Disables webhooks failing for `REWARD_DISABLE_AFTER`, at start and then every
/// [`disable_check_every`].
pub async fn run_disabling(
    store: Arc<dyn Housekeeping>,
    upkeep: Upkeep,
    shutdown: CancellationToken,
) {
    let pause = disable_check_every(upkeep.disable_after, upkeep.every);
    loop {
        disable_failing_webhooks(store.as_ref(), upkeep.disable_after, Timestamp::now()).await;
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// How often the frequent checks run (see [`run_frequent_checks`]), once the process has run a
/// while.
pub const STATISTICS_EVERY: Duration = Duration::from_secs(30);
/// The first check after the one at start: the pause doubles from here up to
/// [`STATISTICS_EVERY`].
const FIRST_STATISTICS_PAUSE: Duration = Duration::from_secs(2);

/// At start, then after 2, 4, 8 and 16 s, then every [`STATISTICS_EVERY`]: refreshes the
/// store's statistics that went stale (PostgreSQL: `ANALYZE`, for hosts where autovacuum does
/// not; a queue that grew from nothing to a backlog otherwise gets a plan made for an empty
/// table), and schedules deliveries of ordered webhooks left waiting for nothing (a safety net:
/// see `Housekeeping::schedule_waiting`). A new database under load grows fastest in its first
/// seconds, when plans made for empty tables cost most: with no statistics, claims walked a
/// webhook's every delivery to find no manual retry (33 ms each instead of microseconds). And
/// it looks whether a newer release migrated the database meanwhile ([`SchemaWatch`]).
pub async fn run_frequent_checks(
    store: Arc<dyn Housekeeping>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut pause = FIRST_STATISTICS_PAUSE;
    let mut schema = SchemaWatch::default();
    loop {
        schema.check(store.as_ref(), &metrics).await;
        match store.refresh_statistics().await {
            Ok(tables) if !tables.is_empty() => {
                tracing::info!(?tables, "refreshed the query planner's statistics");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "refreshing statistics failed; will try again"),
        }
        match store.schedule_waiting().await {
            Ok(0) => {}
            Ok(scheduled) => tracing::warn!(
                scheduled,
                "scheduled ordered deliveries that waited for nothing"
            ),
            Err(error) => {
                tracing::warn!(%error, "scheduling waiting deliveries failed; will try again")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = shutdown.cancelled() => return,
        }
        pause = (pause * 2).min(STATISTICS_EVERY);
    }
}

/// Sets the schema-version gauges before the node serves: a scrape before the first of the
/// frequent checks would read both as 0. A failure is left to those checks, which say so.
pub async fn show_schema_versions(store: &dyn Housekeeping, metrics: &Metrics) {
    if let Ok(versions) = store.schema_versions().await {
        metrics.schema_versions(versions);
    }
}

/// Notices a newer release migrating the database under this node (a rolling upgrade, with this
/// node not upgraded yet): it keeps serving, as the migrations allow (docs/decisions.md, "Schema
/// versions"), but it would refuse to start again, and it should be upgraded. Says so once per
/// version found, and `reward_database_schema_version` above `reward_build_schema_version` shows
/// it to an alert.
#[derive(Default)]
struct SchemaWatch {
    /// The database's version last warned about.
    warned: Option<usize>,
}

impl SchemaWatch {
    async fn check(&mut self, store: &dyn Housekeeping, metrics: &Metrics) {
        let versions = match store.schema_versions().await {
            Ok(versions) => versions,
            Err(error) => {
                tracing::warn!(%error, "reading the database's schema version failed; will try again");
                return;
            }
        };
        metrics.schema_versions(versions);
        if versions.database_is_newer() && self.warned != Some(versions.database) {
            tracing::warn!(
                database = versions.database,
                build = versions.build,
                "a newer release of Reward migrated the database: upgrade this node (it keeps \
                 serving, but will not start again on this release)"
            );
            self.warned = Some(versions.database);
        }
    }
}

async fn disable_failing_webhooks(
    store: &dyn Housekeeping,
    disable_after: Duration,
    now: Timestamp,
) {
    let window = i64::try_from(disable_after.as_millis()).unwrap_or(i64::MAX);
    let failing_since = now.plus_millis(-window);
    let reason = disabled_reason(disable_after, now);
    match store
        .disable_failing_webhooks(failing_since, now, reason)
        .await
    {
        Ok(disabled) => {
            for webhook_id in disabled {
                tracing::warn!(%webhook_id, "disabled a webhook whose deliveries all failed for {}", humantime::format_duration(disable_after));
            }
        }
        Err(error) => tracing::warn!(%error, "disabling failing webhooks failed; will try again"),
    }
}

/// What `disabled_reason` says.
pub fn disabled_reason(disable_after: Duration, now: Timestamp) -> String {
    format!(
        "Every delivery attempt failed for {} (REWARD_DISABLE_AFTER); Reward disabled the webhook at {now}. Enable it again once the endpoint answers 2xx; its pending deliveries then go out.",
        humantime::format_duration(disable_after)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn failing_webhooks_are_looked_for_at_a_twentieth_of_the_window() {
        assert_eq!(disable_check_every(DEFAULT_DISABLE_AFTER, HOUR), HOUR);
        assert_eq!(
            disable_check_every(Duration::from_secs(600), HOUR),
            Duration::from_secs(30)
        );
        assert_eq!(
            disable_check_every(Duration::from_secs(2), HOUR),
            MIN_DISABLE_CHECK
        );
        // Upkeep that runs more often than a second (tests) takes the sweep along.
        assert_eq!(
            disable_check_every(Duration::from_secs(1), Duration::from_millis(200)),
            Duration::from_millis(200)
        );
    }
}
