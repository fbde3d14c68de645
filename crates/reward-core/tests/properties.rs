//! Property tests of every parser in reward-core that reads untrusted input: request fields
//! (names, ids, URLs, times, amounts, event types), settings (durations), a receiver's
//! `Retry-After`, and the signature headers `reward listen` checks.
//!
//! Each parser is held to three kinds of property: it never panics, whatever the text; it accepts
//! exactly what the spec (or the parser's own documentation) allows; and where a formatter exists,
//! formatting then parsing gives the value back. The fuzz targets in `fuzz/` drive the same
//! parsers with coverage guidance; these run on every `cargo test`, with a fixed number of cases.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use proptest::prelude::*;
use reward_core::credit::{
    balance_after, BalanceOverflow, CreditRule, TooManyPoints, MAX_BALANCE, MAX_POINTS,
};
use reward_core::event::EventType;
use reward_core::ids::{DeliveryId, EventId, WebhookId};
use reward_core::names::{
    is_public_ip, IdempotencyKey, Name, TargetPolicy, TriggerId, UserId, WebhookUrl,
};
use reward_core::retry::{parse_duration, parse_retry_after};
use reward_core::signing::{
    signature_header, verify_request, SecretError, VerifyError, WebhookSecret,
    TIMESTAMP_TOLERANCE_SECONDS,
};
use reward_core::time::Timestamp;

/// Enough cases to find the edges below in well under a second per property, every run.
fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

/// Any text, weighted towards the characters parsers treat specially.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,40}",
        "[0-9a-zA-Z_:./#?%@\\[\\]+-]{0,40}",
        "\\PC{0,10}[\\s\\x00-\\x1f\\x7f/?#%]\\PC{0,10}",
    ]
}

// --- names.rs ------------------------------------------------------------------------------

fn unfit_for_identifier(c: char) -> bool {
    c.is_whitespace() || c.is_control() || matches!(c, '/' | '?' | '#' | '%')
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn user_ids_are_1_to_128_characters_without_separators(text in any_text()) {
        let expected = (1..=UserId::MAX_LEN).contains(&text.chars().count())
            && !text.chars().any(unfit_for_identifier);
        match UserId::parse(&text) {
            Ok(id) => {
                prop_assert!(expected, "accepted {text:?}");
                prop_assert_eq!(id.as_str(), text.as_str());
            }
            Err(_) => prop_assert!(!expected, "refused {text:?}"),
        }
    }

    #[test]
    fn user_ids_of_uuids_and_long_unicode_are_accepted(text in "[\\p{L}\\p{N}_.:@-]{1,128}") {
        prop_assert_eq!(UserId::parse(&text).map(|id| id.as_str().to_owned()), Ok(text));
    }

    #[test]
    fn trigger_ids_are_1_to_100_of_the_allowed_characters(text in any_text()) {
        let expected = (1..=TriggerId::MAX_LEN).contains(&text.len())
            && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
        match TriggerId::parse(&text) {
            Ok(id) => {
                prop_assert!(expected, "accepted {text:?}");
                prop_assert_eq!(id.as_str(), text.as_str());
            }
            Err(_) => prop_assert!(!expected, "refused {text:?}"),
        }
    }

    #[test]
    fn valid_trigger_ids_round_trip(text in "[A-Za-z0-9_.:-]{1,100}") {
        let id = TriggerId::parse(&text).expect("valid trigger id");
        prop_assert_eq!(TriggerId::parse(id.as_str()), Ok(id));
    }

    #[test]
    fn names_are_1_to_100_characters_not_blank_without_controls(text in any_text()) {
        let expected = (1..=Name::MAX_LEN).contains(&text.chars().count())
            && !text.trim().is_empty()
            && !text.chars().any(char::is_control);
        match Name::parse(&text) {
            Ok(name) => {
                prop_assert!(expected, "accepted {text:?}");
                prop_assert_eq!(name.as_str(), text.as_str());
            }
            Err(_) => prop_assert!(!expected, "refused {text:?}"),
        }
    }

    #[test]
    fn idempotency_keys_are_1_to_255_visible_ascii(text in prop_oneof![any_text(), "[!-~]{200,300}"]) {
        let expected = (1..=IdempotencyKey::MAX_LEN).contains(&text.len())
            && text.bytes().all(|byte| (b'!'..=b'~').contains(&byte));
        match IdempotencyKey::parse(&text) {
            Ok(key) => {
                prop_assert!(expected, "accepted {text:?}");
                prop_assert_eq!(key.as_str(), text.as_str());
            }
            Err(_) => prop_assert!(!expected, "refused {text:?}"),
        }
    }
}

// --- WebhookUrl and is_public_ip -------------------------------------------------------------

