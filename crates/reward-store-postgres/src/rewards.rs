//! Triggers, trigger events, users' balances and credits: the rewards domain, each change
//! emitting its events through the outbox in the same transaction.
//!
//! Two invariants must hold with many nodes writing at once, and both rest on a row the database
//! locks rather than on anything a node remembers:
//! - one trigger event per `Idempotency-Key`: the key's row is claimed first, with
//!   `INSERT ... ON CONFLICT`, so a second request with the same key waits for the first one's
//!   transaction and then answers with its result (see [`claim_idempotency_key`]);
//! - no lost balance update: the balance is added to in the database
//!   (`balance = users.balance + n`), never written back from a value read before; so are the
//!   user's `sequence` and event position, on the same row in the same statement, so each
//!   change's `sequence` is the next one whichever node writes it.

use reward_core::credit::CreditRule;
use reward_core::idempotency;
use reward_core::ids::{AccountId, TriggerEventId};
use reward_core::names::{IdempotencyKey, Name, TriggerId, UserId};
use reward_core::time::Timestamp;
use reward_store::columns;
use reward_store::handoff::Outbox;
use reward_store::paging::{fetch_limit, page_of, trigger_cursor, trigger_cursor_of};
use reward_store::records::{
    CreditsIssued, IssueCredits, Page, PageRequest, RecordTriggerEvent, Trigger, TriggerEvent,
    TriggerEventOutcome, TriggerSpec, User,
};
use reward_store::rules::{self, NewTriggerEvent};
use reward_store::user_counters::UserCounters;
use reward_store::{StoreError, StoreResult};
use tokio_postgres::Row;

use crate::errors::{from_balance_update, from_pg};
use crate::statements::{Db, Param};
use crate::{outbox, rows, webhooks};

const TRIGGER_COLUMNS: &str = "id, name, rule_kind, rule_amount, created_at, updated_at";

/// A trigger's credit rule, from its `rule_kind` and `rule_amount` columns.
pub fn rule_from_row(
    row: &Row,
    kind_index: usize,
    amount_index: usize,
) -> StoreResult<Option<CreditRule>> {
    Ok(columns::rule_from_columns(
        rows::get(row, kind_index)?,
        rows::json_number(row, amount_index)?,
    ))
}

fn trigger_from_row(row: &Row) -> StoreResult<Trigger> {
    Ok(Trigger {
        id: TriggerId::from_trusted(rows::get(row, 0)?),
        name: Name::from_trusted(rows::get(row, 1)?),
        credit_points: rule_from_row(row, 2, 3)?,
        created_at: rows::timestamp(row, 4)?,
        updated_at: rows::timestamp(row, 5)?,
    })
}

pub async fn put_trigger(
    client: &impl Db,
    account: &AccountId,
    spec: &TriggerSpec,
) -> StoreResult<(Trigger, bool)> {
    let (kind, amount) = columns::rule_columns(spec.credit_points.as_ref());
    // `xmax = 0` holds for a row this statement inserted, not for one it updated: whether the
    // trigger was created is read from the same atomic upsert, so two nodes putting one new
    // trigger at once answer one 201 and one 200.
    let row = client
        .query_one(
            &format!(
                "INSERT INTO triggers (account_id, id, name, rule_kind, rule_amount, created_at,
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)
             ON CONFLICT (account_id, id) DO UPDATE SET name = EXCLUDED.name,
               rule_kind = EXCLUDED.rule_kind, rule_amount = EXCLUDED.rule_amount,
               updated_at = EXCLUDED.updated_at
             RETURNING {TRIGGER_COLUMNS}, xmax = 0"
            ),
            &[
                &account.as_str(),
                &spec.id.as_str(),
                &spec.name.as_str(),
                &kind,
                &amount,
                &Timestamp::now().as_millis(),
            ],
        )
        .await
        .map_err(from_pg)?;
    Ok((trigger_from_row(&row)?, rows::get(&row, 6)?))
}

