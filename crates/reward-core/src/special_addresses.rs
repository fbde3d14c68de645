//! Which IP addresses a webhook may reach in secure mode: the IANA special-purpose address
//! registries, as data.
//!
//! Transcribed on 2026-12-03 from the IANA IPv4 Special-Purpose Address Registry (newest entry:
//! 192.0.0.10/32, 2017-02) and the IANA IPv6 Special-Purpose Address Registry (newest entry:
//! 100:0:0:1::/64, RFC 9780, 2025-04), both under RFC 6890 as updated by RFC 8190. Every entry
//! whose "Globally Reachable" is False, N/A or empty (terminated) is refused, and so is:
//!
//! - the whole of each "IETF Protocol Assignments" block (192.0.0.0/24, 2001::/23), including
//!   the few more specific entries marked globally reachable there (PCP, TURN and DNS-SD anycast,
//!   AMT, AS112-v6, ORCHIDv2, drone tags): none is an HTTP receiver, and one rule per block is
//!   easier to check than a list of exceptions;
//! - multicast (224.0.0.0/4, ff00::/8), which is no unicast destination;
//! - for IPv6, everything outside the global unicast space 2000::/3 (the IPv6 Address Space
//!   registry reserves it), which also covers the deprecated site-local fec0::/10, the
//!   IPv4-compatible ::/96 and the IPv4-translated (SIIT) ::ffff:0:0:0/96 forms, with two
//!   exceptions that carry an IPv4 address and are judged as that address:
//!   - `::ffff:a.b.c.d` (IPv4-mapped): a socket connecting to it reaches a.b.c.d itself;
//!   - `64:ff9b::a.b.c.d` (the well-known NAT64 prefix, globally reachable): on an IPv6-only
//!     host behind DNS64 every IPv4-only receiver arrives in this form, so refusing the prefix
//!     would cut those receivers off, while judging the embedded address keeps
//!     `64:ff9b::10.0.0.1` out.
//!
//! Tunnels that embed an IPv4 address elsewhere are refused whole rather than decoded: 6to4
//! (2002::/16) and its relay anycast 192.88.99.0/24, Teredo (2001::/32, inside 2001::/23), and
//! the local-use NAT64 prefix 64:ff9b:1::/48, whose embedding depends on the operator's prefix
//! length. A NAT64 gateway on an operator's own prefix inside 2000::/3 cannot be recognised from
//! the address: that stays a limit of any address check (docs/security.md).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One registry entry (or one of our own rules above): `address/length`, and its name.
struct Block<T> {
    address: T,
    length: u32,
    name: &'static str,
}

const fn v4(address: [u8; 4], length: u32, name: &'static str) -> Block<u32> {
    Block {
        address: u32::from_be_bytes(address),
        length,
        name,
    }
}

const fn v6(segments: [u16; 8], length: u32, name: &'static str) -> Block<u128> {
    let mut address: u128 = 0;
    let mut index = 0;
    while index < 8 {
        address = (address << 16) | segments[index] as u128;
        index += 1;
    }
    Block {
        address,
        length,
        name,
    }
}

/// IPv4 blocks refused. Globally reachable entries left out on purpose: 192.31.196.0/24
/// (AS112-v4), 192.52.193.0/24 (AMT), 192.175.48.0/24 (Direct Delegation AS112 Service).
const REFUSED_V4: [Block<u32>; 15] = [
    v4([0, 0, 0, 0], 8, "\"this network\" (0.0.0.0/8)"),
    v4([10, 0, 0, 0], 8, "private-use (10.0.0.0/8)"),
    v4([100, 64, 0, 0], 10, "shared address space (100.64.0.0/10)"),
    v4([127, 0, 0, 0], 8, "loopback (127.0.0.0/8)"),
    v4([169, 254, 0, 0], 16, "link-local (169.254.0.0/16)"),
    v4([172, 16, 0, 0], 12, "private-use (172.16.0.0/12)"),
    v4(
        [192, 0, 0, 0],
        24,
        "IETF protocol assignments (192.0.0.0/24)",
    ),
    v4([192, 0, 2, 0], 24, "documentation (192.0.2.0/24)"),
    v4([192, 88, 99, 0], 24, "6to4 relay anycast (192.88.99.0/24)"),
    v4([192, 168, 0, 0], 16, "private-use (192.168.0.0/16)"),
    v4([198, 18, 0, 0], 15, "benchmarking (198.18.0.0/15)"),
    v4([198, 51, 100, 0], 24, "documentation (198.51.100.0/24)"),
    v4([203, 0, 113, 0], 24, "documentation (203.0.113.0/24)"),
    v4([224, 0, 0, 0], 4, "multicast (224.0.0.0/4)"),
    // Includes 255.255.255.255/32, limited broadcast.
    v4([240, 0, 0, 0], 4, "reserved (240.0.0.0/4)"),
];

