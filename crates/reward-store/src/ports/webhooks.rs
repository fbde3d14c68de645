//! Webhooks and their secrets.

use async_trait::async_trait;
use reward_core::event::NewEvent;
use reward_core::ids::{AccountId, WebhookId};
use reward_core::signing::WebhookSecret;
use reward_core::time::Timestamp;

use crate::records::{
    Delivery, NewWebhook, Page, PageRequest, Webhook, WebhookPatch, WebhookSecrets,
};
use crate::StoreResult;

#[async_trait]
pub trait Webhooks: Send + Sync + 'static {
    async fn create_webhook(
        &self,
        account: &AccountId,
        webhook: NewWebhook,
    ) -> StoreResult<Webhook>;
    async fn list_webhooks(
        &self,
        account: &AccountId,
        page: PageRequest,
    ) -> StoreResult<Page<Webhook>>;
    async fn get_webhook(&self, account: &AccountId, id: &WebhookId) -> StoreResult<Webhook>;
    async fn update_webhook(
        &self,
        account: &AccountId,
        id: &WebhookId,
        patch: WebhookPatch,
    ) -> StoreResult<Webhook>;
    /// Deletes a webhook and cancels (removes) its deliveries.
    async fn delete_webhook(&self, account: &AccountId, id: &WebhookId) -> StoreResult<()>;
    async fn webhook_secrets(
        &self,
        account: &AccountId,
        id: &WebhookId,
    ) -> StoreResult<WebhookSecrets>;
    /// Makes `secret` current; the old one keeps signing until `previous_expires_at`. With
    /// `replaces` (the [`WebhookSecret::version`] of the secret the caller saw), only while that
    /// secret is still current, checked and rotated at once: else `SecretChanged`, and nothing
    /// changes (two sends of one form rotate once).
    async fn rotate_webhook_secret(
        &self,
        account: &AccountId,
        id: &WebhookId,
        secret: WebhookSecret,
        previous_expires_at: Timestamp,
        replaces: Option<&str>,
    ) -> StoreResult<WebhookSecrets>;
    /// Stores `event` and one pending delivery of it to this webhook only.
    async fn send_test_event(
        &self,
        account: &AccountId,
        id: &WebhookId,
        event: NewEvent,
    ) -> StoreResult<Delivery>;
}
