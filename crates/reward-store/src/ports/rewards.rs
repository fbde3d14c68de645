//! Triggers, trigger events, users and credits: the operations that emit reward events.

use async_trait::async_trait;
use reward_core::ids::AccountId;
use reward_core::names::{TriggerId, UserId};

use crate::records::{
    CreditsIssued, IssueCredits, Page, PageRequest, RecordTriggerEvent, Trigger,
    TriggerEventOutcome, TriggerSpec, User,
};
use crate::StoreResult;

#[async_trait]
pub trait Rewards: Send + Sync + 'static {
    /// Creates or replaces a trigger; says which.
    async fn put_trigger(
        &self,
        account: &AccountId,
        trigger: TriggerSpec,
    ) -> StoreResult<(Trigger, bool)>;
    async fn list_triggers(
        &self,
        account: &AccountId,
        page: PageRequest,
    ) -> StoreResult<Page<Trigger>>;
    async fn get_trigger(&self, account: &AccountId, id: &TriggerId) -> StoreResult<Trigger>;
    async fn delete_trigger(&self, account: &AccountId, id: &TriggerId) -> StoreResult<()>;
    /// Records a trigger event, issues its trigger's points and emits the events, honouring the
    /// idempotency key when one is given.
    async fn record_trigger_event(
        &self,
        account: &AccountId,
        request: RecordTriggerEvent,
    ) -> StoreResult<TriggerEventOutcome>;
    /// Adds points to a user's balance by hand and emits `balance.credit_points_issued`.
    async fn issue_credits(
        &self,
        account: &AccountId,
        request: IssueCredits,
    ) -> StoreResult<CreditsIssued>;
    async fn get_user(&self, account: &AccountId, id: &UserId) -> StoreResult<User>;
}