pub async fn find_trigger(
    client: &impl Db,
    account: &AccountId,
    id: &TriggerId,
) -> StoreResult<Option<Trigger>> {
    let found = client
        .query_opt(
            &format!("SELECT {TRIGGER_COLUMNS} FROM triggers WHERE account_id = $1 AND id = $2"),
            &[&account.as_str(), &id.as_str()],
        )
        .await
        .map_err(from_pg)?;
    found.as_ref().map(trigger_from_row).transpose()
}

/// Newest first by creation time (see `reward_store::paging::trigger_cursor`).
pub async fn list_triggers(
    client: &impl Db,
    account: &AccountId,
    page: &PageRequest,
) -> StoreResult<Page<Trigger>> {
    let (before_time, before_id) = trigger_cursor(page)?;
    let found = client
        .query(
            &format!(
                "SELECT {TRIGGER_COLUMNS} FROM triggers WHERE account_id = $1
             AND (created_at < $2 OR (created_at = $2 AND id < $3))
             ORDER BY created_at DESC, id DESC LIMIT $4"
            ),
            &[
                &account.as_str(),
                &before_time,
                &before_id,
                &fetch_limit(page.limit),
            ],
        )
        .await
        .map_err(from_pg)?;
    let triggers = found
        .iter()
        .map(trigger_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(page_of(triggers, page.limit, trigger_cursor_of))
}

pub async fn delete_trigger(
    client: &impl Db,
    account: &AccountId,
    id: &TriggerId,
) -> StoreResult<()> {
    let removed = client
        .execute(
            "DELETE FROM triggers WHERE account_id = $1 AND id = $2",
            &[&account.as_str(), &id.as_str()],
        )
        .await
        .map_err(from_pg)?;
    if removed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

async fn trigger_event_by_id(
    client: &impl Db,
    account: &AccountId,
    id: &str,
) -> StoreResult<TriggerEvent> {
    let statement = "SELECT id, user_id, trigger_id, value, credit_points_issued, created_at
             FROM trigger_events WHERE account_id = $1 AND id = $2";
    let row = client
        .query_opt(statement, &[&account.as_str(), &id])
        .await
        .map_err(from_pg)?
        .ok_or(StoreError::NotFound)?;
    Ok(TriggerEvent {
        id: TriggerEventId::from_trusted(rows::get(&row, 0)?),
        user: UserId::from_trusted(rows::get(&row, 1)?),
        trigger: TriggerId::from_trusted(rows::get(&row, 2)?),
        value: rows::json_number(&row, 3)?,
        credit_points_issued: rows::get(&row, 4)?,
        created_at: rows::timestamp(&row, 5)?,
    })
}

/// Whose the idempotency key is.
enum KeyClaim {
    /// Ours: no live request holds it (new, or its 24 hours are over); record the event.
    Claimed,
    /// A request recorded before ours holds it: answer as it did.
    Replay(TriggerEvent),
}

/// Claims `key` for the trigger event `recorded` is about to become, or finds who holds it.
///
/// The insert comes first and relies on the primary key, not on a read: when another node's
/// transaction has just inserted the same key, `ON CONFLICT` waits for it to commit and then sees
/// its row, so exactly one of them records a trigger event. (A read-then-insert would let both
/// read "no key" and record two; SERIALIZABLE would make one fail instead of replaying.) An expired
/// key is taken over in the same statement, by the `WHERE` of its `DO UPDATE`.
async fn claim_idempotency_key(
    client: &impl Db,
    account: &AccountId,
    key: &IdempotencyKey,
    fingerprint: &str,
    recorded: &TriggerEventId,
    now: Timestamp,
) -> StoreResult<KeyClaim> {
    let expired_at_or_before = idempotency::forgotten_at_or_before(now).as_millis();
    let claimed = client
        .query_opt(
            "INSERT INTO idempotency_keys (account_id, key, request_fingerprint, trigger_event_id,
             created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (account_id, key) DO UPDATE SET
               request_fingerprint = EXCLUDED.request_fingerprint,
               trigger_event_id = EXCLUDED.trigger_event_id, created_at = EXCLUDED.created_at
             WHERE idempotency_keys.created_at <= $6
             RETURNING 1",
            &[
                &account.as_str(),
                &key.as_str(),
                &fingerprint,
                &recorded.as_str(),
                &now.as_millis(),
                &expired_at_or_before,
            ],
        )
        .await
        .map_err(from_pg)?;
    if claimed.is_some() {
        return Ok(KeyClaim::Claimed);
    }
    let Some(row) = client
        .query_opt(
            "SELECT request_fingerprint, trigger_event_id FROM idempotency_keys
             WHERE account_id = $1 AND key = $2",
            &[&account.as_str(), &key.as_str()],
        )
        .await
        .map_err(from_pg)?
    else {
        // Purged between the two statements: rare, and asking again settles it.
        return Err(StoreError::Unavailable(
            "an idempotency key changed while it was read; try again".into(),
        ));
    };
    if rows::get::<&str>(&row, 0)? != fingerprint {
        return Err(StoreError::IdempotencyConflict);
    }
    let first = trigger_event_by_id(client, account, rows::get(&row, 1)?).await?;
    Ok(KeyClaim::Replay(first))
}

/// Creates the user at balance 0 if new and adds `added` to its counters (the balance, its
/// `sequence` and event position), in one statement that locks the user's row until the
/// transaction ends; returns them after. The table's check refuses a balance past
/// [`reward_core::credit::MAX_BALANCE`] (migration 0004), which fails the statement with
/// [`StoreError::BalanceOverflow`].
async fn add_to_user(
    client: &impl Db,
    account: &AccountId,
    user: &UserId,
    added: UserCounters,
    now: Timestamp,
) -> StoreResult<UserCounters> {
    let statement =
        "INSERT INTO users (account_id, id, balance, sequence, event_position, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (account_id, id) DO UPDATE SET
               balance = users.balance + EXCLUDED.balance,
               sequence = users.sequence + EXCLUDED.sequence,
               event_position = users.event_position + EXCLUDED.event_position
             RETURNING balance, sequence, event_position";
    let row = client
        .query_one(
            statement,
            &[
                &account.as_str(),
                &user.as_str(),
                &added.balance,
                &added.sequence,
                &added.event_position,
                &now.as_millis(),
            ],
        )
        .await
        .map_err(from_balance_update)?;
    Ok(UserCounters {
        balance: rows::get(&row, 0)?,
        sequence: rows::get(&row, 1)?,
        event_position: rows::get(&row, 2)?,
    })
}

/// Trigger events of any accounts, in one statement.
pub async fn insert_trigger_events(
    client: &impl Db,
    recorded: &[(&AccountId, &TriggerEvent)],
) -> StoreResult<()> {
    let columns = TriggerEventColumns::of(recorded);
    client
        .execute(INSERT_TRIGGER_EVENTS, &columns.params())
        .await
        .map_err(from_pg)?;
    Ok(())
}

/// Inserts trigger events passed as [`TriggerEventColumns`], `$1` to `$7`.
pub const INSERT_TRIGGER_EVENTS: &str = "INSERT INTO trigger_events (account_id, id, user_id,
             trigger_id, value, credit_points_issued, created_at)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                  $6::bigint[], $7::bigint[])";

