//! Searches: an account's deliveries or events kept by filters and creation time, newest first, a
//! page at a time. Both backends run the same text (`$n` placeholders, as in [`crate::statements`]),
//! built for the filters given, so that each combination gets a plan of its own: a filter left out
//! is absent from the statement rather than `($n IS NULL OR ...)`, which no index can serve.
//!
//! Time bounds are exact on `created_at`, which has no index of its own. They also narrow the
//! range of ids read: an id's ULID carries the clock of the process that made it, read just after
//! the row's `created_at`, so ids sort by creation time, and every index a list reads ends with
//! `id`. A time range thus costs no index and combines with any filter's index. The id range is
//! widened by [`ID_CLOCK_MARGIN_MS`] each way, for ids whose clock is a moment past `created_at`
//! (a batch written after its requests arrived); `created_at` alone decides what is returned.

use reward_core::ids::{DeliveryId, EventId};
use reward_core::time::Timestamp;

use crate::paging::{fetch_limit, id_cursor, SortableId};
use crate::records::{DeliveryQuery, DeliveryStatus, EventQuery, PageRequest};
use crate::StoreResult;

/// How far an id's clock may be from its row's `created_at` (five minutes: far more than any
/// batch waits, since a request gives up after its deadline). A row whose id was made later than
/// that after its `created_at` (the host's clock set back by more, mid-write) could be missed by
/// a time-bounded search.
pub const ID_CLOCK_MARGIN_MS: i64 = 5 * 60 * 1000;

/// A value to bind, in placeholder order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Integer(i64),
}

/// `FROM {source} WHERE ... ORDER BY id DESC LIMIT $n` of a search, and the values of its
/// placeholders.
#[derive(Debug, Clone)]
pub struct PageQuery {
    /// What the rows are read from: a table, or (a keyed delivery search on
    /// [`DeliveryLayout::KeysApart`]) the search keys joined to their deliveries.
    pub source: &'static str,
    /// What each selected column is qualified with: `""`, or `"d."` when `source` joins.
    pub column_prefix: &'static str,
    pub clause: String,
    pub values: Vec<Value>,
}

