//! Cursors: the store's half. A cursor names the last item of the page before; the API wraps it
//! in an opaque encoding. A cursor that does not parse is the caller's mistake.

use reward_store::records::PageRequest;
use reward_store::{StoreError, StoreResult};

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