/// IPv6 blocks refused, most specific names first (the first match names the refusal). Globally
/// reachable entry left out on purpose: 2620:4f:8000::/48 (Direct Delegation AS112 Service).
const REFUSED_V6: [Block<u128>; 18] = [
    v6(
        [0, 0, 0, 0, 0, 0, 0, 0],
        128,
        "the unspecified address (::/128)",
    ),
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128, "loopback (::1/128)"),
    v6(
        [0, 0, 0, 0, 0, 0, 0, 0],
        96,
        "IPv4-compatible, deprecated (::/96)",
    ),
    v6(
        [0, 0, 0, 0, 0xffff, 0, 0, 0],
        96,
        "IPv4-translated, SIIT (::ffff:0:0:0/96)",
    ),
    v6(
        [0x64, 0xff9b, 1, 0, 0, 0, 0, 0],
        48,
        "local-use IPv4/IPv6 translation (64:ff9b:1::/48)",
    ),
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64, "discard-only (100::/64)"),
    v6(
        [0x100, 0, 0, 1, 0, 0, 0, 0],
        64,
        "dummy prefix (100:0:0:1::/64)",
    ),
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, "Teredo (2001::/32)"),
    v6(
        [0x2001, 2, 0, 0, 0, 0, 0, 0],
        48,
        "benchmarking (2001:2::/48)",
    ),
    v6(
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        23,
        "IETF protocol assignments (2001::/23)",
    ),
    v6(
        [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0],
        32,
        "documentation (2001:db8::/32)",
    ),
    v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16, "6to4 (2002::/16)"),
    v6(
        [0x3fff, 0, 0, 0, 0, 0, 0, 0],
        20,
        "documentation (3fff::/20)",
    ),
    v6(
        [0x5f00, 0, 0, 0, 0, 0, 0, 0],
        16,
        "SRv6 segment identifiers (5f00::/16)",
    ),
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "unique-local (fc00::/7)"),
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "link-local (fe80::/10)"),
    v6(
        [0xfec0, 0, 0, 0, 0, 0, 0, 0],
        10,
        "site-local, deprecated (fec0::/10)",
    ),
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "multicast (ff00::/8)"),
];

/// IPv6's global unicast space, 2000::/3: the only IPv6 space a webhook may reach directly.
const GLOBAL_UNICAST: Block<u128> = Block {
    address: 0x2000 << 112,
    length: 3,
    name: "outside the global unicast space 2000::/3",
};

/// The well-known NAT64 prefix 64:ff9b::/96 (RFC 6052): judged by the IPv4 address it carries.
const NAT64: Block<u128> = Block {
    address: 0x0064_ff9b << 96,
    length: 96,
    name: "NAT64 (64:ff9b::/96)",
};

fn contains_v4(block: &Block<u32>, address: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - block.length).unwrap_or(0);
    address & mask == block.address & mask
}

fn contains_v6(block: &Block<u128>, address: u128) -> bool {
    let mask = u128::MAX.checked_shl(128 - block.length).unwrap_or(0);
    address & mask == block.address & mask
}

/// Why `address` may not be a webhook's destination in secure mode (the block it falls in), or
/// `None` when it may.
pub fn non_public_reason(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(address) => non_public_v4(address),
        IpAddr::V6(address) => non_public_v6(address),
    }
}

