//! W3C trace context (`traceparent`) as Reward stores it with an event: which trace an event
//! belongs to and which span recorded it, so the delivery attempts of the event, on any node and
//! after any restart, join the trace of the API request that recorded it.
//!
//! Only version `00` is written; a later version is read as far as `00` goes, as the W3C
//! recommendation asks.

use std::fmt;

/// A valid `traceparent`: a non-zero trace id and parent span id, and the trace flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
}

/// Why a `traceparent` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceParentError {
    #[error("a traceparent is version-traceid-spanid-flags in lowercase hex")]
    Malformed,
    #[error("version ff is not a valid traceparent version")]
    InvalidVersion,
    #[error("an all-zero trace id or span id is invalid")]
    ZeroId,
}

impl TraceParent {
    /// From its parts; `None` when either id is all zeros (invalid in W3C trace context).
    pub fn new(trace_id: [u8; 16], span_id: [u8; 8], flags: u8) -> Option<Self> {
        let valid = trace_id != [0; 16] && span_id != [0; 8];
        valid.then_some(Self {
            trace_id,
            span_id,
            flags,
        })
    }

    /// Reads a `traceparent` header value (or the stored column).
    pub fn parse(text: &str) -> Result<Self, TraceParentError> {
        let mut parts = text.trim().split('-');
        let (Some(version), Some(trace), Some(span), Some(flags)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TraceParentError::Malformed);
        };
        let version: [u8; 1] = hex(version)?;
        match version[0] {
            0xff => return Err(TraceParentError::InvalidVersion),
            // Version 00 has exactly four fields; later versions may append more.
            0x00 if parts.next().is_some() => return Err(TraceParentError::Malformed),
            _ => {}
        }
        let [flags] = hex(flags)?;
        Self::new(hex(trace)?, hex(span)?, flags).ok_or(TraceParentError::ZeroId)
    }

    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    pub fn span_id(&self) -> [u8; 8] {
        self.span_id
    }

    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// The context of the span that records an event of `kind` caused by this span: same trace,
    /// a span id derived from this span's id and the kind. Derived, not random, so the API can
    /// report the event's span after the store has written its context, without the store having
    /// to hand the ids back (one request emits at most one event of each kind).
    pub fn for_event(&self, kind: &str) -> Self {
        // FNV-1a over the parent span id and the kind: different kinds and different parents
        // give different ids; never zero.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.span_id.iter().chain(kind.as_bytes()) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Self {
            span_id: hash.max(1).to_be_bytes(),
            ..*self
        }
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("00-")?;
        for byte in self.trace_id {
            write!(formatter, "{byte:02x}")?;
        }
        formatter.write_str("-")?;
        for byte in self.span_id {
            write!(formatter, "{byte:02x}")?;
        }
        write!(formatter, "-{:02x}", self.flags)
    }
}

/// Exactly `N` bytes of lowercase hex.
fn hex<const N: usize>(text: &str) -> Result<[u8; N], TraceParentError> {
    let digits = text.as_bytes();
    if digits.len() != N * 2 {
        return Err(TraceParentError::Malformed);
    }
    let mut bytes = [0; N];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Ok(bytes)
}

fn nibble(digit: u8) -> Result<u8, TraceParentError> {
    match digit {
        b'0'..=b'9' => Ok(digit - b'0'),
        b'a'..=b'f' => Ok(digit - b'a' + 10),
        _ => Err(TraceParentError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn round_trips_the_w3c_example() {
        let parsed = TraceParent::parse(EXAMPLE).expect("valid");
        assert_eq!(parsed.flags(), 1);
        assert_eq!(parsed.span_id()[7], 0xb7);
        assert_eq!(parsed.to_string(), EXAMPLE);
    }

    #[test]
    fn refuses_what_w3c_refuses() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",
        ] {
            assert!(TraceParent::parse(bad).is_err(), "{bad:?} was accepted");
        }
        // A later version may carry more fields.
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-next";
        assert!(TraceParent::parse(later).is_ok());
    }

    #[test]
    fn event_spans_stay_in_the_trace_with_their_own_ids() {
        let request = TraceParent::parse(EXAMPLE).expect("valid");
        let created = request.for_event("trigger_event.created");
        let issued = request.for_event("balance.credit_points_issued");
        assert_eq!(created.trace_id(), request.trace_id());
        assert_eq!(created.flags(), request.flags());
        assert_ne!(created.span_id(), request.span_id());
        assert_ne!(created.span_id(), issued.span_id());
        assert_eq!(created, request.for_event("trigger_event.created"));
    }
}
