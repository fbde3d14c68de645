//! Webhook signing secrets at rest: both backends store them sealed with ChaCha20-Poly1305 under a
//! 32-byte key that never enters the database (`REWARD_SECRET_KEY`, or for SQLite a key file
//! beside the database), so a copied database file alone reveals no secret.
//!
//! Stored form: `enc:v1:` + base64(12-byte random nonce ‖ ciphertext ‖ 16-byte tag). The column
//! is also the webhook's id as associated data, so a sealed secret moved to another row does not
//! open. Rows written before encryption hold the plain `whsec_...` text: [`SecretCipher::open`]
//! still reads those, every write seals, and each backend re-seals the plain rows it finds when
//! it is opened with a key (a SQL migration cannot: it has no key).
//!
//! Secrets rotated out live in one column, `previous_secrets`: a JSON array, newest first, of
//! `{"secret": <stored form>, "expires_at": <Unix millis>}` (see [`previous_from_stored`]).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use reward_core::rotation::Retired;
use reward_core::signing::WebhookSecret;
use reward_core::time::Timestamp;
use serde::{Deserialize, Serialize};

use crate::StoreError;

const SEALED_PREFIX: &str = "enc:v1:";
const NONCE_LEN: usize = 12;
/// Opened secrets remembered at most; past it the memory starts over.
const OPENED_REMEMBERED: usize = 4096;

/// Seals and opens webhook secrets. Cheap to clone (clones share what was opened).
#[derive(Clone)]
pub struct SecretCipher {
    /// None: [`SecretCipher::plaintext`].
    cipher: Option<ChaCha20Poly1305>,
    /// Secrets opened lately, by their sealed text, with the webhook they were opened for.
    /// Every new event opens the secret of each webhook it goes to (on SQLite, on the single
    /// writer's thread): a decryption each time, a sixteenth of the writer's time in a fan-out
    /// profile, for the same few secrets. A sealed text names one secret, as its nonce is new
    /// on every seal; a rotation writes a new one.
    opened: Arc<Mutex<HashMap<String, (String, WebhookSecret)>>>,
}

impl std::fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretCipher(..)")
    }
}