/// URL-ish text: schemes, hosts (names, IPv4 in odd spellings, IPv6), user info, ports, paths.
fn url_text() -> impl Strategy<Value = String> {
    let scheme = prop_oneof![
        Just("https://"),
        Just("http://"),
        Just("HTTPS://"),
        Just("ftp://"),
        Just("https:"),
        Just("//"),
        Just(""),
    ];
    let host = prop_oneof![
        "[a-z0-9-]{1,12}(\\.[a-z0-9-]{1,12}){0,3}\\.?",
        any::<Ipv4Addr>().prop_map(|ip| ip.to_string()),
        any::<u32>().prop_map(|n| n.to_string()),
        any::<u32>().prop_map(|n| format!("0x{n:x}")),
        any::<Ipv6Addr>().prop_map(|ip| format!("[{ip}]")),
        Just("localhost".to_owned()),
        Just("LOCALHOST.".to_owned()),
        Just("a.localhost".to_owned()),
        Just("[::ffff:127.0.0.1]".to_owned()),
        "\\PC{0,8}",
    ];
    let userinfo = prop_oneof![Just(""), Just("user@"), Just("user:pw@"), Just(":@")];
    let port = prop_oneof![
        Just(String::new()),
        any::<u16>().prop_map(|p| format!(":{p}")),
        Just(":99999".to_owned())
    ];
    let rest = prop_oneof![
        Just(String::new()),
        "/[ -~]{0,30}",
        "/\\PC{0,20}",
        "#frag",
        "\\?a=b#"
    ];
    (scheme, userinfo, host, port, rest).prop_map(|(scheme, userinfo, host, port, rest)| {
        format!("{scheme}{userinfo}{host}{port}{rest}")
    })
}

fn any_policy() -> impl Strategy<Value = TargetPolicy> {
    prop_oneof![
        Just(TargetPolicy::SecureOnly),
        Just(TargetPolicy::AllowInsecure)
    ]
}

/// Addresses of the ranges SPEC §6 and `is_public_ip` refuse.
fn non_public_ipv4() -> impl Strategy<Value = Ipv4Addr> {
    let in_range = |base: [u8; 4], prefix: u32| {
        any::<u32>().prop_map(move |random| {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            Ipv4Addr::from((u32::from(Ipv4Addr::from(base)) & mask) | (random & !mask))
        })
    };
    prop_oneof![
        in_range([0, 0, 0, 0], 8),
        in_range([10, 0, 0, 0], 8),
        in_range([100, 64, 0, 0], 10),
        in_range([127, 0, 0, 0], 8),
        in_range([169, 254, 0, 0], 16),
        in_range([172, 16, 0, 0], 12),
        in_range([192, 0, 0, 0], 24),
        in_range([192, 0, 2, 0], 24),
        in_range([192, 168, 0, 0], 16),
        in_range([198, 18, 0, 0], 15),
        in_range([198, 51, 100, 0], 24),
        in_range([203, 0, 113, 0], 24),
        in_range([224, 0, 0, 0], 4),
        in_range([240, 0, 0, 0], 4),
    ]
}

