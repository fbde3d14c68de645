//! Background upkeep: events are kept 30 days, idempotency keys 24 hours.

use std::sync::Arc;
use std::time::Duration;

use reward_core::time::Timestamp;
use reward_store::Store;
use tokio_util::sync::CancellationToken;

pub const EVENT_RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;
pub const IDEMPOTENCY_RETENTION_MS: i64 = 24 * 3600 * 1000;
const EVERY: Duration = Duration::from_secs(3600);

pub async fn run(store: Arc<dyn Store>, shutdown: CancellationToken) {
    loop {
        let now = Timestamp::now();
        let events_before = now.plus_millis(-EVENT_RETENTION_MS);
        let idempotency_before = now.plus_millis(-IDEMPOTENCY_RETENTION_MS);
        if let Err(error) = store.purge_expired(events_before, idempotency_before).await {
            tracing::warn!(%error, "purging expired events failed; will try again");
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            () = shutdown.cancelled() => return,
        }
    }
}