impl SecretCipher {
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            cipher: Some(ChaCha20Poly1305::new(Key::from_slice(&key))),
            opened: Arc::default(),
        }
    }

    /// No key: secrets are written plain and sealed ones cannot be read. Only for tools that
    /// never touch secrets (`reward accounts`, `reward migrate`) and backend tests; `reward serve`
    /// always has a key.
    pub fn plaintext() -> Self {
        Self {
            cipher: None,
            opened: Arc::default(),
        }
    }

    /// Whether secrets are sealed (false: [`Self::plaintext`]).
    pub fn has_key(&self) -> bool {
        self.cipher.is_some()
    }

    /// A key written as base64 of 32 bytes (`REWARD_SECRET_KEY`).
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|_| "REWARD_SECRET_KEY must be base64 of 32 random bytes".to_owned())?;
        let key: [u8; 32] = bytes.try_into().map_err(|bytes: Vec<u8>| {
            format!(
                "REWARD_SECRET_KEY must be base64 of 32 bytes, not {}",
                bytes.len()
            )
        })?;
        Ok(Self::new(key))
    }

    /// A fresh random key, as base64 (what `REWARD_SECRET_KEY` or a key file holds).
    pub fn generate_key() -> String {
        BASE64.encode(ChaCha20Poly1305::generate_key(&mut OsRng))
    }

    /// The key in `path`, created (readable by this user only, mode 0600) when missing.
    pub fn load_or_create_key_file(path: &Path) -> Result<Self, String> {
        let describe = |error: std::io::Error| format!("key file {}: {error}", path.display());
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(mut file) => {
                file.write_all(Self::generate_key().as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(describe)?;
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(describe(error)),
        }
        Self::read_key_file(path)
    }

    /// The key in an existing key file, never creating one: for tools that read a database
    /// another process made (`reward copy`).
    pub fn read_key_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("key file {}: {error}", path.display()))?;
        Self::from_base64(&text).map_err(|error| format!("key file {}: {error}", path.display()))
    }

    /// Where the key file of an SQLite database lives: beside it, named after it.
    pub fn key_file_beside(database: &Path) -> PathBuf {
        let mut name = database.file_name().unwrap_or_default().to_os_string();
        name.push(".key");
        database.with_file_name(name)
    }

    /// The stored form of a webhook's secret.
    pub fn seal(&self, webhook_id: &str, secret: &WebhookSecret) -> String {
        self.seal_text(webhook_id, secret.expose())
    }

    /// The stored form of any text that must not be readable from the database alone (a
    /// secret, or an answer that holds one), bound to `context` (its row's identity): it opens
    /// only with the same context. Plain when there is no key ([`Self::plaintext`]).
    pub fn seal_text(&self, context: &str, text: &str) -> String {
        let Some(cipher) = &self.cipher else {
            return text.to_owned();
        };
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: text.as_bytes(),
            aad: context.as_bytes(),
        };
        let sealed = cipher
            .encrypt(&nonce, payload)
            .expect("sealing text held in memory cannot fail");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}", BASE64.encode(bytes))
    }

    /// Text from [`Self::seal_text`]'s stored form, opened with the same `context`. Text stored
    /// plain (no key when written) is returned as it is.
    pub fn open_text(&self, context: &str, stored: &str) -> Result<String, StoreError> {
        let corrupt = |why: &str| StoreError::Internal(format!("{context}: {why}"));
        let Some(encoded) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_owned());
        };
        let Some(cipher) = &self.cipher else {
            return Err(corrupt(
                "the text is sealed and no REWARD_SECRET_KEY was given",
            ));
        };
        let bytes = BASE64
            .decode(encoded)
            .map_err(|_| corrupt("the sealed text is not base64"))?;
        if bytes.len() < NONCE_LEN {
            return Err(corrupt("the sealed text is too short"));
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let payload = Payload {
            msg: sealed,
            aad: context.as_bytes(),
        };
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| corrupt("the sealed text does not open with this key"))?;
        String::from_utf8(plain).map_err(|_| corrupt("the opened text is not UTF-8"))
    }

    /// A webhook's secret from its stored form (sealed, or plain from before encryption).
    pub fn open(&self, webhook_id: &str, stored: &str) -> Result<WebhookSecret, StoreError> {
        let corrupt = |why: &str| StoreError::Internal(format!("webhook {webhook_id}: {why}"));
        if Self::is_plain(stored) {
            return WebhookSecret::parse(stored)
                .map_err(|_| corrupt("the stored secret is not valid"));
        }
        if let Some(secret) = self.remembered(webhook_id, stored) {
            return Ok(secret);
        }
        let text = self.open_text(webhook_id, stored).map_err(|_| {
            corrupt("the secret does not open (is REWARD_SECRET_KEY or the key file the one it was sealed with?)")
        })?;
        let secret =
            WebhookSecret::parse(&text).map_err(|_| corrupt("the opened secret is not valid"))?;
        self.remember(webhook_id, stored, &secret);
        Ok(secret)
    }

    /// A secret opened before from this sealed text, for this webhook (the webhook's id is the
    /// seal's associated data: the same text under another webhook must not open).
    fn remembered(&self, webhook_id: &str, stored: &str) -> Option<WebhookSecret> {
        let opened = self.opened.lock().unwrap_or_else(|e| e.into_inner());
        opened
            .get(stored)
            .filter(|(owner, _)| owner == webhook_id)
            .map(|(_, secret)| secret.clone())
    }

    fn remember(&self, webhook_id: &str, stored: &str, secret: &WebhookSecret) {
        let mut opened = self.opened.lock().unwrap_or_else(|e| e.into_inner());
        if opened.len() >= OPENED_REMEMBERED {
            opened.clear();
        }
        opened.insert(stored.to_owned(), (webhook_id.to_owned(), secret.clone()));
    }

    /// Whether a stored secret is still plain (written before encryption).
    pub fn is_plain(stored: &str) -> bool {
        !stored.starts_with(SEALED_PREFIX)
    }

    /// A webhook's secrets rotated out, opened from their stored form.
    pub fn open_previous(
        &self,
        webhook_id: &str,
        stored: &str,
    ) -> Result<Vec<Retired<WebhookSecret>>, StoreError> {
        previous_from_stored(webhook_id, stored)?
            .into_iter()
            .map(|retired| {
                Ok(Retired {
                    secret: self.open(webhook_id, &retired.secret)?,
                    expires_at: retired.expires_at,
                })
            })
            .collect()
    }

    /// `previous_secrets` with every plain entry sealed, when it had one (rows from before
    /// encryption); `None` when there was nothing to seal.
    pub fn seal_plain_previous(
        &self,
        webhook_id: &str,
        stored: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut previous = previous_from_stored(webhook_id, stored)?;
        if !previous
            .iter()
            .any(|retired| Self::is_plain(&retired.secret))
        {
            return Ok(None);
        }
        for retired in &mut previous {
            if Self::is_plain(&retired.secret) {
                let secret = WebhookSecret::parse(&retired.secret).map_err(|_| {
                    StoreError::Internal(format!(
                        "webhook {webhook_id}: a stored previous secret is not valid"
                    ))
                })?;
                retired.secret = self.seal(webhook_id, &secret);
            }
        }
        Ok(Some(previous_to_stored(&previous)))
    }
}

