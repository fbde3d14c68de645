//! Paging, the same in every backend: what a cursor names, and how a newest-first result fetched
//! one row past the page is cut into a [`Page`].
//!
//! A cursor names the last item of the page before; the API wraps it in an opaque encoding. A
//! cursor that does not parse is the caller's mistake ([`StoreError::InvalidCursor`]).

use reward_core::names::TriggerId;

use crate::records::{Page, PageRequest};
use crate::{StoreError, StoreResult};

/// Things identified by a prefixed id, which sorts by creation time.
pub trait SortableId: Sized {
    fn parse_id(text: &str) -> Option<Self>;
    fn into_string(self) -> String;
}

macro_rules! sortable {
    ($($name:ty),*) => {$(
        impl SortableId for $name {
            fn parse_id(text: &str) -> Option<Self> {
                <$name>::parse(text).ok()
            }
            fn into_string(self) -> String {
                self.as_str().to_owned()
            }
        }
    )*};
}

sortable!(
    reward_core::ids::WebhookId,
    reward_core::ids::EventId,
    reward_core::ids::DeliveryId
);

/// The id below which the page starts: the cursor's id, or past every id when there is none.
pub fn id_cursor<Id: SortableId>(page: &PageRequest) -> StoreResult<String> {
    match &page.cursor {
        None => Ok("~".to_owned()), // sorts after every id: all ids are ASCII letters and digits
        Some(text) => Id::parse_id(text)
            .map(SortableId::into_string)
            .ok_or(StoreError::InvalidCursor),
    }
}

/// Where a page of triggers starts: below this creation time, or at it below this id. Trigger ids
/// are the account's own names and do not sort by time, so the cursor carries both. With no
/// cursor every row qualifies (`created_at < i64::MAX`).
pub fn trigger_cursor(page: &PageRequest) -> StoreResult<(i64, String)> {
    match &page.cursor {
        None => Ok((i64::MAX, String::new())),
        Some(cursor) => {
            let (time, id) = cursor.split_once(':').ok_or(StoreError::InvalidCursor)?;
            let time = time.parse::<i64>().map_err(|_| StoreError::InvalidCursor)?;
            let id = TriggerId::parse(id).map_err(|_| StoreError::InvalidCursor)?;
            Ok((time, id.as_str().to_owned()))
        }
    }
}

/// The cursor [`trigger_cursor`] reads: `<created_at millis>:<trigger id>`.
pub fn trigger_cursor_of(trigger: &crate::records::Trigger) -> String {
    format!("{}:{}", trigger.created_at.as_millis(), trigger.id)
}

/// `LIMIT` of a page query: one row more than the page, to know whether another page follows.
pub fn fetch_limit(limit: u32) -> i64 {
    i64::from(limit) + 1
}

/// Cuts a newest-first result fetched with [`fetch_limit`] rows into a page.
pub fn page_of<T>(mut rows: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> String) -> Page<T> {
    let limit = limit as usize;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if more {
        rows.last().map(cursor_of)
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use reward_core::ids::WebhookId;

    use super::*;

    fn after(cursor: Option<&str>) -> PageRequest {
        PageRequest {
            limit: 10,
            cursor: cursor.map(str::to_owned),
        }
    }

    #[test]
    fn a_page_says_whether_more_follow() {
        let page = page_of(vec![3, 2, 1], 2, ToString::to_string);
        assert_eq!(page.items, vec![3, 2]);
        assert_eq!(page.next_cursor.as_deref(), Some("2"));
        let last = page_of(vec![1], 2, ToString::to_string);
        assert_eq!(last.next_cursor, None);
        assert_eq!(fetch_limit(100), 101);
    }

    #[test]
    fn id_cursors_start_past_every_id_or_refuse_garbage() {
        assert_eq!(
            id_cursor::<WebhookId>(&after(None)).ok().as_deref(),
            Some("~")
        );
        let id = WebhookId::generate();
        assert_eq!(
            id_cursor::<WebhookId>(&after(Some(id.as_str()))).ok(),
            Some(id.as_str().to_owned())
        );
        for garbage in ["", "wh_", "dl_01jf2wkmvcfw6ts1qmgzya291c", "nope"] {
            assert!(matches!(
                id_cursor::<WebhookId>(&after(Some(garbage))),
                Err(StoreError::InvalidCursor)
            ));
        }
    }

    #[test]
    fn trigger_cursors_carry_time_and_id() {
        assert_eq!(
            trigger_cursor(&after(None)).ok(),
            Some((i64::MAX, String::new()))
        );
        assert_eq!(
            trigger_cursor(&after(Some("1734190158821:signup"))).ok(),
            Some((1_734_190_158_821, "signup".to_owned()))
        );
        for garbage in ["", "signup", "x:signup", "12:", "12:not an id"] {
            assert!(matches!(
                trigger_cursor(&after(Some(garbage))),
                Err(StoreError::InvalidCursor)
            ));
        }
    }
}
