//! The answers kept for `Idempotency-Key`s of the API's creating `POST`s (see
//! [`crate::idempotent`] for the rules).

use async_trait::async_trait;
use reward_core::ids::AccountId;
use reward_core::names::IdempotencyKey;
use reward_core::time::Timestamp;

use crate::idempotent::{Reservation, StoredResponse};
use crate::StoreResult;

#[async_trait]
pub trait IdempotentRequests: Send + Sync + 'static {
    /// Reserves `key` for the request with this fingerprint, or says what it holds already
    /// ([`crate::idempotent::verdict`]); a key used with another fingerprint is
    /// `StoreError::IdempotencyConflict`.
    async fn reserve_request(
        &self,
        account: &AccountId,
        key: &IdempotencyKey,
        fingerprint: &str,
        now: Timestamp,
    ) -> StoreResult<Reservation>;
    /// Keeps the answer to the request that reserved `key` at `reserved` (sealed at rest).
    async fn complete_request(
        &self,
        account: &AccountId,
        key: &IdempotencyKey,
        reserved: Timestamp,
        response: StoredResponse,
    ) -> StoreResult<()>;
    /// Frees `key` after a request that created nothing (reserved at `reserved`).
    async fn release_request(
        &self,
        account: &AccountId,
        key: &IdempotencyKey,
        reserved: Timestamp,
    ) -> StoreResult<()>;
}
