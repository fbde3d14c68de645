//! The product's rules about stored records, decided once for every backend: what a trigger
//! event, a manual credit, a webhook (new or patched), a new delivery and an attempt's outcome
//! produce — the records to write and the events to emit. Pure functions: no I/O, no SQL. Each
//! backend reads what a rule needs, calls it, and only translates the answer into its dialect.
//!
//! Why here and not in `reward-core`: the rules take and return the store's records
//! ([`TriggerEvent`], [`Webhook`], [`Delivery`], ...), which live in this crate because they are
//! the storage contract's vocabulary; moving them into the core would move every `use` in the
//! server and both backends for no gain in meaning. What needs no record stays in the core and
//! is called from here: the points a rule gives ([`CreditRule::points_for`]), the payloads
//! ([`NewEvent`]), the state after an attempt (`reward_core::delivery`).
//!
//! Values the database computes stay in the database (a balance is added to in SQL, so nodes
//! never overwrite each other): a rule that depends on one takes it as an argument.

use reward_core::credit::{CreditRule, TooManyPoints};
use reward_core::endpoint::Ordering;
use reward_core::event::{EventType, NewEvent, UserPosition};
use reward_core::ids::{DeliveryId, TriggerEventId, WebhookId};
use reward_core::time::Timestamp;
use reward_core::trace::TraceParent;

use crate::records::{
    ApiKey, CreditsIssued, Delivery, DeliveryStatus, DeliveryUpdate, IssueCredits, NewApiKeyRecord,
    NewWebhook, RecordTriggerEvent, Subscription, TriggerEvent, TriggerEventOutcome, Webhook,
    WebhookPatch,
};
use crate::user_counters::UserCounters;
use crate::{StoreError, StoreResult};

// Trigger events.

/// A trigger event about to be recorded. Its id and time are fixed before anything is read, so
/// the event it emits whatever its points ([`Self::created_event`]) can be written while its
/// trigger's rule is still being read.
#[derive(Debug)]
pub struct NewTriggerEvent<'a> {
    pub id: TriggerEventId,
    pub request: &'a RecordTriggerEvent,
    pub at: Timestamp,
}

impl<'a> NewTriggerEvent<'a> {
    /// A new trigger event for `request`, under a fresh id.
    pub fn new(request: &'a RecordTriggerEvent, at: Timestamp) -> Self {
        Self {
            id: TriggerEventId::generate(),
            request,
            at,
        }
    }

    /// Its `trigger_event.created`.
    pub fn created_event(&self) -> NewEvent {
        NewEvent::trigger_event_created(
            self.at,
            &self.id,
            &self.request.user,
            self.request.value.as_ref(),
            &self.request.trigger,
        )
        .caused_by(self.request.trace.as_ref())
    }

    /// The trigger event as recorded: the points its trigger's rule gives for its value (none
    /// without a rule). More than 10^12 points is refused, and nothing is recorded.
    pub fn record(self, rule: Option<&CreditRule>) -> Result<TriggerEvent, TooManyPoints> {
        let points = match rule {
            Some(rule) => rule.points_for(self.request.value.as_ref())?,
            None => 0,
        };
        Ok(TriggerEvent {
            id: self.id,
            user: self.request.user.clone(),
            trigger: self.request.trigger.clone(),
            value: self.request.value.clone(),
            credit_points_issued: points,
            created_at: self.at,
        })
    }
}

/// The `trigger_event.created` of a recorded trigger event (the same as
/// [`NewTriggerEvent::created_event`] made it, for writers that build events after recording), at
/// its position among its user's events: `after` holds the user's counters right after the
/// trigger event was recorded; `cause` is the traced request that recorded it, if any.
pub fn created_event(
    recorded: &TriggerEvent,
    after: &UserCounters,
    cause: Option<&TraceParent>,
) -> NewEvent {
    let event = NewEvent::trigger_event_created(
        recorded.created_at,
        &recorded.id,
        &recorded.user,
        recorded.value.as_ref(),
        &recorded.trigger,
    )
    .caused_by(cause);
    positioned_created_event(event, recorded, after)
}