fn non_public_ipv6() -> impl Strategy<Value = Ipv6Addr> {
    let in_range = |first: u16, mask: u16| {
        any::<u128>().prop_map(move |random| {
            let mut segments = Ipv6Addr::from(random).segments();
            segments[0] = first | (segments[0] & !mask);
            Ipv6Addr::from(segments)
        })
    };
    prop_oneof![
        Just(Ipv6Addr::LOCALHOST),
        Just(Ipv6Addr::UNSPECIFIED),
        in_range(0xfc00, 0xfe00),
        in_range(0xfe80, 0xffc0),
        in_range(0xff00, 0xff00),
        any::<u128>().prop_map(|random| {
            let mut segments = Ipv6Addr::from(random).segments();
            segments[0] = 0x2001;
            segments[1] = 0x0db8;
            Ipv6Addr::from(segments)
        }),
        // Tunnels and reserved space the hand-picked list once let through (issue 14).
        in_ipv6_block([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), // 6to4
        in_ipv6_block([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), // IETF protocol assignments, Teredo
        in_ipv6_block([0, 0, 0, 0, 0xffff, 0, 0, 0], 96), // SIIT
        in_ipv6_block([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), // site-local
        in_ipv6_block([0x100, 0, 0, 0, 0, 0, 0, 0], 63),  // discard-only and dummy
        in_ipv6_block([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), // documentation
        in_ipv6_block([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16), // SRv6
        in_ipv6_block([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), // local-use NAT64
        in_ipv6_block([0, 0, 0, 0, 0, 0, 0, 0], 96),      // IPv4-compatible
    ]
}

/// Any address in `base/length`.
fn in_ipv6_block(base: [u16; 8], length: u32) -> impl Strategy<Value = Ipv6Addr> {
    let base = u128::from(Ipv6Addr::from(base));
    let mask = u128::MAX.checked_shl(128 - length).unwrap_or(0);
    any::<u128>().prop_map(move |random| Ipv6Addr::from((base & mask) | (random & !mask)))
}

/// The IPv4 address carried in the low 32 bits of `prefix/96`.
fn carrying(prefix: [u16; 6], v4: Ipv4Addr) -> Ipv6Addr {
    let [a, b, c, d] = v4.octets();
    let [p0, p1, p2, p3, p4, p5] = prefix;
    Ipv6Addr::new(
        p0,
        p1,
        p2,
        p3,
        p4,
        p5,
        u16::from_be_bytes([a, b]),
        u16::from_be_bytes([c, d]),
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn webhook_urls_accepted_are_absolute_posts_without_credentials(
        text in prop_oneof![url_text(), any_text()],
        policy in any_policy(),
    ) {
        let Ok(url) = WebhookUrl::parse(&text, policy) else {
            return Ok(());
        };
        let parsed = url.url();
        prop_assert!(text.len() <= WebhookUrl::MAX_LEN);
        match policy {
            TargetPolicy::SecureOnly => prop_assert_eq!(parsed.scheme(), "https"),
            TargetPolicy::AllowInsecure => prop_assert!(matches!(parsed.scheme(), "https" | "http")),
        }
        prop_assert!(!url.host().is_empty());
        prop_assert!(parsed.username().is_empty() && parsed.password().is_none());
        prop_assert!(parsed.fragment().is_none());
        if policy == TargetPolicy::SecureOnly {
            match parsed.host() {
                Some(url::Host::Ipv4(ip)) => prop_assert!(is_public_ip(ip.into()), "{text}"),
                Some(url::Host::Ipv6(ip)) => prop_assert!(is_public_ip(ip.into()), "{text}"),
                Some(url::Host::Domain(domain)) => {
                    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
                    prop_assert!(domain != "localhost" && !domain.ends_with(".localhost"));
                }
                None => prop_assert!(false, "no host in {text}"),
            }
        }
        // What the API stores and shows is accepted again as it is (e.g. sent back in a PATCH).
        let again = WebhookUrl::parse(url.as_str(), policy);
        prop_assert_eq!(again.as_ref().map(WebhookUrl::as_str), Ok(url.as_str()));
    }

    #[test]
    fn long_urls_still_parse_back(path in "[a-z/ \"<>`{}]{2000,2028}") {
        let text = format!("https://example.com/{path}");
        if let Ok(url) = WebhookUrl::parse(&text, TargetPolicy::SecureOnly) {
            prop_assert!(url.as_str().len() <= WebhookUrl::MAX_LEN);
            prop_assert!(WebhookUrl::parse(url.as_str(), TargetPolicy::SecureOnly).is_ok());
        }
    }

    #[test]
    fn non_public_literal_hosts_are_refused_in_secure_mode(
        v4 in non_public_ipv4(),
        v6 in non_public_ipv6(),
    ) {
        prop_assert!(!is_public_ip(v4.into()), "{v4}");
        prop_assert!(!is_public_ip(v6.into()), "{v6}");
        // The same IPv4 address spelled inside IPv6 (mapped, compatible, NAT64) is no more public.
        let [a, b, c, d] = v4.octets();
        let low = [u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d])];
        for embedded in [
            v4.to_ipv6_mapped(),
            Ipv6Addr::new(0, 0, 0, 0, 0, 0, low[0], low[1]),
            Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, low[0], low[1]),
        ] {
            prop_assert!(!is_public_ip(embedded.into()), "{embedded}");
        }
        for text in [
            format!("https://{v4}/hook"),
            format!("https://{}/hook", u32::from(v4)),
            format!("https://[{v6}]/hook"),
            format!("https://[{}]/hook", v4.to_ipv6_mapped()),
        ] {
            prop_assert!(WebhookUrl::parse(&text, TargetPolicy::SecureOnly).is_err(), "{text}");
            prop_assert!(WebhookUrl::parse(&text.replace("https", "http"), TargetPolicy::AllowInsecure).is_ok(), "{text}");
        }
    }

    #[test]
    fn public_ipv4_is_public_in_every_spelling(ip in any::<Ipv4Addr>()) {
        let public = is_public_ip(IpAddr::V4(ip));
        prop_assert_eq!(is_public_ip(ip.to_ipv6_mapped().into()), public);
        // The well-known NAT64 prefix is judged by the address it carries.
        let nat64 = carrying([0x64, 0xff9b, 0, 0, 0, 0], ip);
        prop_assert_eq!(is_public_ip(nat64.into()), public, "{}", nat64);
        // Tunnels that carry an IPv4 address elsewhere are refused whatever they carry.
        let [a, b, c, d] = ip.octets();
        let six_to_four = Ipv6Addr::new(0x2002, u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]), 0, 0, 0, 0, 1);
        let siit = carrying([0, 0, 0, 0, 0xffff, 0], ip);
        let compatible = carrying([0; 6], ip);
        for tunnelled in [six_to_four, siit, compatible] {
            prop_assert!(!is_public_ip(tunnelled.into()), "{}", tunnelled);
        }
        let secure = WebhookUrl::parse(&format!("https://{ip}/"), TargetPolicy::SecureOnly);
        prop_assert_eq!(secure.is_ok(), public, "{}", ip);
    }
}

proptest! {
    #![proptest_config(config())]

    /// Outside the global unicast space 2000::/3 only the two forms that carry an IPv4 address
    /// (mapped, well-known NAT64) may be public, and then only as public as what they carry.
    #[test]
    fn ipv6_outside_global_unicast_is_refused_unless_it_carries_ipv4(bits in any::<u128>()) {
        let address = Ipv6Addr::from(bits);
        let global_unicast = address.segments()[0] & 0xe000 == 0x2000;
        let carried = address.to_ipv4_mapped().or_else(|| {
            (bits >> 32 == 0x64_ff9b_0000_0000_0000_0000).then(|| Ipv4Addr::from(bits as u32))
        });
        match carried {
            Some(v4) => prop_assert_eq!(is_public_ip(address.into()), is_public_ip(v4.into())),
            None if !global_unicast => prop_assert!(!is_public_ip(address.into()), "{}", address),
            None => {}
        }
    }
}

// --- retry.rs: durations and Retry-After ---------------------------------------------------

fn unit_seconds() -> impl Strategy<Value = (&'static str, Duration)> {
    prop_oneof![
        Just(("ns", Duration::from_nanos(1))),
        Just(("us", Duration::from_micros(1))),
        Just(("ms", Duration::from_millis(1))),
        Just(("s", Duration::from_secs(1))),
        Just(("m", Duration::from_secs(60))),
        Just(("h", Duration::from_secs(3600))),
        Just(("d", Duration::from_secs(86_400))),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn durations_never_panic(text in prop_oneof![any_text(), "[0-9]{1,30}[a-z]{0,6}( ?[0-9]{1,30}[a-z]{0,6}){0,3}"]) {
        let _ = parse_duration(&text);
    }

    #[test]
    fn durations_are_a_number_and_a_unit(
        (unit, one) in unit_seconds(),
        count in 0_u32..1_000_000,
        spaces in "[ \\t]{0,2}",
    ) {
        let text = format!("{spaces}{count}{unit}{spaces}");
        prop_assert_eq!(parse_duration(&text), Ok(one * count));
    }

    #[test]
    fn durations_add_up(hours in 0_u32..1000, minutes in 0_u32..60, millis in 0_u32..1000) {
        let text = format!("{hours}h{minutes}m{millis}ms");
        let expected = Duration::from_secs(u64::from(hours) * 3600 + u64::from(minutes) * 60)
            + Duration::from_millis(u64::from(millis));
        prop_assert_eq!(parse_duration(&text), Ok(expected));
    }

    #[test]
    fn durations_round_trip_through_their_display(
        seconds in 0_u64..(100 * 365 * 86_400),
        nanos in 0_u32..1_000_000_000,
    ) {
        let duration = Duration::new(seconds, nanos);
        let shown = humantime::format_duration(duration).to_string();
        prop_assert_eq!(parse_duration(&shown), Ok(duration), "{}", shown);
    }

    #[test]
    fn durations_without_a_unit_are_refused(count in 1_u64..) {
        // Only a bare 0 needs no unit.
        prop_assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        prop_assert!(parse_duration(&count.to_string()).is_err());
        let negative = format!("-{count}s");
        prop_assert!(parse_duration(&negative).is_err());
    }

    #[test]
    fn retry_after_is_delay_seconds(
        seconds in any::<u64>(),
        before in "[ \\t]{0,2}",
        after in "[ \\t]{0,2}",
    ) {
        prop_assert_eq!(
            parse_retry_after(&format!("{before}{seconds}{after}")),
            Some(Duration::from_secs(seconds))
        );
    }

    #[test]
    fn retry_after_accepts_only_digits(text in prop_oneof![
        any_text(),
        "[ \\t]?[+-]?[0-9]{1,5}(\\.[0-9])?[ \\t]?",
        "[0-9]{1,3}[ a-z,:]{1,3}[0-9]{0,3}",
    ]) {
        let digits = text.trim_matches([' ', '\t']);
        let valid = !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit());
        let parsed = parse_retry_after(&text);
        prop_assert_eq!(parsed.is_some(), valid, "{:?} gave {:?}", text, parsed);
    }

    #[test]
    fn retry_after_beyond_u64_is_the_longest_delay(digits in "[1-9][0-9]{20,40}") {
        // delay-seconds is 1*DIGIT: a value too large to hold is a very long delay, not garbage.
        prop_assert_eq!(parse_retry_after(&digits), Some(Duration::from_secs(u64::MAX)));
    }

    #[test]
    fn retry_after_http_dates_are_ignored(millis in 0_i64..253_402_300_799_000) {
        // An HTTP-date is valid Retry-After, but Reward ignores it (the receiver's clock is not
        // ours) and keeps its own schedule: it must never be misread as some number of seconds.
        let time = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(millis).expect("in range");
        let http_date = time.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        prop_assert_eq!(parse_retry_after(&http_date), None);
    }
}

// --- signing.rs: secrets, signatures, verify_request ---------------------------------------

fn secret_of(key: &[u8]) -> WebhookSecret {
    WebhookSecret::parse(&format!("whsec_{}", BASE64.encode(key))).expect("valid secret")
}

/// A message as the sender makes it: an event id, Unix seconds, the payload bytes.
fn message() -> impl Strategy<Value = (String, i64, Vec<u8>)> {
    (
        prop_oneof!["we_[0-9a-z]{26}", "[!-~]{1,40}"],
        0_i64..4_102_444_800,
        prop::collection::vec(any::<u8>(), 0..300),
    )
}

/// Replaces the byte at `index % len` with a different byte, keeping the text valid UTF-8 by
/// staying within ASCII (header values are ASCII).
fn change_ascii_byte(text: &str, index: usize, replacement: u8) -> Option<String> {
    if text.is_empty() || !text.is_ascii() {
        return None;
    }
    let mut bytes = text.as_bytes().to_vec();
    let at = index % bytes.len();
    let new = replacement % 0x80;
    if bytes[at] == new {
        return None;
    }
    bytes[at] = new;
    String::from_utf8(bytes).ok()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn secrets_never_panic_and_name_their_fault(text in prop_oneof![any_text(), "whsec_[A-Za-z0-9+/=]{0,100}"]) {
        match WebhookSecret::parse(&text) {
            Ok(secret) => prop_assert_eq!(secret.expose(), text.trim()),
            Err(SecretError::MissingPrefix) => prop_assert!(!text.trim().starts_with("whsec_")),
            Err(SecretError::NotBase64) => {
                let encoded = text.trim().trim_start_matches("whsec_");
                prop_assert!(BASE64.decode(encoded).is_err());
            }
            Err(SecretError::WrongLength) => {}
        }
    }

    #[test]
    fn secrets_round_trip(key in prop::collection::vec(any::<u8>(), 0..80)) {
        let text = format!("whsec_{}", BASE64.encode(&key));
        match WebhookSecret::parse(&text) {
            Ok(secret) => {
                prop_assert!((24..=64).contains(&key.len()));
                prop_assert_eq!(secret.expose(), text.as_str());
                prop_assert_eq!(WebhookSecret::parse(secret.expose()), Ok(secret));
            }
            Err(error) => {
                prop_assert_eq!(error, SecretError::WrongLength);
                prop_assert!(!(24..=64).contains(&key.len()));
            }
        }
    }

    #[test]
    fn generated_secrets_round_trip(_seed in any::<u8>()) {
        let secret = WebhookSecret::generate();
        prop_assert_eq!(WebhookSecret::parse(secret.expose()), Ok(secret));
    }

    #[test]
    fn a_signed_message_verifies(
        key in prop::collection::vec(any::<u8>(), 24..=64),
        other_key in prop::collection::vec(any::<u8>(), 24..=64),
        (id, timestamp, body) in message(),
        skew in -TIMESTAMP_TOLERANCE_SECONDS..=TIMESTAMP_TOLERANCE_SECONDS,
    ) {
        let secret = secret_of(&key);
        let signature = secret.sign(&id, timestamp, &body);
        let now = timestamp + skew;
        let stamp = timestamp.to_string();
        prop_assert_eq!(
            verify_request(&secret, Some(&id), Some(&stamp), Some(&signature), &body, now),
            Ok(())
        );
        // During a rotation the header carries two entries; either secret verifies it.
        let other = secret_of(&other_key);
        let header = signature_header(&[&other, &secret], &id, timestamp, &body);
        prop_assert!(secret.verify(&id, timestamp, &body, &header));
        prop_assert!(other.verify(&id, timestamp, &body, &header));
        if other != secret {
            prop_assert!(!other.verify(&id, timestamp, &body, &signature));
        }
    }

    #[test]
    fn any_single_byte_change_fails_verification(
        key in prop::collection::vec(any::<u8>(), 24..=64),
        (id, timestamp, body) in message(),
        index in any::<usize>(),
        replacement in any::<u8>(),
    ) {
        let secret = secret_of(&key);
        let signature = secret.sign(&id, timestamp, &body);
        let stamp = timestamp.to_string();
        let check = |id: &str, stamp: &str, signature: &str, body: &[u8]| {
            verify_request(&secret, Some(id), Some(stamp), Some(signature), body, timestamp)
        };
        prop_assert_eq!(check(&id, &stamp, &signature, &body), Ok(()));

        if !body.is_empty() {
            let mut changed = body.clone();
            let at = index % changed.len();
            changed[at] = if changed[at] == replacement { replacement.wrapping_add(1) } else { replacement };
            prop_assert_eq!(check(&id, &stamp, &signature, &changed), Err(VerifyError::NoMatchingSignature));
        }
        if let Some(changed) = change_ascii_byte(&id, index, replacement) {
            prop_assert_eq!(check(&changed, &stamp, &signature, &body), Err(VerifyError::NoMatchingSignature));
        }
        if let Some(changed) = change_ascii_byte(&stamp, index, replacement) {
            prop_assert!(check(&id, &changed, &signature, &body).is_err(), "timestamp {changed:?}");
        }
        if let Some(changed) = change_ascii_byte(&signature, index, replacement) {
            prop_assert!(check(&id, &stamp, &changed, &body).is_err(), "signature {changed:?}");
        }
    }

    #[test]
    fn verify_request_never_panics(
        key in prop::collection::vec(any::<u8>(), 24..=64),
        id in prop::option::of(any_text()),
        timestamp in prop::option::of(prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            "[+-]?[0-9]{1,25}",
            any_text(),
        ]),
        signatures in prop::option::of(prop_oneof![
            "(v1,[A-Za-z0-9+/=]{0,60} ?){0,3}",
            "v[0-9],\\PC{0,50}",
            any_text(),
        ]),
        body in prop::collection::vec(any::<u8>(), 0..100),
        now in prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), 0_i64..4_102_444_800],
    ) {
        let secret = secret_of(&key);
        let verdict = verify_request(&secret, id.as_deref(), timestamp.as_deref(), signatures.as_deref(), &body, now);
        if verdict.is_ok() {
            // Only a real signature of this message verifies.
            let stamp: i64 = timestamp.as_deref().map(str::trim).and_then(|t| t.parse().ok()).expect("a timestamp");
            let expected = secret.sign(id.as_deref().expect("an id"), stamp, &body);
            prop_assert!(signatures.expect("signatures").split_whitespace().any(|entry| entry == expected));
        }
    }

    #[test]
    fn timestamps_outside_the_tolerance_are_stale(
        key in prop::collection::vec(any::<u8>(), 24..=64),
        (id, timestamp, body) in message(),
        distance in (TIMESTAMP_TOLERANCE_SECONDS + 1)..i64::MAX / 2,
        later in any::<bool>(),
    ) {
        let secret = secret_of(&key);
        let signature = secret.sign(&id, timestamp, &body);
        let now = if later { timestamp.saturating_add(distance) } else { timestamp.saturating_sub(distance) };
        prop_assert_eq!(
            verify_request(&secret, Some(&id), Some(&timestamp.to_string()), Some(&signature), &body, now),
            Err(VerifyError::StaleTimestamp)
        );
    }
}