/// Whether an address is one a webhook may reach in secure mode (see the module doc).
pub fn is_public_ip(address: IpAddr) -> bool {
    non_public_reason(address).is_none()
}

fn non_public_v4(address: Ipv4Addr) -> Option<&'static str> {
    let address = u32::from(address);
    REFUSED_V4
        .iter()
        .find(|block| contains_v4(block, address))
        .map(|block| block.name)
}

fn non_public_v6(address: Ipv6Addr) -> Option<&'static str> {
    if let Some(carried) = address.to_ipv4_mapped() {
        return non_public_v4(carried);
    }
    let bits = u128::from(address);
    if contains_v6(&NAT64, bits) {
        return non_public_v4(Ipv4Addr::from(bits as u32));
    }
    if let Some(block) = REFUSED_V6.iter().find(|block| contains_v6(block, bits)) {
        return Some(block.name);
    }
    (!contains_v6(&GLOBAL_UNICAST, bits)).then_some(GLOBAL_UNICAST.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(text: &str) -> Option<&'static str> {
        non_public_reason(text.parse().expect("an address"))
    }

    #[test]
    fn every_refused_block_is_refused_at_both_ends() {
        for block in &REFUSED_V4 {
            let last = block.address | u32::MAX.checked_shr(block.length).unwrap_or(0);
            for address in [block.address, last] {
                assert!(
                    non_public_v4(Ipv4Addr::from(address)).is_some(),
                    "{}",
                    block.name
                );
            }
        }
        for block in &REFUSED_V6 {
            let last = block.address | u128::MAX.checked_shr(block.length).unwrap_or(0);
            for address in [block.address, last] {
                let address = Ipv6Addr::from(address);
                assert!(
                    non_public_v6(address).is_some(),
                    "{address} ({})",
                    block.name
                );
            }
        }
    }

    #[test]
    fn the_refusals_the_issue_found_are_closed() {
        for text in [
            "2002:7f00:1::1",     // 6to4 around 127.0.0.1
            "2002:5db8:d822::1",  // 6to4 around a public address: refused whole
            "2001:0:4136:e378::", // Teredo
            "::ffff:0:7f00:1",    // SIIT around 127.0.0.1
            "::ffff:0:5db8:d822", // SIIT around a public address
            "fec0::1",            // site-local
            "100::1",             // discard-only
            "100:0:0:1::1",       // dummy
            "3fff::1",            // documentation
            "5f00::1",            // SRv6
            "2001:2::1",          // benchmarking
            "2001:1::1",          // PCP anycast: globally reachable, refused with its /23
            "2001:20::1",         // ORCHIDv2, likewise
            "64:ff9b:1::a00:1",   // local-use NAT64
            "4000::1",            // reserved by the IETF
            "192.0.0.9",          // PCP anycast, refused with 192.0.0.0/24
            "192.88.99.2",        // 6a44 relay anycast
            "255.255.255.255",
        ] {
            assert!(reason(text).is_some(), "{text} must be refused");
        }
    }

    #[test]
    fn carried_ipv4_addresses_are_judged_as_themselves() {
        assert_eq!(reason("::ffff:93.184.216.34"), None);
        assert_eq!(reason("64:ff9b::93.184.216.34"), None);
        assert_eq!(reason("::ffff:10.0.0.1"), Some("private-use (10.0.0.0/8)"));
        assert_eq!(
            reason("64:ff9b::169.254.169.254"),
            Some("link-local (169.254.0.0/16)")
        );
    }

    #[test]
    fn public_addresses_and_globally_reachable_entries_pass() {
        for text in [
            "93.184.216.34",
            "1.1.1.1",
            "192.31.196.1",   // AS112-v4
            "192.52.193.1",   // AMT
            "192.175.48.1",   // AS112 direct delegation
            "100.63.255.255", // just below shared address space
            "100.128.0.0",    // just above it
            "2606:2800:220:1:248:1893:25c8:1946",
            "2620:4f:8000::1", // AS112 direct delegation
            "2001:200::1",     // just past 2001::/23
            "3fff:1000::1",    // just past 3fff::/20
        ] {
            assert_eq!(reason(text), None, "{text} must be public");
        }
    }
}