/// `created` (the recorded trigger event's `trigger_event.created`, made before its user's
/// counters were known) at its position: before the balance change it caused, if any, which is
/// the user's last event.
pub fn positioned_created_event(
    created: NewEvent,
    recorded: &TriggerEvent,
    after: &UserCounters,
) -> NewEvent {
    let position = after.event_position - i64::from(issues_points(recorded));
    created.at_user_position(&recorded.user, position)
}

/// A trigger event emits `balance.credit_points_issued` (a change of its user's balance) only when
/// its rule gave points.
pub(crate) fn issues_points(recorded: &TriggerEvent) -> bool {
    recorded.credit_points_issued > 0
}

/// The `balance.credit_points_issued` a recorded trigger event emits after its
/// `trigger_event.created`, when it issued points; `after` holds the user's counters right after
/// it (its balance, sequence and position); `cause` is the traced request that recorded it, if any.
pub fn points_issued_event(
    recorded: &TriggerEvent,
    after: &UserCounters,
    cause: Option<&TraceParent>,
) -> Option<NewEvent> {
    issues_points(recorded).then(|| {
        NewEvent::credit_points_issued(
            recorded.created_at,
            &recorded.user,
            recorded.credit_points_issued,
            after.balance,
            after.sequence,
            Some(&recorded.id),
            None,
        )
        .at_user_position(&recorded.user, after.event_position)
        .caused_by(cause)
    })
}

/// The types of the events a recorded trigger event emitted, in order.
fn trigger_event_emits(recorded: &TriggerEvent) -> &'static [EventType] {
    if issues_points(recorded) {
        &[
            EventType::TriggerEventCreated,
            EventType::BalanceCreditPointsIssued,
        ]
    } else {
        &[EventType::TriggerEventCreated]
    }
}

impl TriggerEventOutcome {
    /// The types of the events this call emitted, in order: what a trigger event emits when it
    /// was recorded now, nothing when the answer replays an earlier one. What `/metrics` counts.
    pub fn emitted(&self) -> &'static [EventType] {
        match self {
            TriggerEventOutcome::Recorded(recorded) => trigger_event_emits(recorded),
            TriggerEventOutcome::Replayed(_) => &[],
        }
    }
}

// Credits issued by hand.

/// What issuing credits by hand produces once the user's counters after it are known (`after`):
/// the answer, and its `balance.credit_points_issued` (always emitted: the points are positive,
/// which the API checks before calling the store).
pub fn credits_issued(
    request: &IssueCredits,
    after: &UserCounters,
    at: Timestamp,
) -> (CreditsIssued, NewEvent) {
    let event = NewEvent::credit_points_issued(
        at,
        &request.user,
        request.points,
        after.balance,
        after.sequence,
        None,
        request.reason.as_deref(),
    )
    .at_user_position(&request.user, after.event_position)
    .caused_by(request.trace.as_ref());
    let issued = CreditsIssued {
        user: request.user.clone(),
        points: request.points,
        balance: after.balance,
    };
    (issued, event)
}

impl CreditsIssued {
    /// The types of the events issuing these credits emitted (see [`credits_issued`]).
    pub fn emitted(&self) -> &'static [EventType] {
        &[EventType::BalanceCreditPointsIssued]
    }
}

// API keys.

/// An API key as stored and shown: never used yet.
pub fn new_api_key(key: &NewApiKeyRecord, at: Timestamp) -> ApiKey {
    ApiKey {
        id: key.id.clone(),
        name: key.name.clone(),
        display_prefix: key.display_prefix.clone(),
        created_at: at,
        last_used_at: None,
    }
}

// Webhooks.

/// A webhook as created: a fresh id, never disabled by Reward yet.
pub fn new_webhook(new: &NewWebhook, at: Timestamp) -> Webhook {
    Webhook {
        id: WebhookId::generate(),
        name: new.name.clone(),
        url: new.url.clone(),
        events: new.events.clone(),
        enabled: new.enabled,
        disabled_reason: None,
        settings: new.settings.clone(),
        created_at: at,
        updated_at: at,
    }
}