// --- time.rs -------------------------------------------------------------------------------

/// 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z: the years RFC 3339 can write.
const FIRST_RFC3339_MILLIS: i64 = -62_167_219_200_000;
const LAST_RFC3339_MILLIS: i64 = 253_402_300_799_999;

proptest! {
    #![proptest_config(config())]

    #[test]
    fn rfc3339_never_panics(text in prop_oneof![
        any_text(),
        "[0-9+-]{4,7}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?([Zz]|[+-][0-9]{2}:[0-9]{2})",
    ]) {
        if let Some(time) = Timestamp::parse_rfc3339(&text) {
            // Whatever parsed is a real instant: formatting it gives well-formed text.
            let _ = time.to_rfc3339();
        }
    }

    #[test]
    fn rfc3339_round_trips(millis in FIRST_RFC3339_MILLIS..=LAST_RFC3339_MILLIS) {
        let time = Timestamp::from_millis(millis);
        let text = time.to_rfc3339();
        prop_assert_eq!(text.len(), "2024-12-14T15:29:18.821Z".len(), "{}", text);
        prop_assert!(text.ends_with('Z'));
        prop_assert_eq!(Timestamp::parse_rfc3339(&text), Some(time));
    }

    #[test]
    fn rfc3339_offsets_and_extra_digits_name_the_same_instant(
        millis in (FIRST_RFC3339_MILLIS + 86_400_000)..=(LAST_RFC3339_MILLIS - 86_400_000),
        offset_minutes in -(23 * 60 + 59)..=(23_i32 * 60 + 59),
        extra_digits in "[0-9]{0,6}",
    ) {
        let offset = chrono::FixedOffset::east_opt(offset_minutes * 60).expect("offset");
        let utc = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(millis).expect("in range");
        let local = utc.with_timezone(&offset).format("%Y-%m-%dT%H:%M:%S%.3f").to_string();
        let sign = if offset_minutes < 0 { '-' } else { '+' };
        let text = format!(
            "{local}{extra_digits}{sign}{:02}:{:02}",
            offset_minutes.abs() / 60,
            offset_minutes.abs() % 60
        );
        prop_assert_eq!(Timestamp::parse_rfc3339(&text), Some(Timestamp::from_millis(millis)), "{}", text);
    }
}

