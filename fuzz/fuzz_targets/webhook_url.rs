//! Webhook URLs under both target policies, and the address check behind them: never a panic;
//! an accepted URL is https (or http when allowed), names a host, carries no credentials or
//! fragment, fits in 2048 characters, is accepted again as stored, and in secure mode names no
//! literal non-public address.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use reward_core::names::{is_public_ip, TargetPolicy, WebhookUrl};

fuzz_target!(|input: (&str, [u8; 16])| {
    let (text, address) = input;
    for policy in [TargetPolicy::SecureOnly, TargetPolicy::AllowInsecure] {
        let Ok(url) = WebhookUrl::parse(text, policy) else {
            continue;
        };
        let parsed = url.url();
        match policy {
            TargetPolicy::SecureOnly => assert_eq!(parsed.scheme(), "https"),
            TargetPolicy::AllowInsecure => assert!(matches!(parsed.scheme(), "https" | "http")),
        }
        assert!(!url.host().is_empty());
        assert!(parsed.username().is_empty() && parsed.password().is_none());
        assert!(parsed.fragment().is_none());
        assert!(url.as_str().len() <= WebhookUrl::MAX_LEN);
        let again = WebhookUrl::parse(url.as_str(), policy).expect("a stored URL parses again");
        assert_eq!(again.as_str(), url.as_str());
        if policy == TargetPolicy::SecureOnly {
            match parsed.host() {
                Some(url::Host::Ipv4(ip)) => assert!(is_public_ip(ip.into())),
                Some(url::Host::Ipv6(ip)) => assert!(is_public_ip(ip.into())),
                _ => {}
            }
        }
    }
    // An IPv4 address is judged the same in every IPv6 spelling that carries it.
    let v4 = Ipv4Addr::new(address[0], address[1], address[2], address[3]);
    let public = is_public_ip(IpAddr::V4(v4));
    assert_eq!(is_public_ip(v4.to_ipv6_mapped().into()), public);
    if !public {
        assert!(!is_public_ip(v4.to_ipv6_compatible().into()));
    }
    let _ = is_public_ip(IpAddr::V6(Ipv6Addr::from(address)));
});