/// How many placeholders [`INSERT_TRIGGER_EVENTS`] has.
pub const TRIGGER_EVENT_PARAMS: usize = 7;

/// Trigger events as the arrays their insert takes, one element per trigger event.
pub struct TriggerEventColumns<'a> {
    accounts: Vec<&'a str>,
    ids: Vec<&'a str>,
    users: Vec<&'a str>,
    triggers: Vec<&'a str>,
    values: Vec<Option<String>>,
    points: Vec<i64>,
    created: Vec<i64>,
}

impl<'a> TriggerEventColumns<'a> {
    pub fn of(recorded: &[(&'a AccountId, &'a TriggerEvent)]) -> Self {
        let column = |field: fn(&'a TriggerEvent) -> &'a str| -> Vec<&'a str> {
            recorded.iter().map(|(_, event)| field(event)).collect()
        };
        Self {
            accounts: recorded
                .iter()
                .map(|(account, _)| account.as_str())
                .collect(),
            ids: column(|event| event.id.as_str()),
            users: column(|event| event.user.as_str()),
            triggers: column(|event| event.trigger.as_str()),
            values: recorded
                .iter()
                .map(|(_, event)| event.value.as_ref().map(ToString::to_string))
                .collect(),
            points: recorded
                .iter()
                .map(|(_, event)| event.credit_points_issued)
                .collect(),
            created: recorded
                .iter()
                .map(|(_, event)| event.created_at.as_millis())
                .collect(),
        }
    }

