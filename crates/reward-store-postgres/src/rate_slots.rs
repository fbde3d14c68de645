//! Rate-limited webhooks in a claim: start slots granted from each webhook's next free start,
//! shared by every node.
//!
//! A claim locks the rows of the limited webhooks among its candidates (`FOR NO KEY UPDATE SKIP
//! LOCKED`: it never waits, so it cannot deadlock with another claim, a webhook's deletion or its
//! update, and it does not conflict with the `FOR KEY SHARE` of new deliveries), reads their
//! `rate_next_at`, grants slots from it ([`SlotGrant`], on the database's clock) and writes it
//! back past the slots granted before committing. So two nodes' grants to one webhook never
//! overlap: the second reads what the first committed, or skips the webhook this time (its row
//! was locked) and leaves its deliveries pending. Nothing here runs unless a candidate belongs to
//! a limited webhook.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use reward_core::endpoint::SlotGrant;
use reward_store::columns;
use reward_store::records::StartSlot;
use reward_store::StoreResult;

use crate::errors::from_pg;
use crate::rows;
use crate::statements::Db;

/// Locks the given webhooks' rows unless another transaction holds one; returns their limit and
/// next free start.
const LOCK_LIMITED: &str = "SELECT account_id, id, rate_limit, rate_next_at FROM webhooks
    WHERE (account_id, id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
      AND rate_limit IS NOT NULL
    FOR NO KEY UPDATE SKIP LOCKED";

const STORE_NEXT_FREE: &str = "UPDATE webhooks w SET rate_next_at = given.next_free
    FROM unnest($1::text[], $2::text[], $3::bigint[]) AS given(account_id, id, next_free)
    WHERE w.account_id = given.account_id AND w.id = given.id";

type WebhookKey = (String, String);

/// What a candidate of a claim may do about its webhook's rate limit.
pub enum RateSlot {
    /// Its webhook has no limit.
    Unlimited,
    /// Start at this slot.
    Granted(StartSlot),
    /// Not now: its webhook's slots up to the horizon are granted, or another node holds its row.
    Held,
}

/// The limited webhooks one claim has met, and what it granted them.
pub struct RateSlots {
    /// The database's clock when the claim began, in microseconds, and when this node had read
    /// it (the answer arrived).
    now: i64,
    read_at: Instant,
    /// How long the read took: the database's clock was read at some moment of it, so a slot
    /// placed from `read_at` is never early but may be late by up to this much. Each start's
    /// window is shortened by it, so starts stay within their slots on the database's clock.
    uncertainty_micros: i64,
    grants: HashMap<WebhookKey, SlotGrant>,
    /// Webhooks whose rows another transaction held: none of their deliveries this claim.
    held: HashSet<WebhookKey>,
}

impl RateSlots {
    /// The database's clock read as `now`, asked at `asked_at`, answered at `answered_at`.
    pub fn new(now: i64, asked_at: Instant, answered_at: Instant) -> Self {
        let took = answered_at.saturating_duration_since(asked_at);
        Self {
            now,
            read_at: answered_at,
            uncertainty_micros: i64::try_from(took.as_micros()).unwrap_or(i64::MAX),
            grants: HashMap::new(),
            held: HashSet::new(),
        }
    }

    /// Locks the rows of the limited webhooks in `limited` (account, webhook) not met yet.
    pub async fn lock(&mut self, client: &impl Db, limited: &[(&str, &str)]) -> StoreResult<()> {
        let new: HashSet<WebhookKey> = limited
            .iter()
            .map(|(account, webhook)| ((*account).to_owned(), (*webhook).to_owned()))
            .filter(|key| !self.grants.contains_key(key) && !self.held.contains(key))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let (accounts, ids): (Vec<&str>, Vec<&str>) = new
            .iter()
            .map(|(account, webhook)| (account.as_str(), webhook.as_str()))
            .unzip();
        for row in client
            .query(LOCK_LIMITED, &[&accounts, &ids])
            .await
            .map_err(from_pg)?
        {
            let key: WebhookKey = (rows::get(&row, 0)?, rows::get(&row, 1)?);
            let limit = rows::get::<Option<i32>>(&row, 2)?.map(i64::from);
            let Some(limit) = columns::rate_limit_from_column(limit) else {
                continue;
            };
            let next_free: Option<i64> = rows::get(&row, 3)?;
            self.grants
                .insert(key, SlotGrant::new(limit, next_free, self.now));
        }
        // Locked elsewhere, or no longer limited (this claim then leaves it for the next one).
        self.held
            .extend(new.into_iter().filter(|key| !self.grants.contains_key(key)));
        Ok(())
    }

    /// A start slot for a delivery to (`account`, `webhook`), which `limited` says has a limit.
    pub fn slot_for(&mut self, account: &str, webhook: &str, limited: bool) -> RateSlot {
        if !limited {
            return RateSlot::Unlimited;
        }
        let key = (account.to_owned(), webhook.to_owned());
        let Some(grant) = self.grants.get_mut(&key) else {
            return RateSlot::Held;
        };
        let window = grant
            .window_micros()
            .saturating_sub(self.uncertainty_micros);
        if window <= 0 {
            // The clock read took too long to place any start within its slot: not this claim.
            self.held.insert(key);
            return RateSlot::Held;
        }
        match grant.take() {
            Some(slot) => RateSlot::Granted(StartSlot::new(self.read_at, self.now, slot, window)),
            None => RateSlot::Held,
        }
    }

    /// Webhooks this claim can give no more slots: the next candidate search leaves them out.
    pub fn exhausted(&self) -> impl Iterator<Item = &str> {
        self.grants
            .iter()
            .filter(|(_, grant)| grant.exhausted())
            .map(|((_, webhook), _)| webhook.as_str())
            .chain(self.held.iter().map(|(_, webhook)| webhook.as_str()))
    }

    /// Writes each webhook's next free start past the slots granted to it.
    pub async fn store(&self, client: &impl Db) -> StoreResult<()> {
        let mut accounts = Vec::new();
        let mut ids = Vec::new();
        let mut next_frees = Vec::new();
        for ((account, webhook), grant) in &self.grants {
            if let Some(next_free) = grant.next_free() {
                accounts.push(account.as_str());
                ids.push(webhook.as_str());
                next_frees.push(next_free);
            }
        }
        if accounts.is_empty() {
            return Ok(());
        }
        client
            .execute(STORE_NEXT_FREE, &[&accounts, &ids, &next_frees])
            .await
            .map_err(from_pg)?;
        Ok(())
    }
}
