//! Accounts, their API keys, and the dashboard's sessions (each opened with an API key).

use async_trait::async_trait;
use reward_core::ids::{AccountId, ApiKeyId};
use reward_core::names::Name;
use reward_core::time::Timestamp;

use crate::records::{Account, ApiKey, NewApiKeyRecord, NewSession, Session};
use crate::StoreResult;

#[async_trait]
pub trait Accounts: Send + Sync + 'static {
    /// Creates an account with its first API key (stored as a hash only).
    async fn create_account(&self, name: Name, key: NewApiKeyRecord) -> StoreResult<Account>;
    async fn list_accounts(&self) -> StoreResult<Vec<Account>>;
    /// The account an API key (by hash) belongs to, if the key exists and is not revoked.
    async fn authenticate(&self, key_hash: &str) -> StoreResult<Option<AccountId>>;
    async fn create_api_key(
        &self,
        account: &AccountId,
        key: NewApiKeyRecord,
    ) -> StoreResult<ApiKey>;
    async fn list_api_keys(&self, account: &AccountId) -> StoreResult<Vec<ApiKey>>;
    async fn revoke_api_key(&self, account: &AccountId, key: &ApiKeyId) -> StoreResult<()>;
    /// Records that keys were used (callers batch and throttle this).
    async fn touch_api_keys(&self, used: Vec<(String, Timestamp)>) -> StoreResult<()>;
}

#[async_trait]
pub trait Sessions: Send + Sync + 'static {
    /// Opens a dashboard session for the API key with this hash, when that key exists and is not
    /// revoked (`None` otherwise). Sessions that have expired are removed on the way, which keeps
    /// the table small without a sweeper.
    async fn start_session(
        &self,
        key_hash: &str,
        session: NewSession,
    ) -> StoreResult<Option<Session>>;
    /// The session whose token has this hash, while it is live: not expired at `now`, and its API
    /// key not revoked.
    async fn find_session(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<Session>>;
    /// Ends a session (sign out). Ending one that does not exist is not an error.
    async fn end_session(&self, token_hash: &str) -> StoreResult<()>;
}