/// The webhook after `patch`: each field given replaces the stored one, and any change restarts
/// its `updated_at` (which the disabling rule counts failures from).
pub fn patched(mut webhook: Webhook, patch: &WebhookPatch, at: Timestamp) -> Webhook {
    if let Some(name) = &patch.name {
        webhook.name = name.clone();
    }
    if let Some(url) = &patch.url {
        webhook.url = url.clone();
    }
    if let Some(events) = &patch.events {
        webhook.events = events.clone();
    }
    let settings = &mut webhook.settings;
    if let Some(filter) = &patch.filter {
        settings.filter = filter.clone();
    }
    if let Some(headers) = &patch.headers {
        settings.headers = headers.clone();
    }
    if let Some(description) = &patch.description {
        settings.description = description.clone();
    }
    if let Some(metadata) = &patch.metadata {
        settings.metadata = metadata.clone();
    }
    if let Some(rate_limit) = patch.rate_limit {
        settings.rate_limit = rate_limit;
    }
    if let Some(ordering) = patch.ordering {
        settings.ordering = ordering;
    }
    if let Some(enabled) = patch.enabled {
        webhook.enabled = enabled;
        // Enabling again is the account's answer to whatever made Reward disable it.
        if enabled {
            webhook.disabled_reason = None;
        }
    }
    webhook.updated_at = at;
    webhook
}

/// An event as a filter reads it: parsed from its payload on first need, once for all of the
/// webhooks it is matched against (most webhooks have no filter, and then it is never parsed).
pub struct EventForMatching<'a> {
    event: &'a NewEvent,
    parsed: Option<serde_json::Value>,
}

impl<'a> EventForMatching<'a> {
    pub fn new(event: &'a NewEvent) -> Self {
        Self {
            event,
            parsed: None,
        }
    }

    fn parsed(&mut self) -> &serde_json::Value {
        let payload = &self.event.payload;
        // Payloads are JSON Reward made; one that did not parse would match no filter.
        self.parsed
            .get_or_insert_with(|| serde_json::from_str(payload).unwrap_or_default())
    }
}

/// Whether `event` goes to a webhook with this subscription: its type is selected, and its
/// filter, if any, matches the whole event `{id, type, time, data}`. An event a filter rejects
/// gets no delivery at all for that webhook.
pub fn receives(subscription: &Subscription, event: &mut EventForMatching<'_>) -> bool {
    if !subscription.events.includes(event.event.event_type) {
        return false;
    }
    match &subscription.filter {
        None => true,
        Some(filter) => filter.matches(event.parsed()),
    }
}

// Deliveries.

/// Where a new delivery of `event` to a webhook ordered by `ordering` waits its turn: on a
/// `per_user` webhook, an event about a user waits behind that user's earlier ones. Every other
/// delivery (unordered webhooks; test events, `webhook.disabled` and resends, which carry no
/// position) goes on its own. An ordered delivery is never handed off: a claim decides its turn.
pub fn delivery_order(ordering: Ordering, event: &NewEvent) -> Option<&UserPosition> {
    event
        .user_position
        .as_ref()
        .filter(|_| ordering.is_per_user())
}

/// What a change of a webhook's ordering does to its deliveries not yet started (pending and not
/// leased): `Some(ordering)` when it changed, for the store to order them by their events'
/// positions (`per_user`) or to release them (`none`); `None` when it stayed.
pub fn reordering(before: Ordering, after: Ordering) -> Option<Ordering> {
    (before != after).then_some(after)
}

/// A new delivery of `event` to `webhook`: pending, never attempted, due at once.
pub fn new_delivery(
    id: DeliveryId,
    webhook: &WebhookId,
    event: &NewEvent,
    at: Timestamp,
) -> Delivery {
    Delivery {
        id,
        event_id: event.id.clone(),
        webhook_id: webhook.clone(),
        event_type: event.event_type,
        status: DeliveryStatus::Pending,
        attempt_count: 0,
        next_attempt_at: Some(at),
        last_status_code: None,
        created_at: at,
        updated_at: at,
    }
}

