//! Webhook secrets and Standard Webhooks signatures.
//!
//! The signature is `v1,` + base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}")), the secret
//! being the base64 text after `whsec_`. After rotations one signature per secret still signing is
//! sent, space-separated (see [`crate::rotation`]).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use thiserror::Error;

const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a new secret (the spec allows 24–32).
const SECRET_BYTES: usize = 32;

/// A webhook signing secret, `whsec_` + base64 of its key bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    text: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("a webhook secret starts with whsec_")]
    MissingPrefix,
    #[error("a webhook secret is whsec_ followed by base64")]
    NotBase64,
    #[error("a webhook secret's key must hold 24 to 64 bytes")]
    WrongLength,
}

impl WebhookSecret {
    pub fn generate() -> Self {
        let mut key = vec![0_u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut key);
        Self {
            text: format!("{SECRET_PREFIX}{}", BASE64.encode(&key)),
            key,
        }
    }

    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        let key = BASE64.decode(encoded).map_err(|_| SecretError::NotBase64)?;
        if !(24..=64).contains(&key.len()) {
            return Err(SecretError::WrongLength);
        }
        Ok(Self {
            text: text.trim().to_owned(),
            key,
        })
    }

    /// The `whsec_...` text shown to the account.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// Names the secret without giving it away: the first 16 hex digits of its SHA-256. A form
    /// that replaces a secret names it so, and replaces it only while it is current.
    pub fn version(&self) -> String {
        let mut digest = crate::digest::sha256_hex(self.text.as_bytes());
        digest.truncate(16);
        digest
    }

    /// `v1,<base64 signature>` of one message.
    pub fn sign(&self, message_id: &str, timestamp: i64, body: &[u8]) -> String {
        format!(
            "v1,{}",
            BASE64.encode(self.mac(message_id, timestamp, body))
        )
    }

    fn mac(&self, message_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256>>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(message_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }

    /// Whether any `v1,` entry of a `webhook-signature` header value is this secret's signature
    /// of the message, compared in constant time.
    pub fn verify(&self, message_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        let expected = self.mac(message_id, timestamp, body);
        header
            .split_whitespace()
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .filter_map(|encoded| BASE64.decode(encoded).ok())
            .any(|candidate| bool::from(candidate.as_slice().ct_eq(&expected)))
    }
}

/// How long a rotated-out secret keeps signing beside the new one, in milliseconds.
pub const ROTATION_OVERLAP_MS: i64 = 24 * 3600 * 1000;

/// How far a `webhook-timestamp` may be from the receiver's clock (replay protection).
pub const TIMESTAMP_TOLERANCE_SECONDS: i64 = 5 * 60;

/// Why a received webhook was refused.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("webhook-timestamp is not a Unix time in seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is more than 5 minutes away from now (replay or clock skew)")]
    StaleTimestamp,
    #[error("no signature in webhook-signature matches this secret and body")]
    NoMatchingSignature,
}

/// Verifies a received webhook as a Standard Webhooks receiver does: headers present, timestamp
/// within 5 minutes of `now_unix`, and a `v1` signature of this exact body under `secret`.
pub fn verify_request(
    secret: &WebhookSecret,
    message_id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), VerifyError> {
    let message_id = message_id.ok_or(VerifyError::MissingHeader("webhook-id"))?;
    let timestamp = timestamp.ok_or(VerifyError::MissingHeader("webhook-timestamp"))?;
    let signatures = signatures.ok_or(VerifyError::MissingHeader("webhook-signature"))?;
    let timestamp: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    // abs_diff: a timestamp near i64::MIN or MAX must be stale, not an overflow.
    if now_unix.abs_diff(timestamp) > TIMESTAMP_TOLERANCE_SECONDS.unsigned_abs() {
        return Err(VerifyError::StaleTimestamp);
    }
    if secret.verify(message_id, timestamp, body, signatures) {
        Ok(())
    } else {
        Err(VerifyError::NoMatchingSignature)
    }
}

/// The `webhook-signature` header value for a message: one entry per active secret.
pub fn signature_header(
    secrets: &[&WebhookSecret],
    message_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|secret| secret.sign(message_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector_from_the_standard_webhooks_spec() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("valid");
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn generated_secrets_round_trip_and_verify() {
        let secret = WebhookSecret::generate();
        let again = WebhookSecret::parse(secret.expose()).expect("valid");
        let header = signature_header(&[&WebhookSecret::generate(), &secret], "we_x", 10, b"{}");
        assert!(again.verify("we_x", 10, b"{}", &header));
        assert!(!again.verify("we_x", 10, b"{ }", &header));
        assert!(!again.verify("we_x", 11, b"{}", &header));
    }

    #[test]
    fn verify_request_checks_headers_time_and_signature() {
        let secret = WebhookSecret::generate();
        let signature = secret.sign("we_1", 1000, b"{}");
        let check = |id, ts, sig, body: &[u8], now| verify_request(&secret, id, ts, sig, body, now);
        assert_eq!(
            check(Some("we_1"), Some("1000"), Some(&signature), b"{}", 1000),
            Ok(())
        );
        assert_eq!(
            check(Some("we_1"), Some("1000"), Some(&signature), b"{}", 1299),
            Ok(())
        );
        assert_eq!(
            check(Some("we_1"), Some("1000"), Some(&signature), b"{}", 1301),
            Err(VerifyError::StaleTimestamp)
        );
        assert_eq!(
            check(Some("we_1"), Some("1000"), Some(&signature), b"{ }", 1000),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            check(None, Some("1000"), Some(&signature), b"{}", 1000),
            Err(VerifyError::MissingHeader("webhook-id"))
        );
        assert_eq!(
            check(Some("we_1"), Some("soon"), Some(&signature), b"{}", 1000),
            Err(VerifyError::BadTimestamp)
        );
    }

    #[test]
    fn parse_rejects_malformed_secrets() {
        assert_eq!(WebhookSecret::parse("abc"), Err(SecretError::MissingPrefix));
        assert_eq!(
            WebhookSecret::parse("whsec_!!"),
            Err(SecretError::NotBase64)
        );
        assert_eq!(
            WebhookSecret::parse("whsec_YWJj"),
            Err(SecretError::WrongLength)
        );
    }
}
