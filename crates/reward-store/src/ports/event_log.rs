//! Events, their deliveries and attempts as accounts see them (the API and the dashboard): reading
//! them, asking for deliveries again, and the statistics the dashboard and `/metrics` show.

use async_trait::async_trait;
use reward_core::ids::{AccountId, DeliveryId, EventId, WebhookId};
use reward_core::stats::StatsPeriod;
use reward_core::time::Timestamp;

use crate::records::{
    AttemptStats, Delivery, DeliveryQuery, DeliveryStatus, DeliveryWithAttempts, Event, EventQuery,
    Page, PageRequest, QueueStats, WebhookStats,
};
use crate::StoreResult;

#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    async fn list_events(
        &self,
        account: &AccountId,
        query: &EventQuery,
        page: PageRequest,
    ) -> StoreResult<Page<Event>>;
    async fn get_event(&self, account: &AccountId, id: &EventId) -> StoreResult<Event>;
    /// One webhook's deliveries; [`crate::StoreError::NotFound`] when the account has no such
    /// webhook.
    async fn list_deliveries(
        &self,
        account: &AccountId,
        webhook: &WebhookId,
        status: Option<DeliveryStatus>,
        page: PageRequest,
    ) -> StoreResult<Page<Delivery>>;
    /// The account's deliveries that `query` keeps, newest first. An id that names nothing
    /// matches nothing.
    async fn search_deliveries(
        &self,
        account: &AccountId,
        query: &DeliveryQuery,
        page: PageRequest,
    ) -> StoreResult<Page<Delivery>>;
    async fn get_delivery(
        &self,
        account: &AccountId,
        id: &DeliveryId,
    ) -> StoreResult<DeliveryWithAttempts>;
    /// Queues a new delivery of a stored event to one webhook of the account, whatever the
    /// webhook subscribes to: the same event id and payload bytes, due now. An unknown event is
    /// `NotFound`; an unknown webhook `UnknownWebhook`, a disabled one `WebhookDisabled`
    /// ([`crate::rules::resend_target`]).
    async fn resend_event(
        &self,
        account: &AccountId,
        event: &EventId,
        webhook: &WebhookId,
    ) -> StoreResult<Delivery>;
    /// Asks for one attempt now, whatever the delivery's status.
    async fn request_retry(&self, account: &AccountId, id: &DeliveryId) -> StoreResult<Delivery>;
    /// Re-queues every failed delivery of the webhook created at or after `since`; returns how many.
    async fn recover_deliveries(
        &self,
        account: &AccountId,
        webhook: &WebhookId,
        since: Timestamp,
    ) -> StoreResult<u64>;
    /// Per webhook of the account that had any, the attempts started from the hour `since` falls
    /// in (whole hours of the roll-ups, `crate::rollups`) and how many succeeded: the dashboard's
    /// recent success rate.
    async fn attempt_stats(
        &self,
        account: &AccountId,
        since: Timestamp,
    ) -> StoreResult<Vec<AttemptStats>>;
    /// The webhook's statistics over `period` ending with the bucket `now` falls in, read from
    /// roll-ups (`crate::rollups`); 404 for another account's webhook.
    async fn webhook_stats(
        &self,
        account: &AccountId,
        webhook: &WebhookId,
        period: StatsPeriod,
        now: Timestamp,
    ) -> StoreResult<WebhookStats>;
    /// How many deliveries are pending, and since when the oldest waits.
    async fn queue_stats(&self) -> StoreResult<QueueStats>;
}