// --- ids.rs --------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ids_parse_only_their_own_canonical_form(text in prop_oneof![
        any_text(),
        "(wh|we|dl)_[0-9A-Za-z]{24,28}",
        "wh_[0-9a-hjkmnp-tv-zA-HJKMNP-TV-Z]{26}",
    ]) {
        match WebhookId::parse(&text) {
            // Upper case folds to lower; nothing else is rewritten, so two texts never name one id.
            Ok(id) => prop_assert_eq!(id.as_str(), text.to_ascii_lowercase()),
            Err(error) => prop_assert_eq!(error.prefix, "wh_"),
        }
    }

    #[test]
    fn any_ulid_round_trips(value in any::<u128>(), upper in any::<bool>()) {
        let body = ulid::Ulid(value).to_string();
        let text = format!("dl_{}", if upper { body.clone() } else { body.to_lowercase() });
        let id = DeliveryId::parse(&text).expect("valid id");
        prop_assert_eq!(id.as_str(), format!("dl_{}", body.to_lowercase()));
        prop_assert_eq!(DeliveryId::parse(id.as_str()), Ok(id));
        // The prefix names the type: an event id is never a delivery id.
        prop_assert!(EventId::parse(&text).is_err());
    }

    #[test]
    fn generated_ids_round_trip(_seed in any::<u8>()) {
        let id = EventId::generate();
        prop_assert_eq!(EventId::parse(id.as_str()), Ok(id.clone()));
        prop_assert_eq!(EventId::parse(&id.as_str().to_ascii_uppercase().replacen("WE_", "we_", 1)), Ok(id));
    }
}

