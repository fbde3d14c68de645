//! A rate-limited webhook's refill that falls due while the clock moves on after a claim.

use std::collections::HashMap;
use std::time::Duration;

use reward_core::endpoint::{EventSelection, RateLimit};
use reward_core::event::EventType;
use reward_core::names::{Name, TargetPolicy, UserId, WebhookUrl};
use reward_core::signing::WebhookSecret;
use reward_core::time::Timestamp;

use crate::records::{ClaimRequest, IssueCredits, NewWebhook, WebhookSettings};
use crate::{Accounts, DeliveryQueue, Rewards, Webhooks};

/// One claim grants a limited webhook a second of slots (20 at 20/s) and moves its next free
/// start a second ahead; a second claim right after leaves it alone (its slots reach past that
/// claim's refill margin). 600 ms later the refill margin has reached the next free start:
/// `next_due_at` must say so at once, though no claim has seen the webhook due. (It used to count
/// only from its own clock, skip the webhook, and leave its deliveries to the idle poll, a pause
/// in the webhook's pacing of half a second.) Once a claim has refilled it, the next refill is
/// announced for when it falls due, not now; and once a claim found nothing left to refill, no
/// refill is announced again: the worker does not spin.
pub async fn a_refill_due_since_the_last_claim_is_announced<S>(store: &S)
where
    S: Accounts + Webhooks + Rewards + DeliveryQueue,
{
    let account = super::new_account(store).await;
    let limited = NewWebhook {
        name: Name::parse("Limited").expect("name"),
        url: WebhookUrl::parse("http://127.0.0.1:9/hook", TargetPolicy::AllowInsecure)
            .expect("url"),
        events: EventSelection::Only(vec![EventType::BalanceCreditPointsIssued]),
        enabled: true,
        secret: WebhookSecret::generate(),
        settings: WebhookSettings {
            rate_limit: Some(RateLimit::new(20).expect("limit")),
            ..WebhookSettings::default()
        },
    };
    store
        .create_webhook(&account, limited)
        .await
        .expect("webhook");
    for _ in 0..30 {
        let credits = IssueCredits {
            user: UserId::parse("u1").expect("user"),
            points: 1,
            reason: None,
            trace: None,
        };
        store
            .issue_credits(&account, credits)
            .await
            .expect("credits");
    }
    let claim = || async {
        let now = Timestamp::now();
        store
            .claim_due_deliveries(ClaimRequest {
                now,
                lease_until: now.plus_millis(60_000),
                limit: 100,
                per_webhook_limit: 1000,
                in_flight: HashMap::new(),
            })
            .await
            .expect("claim")
            .deliveries
            .len()
    };
    let next_due = || async {
        store
            .next_due_at(Timestamp::now())
            .await
            .expect("next due")
            .map(|due| due.as_millis() - Timestamp::now().as_millis())
    };

    assert_eq!(claim().await, 20, "one second of slots at 20/s");
    assert_eq!(
        claim().await,
        0,
        "its slots reach past this claim's refill margin"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let due_in = next_due().await.expect("a refill is due");
    assert!(due_in <= 0, "the refill is due now, not in {due_in} ms");

    assert_eq!(claim().await, 10, "the refill takes the rest");
    let due_in = next_due().await.expect("the next refill");
    assert!(
        (100..=1_000).contains(&due_in),
        "the next refill falls due when the new slots run low, not in {due_in} ms"
    );
    tokio::time::sleep(Duration::from_millis(
        u64::try_from(due_in).unwrap_or(0) + 50,
    ))
    .await;
    assert_eq!(claim().await, 0, "nothing is left to refill");
    // (The PostgreSQL store names when the leases run out, a minute on; SQLite nothing.)
    let due_in = next_due().await;
    assert!(
        due_in.is_none_or(|due_in| due_in > 30_000),
        "nothing is due until the leases run out, not in {due_in:?} ms"
    );
}
