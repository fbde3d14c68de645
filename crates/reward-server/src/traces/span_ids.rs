//! Span ids: random, except for an event's span, whose id was chosen before the span existed.
//!
//! The store writes an event's trace context inside its transaction, with a span id derived from
//! the request's span (`TraceParent::for_event`); the span itself is reported afterwards, and
//! must carry that id so the event's deliveries name it as their parent. The SDK takes a span's id
//! from its id generator while building the span, on the calling thread, so
//! [`with_span_id`] sets the id for the one span built inside it.

use std::cell::Cell;

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};

thread_local! {
    static CHOSEN: Cell<Option<SpanId>> = const { Cell::new(None) };
}

/// Runs `build` (which must build exactly one span) so that span gets `span_id`.
pub fn with_span_id<T>(span_id: SpanId, build: impl FnOnce() -> T) -> T {
    CHOSEN.with(|chosen| chosen.set(Some(span_id)));
    let built = build();
    // Cleared even if the SDK built no span (a provider shut down takes no id).
    CHOSEN.with(|chosen| chosen.set(None));
    built
}

#[derive(Debug, Default)]
pub struct ChosenOrRandom(RandomIdGenerator);

impl IdGenerator for ChosenOrRandom {
    fn new_trace_id(&self) -> TraceId {
        self.0.new_trace_id()
    }

    fn new_span_id(&self) -> SpanId {
        CHOSEN
            .with(Cell::take)
            .unwrap_or_else(|| self.0.new_span_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chosen_id_goes_to_one_span_only() {
        let generator = ChosenOrRandom::default();
        let chosen = SpanId::from_bytes([1, 2, 3, 4, 5, 6, 7, 8]);
        let (first, second) = with_span_id(chosen, || {
            (generator.new_span_id(), generator.new_span_id())
        });
        assert_eq!(first, chosen);
        assert_ne!(second, chosen);
        // Nothing is left over for the next span when the SDK took none.
        with_span_id(chosen, || ());
        assert_ne!(generator.new_span_id(), chosen);
    }
}