/// Whether a stored event may be resent to this webhook (found or not, in the account): only to
/// an enabled one. Its subscriptions are not consulted: a resend is an explicit request.
pub fn resend_target(found: StoreResult<Webhook>, id: &WebhookId) -> StoreResult<Webhook> {
    match found {
        Ok(webhook) if webhook.enabled => Ok(webhook),
        Ok(_) => Err(StoreError::WebhookDisabled(id.to_string())),
        Err(StoreError::NotFound) => Err(StoreError::UnknownWebhook(id.to_string())),
        Err(other) => Err(other),
    }
}

/// Whether a test event may be sent to this webhook (`enabled`, when the account has it): only to
/// an enabled one, since a disabled webhook gets nothing new. Unknown: `NotFound`.
pub fn test_target(enabled: Option<bool>, id: &WebhookId) -> StoreResult<()> {
    match enabled {
        Some(true) => Ok(()),
        Some(false) => Err(StoreError::WebhookDisabled(id.to_string())),
        None => Err(StoreError::NotFound),
    }
}

/// The next attempt a delivery shows: only a pending one has one. A finished delivery keeps its
/// last due time in storage (a recovery or manual retry may follow) but shows none.
pub fn shown_next_attempt(status: DeliveryStatus, stored: Option<Timestamp>) -> Option<Timestamp> {
    match status {
        DeliveryStatus::Pending => stored,
        DeliveryStatus::Succeeded | DeliveryStatus::Failed => None,
    }
}

