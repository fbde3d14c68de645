//! What `reward listen` checks: the secret, then webhook-id, webhook-timestamp and
//! webhook-signature headers against the body. Never a panic, whatever the headers or the clock;
//! a verified request carries a real signature of its message; a signed message verifies, and
//! changing any one byte of its body makes it fail.
#![no_main]

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use reward_core::signing::{verify_request, WebhookSecret};

fuzz_target!(|input: (
    &str,
    Option<&str>,
    Option<&str>,
    Option<&str>,
    &[u8],
    i64,
    u16
)| {
    let (secret_text, id, timestamp, signatures, body, now, flip) = input;
    let _ = WebhookSecret::parse(secret_text);
    let key: Vec<u8> = (0..32)
        .map(|n| body.get(n).copied().unwrap_or(n as u8))
        .collect();
    let secret = WebhookSecret::parse(&format!("whsec_{}", BASE64.encode(&key))).expect("valid");

    if verify_request(&secret, id, timestamp, signatures, body, now).is_ok() {
        let stamp: i64 = timestamp
            .and_then(|t| t.trim().parse().ok())
            .expect("timestamp");
        let expected = secret.sign(id.expect("id"), stamp, body);
        assert!(signatures
            .expect("signatures")
            .split_whitespace()
            .any(|s| s == expected));
    }

    let id = id.unwrap_or("we_01jf2wkmvcfw6ts1qmgzya291c");
    let signature = secret.sign(id, now, body);
    let stamp = now.to_string();
    assert_eq!(
        verify_request(&secret, Some(id), Some(&stamp), Some(&signature), body, now),
        Ok(())
    );
    if !body.is_empty() {
        let mut changed = body.to_vec();
        let at = usize::from(flip) % changed.len();
        changed[at] ^= 1 << (flip % 8);
        assert!(verify_request(
            &secret,
            Some(id),
            Some(&stamp),
            Some(&signature),
            &changed,
            now
        )
        .is_err());
    }
});
