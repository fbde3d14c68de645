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
use crate::records::{DeliveryQuery, EventQuery, PageRequest};
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

/// `WHERE ... ORDER BY id DESC LIMIT $n` of a search, and the values of its placeholders.
#[derive(Debug, Clone)]
pub struct PageQuery {
    pub clause: String,
    pub values: Vec<Value>,
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

/// The deliveries of `account` that `query` keeps (`deliveries` table).
pub fn deliveries(
    account: &str,
    query: &DeliveryQuery,
    page: &PageRequest,
) -> StoreResult<PageQuery> {
    let mut search = Conditions::new(account);
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
        search.terms.push(format!("status = '{}'", status.as_str()));
    }
    search.finish::<DeliveryId>(query.created_after, query.created_before, page)
}

/// The events of `account` that `query` keeps (`events` table).
pub fn events(account: &str, query: &EventQuery, page: &PageRequest) -> StoreResult<PageQuery> {
    let mut search = Conditions::new(account);
    if let Some(event_type) = query.event_type {
        search.equals("event_type", event_type.as_str());
    }
    search.finish::<EventId>(query.created_after, query.created_before, page)
}

struct Conditions {
    terms: Vec<String>,
    values: Vec<Value>,
}

impl Conditions {
    fn new(account: &str) -> Self {
        let mut conditions = Self {
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
        self.terms.push(format!("{column} = {placeholder}"));
    }

    fn compare(&mut self, column: &'static str, operator: &'static str, value: Value) {
        let placeholder = self.bind(value);
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
            clause: format!(
                "WHERE {} ORDER BY id DESC LIMIT {limit}",
                self.terms.join(" AND ")
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

    fn first_page() -> PageRequest {
        PageRequest {
            limit: 10,
            cursor: None,
        }
    }

    #[test]
    fn no_filter_reads_the_account_newest_first() {
        let query = deliveries("acc_1", &DeliveryQuery::default(), &first_page()).expect("query");
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
        let built = deliveries("acc_1", &query, &first_page()).expect("query");
        assert_eq!(
            built.clause,
            "WHERE account_id = $1 AND webhook_id = $2 AND status = 'failed' AND id < $3 \
             ORDER BY id DESC LIMIT $4"
        );
        assert_eq!(built.values[1], Value::Text(webhook.to_string()));
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
        let built = deliveries("acc_1", &query, &first_page()).expect("query");
        assert_eq!(
            built.clause,
            "WHERE account_id = $1 AND created_at > $2 AND created_at < $3 AND id < $4 \
             ORDER BY id DESC LIMIT $5"
        );
    }
}