    /// The seven arrays, in the order of [`INSERT_TRIGGER_EVENTS`]'s placeholders.
    pub fn params(&self) -> [&dyn Param; TRIGGER_EVENT_PARAMS] {
        [
            &self.accounts,
            &self.ids,
            &self.users,
            &self.triggers,
            &self.values,
            &self.points,
            &self.created,
        ]
    }
}

/// Records the trigger event; its deliveries go through `outbox`.
pub async fn record_trigger_event(
    client: &impl Db,
    account: &AccountId,
    request: &RecordTriggerEvent,
    outbox: &mut Outbox,
) -> StoreResult<TriggerEventOutcome> {
    let new = NewTriggerEvent::new(request, Timestamp::now());
    if let Some((key, fingerprint)) = &request.idempotency {
        let claim =
            claim_idempotency_key(client, account, key, fingerprint, &new.id, new.at).await?;
        if let KeyClaim::Replay(first) = claim {
            return Ok(TriggerEventOutcome::Replayed(first));
        }
    }
    // Statements that do not need an earlier one's answer go out together (pipelined): the
    // trigger's rule and the subscribers of its `trigger_event.created` (which does not depend on
    // the points); then, after the user's row (which gives the event its position), the event,
    // the trigger event's row and the deliveries. An unknown trigger rolls it all back.
    let created = new.created_event();
    let (trigger, subscribers) = tokio::try_join!(
        find_trigger(client, account, &request.trigger),
        webhooks::subscribed(client, account, &created, outbox.cipher()),
    )?;
    let trigger = trigger.ok_or_else(|| StoreError::UnknownTrigger(request.trigger.to_string()))?;
    let recorded = new.record(trigger.credit_points.as_ref())?;
    // The user's row goes first and alone: when its balance would overflow, the statements
    // pipelined after it would fail too ("transaction aborted"), and their error could be the one
    // reported.
    let after = add_to_user(
        client,
        account,
        &recorded.user,
        UserCounters::added_by_trigger_event(&recorded),
        recorded.created_at,
    )
    .await?;
    let created = rules::positioned_created_event(created, &recorded, &after);
    let row = [(account, &recorded)];
    tokio::try_join!(
        insert_trigger_events(client, &row),
        outbox::insert_event(client, account, &created),
        outbox::queue(client, account, &created, subscribers, outbox),
    )?;
    if let Some(issued) = rules::points_issued_event(&recorded, &after, request.trace.as_ref()) {
        outbox::emit(client, account, &issued, outbox).await?;
    }
    Ok(TriggerEventOutcome::Recorded(recorded))
}

/// Issues the credits; their event's deliveries go through `outbox`.
pub async fn issue_credits(
    client: &impl Db,
    account: &AccountId,
    request: &IssueCredits,
    outbox: &mut Outbox,
) -> StoreResult<CreditsIssued> {
    let now = Timestamp::now();
    let added = UserCounters::added_by_credits(request.points);
    let after = add_to_user(client, account, &request.user, added, now).await?;
    let (issued, event) = rules::credits_issued(request, &after, now);
    outbox::emit(client, account, &event, outbox).await?;
    Ok(issued)
}

pub async fn get_user(client: &impl Db, account: &AccountId, id: &UserId) -> StoreResult<User> {
    let row = client
        .query_opt(
            "SELECT id, balance, created_at FROM users WHERE account_id = $1 AND id = $2",
            &[&account.as_str(), &id.as_str()],
        )
        .await
        .map_err(from_pg)?
        .ok_or(StoreError::NotFound)?;
    Ok(User {
        id: UserId::from_trusted(rows::get(&row, 0)?),
        balance: rows::get(&row, 1)?,
        created_at: rows::timestamp(&row, 2)?,
    })
}
