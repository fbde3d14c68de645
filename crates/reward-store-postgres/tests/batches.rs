//! Trigger events recorded at once share a batch (`batched.rs`) whatever their accounts: a batch
//! of one account reads its webhooks by that account, one of several by the list of them. Both
//! must give every account's events to its own webhooks and no one else's.
//!
//! Runs whenever a PostgreSQL server answers (see `nodes.rs`), directly and through PgBouncer
//! (statements as functions); skipped with one line otherwise, unless `REWARD_REQUIRE_POSTGRES=1`.

use std::sync::Arc;

use reward_core::credit::CreditRule;
use reward_core::endpoint::EventSelection;
use reward_core::ids::{AccountId, WebhookId};
use reward_core::names::{Name, TriggerId, UserId};
use reward_store::records::{PageRequest, RecordTriggerEvent, TriggerSpec};
use reward_store::testing::{loopback_webhook, new_account};
use reward_store::{EventLog, Rewards, Webhooks};
use reward_store_postgres::testing::ScratchDatabase;
use reward_store_postgres::PostgresStore;
use tokio::task::JoinSet;

mod support {
    pub mod pgbouncer;
    pub mod route;
}
use support::route::{connect_to, Route};

/// Trigger events per account, all recorded at once.
const PER_ACCOUNT: usize = 16;

#[tokio::test]
async fn accounts_recorded_together_each_reach_only_their_own_webhooks_direct() {
    accounts_recorded_together_each_reach_only_their_own_webhooks(Route::Direct).await;
}

#[tokio::test]
async fn accounts_recorded_together_each_reach_only_their_own_webhooks_through_pgbouncer() {
    accounts_recorded_together_each_reach_only_their_own_webhooks(Route::ThroughPgBouncer).await;
}

async fn accounts_recorded_together_each_reach_only_their_own_webhooks(route: Route) {
    let Some(database) = ScratchDatabase::create("reward_store_test").await else {
        return;
    };
    let Some((url, options, bouncer)) = connect_to(route, &database).await else {
        return;
    };
    let store = Arc::new(
        PostgresStore::open_with(&url, &options)
            .await
            .expect("open"),
    );

    let mut accounts: Vec<(AccountId, WebhookId)> = Vec::new();
    for _ in 0..2 {
        let account = new_account(&*store).await;
        let webhook = store
            .create_webhook(
                &account,
                loopback_webhook("Everything", EventSelection::Every),
            )
            .await
            .expect("webhook")
            .id;
        let trigger = TriggerSpec {
            id: TriggerId::parse("signup").expect("trigger"),
            name: Name::parse("Sign-up").expect("name"),
            credit_points: Some(CreditRule::Fixed(1)),
        };
        store.put_trigger(&account, trigger).await.expect("trigger");
        accounts.push((account, webhook));
    }

    // All at once, the accounts alternating: batches hold both.
    let mut recording = JoinSet::new();
    for n in 0..PER_ACCOUNT * accounts.len() {
        let account = accounts[n % accounts.len()].0.clone();
        let store = Arc::clone(&store);
        recording.spawn(async move {
            let request = RecordTriggerEvent {
                user: UserId::parse(&format!("user-{n}")).expect("user"),
                trigger: TriggerId::parse("signup").expect("trigger"),
                value: None,
                idempotency: None,
                trace: None,
            };
            store
                .record_trigger_event(&account, request)
                .await
                .expect("recorded");
        });
    }
    while let Some(done) = recording.join_next().await {
        done.expect("recording task");
    }

    for (account, webhook) in &accounts {
        let page = PageRequest {
            limit: 100,
            cursor: None,
        };
        let deliveries = store
            .list_deliveries(account, webhook, None, page)
            .await
            .expect("deliveries");
        // Two events per trigger event (created, points issued), one delivery each.
        assert_eq!(
            deliveries.items.len(),
            PER_ACCOUNT * 2,
            "{account}'s deliveries"
        );
        for delivery in &deliveries.items {
            store
                .get_event(account, &delivery.event_id)
                .await
                .expect("each delivery's event is its own account's");
        }
    }
    drop(store);
    drop(bouncer);
}
