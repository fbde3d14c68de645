//! Validated newtypes for what users name and send: once constructed, a value is valid, so
//! handlers and stores never re-check it.

use std::fmt;

use thiserror::Error;

pub use crate::special_addresses::{is_public_ip, non_public_reason};

/// Why a value was refused, as a sentence for a person.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid(message: impl Into<String>) -> Invalid {
    Invalid(message.into())
}

/// True for characters we refuse in identifiers: whitespace, control characters and `/` (ids
/// travel in URL paths).
fn unfit_for_identifier(c: char) -> bool {
    c.is_whitespace() || c.is_control() || c == '/' || c == '?' || c == '#' || c == '%'
}

macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Wraps a value read back from our own store, which only holds valid values.
            pub fn from_trusted(text: String) -> Self {
                Self(text)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
    };
}

string_newtype!(
    /// The caller's own identifier of one of its users (e.g. a UUID): 1–128 characters, no
    /// whitespace, control characters, `/`, `?`, `#` or `%`.
    UserId
);
string_newtype!(
    /// A trigger's identifier, chosen by the caller (e.g. `successful_payment`): 1–100 of
    /// `A-Z a-z 0-9 _ - . :`.
    TriggerId
);
string_newtype!(
    /// A human name (webhook, trigger, account, API key): 1–100 characters, not blank.
    Name
);
string_newtype!(
    /// An `Idempotency-Key` header value: 1–255 visible ASCII characters.
    IdempotencyKey
);

impl UserId {
    pub const MAX_LEN: usize = 128;
    /// What `parse` accepts, as a regular expression for documents that describe the field
    /// (OpenAPI): no whitespace, control character, `/`, `?`, `#` or `%`.
    pub const PATTERN: &'static str = "^[^\\s/?#%\\x00-\\x1f\\x7f-\\x9f]+$";

    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let length = text.chars().count();
        if length == 0 || length > Self::MAX_LEN {
            return Err(invalid("A user id must be 1 to 128 characters long."));
        }
        if text.chars().any(unfit_for_identifier) {
            return Err(invalid(
                "A user id may not contain whitespace, control characters, '/', '?', '#' or '%'.",
            ));
        }
        Ok(Self(text.to_owned()))
    }
}

impl TriggerId {
    pub const MAX_LEN: usize = 100;
    /// What `parse` accepts, as a regular expression (OpenAPI).
    pub const PATTERN: &'static str = "^[A-Za-z0-9_.:-]+$";

    pub fn parse(text: &str) -> Result<Self, Invalid> {
        if text.is_empty() || text.len() > Self::MAX_LEN {
            return Err(invalid("A trigger id must be 1 to 100 characters long."));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':');
        if !text.chars().all(allowed) {
            return Err(invalid(
                "A trigger id may only contain letters, digits, '_', '-', '.' and ':'.",
            ));
        }
        Ok(Self(text.to_owned()))
    }
}

impl Name {
    pub const MAX_LEN: usize = 100;
    /// What `parse` accepts, as a regular expression (OpenAPI): no control character, and at
    /// least one that is not whitespace.
    pub const PATTERN: &'static str =
        "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$";

    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let length = text.chars().count();
        if length == 0 || length > Self::MAX_LEN || text.trim().is_empty() {
            return Err(invalid(
                "A name must be 1 to 100 characters long and not blank.",
            ));
        }
        if text.chars().any(char::is_control) {
            return Err(invalid("A name may not contain control characters."));
        }
        Ok(Self(text.to_owned()))
    }
}

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;
    /// What `parse` accepts, as a regular expression (OpenAPI): visible ASCII only.
    pub const PATTERN: &'static str = "^[!-~]+$";

    pub fn parse(text: &str) -> Result<Self, Invalid> {
        if text.is_empty() || text.len() > Self::MAX_LEN {
            return Err(invalid(
                "An Idempotency-Key must be 1 to 255 characters long.",
            ));
        }
        if !text.chars().all(|c| c.is_ascii_graphic()) {
            return Err(invalid(
                "An Idempotency-Key may only contain visible ASCII characters.",
            ));
        }
        Ok(Self(text.to_owned()))
    }
}

/// Whether webhook targets must be public `https://` URLs (the default) or may be anything
/// (`REWARD_ALLOW_INSECURE_TARGETS=true`, for development and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetPolicy {
    SecureOnly,
    AllowInsecure,
}

/// A webhook's target: an absolute `https://` (or, when allowed, `http://`) URL with a host and
/// no credentials or fragment, at most 2048 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(url::Url);

