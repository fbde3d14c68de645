//! Pagination: `?cursor=` and `?limit=` as the API reads them (`QueryParams::page`). Any text is
//! a cursor the API made or a 422 invalid_cursor, never a panic; any store cursor survives the
//! API's encoding and comes back unchanged.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use reward_server::api::extract::{ListBody, QueryParams};
use reward_store::records::Page;

fuzz_target!(|input: (String, String, String)| {
    let (cursor, limit, store_cursor) = input;
    let query = QueryParams(HashMap::from([
        ("cursor".to_owned(), cursor),
        ("limit".to_owned(), limit),
    ]));
    if let Err(error) = query.page() {
        assert_eq!(error.status.as_u16(), 422);
        assert!(matches!(error.field.as_deref(), Some("cursor" | "limit")));
    }
    let page = Page::<()> {
        items: Vec::new(),
        next_cursor: Some(store_cursor.clone()),
    };
    let shown = ListBody::from_page(page, |item| item)
        .next_cursor
        .expect("a cursor");
    let back = QueryParams(HashMap::from([("cursor".to_owned(), shown)]));
    assert_eq!(
        back.page().expect("its own cursor").cursor,
        Some(store_cursor)
    );
});
