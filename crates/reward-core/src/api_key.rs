//! API keys: `rwd_` + 32 random bytes in base64url. Only a SHA-256 hash is stored; a fast hash is
//! enough because the key itself has 256 bits of entropy (nothing to brute-force).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine;
use rand::RngCore;

use crate::digest::sha256_hex;

const KEY_PREFIX: &str = "rwd_";
/// How many leading characters of a key are kept to help a person recognise it.
const DISPLAY_PREFIX_LEN: usize = 12;

/// A newly made key: the text shown once, and what is stored.
pub struct NewApiKey {
    pub plaintext: String,
    pub hash: String,
    pub display_prefix: String,
}

pub fn generate() -> NewApiKey {
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let plaintext = format!("{KEY_PREFIX}{}", BASE64URL.encode(bytes));
    NewApiKey {
        hash: hash(&plaintext),
        display_prefix: plaintext.chars().take(DISPLAY_PREFIX_LEN).collect(),
        plaintext,
    }
}

/// The stored form of a key: lowercase hex SHA-256.
pub fn hash(plaintext: &str) -> String {
    sha256_hex(plaintext.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_hash_stably() {
        let first = generate();
        let second = generate();
        assert_ne!(first.plaintext, second.plaintext);
        assert!(first.plaintext.starts_with("rwd_"));
        assert_eq!(hash(&first.plaintext), first.hash);
        assert_eq!(first.hash.len(), 64);
    }
}