// --- credit.rs: decimal amounts ------------------------------------------------------------

fn json_number(text: &str) -> serde_json::Number {
    serde_json::from_str(text).expect("a JSON number")
}

fn any_json_number() -> impl Strategy<Value = serde_json::Number> {
    prop_oneof![
        any::<i64>().prop_map(serde_json::Number::from),
        any::<u64>().prop_map(serde_json::Number::from),
        any::<f64>().prop_filter_map("finite", serde_json::Number::from_f64),
        "-?[0-9]{1,20}(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?"
            .prop_filter_map("in f64 range", |text| serde_json::from_str(&text).ok()),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn points_are_never_negative_and_never_panic(
        per_unit in any_json_number(),
        value in prop::option::of(any_json_number()),
        fixed in any::<i64>(),
    ) {
        // Within [0, 10^12], or refused: never negative, never past the bound.
        if let Ok(points) = CreditRule::PerUnit(per_unit).points_for(value.as_ref()) {
            prop_assert!((0..=MAX_POINTS).contains(&points));
        }
        let fixed_points = CreditRule::Fixed(fixed).points_for(value.as_ref());
        if fixed <= MAX_POINTS {
            prop_assert_eq!(fixed_points, Ok(fixed.max(0)));
        } else {
            prop_assert_eq!(fixed_points, Err(TooManyPoints));
        }
    }

    #[test]
    fn decimal_amounts_are_exact(cents in 0_u64..100_000_000_000, per_unit in 1_u64..1_000_000) {
        // `per_unit × value` as the caller wrote it: 0.29 × 100 is 29, never 28.
        let value = json_number(&format!("{}.{:02}", cents / 100, cents % 100));
        let points = CreditRule::PerUnit(per_unit.into()).points_for(Some(&value));
        let expected = u128::from(cents) * u128::from(per_unit) / 100;
        if expected <= MAX_POINTS as u128 {
            prop_assert_eq!(points.map(|points| points as u128), Ok(expected));
        } else {
            prop_assert_eq!(points, Err(TooManyPoints));
        }
    }

    #[test]
    fn decimal_rates_are_exact(units in 0_u64..1_000_000, tenths in 1_u64..10_000) {
        let per_unit = json_number(&format!("{}.{}", tenths / 10, tenths % 10));
        let points = CreditRule::PerUnit(per_unit).points_for(Some(&units.into()));
        prop_assert_eq!(points, Ok((units * tenths / 10) as i64));
    }

    #[test]
    fn points_grow_with_the_value(a in 0_u32..1_000_000_000, b in 0_u32..1_000_000_000, per_unit in any_json_number()) {
        let rule = CreditRule::PerUnit(per_unit);
        let (low, high) = (a.min(b), a.max(b));
        // Refused counts as the most: a larger value is never refused less.
        let points = |value: u32| rule.points_for(Some(&value.into())).unwrap_or(i64::MAX);
        prop_assert!(points(low) <= points(high));
    }

    #[test]
    fn balances_never_pass_what_a_double_reads_exactly(
        balance in prop_oneof![0..=MAX_BALANCE, (MAX_BALANCE - MAX_POINTS)..=MAX_BALANCE],
        points in 0..=MAX_POINTS,
    ) {
        match balance_after(balance, points) {
            Ok(after) => {
                prop_assert_eq!(after, balance + points);
                prop_assert!(after <= MAX_BALANCE);
                prop_assert_eq!(after as f64 as i64, after);
            }
            Err(BalanceOverflow) => prop_assert!(balance + points > MAX_BALANCE),
        }
    }
}

// --- event.rs ------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn event_types_parse_exactly_their_names(text in prop_oneof![
        any_text(),
        "(trigger_event|balance)\\.(created|credit_points_issued)[ .]?",
    ]) {
        match EventType::parse(&text) {
            Some(kind) => prop_assert_eq!(kind.as_str(), text.as_str()),
            None => prop_assert!(EventType::ALL.iter().all(|kind| kind.as_str() != text)),
        }
    }
}

