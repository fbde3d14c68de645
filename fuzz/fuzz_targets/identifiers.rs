//! User ids, trigger ids, names, Idempotency-Keys, prefixed ids and event types: never a panic,
//! and what is accepted is kept as sent (ids: folded to lower case, nothing else rewritten).
#![no_main]

use libfuzzer_sys::fuzz_target;
use reward_core::event::EventType;
use reward_core::ids::{
    AccountId, ApiKeyId, AttemptId, DeliveryId, EventId, TriggerEventId, WebhookId,
};
use reward_core::names::{IdempotencyKey, Name, TriggerId, UserId};

fuzz_target!(|text: &str| {
    if let Ok(id) = UserId::parse(text) {
        assert_eq!(id.as_str(), text);
        assert!((1..=UserId::MAX_LEN).contains(&text.chars().count()));
    }
    if let Ok(id) = TriggerId::parse(text) {
        assert_eq!(id.as_str(), text);
        assert!(text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b)));
    }
    if let Ok(name) = Name::parse(text) {
        assert_eq!(name.as_str(), text);
        assert!(!text.trim().is_empty() && !text.chars().any(char::is_control));
    }
    if let Ok(key) = IdempotencyKey::parse(text) {
        assert_eq!(key.as_str(), text);
        assert!(text.bytes().all(|b| b.is_ascii_graphic()));
    }
    macro_rules! check_id {
        ($($id:ty),*) => {$(
            if let Ok(id) = <$id>::parse(text) {
                assert_eq!(id.as_str(), text.to_ascii_lowercase());
                assert_eq!(<$id>::parse(id.as_str()), Ok(id.clone()));
            }
        )*};
    }
    check_id!(
        AccountId,
        ApiKeyId,
        WebhookId,
        EventId,
        DeliveryId,
        AttemptId,
        TriggerEventId
    );
    if let Some(kind) = EventType::parse(text) {
        assert_eq!(kind.as_str(), text);
    }
});