impl PageQuery {
    /// `SELECT {columns} FROM ...`, each of `columns` (comma separated) qualified as it must be.
    pub fn select(&self, columns: &str) -> String {
        let columns = if self.column_prefix.is_empty() {
            columns.to_owned()
        } else {
            columns
                .split(',')
                .map(|column| format!("{}{}", self.column_prefix, column.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!("SELECT {columns} FROM {} {}", self.source, self.clause)
    }
}

/// Where a backend keeps what a delivery search filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryLayout {
    /// Every column on `deliveries`, indexed there (SQLite, which updates rows in place).
    OneTable,
    /// The search keys (webhook, event, type) also in `delivery_keys`, a table never updated,
    /// whose indexes serve those filters; `deliveries` keeps only its primary key and partial
    /// indexes, so recording an attempt adds no entry to a full index but one (PostgreSQL, where
    /// no update of a delivery is HOT: docs/scaling.md, "keys apart").
    KeysApart,
}

/// A keyed search on [`DeliveryLayout::KeysApart`]: the keys' index newest first, then each
/// delivery by its primary key. `LATERAL ... OFFSET 0` keeps the planner to that loop, which
/// stops after a page: as a plain join it chose, for a webhook with many deliveries, all of them
/// old, a merge join walking the account's every newer delivery (493 ms on 2,000,000 rows,
/// 0.2 ms this way; docs/scaling.md).
const KEYS_JOINED: &str = "delivery_keys k CROSS JOIN LATERAL (SELECT * FROM deliveries \
     WHERE account_id = k.account_id AND id = k.delivery_id OFFSET 0) d";

/// The column a search's term names, where it is read from.
type Names = fn(&'static str) -> &'static str;

fn as_named(column: &'static str) -> &'static str {
    column
}

/// On SQLite, for pending or failed deliveries of a type: `+event_type` keeps the planner off
/// `deliveries_by_type` (a unary `+` makes a term no index can serve), so it reads the status's
/// own index. Without statistics it preferred the type's, which reads through every delivery of
/// a common type to find rare failures (260 ms on 540,000; docs/scaling.md).
fn type_unindexed(column: &'static str) -> &'static str {
    match column {
        "event_type" => "+event_type",
        other => other,
    }
}

/// In [`KEYS_JOINED`]: the keys (and the id) from `delivery_keys`, the rest from `deliveries`.
fn keys_apart(column: &'static str) -> &'static str {
    match column {
        "account_id" => "k.account_id",
        "id" => "k.delivery_id",
        "webhook_id" => "k.webhook_id",
        "event_id" => "k.event_id",
        "event_type" => "k.event_type",
        "status" => "d.status",
        "created_at" => "d.created_at",
        other => other,
    }
}

/// Ids whose ULID clock can say when they were made.
pub trait TimedId: SortableId {
    fn lowest_at(time: Timestamp) -> Option<Self>;
}

impl TimedId for DeliveryId {
    fn lowest_at(time: Timestamp) -> Option<Self> {
        DeliveryId::lowest_at(time)
    }
}

impl TimedId for EventId {
    fn lowest_at(time: Timestamp) -> Option<Self> {
        EventId::lowest_at(time)
    }
}

/// The deliveries of `account` that `query` keeps, read as `layout` keeps them.
pub fn deliveries(
    layout: DeliveryLayout,
    account: &str,
    query: &DeliveryQuery,
    page: &PageRequest,
) -> StoreResult<PageQuery> {
    let keyed = query.webhook.is_some() || query.event.is_some() || query.event_type.is_some();
    // Pending or failed deliveries, usually the few, have indexes of their own on `deliveries`
    // (by account, and by webhook: `deliveries_unfinished_by_webhook`), which the rest of the
    // filters narrow row by row there, as on one table; only an event's few deliveries are
    // found faster through the keys.
    let unfinished = query.event.is_none()
        && matches!(
            query.status,
            Some(DeliveryStatus::Pending | DeliveryStatus::Failed)
        );
    let mut search = match layout {
        DeliveryLayout::KeysApart if keyed && !unfinished => {
            Conditions::new(KEYS_JOINED, "d.", keys_apart, account)
        }
        DeliveryLayout::OneTable if unfinished => {
            Conditions::new("deliveries", "", type_unindexed, account)
        }
        _ => Conditions::new("deliveries", "", as_named, account),
    };
    if let Some(webhook) = &query.webhook {
        search.equals("webhook_id", webhook.as_str());
    }
    if let Some(event) = &query.event {
        search.equals("event_id", event.as_str());
    }
    if let Some(event_type) = query.event_type {
        search.equals("event_type", event_type.as_str());
    }
    if let Some(status) = query.status {
        // A literal, not a placeholder: the partial indexes by status (`WHERE status = 'failed'`)
        // serve only a statement that names their status. The text is one of three constants.
        let column = (search.names)("status");
        search
            .terms
            .push(format!("{column} = '{}'", status.as_str()));
    }
    search.finish::<DeliveryId>(query.created_after, query.created_before, page)
}

/// The events of `account` that `query` keeps (`events` table).
pub fn events(account: &str, query: &EventQuery, page: &PageRequest) -> StoreResult<PageQuery> {
    let mut search = Conditions::new("events", "", as_named, account);
    if let Some(event_type) = query.event_type {
        search.equals("event_type", event_type.as_str());
    }
    search.finish::<EventId>(query.created_after, query.created_before, page)
}

struct Conditions {
    source: &'static str,
    column_prefix: &'static str,
    names: Names,
    terms: Vec<String>,
    values: Vec<Value>,
}

impl Conditions {
    fn new(source: &'static str, column_prefix: &'static str, names: Names, account: &str) -> Self {
        let mut conditions = Self {
            source,
            column_prefix,
            names,
            terms: Vec::new(),
            values: Vec::new(),
        };
        conditions.equals("account_id", account);
        conditions
    }

    fn bind(&mut self, value: Value) -> String {
        self.values.push(value);
        format!("${}", self.values.len())
    }

    fn equals(&mut self, column: &'static str, text: &str) {
        let placeholder = self.bind(Value::Text(text.to_owned()));
        let column = (self.names)(column);
        self.terms.push(format!("{column} = {placeholder}"));
    }

    fn compare(&mut self, column: &'static str, operator: &'static str, value: Value) {
        let placeholder = self.bind(value);
        let column = (self.names)(column);
        self.terms
            .push(format!("{column} {operator} {placeholder}"));
    }

    /// Adds the time bounds, the id range (the cursor's and the times'), order and limit.
    fn finish<Id: TimedId>(
        mut self,
        after: Option<Timestamp>,
        before: Option<Timestamp>,
        page: &PageRequest,
    ) -> StoreResult<PageQuery> {
        let mut below = id_cursor::<Id>(page)?;
        if let Some(after) = after {
            self.compare("created_at", ">", Value::Integer(after.as_millis()));
            let earliest = after.plus_millis(1 - ID_CLOCK_MARGIN_MS);
            if let Some(lowest) = Id::lowest_at(earliest) {
                self.compare("id", ">=", Value::Text(lowest.into_string()));
            }
        }
        if let Some(before) = before {
            self.compare("created_at", "<", Value::Integer(before.as_millis()));
            if let Some(beyond) = Id::lowest_at(before.plus_millis(ID_CLOCK_MARGIN_MS)) {
                below = below.min(beyond.into_string());
            }
        }
        self.compare("id", "<", Value::Text(below));
        let limit = self.bind(Value::Integer(fetch_limit(page.limit)));
        Ok(PageQuery {
            source: self.source,
            column_prefix: self.column_prefix,
            clause: format!(
                "WHERE {} ORDER BY {} DESC LIMIT {limit}",
                self.terms.join(" AND "),
                (self.names)("id"),
            ),
            values: self.values,
        })
    }
}

#[cfg(test)]
mod tests {
    use reward_core::ids::WebhookId;

    use super::*;
    use crate::records::DeliveryStatus;

    /// The first page of the deliveries `query` keeps in account `acc_1`, read as `layout` keeps
    /// them.
    fn first_page_of(layout: DeliveryLayout, query: &DeliveryQuery) -> PageQuery {
        deliveries(layout, "acc_1", query, &first_page()).expect("query")
    }

    fn first_page() -> PageRequest {
        PageRequest {
            limit: 10,
            cursor: None,
        }
    }

    #[test]
    fn no_filter_reads_the_account_newest_first() {
        let query = first_page_of(DeliveryLayout::OneTable, &DeliveryQuery::default());
        assert_eq!(
            query.clause,
            "WHERE account_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
        );
        assert_eq!(
            query.values,
            vec![
                Value::Text("acc_1".into()),
                Value::Text("~".into()),
                Value::Integer(11)
            ]
        );
    }

    #[test]
    fn each_filter_given_is_one_term_and_status_a_literal() {
        let webhook = WebhookId::generate();
        let query = DeliveryQuery {
            webhook: Some(webhook.clone()),
            status: Some(DeliveryStatus::Failed),
            ..DeliveryQuery::default()
        };
        let built = first_page_of(DeliveryLayout::OneTable, &query);
        assert_eq!(
            built.clause,
            "WHERE account_id = $1 AND webhook_id = $2 AND status = 'failed' AND id < $3 \
             ORDER BY id DESC LIMIT $4"
        );
        assert_eq!(built.values[1], Value::Text(webhook.to_string()));
    }

    #[test]
    fn keys_apart_reads_a_keyed_search_from_the_keys_joined_to_their_deliveries() {
        let webhook = WebhookId::generate();
        let query = DeliveryQuery {
            webhook: Some(webhook.clone()),
            status: Some(DeliveryStatus::Succeeded),
            created_after: Some(Timestamp::from_millis(1_734_190_158_821)),
            ..DeliveryQuery::default()
        };
        let built = first_page_of(DeliveryLayout::KeysApart, &query);
        assert_eq!(
            built.select("id, status"),
            "SELECT d.id, d.status FROM delivery_keys k CROSS JOIN LATERAL (SELECT * FROM \
             deliveries WHERE account_id = k.account_id AND id = k.delivery_id OFFSET 0) d \
             WHERE k.account_id = $1 AND k.webhook_id = $2 AND d.status = 'succeeded' \
             AND d.created_at > $3 AND k.delivery_id >= $4 AND k.delivery_id < $5 \
             ORDER BY k.delivery_id DESC LIMIT $6"
        );
        assert_eq!(built.values[1], Value::Text(webhook.to_string()));
    }

    #[test]
    fn keys_apart_reads_unfinished_deliveries_from_their_own_indexes_unless_of_one_event() {
        for status in [DeliveryStatus::Pending, DeliveryStatus::Failed] {
            let query = DeliveryQuery {
                webhook: Some(WebhookId::generate()),
                event_type: Some(reward_core::event::EventType::TriggerEventCreated),
                status: Some(status),
                ..DeliveryQuery::default()
            };
            let built = first_page_of(DeliveryLayout::KeysApart, &query);
            assert_eq!(built.source, "deliveries", "{status:?}");
            let of_one_event = DeliveryQuery {
                event: Some(EventId::generate()),
                ..query
            };
            let built = first_page_of(DeliveryLayout::KeysApart, &of_one_event);
            assert_eq!(built.source, KEYS_JOINED, "{status:?}");
        }
    }

    #[test]
    fn one_table_reads_unfinished_deliveries_of_a_type_through_their_status() {
        let query = DeliveryQuery {
            event_type: Some(reward_core::event::EventType::TriggerEventCreated),
            status: Some(DeliveryStatus::Failed),
            ..DeliveryQuery::default()
        };
        let built = first_page_of(DeliveryLayout::OneTable, &query);
        assert_eq!(
            built.clause,
            "WHERE account_id = $1 AND +event_type = $2 AND status = 'failed' AND id < $3 \
             ORDER BY id DESC LIMIT $4"
        );
        let succeeded = DeliveryQuery {
            status: Some(DeliveryStatus::Succeeded),
            ..query
        };
        let built = first_page_of(DeliveryLayout::OneTable, &succeeded);
        assert!(
            built.clause.contains(" event_type = $2"),
            "{}",
            built.clause
        );
    }

    #[test]
    fn keys_apart_reads_a_search_without_keys_from_the_deliveries_alone() {
        let query = DeliveryQuery {
            status: Some(DeliveryStatus::Pending),
            ..DeliveryQuery::default()
        };
        let built = first_page_of(DeliveryLayout::KeysApart, &query);
        let one_table = first_page_of(DeliveryLayout::OneTable, &query);
        assert_eq!(built.select("id, status"), one_table.select("id, status"));
        assert_eq!(
            built.select("id, status"),
            "SELECT id, status FROM deliveries WHERE account_id = $1 AND status = 'pending' \
             AND id < $2 ORDER BY id DESC LIMIT $3"
        );
    }

    #[test]
    fn time_bounds_are_exact_on_created_at_and_narrow_the_ids() {
        let after = Timestamp::from_millis(1_734_190_158_821);
        let before = after.plus_millis(60_000);
        let query = EventQuery {
            created_after: Some(after),
            created_before: Some(before),
            ..EventQuery::default()
        };
        let built = events("acc_1", &query, &first_page()).expect("query");
        assert_eq!(
            built.clause,
            "WHERE account_id = $1 AND created_at > $2 AND id >= $3 AND created_at < $4 \
             AND id < $5 ORDER BY id DESC LIMIT $6"
        );
        let lowest = EventId::lowest_at(after.plus_millis(1 - ID_CLOCK_MARGIN_MS)).expect("id");
        let beyond = EventId::lowest_at(before.plus_millis(ID_CLOCK_MARGIN_MS)).expect("id");
        assert_eq!(built.values[2], Value::Text(lowest.to_string()));
        assert_eq!(built.values[4], Value::Text(beyond.to_string()));
    }

    #[test]
    fn the_cursor_or_the_time_whichever_is_lower_ends_the_range() {
        let before = Timestamp::from_millis(1_734_190_158_821);
        let older = EventId::lowest_at(before.plus_millis(-1_000_000)).expect("id");
        let query = EventQuery {
            created_before: Some(before),
            ..EventQuery::default()
        };
        let page = PageRequest {
            limit: 10,
            cursor: Some(older.to_string()),
        };
        let built = events("acc_1", &query, &page).expect("query");
        assert_eq!(built.values[2], Value::Text(older.to_string()));
        let times_end = events("acc_1", &query, &first_page()).expect("query");
        let beyond = EventId::lowest_at(before.plus_millis(ID_CLOCK_MARGIN_MS)).expect("id");
        assert_eq!(times_end.values[2], Value::Text(beyond.to_string()));
    }

    #[test]
    fn times_outside_the_id_clock_leave_the_ids_unbounded() {
        let query = DeliveryQuery {
            created_after: Some(Timestamp::from_millis(-5)),
            created_before: Some(Timestamp::from_millis(-1)),
            ..DeliveryQuery::default()
        };
        let built = first_page_of(DeliveryLayout::OneTable, &query);
        assert_eq!(
            built.clause,
            "WHERE account_id = $1 AND created_at > $2 AND created_at < $3 AND id < $4 \
             ORDER BY id DESC LIMIT $5"
        );
    }
}