#[test]
fn event_types_round_trip_and_examples_parse() {
    for kind in EventType::ALL {
        assert_eq!(EventType::parse(kind.as_str()), Some(kind));
        let example = kind.example();
        let id = example["id"].as_str().expect("id");
        assert!(EventId::parse(id).is_ok(), "{id}");
        let time = example["time"].as_str().expect("time");
        let parsed = Timestamp::parse_rfc3339(time).expect("RFC 3339");
        assert_eq!(parsed.to_rfc3339(), time);
    }
}

// --- api_key.rs: what a bearer token is turned into -----------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_bearer_token_hashes_to_64_hex_digits(token in any_text()) {
        // Every Authorization header's key is hashed before the store sees it.
        let hash = reward_core::api_key::hash(&token);
        prop_assert_eq!(hash.len(), 64);
        prop_assert!(hash.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f')));
        prop_assert_eq!(reward_core::api_key::hash(&token), hash);
    }

    #[test]
    fn generated_keys_are_rwd_and_base64url(_seed in any::<u8>()) {
        let key = reward_core::api_key::generate();
        let encoded = key.plaintext.strip_prefix("rwd_").expect("rwd_ prefix");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded);
        prop_assert_eq!(bytes.map(|bytes| bytes.len()), Ok(32));
        prop_assert_eq!(&key.hash, &reward_core::api_key::hash(&key.plaintext));
        prop_assert!(key.plaintext.starts_with(&key.display_prefix));
    }
}

