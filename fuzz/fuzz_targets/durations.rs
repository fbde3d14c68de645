//! Duration settings (`30s`, `250ms`, `1h30m`) and a receiver's `Retry-After`: never a panic;
//! Retry-After is accepted exactly when it is 1*DIGIT (surrounding spaces and tabs allowed).
#![no_main]

use libfuzzer_sys::fuzz_target;
use reward_core::retry::{parse_duration, parse_retry_after};

fuzz_target!(|text: &str| {
    let _ = parse_duration(text);
    let digits = text.trim_matches([' ', '\t']);
    let valid = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    assert_eq!(parse_retry_after(text).is_some(), valid, "{text:?}");
});