/// What `previous_secrets` holds when nothing was rotated out.
pub const NO_PREVIOUS_SECRETS: &str = "[]";

/// One entry of `previous_secrets`.
#[derive(Serialize, Deserialize)]
struct StoredRetired<'a> {
    secret: std::borrow::Cow<'a, str>,
    expires_at: i64,
}

/// The secrets rotated out, in their stored forms, from `previous_secrets`.
pub fn previous_from_stored(
    webhook_id: &str,
    stored: &str,
) -> Result<Vec<Retired<String>>, StoreError> {
    let entries: Vec<StoredRetired> = serde_json::from_str(stored).map_err(|_| {
        StoreError::Internal(format!(
            "webhook {webhook_id}: previous_secrets is not a list of secrets"
        ))
    })?;
    Ok(entries
        .into_iter()
        .map(|entry| Retired {
            secret: entry.secret.into_owned(),
            expires_at: Timestamp::from_millis(entry.expires_at),
        })
        .collect())
}

/// `previous_secrets` for secrets rotated out, in their stored forms.
pub fn previous_to_stored(previous: &[Retired<String>]) -> String {
    let entries: Vec<StoredRetired> = previous
        .iter()
        .map(|retired| StoredRetired {
            secret: std::borrow::Cow::Borrowed(&retired.secret),
            expires_at: retired.expires_at.as_millis(),
        })
        .collect();
    serde_json::to_string(&entries).unwrap_or_else(|_| NO_PREVIOUS_SECRETS.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_row() {
        let cipher = SecretCipher::from_base64(&SecretCipher::generate_key()).expect("key");
        let secret = WebhookSecret::generate();
        let stored = cipher.seal("wh_1", &secret);
        assert!(!stored.contains("whsec_"));
        assert!(!stored.contains(&secret.expose()[6..]));
        assert_eq!(
            cipher.open("wh_1", &stored).expect("open").expose(),
            secret.expose()
        );
        // Opened once already: what was opened is remembered for its own row only.
        assert!(cipher.open("wh_2", &stored).is_err(), "another row");
        let other = SecretCipher::new([7; 32]);
        assert!(other.open("wh_1", &stored).is_err(), "another key");
        // Rows from before encryption still read.
        assert_eq!(
            cipher
                .open("wh_1", secret.expose())
                .expect("plain")
                .expose(),
            secret.expose()
        );
        assert!(SecretCipher::is_plain(secret.expose()) && !SecretCipher::is_plain(&stored));
    }

    #[test]
    fn sealed_text_opens_only_with_its_key_and_context() {
        let cipher = SecretCipher::new([3; 32]);
        let stored = cipher.seal_text("acct/key-1", r#"{"secret":"whsec_x"}"#);
        assert!(!stored.contains("whsec_x"));
        assert_eq!(
            cipher.open_text("acct/key-1", &stored).expect("open"),
            r#"{"secret":"whsec_x"}"#
        );
        assert!(
            cipher.open_text("acct/key-2", &stored).is_err(),
            "another row"
        );
        assert!(SecretCipher::new([4; 32])
            .open_text("acct/key-1", &stored)
            .is_err());
        let plain = SecretCipher::plaintext();
        assert_eq!(plain.seal_text("c", "{}"), "{}");
        assert_eq!(plain.open_text("c", "{}").expect("plain"), "{}");
    }

    #[test]
    fn previous_secrets_round_trip_sealed_and_reseal_plain_entries() {
        let cipher = SecretCipher::from_base64(&SecretCipher::generate_key()).expect("key");
        let (a, b) = (WebhookSecret::generate(), WebhookSecret::generate());
        let stored = previous_to_stored(&[
            Retired {
                secret: cipher.seal("wh_1", &a),
                expires_at: Timestamp::from_millis(2),
            },
            // From before encryption: plain.
            Retired {
                secret: b.expose().to_owned(),
                expires_at: Timestamp::from_millis(1),
            },
        ]);
        let opened = cipher.open_previous("wh_1", &stored).expect("open");
        assert_eq!(opened.len(), 2);
        assert_eq!(
            (&opened[0].secret, opened[0].expires_at.as_millis()),
            (&a, 2)
        );
        assert_eq!(
            (&opened[1].secret, opened[1].expires_at.as_millis()),
            (&b, 1)
        );
        let resealed = cipher
            .seal_plain_previous("wh_1", &stored)
            .expect("reseal")
            .expect("one was plain");
        assert!(!resealed.contains("whsec_"), "{resealed}");
        let reopened = cipher.open_previous("wh_1", &resealed).expect("open");
        assert_eq!(reopened[1].secret, b);
        assert_eq!(
            cipher.seal_plain_previous("wh_1", &resealed).expect("ok"),
            None
        );
        assert!(
            cipher.open_previous("wh_2", &resealed).is_err(),
            "another row"
        );
        assert!(cipher
            .open_previous("wh_1", NO_PREVIOUS_SECRETS)
            .expect("empty")
            .is_empty());
        assert!(cipher.open_previous("wh_1", "{}").is_err());
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(SecretCipher::from_base64("not base64!").is_err());
        assert!(SecretCipher::from_base64(&BASE64.encode([1u8; 16])).is_err());
        assert!(SecretCipher::from_base64(&BASE64.encode([1u8; 32])).is_ok());
    }

    #[test]
    fn a_key_file_is_created_once_and_private() {
        let folder = std::env::temp_dir().join(format!("reward-key-{}", std::process::id()));
        std::fs::create_dir_all(&folder).expect("folder");
        let path = SecretCipher::key_file_beside(&folder.join("reward.db"));
        let _ = std::fs::remove_file(&path);
        let first = SecretCipher::load_or_create_key_file(&path).expect("created");
        let secret = WebhookSecret::generate();
        let stored = first.seal("wh_1", &secret);
        let again = SecretCipher::load_or_create_key_file(&path).expect("read");
        assert!(again.open("wh_1", &stored).is_ok(), "the same key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&folder);
    }
}