impl WebhookUrl {
    pub const MAX_LEN: usize = 2048;
    /// The part of what `parse` accepts that a regular expression can say (OpenAPI): the scheme.
    pub const PATTERN: &'static str = "^https?://";

    pub fn parse(text: &str, policy: TargetPolicy) -> Result<Self, Invalid> {
        if text.len() > Self::MAX_LEN {
            return Err(invalid("A URL may be at most 2048 characters long."));
        }
        let url = url::Url::parse(text)
            .map_err(|error| invalid(format!("Not an absolute URL: {error}.")))?;
        match (url.scheme(), policy) {
            ("https", _) | ("http", TargetPolicy::AllowInsecure) => {}
            ("http", TargetPolicy::SecureOnly) => {
                return Err(invalid("The URL must use https://."));
            }
            _ => return Err(invalid("The URL must use https://.")),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("The URL must name a host."));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("The URL may not carry a user name or password."));
        }
        if url.fragment().is_some() {
            return Err(invalid("The URL may not carry a fragment (#...)."));
        }
        // Parsing percent-encodes (a space becomes %20): the limit holds for what is stored and
        // shown, so a URL the API returns is always accepted back.
        if url.as_str().len() > Self::MAX_LEN {
            return Err(invalid("A URL may be at most 2048 characters long."));
        }
        if policy == TargetPolicy::SecureOnly {
            if let Some(reason) = crate::names::literal_host_refusal(&url) {
                return Err(invalid(reason));
            }
        }
        Ok(Self(url))
    }

    /// Wraps a URL read back from our own store.
    pub fn from_trusted(text: &str) -> Option<Self> {
        url::Url::parse(text).ok().map(Self)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The host alone: what logs may name (the full URL is confidential).
    pub fn host(&self) -> &str {
        self.0.host_str().unwrap_or("")
    }

    pub fn url(&self) -> &url::Url {
        &self.0
    }
}

/// In secure mode a URL whose host is a literal non-public address (or `localhost`) is refused at
/// once; names that resolve to such addresses are refused when connecting.
fn literal_host_refusal(url: &url::Url) -> Option<String> {
    let address: std::net::IpAddr = match url.host()? {
        url::Host::Domain(domain) => {
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            return (domain == "localhost" || domain.ends_with(".localhost"))
                .then(|| "The URL's host is localhost, which is not a public address.".to_owned());
        }
        url::Host::Ipv4(address) => address.into(),
        url::Host::Ipv6(address) => address.into(),
    };
    non_public_reason(address)
        .map(|block| format!("The URL's host is not a public address: it is in {block}."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_follow_the_policy() {
        let secure = TargetPolicy::SecureOnly;
        let insecure = TargetPolicy::AllowInsecure;
        assert!(WebhookUrl::parse("https://example.com/hook", secure).is_ok());
        assert!(WebhookUrl::parse("http://example.com/hook", secure).is_err());
        assert!(WebhookUrl::parse("http://127.0.0.1:9/hook", insecure).is_ok());
        assert!(WebhookUrl::parse("https://127.0.0.1/hook", secure).is_err());
        assert!(WebhookUrl::parse("https://[::1]/hook", secure).is_err());
        assert!(WebhookUrl::parse("https://localhost/hook", secure).is_err());
        assert!(WebhookUrl::parse("https://169.254.169.254/latest", secure).is_err());
        assert!(WebhookUrl::parse("ftp://example.com/", insecure).is_err());
        assert!(WebhookUrl::parse("/relative", insecure).is_err());
        assert!(WebhookUrl::parse("https://user:pw@example.com/", secure).is_err());
        assert!(WebhookUrl::parse(&format!("https://e.com/{}", "a".repeat(2100)), secure).is_err());
    }

    #[test]
    fn public_ip_classification() {
        let public = |text: &str| is_public_ip(text.parse().expect("ip"));
        assert!(public("93.184.216.34"));
        assert!(public("2606:2800:220:1:248:1893:25c8:1946"));
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "fd00:ec2::254",
        ] {
            assert!(!public(private), "{private} must not be public");
        }
    }

    #[test]
    fn identifiers() {
        assert!(UserId::parse("ca9bb5c2-25a6-43e9-972e-862d28241a47").is_ok());
        assert!(UserId::parse("a b").is_err());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse("a/b").is_err());
        assert!(TriggerId::parse("successful_payment").is_ok());
        assert!(TriggerId::parse("bad id").is_err());
        assert!(Name::parse("  ").is_err());
        assert!(Name::parse(&"x".repeat(101)).is_err());
        assert!(Name::parse("Orders").is_ok());
    }
}