// --- regressions: what the properties above found, pinned as plain cases -------------------

#[test]
fn regression_ulids_beyond_128_bits_are_refused() {
    // Was accepted and silently wrapped to wh_0zzz...: two texts named one id.
    assert!(WebhookId::parse("wh_8zzzzzzzzzzzzzzzzzzzzzzzzz").is_err());
    assert!(WebhookId::parse("wh_Mzzzzzzzzzzzzzzzzzzzzzzzzz").is_err());
    assert!(WebhookId::parse("wh_7zzzzzzzzzzzzzzzzzzzzzzzzz").is_ok());
}

#[test]
fn regression_ipv4_compatible_ipv6_is_judged_as_ipv4() {
    for text in ["::10.0.0.1", "::127.0.0.1", "::169.254.169.254", "::2"] {
        let address: IpAddr = text.parse().expect("address");
        assert!(!is_public_ip(address), "{text}");
        let url = format!("https://[{text}]/hook");
        assert!(
            WebhookUrl::parse(&url, TargetPolicy::SecureOnly).is_err(),
            "{url}"
        );
    }
}

#[test]
fn regression_retry_after_is_digits_only_and_saturates() {
    assert_eq!(parse_retry_after("+5"), None);
    assert_eq!(parse_retry_after("5.0"), None);
    assert_eq!(
        parse_retry_after("100000000000000000000"),
        Some(Duration::from_secs(u64::MAX))
    );
}

#[test]
fn regression_extreme_timestamps_are_stale_not_an_overflow() {
    let secret = WebhookSecret::generate();
    let signature = secret.sign("we_1", 0, b"{}");
    for (stamp, now) in [
        (i64::MIN.to_string(), 0),
        (i64::MAX.to_string(), i64::MIN),
        ("0".to_owned(), i64::MIN),
    ] {
        assert_eq!(
            verify_request(
                &secret,
                Some("we_1"),
                Some(&stamp),
                Some(&signature),
                b"{}",
                now
            ),
            Err(VerifyError::StaleTimestamp)
        );
    }
}

#[test]
fn regression_urls_are_limited_after_percent_encoding() {
    // 700 spaces inside the path (leading and trailing ones are trimmed): 3 bytes each stored.
    let text = format!("https://example.com/{}a", "a ".repeat(700));
    assert!(text.len() <= WebhookUrl::MAX_LEN);
    assert!(WebhookUrl::parse(&text, TargetPolicy::SecureOnly).is_err());
}
