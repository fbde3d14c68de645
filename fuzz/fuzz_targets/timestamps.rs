//! RFC 3339 times (`"since"` of a recovery): never a panic; a parsed time formats as
//! `YYYY-MM-DDTHH:MM:SS.mmmZ` and, within years 0–9999, parses back to the same instant.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reward_core::time::Timestamp;

/// 0000-01-01T00:00:00Z and the last millisecond of 9999, in Unix milliseconds.
const WRITABLE: std::ops::RangeInclusive<i64> = -62_167_219_200_000..=253_402_300_799_999;

fuzz_target!(|data: &[u8]| {
    // The whole input is the text; its first 8 bytes are also an instant to round-trip.
    let text = String::from_utf8_lossy(data);
    if let Some(time) = Timestamp::parse_rfc3339(&text) {
        let shown = time.to_rfc3339();
        if WRITABLE.contains(&time.as_millis()) {
            assert_eq!(
                Timestamp::parse_rfc3339(&shown),
                Some(time),
                "{text:?} -> {shown}"
            );
        }
    }
    if let Some(bytes) = data.get(..8) {
        let millis = i64::from_le_bytes(bytes.try_into().expect("8 bytes"));
        if WRITABLE.contains(&millis) {
            let time = Timestamp::from_millis(millis);
            assert_eq!(Timestamp::parse_rfc3339(&time.to_rfc3339()), Some(time));
        }
    }
});