/// What recording an attempt writes to its delivery besides the attempt itself: the new status,
/// and the due time that then replaces the stored one (set only for a retry). No status means the
/// delivery keeps both (a manual attempt that failed).
pub fn state_after(update: DeliveryUpdate) -> (Option<DeliveryStatus>, Option<Timestamp>) {
    match update {
        DeliveryUpdate::Succeeded => (Some(DeliveryStatus::Succeeded), None),
        DeliveryUpdate::RetryAt(at) => (Some(DeliveryStatus::Pending), Some(at)),
        DeliveryUpdate::Failed => (Some(DeliveryStatus::Failed), None),
        DeliveryUpdate::Unchanged => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use reward_core::credit::MAX_POINTS;
    use reward_core::endpoint::EventSelection;

    use crate::records::WebhookSettings;
    use reward_core::names::{Name, TargetPolicy, TriggerId, UserId, WebhookUrl};

    use super::*;

    fn number(text: &str) -> serde_json::Number {
        serde_json::from_str(text).expect("number")
    }

    fn request(value: Option<&str>) -> RecordTriggerEvent {
        RecordTriggerEvent {
            user: UserId::parse("user-1").expect("valid"),
            trigger: TriggerId::parse("successful_payment").expect("valid"),
            value: value.map(number),
            idempotency: None,
            trace: Some(request_span()),
        }
    }

    fn request_span() -> TraceParent {
        TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .expect("valid")
    }

    #[test]
    fn a_trigger_event_gets_its_rules_points_and_emits_accordingly() {
        let at = Timestamp::from_millis(1_734_190_158_821);
        let per_unit = CreditRule::PerUnit(number("10"));
        let fixed = CreditRule::Fixed(5);
        const CREATED: &[EventType] = &[EventType::TriggerEventCreated];
        const BOTH: &[EventType] = &[
            EventType::TriggerEventCreated,
            EventType::BalanceCreditPointsIssued,
        ];
        // (rule, value, points, emitted)
        type Case<'a> = (
            Option<&'a CreditRule>,
            Option<&'a str>,
            i64,
            &'a [EventType],
        );
        let cases: [Case; 5] = [
            (None, Some("2.99"), 0, CREATED),
            (Some(&per_unit), Some("2.99"), 29, BOTH),
            (Some(&per_unit), Some("0.09"), 0, CREATED),
            (Some(&per_unit), None, 0, CREATED),
            (Some(&fixed), None, 5, BOTH),
        ];
        for (rule, value, points, emitted) in cases {
            let request = request(value);
            let new = NewTriggerEvent::new(&request, at);
            let created = new.created_event();
            let id = new.id.clone();
            let recorded = new.record(rule).expect("within bounds");
            assert_eq!(recorded.id, id);
            assert_eq!(recorded.credit_points_issued, points, "{rule:?} {value:?}");
            assert_eq!(recorded.created_at, at);
            assert_eq!(recorded.value, request.value);
            assert_eq!(trigger_event_emits(&recorded), emitted);
            assert_eq!(
                TriggerEventOutcome::Recorded(recorded.clone()).emitted(),
                emitted
            );
            assert!(TriggerEventOutcome::Replayed(recorded.clone())
                .emitted()
                .is_empty());
            // Made before or after recording, `trigger_event.created` says the same.
            let after = UserCounters {
                balance: 129,
                sequence: 4,
                event_position: 9,
            };
            let again = created_event(&recorded, &after, request.trace.as_ref());
            assert_eq!(created.event_type, EventType::TriggerEventCreated);
            assert_eq!(
                created.payload.replace(created.id.as_str(), ""),
                again.payload.replace(again.id.as_str(), "")
            );
            // The user's last event is the balance change, when there is one.
            let created_at = if points > 0 { 8 } else { 9 };
            let positioned = positioned_created_event(created, &recorded, &after);
            for made in [&again, &positioned] {
                // Each event gets its own span in the recording request's trace.
                let trace = made.trace.expect("traced");
                assert_eq!(trace.trace_id(), request_span().trace_id());
                assert_eq!(trace, request_span().for_event("trigger_event.created"));
                let position = made.user_position.as_ref().expect("about a user");
                assert_eq!(
                    (&position.user, position.position),
                    (&recorded.user, created_at)
                );
            }
            let issued = points_issued_event(&recorded, &after, request.trace.as_ref());
            assert_eq!(issued.is_some(), points > 0);
            if let Some(issued) = issued {
                assert_eq!(issued.event_type, EventType::BalanceCreditPointsIssued);
                assert!(issued
                    .payload
                    .contains(&format!(r#""points":{points},"balance":129,"sequence":4,"#)));
                assert!(issued.payload.contains(id.as_str()));
                let position = issued.user_position.expect("about a user");
                assert_eq!(
                    (position.user, position.position),
                    (recorded.user.clone(), 9)
                );
            }
        }
    }

    #[test]
    fn too_many_points_record_nothing() {
        let request = request(Some("1e18"));
        let rule = CreditRule::PerUnit(number("1000"));
        let new = NewTriggerEvent::new(&request, Timestamp::from_millis(0));
        assert_eq!(new.record(Some(&rule)).err(), Some(TooManyPoints));
        let request = self::request(Some("1e9"));
        let new = NewTriggerEvent::new(&request, Timestamp::from_millis(0));
        let recorded = new.record(Some(&rule)).expect("at the bound");
        assert_eq!(recorded.credit_points_issued, MAX_POINTS);
    }

    #[test]
    fn credits_by_hand_answer_and_emit_once() {
        let request = IssueCredits {
            user: UserId::parse("user-1").expect("valid"),
            points: 7,
            reason: Some("goodwill".to_owned()),
            trace: None,
        };
        let after = UserCounters {
            balance: 107,
            sequence: 3,
            event_position: 6,
        };
        let (issued, event) = credits_issued(&request, &after, Timestamp::from_millis(0));
        assert_eq!((issued.points, issued.balance), (7, 107));
        assert_eq!(issued.emitted(), &[EventType::BalanceCreditPointsIssued]);
        assert_eq!(event.event_type, EventType::BalanceCreditPointsIssued);
        assert!(event.payload.contains(
            r#""points":7,"balance":107,"sequence":3,"trigger_event":null,"reason":"goodwill""#
        ));
        let position = event.user_position.expect("about a user");
        assert_eq!((position.user, position.position), (request.user, 6));
    }

    fn webhook(enabled: bool, disabled_reason: Option<&str>) -> Webhook {
        let mut webhook = new_webhook(
            &NewWebhook {
                name: Name::parse("orders").expect("valid"),
                url: WebhookUrl::parse("https://example.com/hook", TargetPolicy::SecureOnly)
                    .expect("valid"),
                events: EventSelection::Only(vec![EventType::TriggerEventCreated]),
                enabled,
                secret: reward_core::signing::WebhookSecret::generate(),
                settings: WebhookSettings::default(),
            },
            Timestamp::from_millis(1),
        );
        webhook.disabled_reason = disabled_reason.map(str::to_owned);
        webhook
    }

    #[test]
    fn a_patch_changes_what_it_names_and_enabling_clears_the_reason() {
        let created = webhook(true, None);
        assert_eq!(created.disabled_reason, None);
        assert_eq!(created.created_at, created.updated_at);
        let later = Timestamp::from_millis(2);
        let gone = Some("the endpoint answered 410 Gone");
        // (enabled before, reason before, patch's enabled, enabled after, reason after)
        let cases = [
            (false, gone, Some(true), true, None),
            (false, gone, Some(false), false, gone),
            (false, gone, None, false, gone),
            (true, None, Some(false), false, None),
        ];
        for (before, reason, enable, enabled, reason_after) in cases {
            let patch = WebhookPatch {
                enabled: enable,
                ..WebhookPatch::default()
            };
            let after = patched(webhook(before, reason), &patch, later);
            assert_eq!(after.enabled, enabled);
            assert_eq!(after.disabled_reason.as_deref(), reason_after);
            assert_eq!(after.updated_at, later);
        }
        let renamed = patched(
            webhook(true, None),
            &WebhookPatch {
                name: Some(Name::parse("renamed").expect("valid")),
                events: Some(EventSelection::Every),
                ..WebhookPatch::default()
            },
            later,
        );
        assert_eq!(renamed.name.as_str(), "renamed");
        assert_eq!(renamed.events, EventSelection::Every);
        assert_eq!(renamed.url.as_str(), "https://example.com/hook");
    }

    #[test]
    fn deliveries_start_pending_and_show_a_next_attempt_only_while_pending() {
        let event = NewEvent::test_event(Timestamp::from_millis(5), EventType::TriggerEventCreated);
        let at = Timestamp::from_millis(9);
        let delivery = new_delivery(DeliveryId::generate(), &WebhookId::generate(), &event, at);
        assert_eq!(delivery.status, DeliveryStatus::Pending);
        assert_eq!(delivery.next_attempt_at, Some(at));
        assert_eq!(
            (delivery.attempt_count, delivery.last_status_code),
            (0, None)
        );
        assert_eq!(delivery.event_id, event.id);
        for (status, shown) in [
            (DeliveryStatus::Pending, Some(at)),
            (DeliveryStatus::Succeeded, None),
            (DeliveryStatus::Failed, None),
        ] {
            assert_eq!(shown_next_attempt(status, Some(at)), shown);
        }
    }

    #[test]
    fn an_attempt_sets_status_and_due_time_or_leaves_both() {
        let at = Timestamp::from_millis(30_000);
        let cases = [
            (
                DeliveryUpdate::Succeeded,
                (Some(DeliveryStatus::Succeeded), None),
            ),
            (
                DeliveryUpdate::RetryAt(at),
                (Some(DeliveryStatus::Pending), Some(at)),
            ),
            (DeliveryUpdate::Failed, (Some(DeliveryStatus::Failed), None)),
            (DeliveryUpdate::Unchanged, (None, None)),
        ];
        for (update, expected) in cases {
            assert_eq!(state_after(update), expected, "{update:?}");
        }
    }

    #[test]
    fn only_a_per_user_webhook_orders_and_only_events_about_a_user() {
        let user = UserId::parse("user-1").expect("user");
        let about_user = NewEvent::test_event(Timestamp::now(), EventType::TriggerEventCreated)
            .at_user_position(&user, 4);
        let about_nobody = NewEvent::test_event(Timestamp::now(), EventType::TriggerEventCreated);
        let order = delivery_order(Ordering::PerUser, &about_user).expect("ordered");
        assert_eq!((order.user.as_str(), order.position), ("user-1", 4));
        assert!(delivery_order(Ordering::None, &about_user).is_none());
        assert!(delivery_order(Ordering::PerUser, &about_nobody).is_none());
        assert_eq!(
            reordering(Ordering::None, Ordering::PerUser),
            Some(Ordering::PerUser)
        );
        assert_eq!(reordering(Ordering::PerUser, Ordering::PerUser), None);
    }
}
