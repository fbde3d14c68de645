//! What a customer sets on a webhook beyond its name and URL, each validated once here so the
//! API, the dashboard and the stores share one rule:
//!
//! - [`selection`]: the event types it receives, or `["*"]` for every type (also ones added
//!   later).
//! - [`headers`]: extra request headers sent with every delivery.
//! - [`notes`]: the customer's own description and metadata, returned as given.
//! - [`rate_limit`]: the most deliveries per second it is sent.
//! - [`ordering`]: whether one user's deliveries go one at a time, in order.
//!
//! The payload filter is [`crate::filter`].

pub mod headers;
pub mod notes;
pub mod ordering;
pub mod rate_limit;
pub mod selection;

pub use headers::ExtraHeaders;
pub use notes::{Description, Metadata};
pub use ordering::Ordering;
pub use rate_limit::{RateLimit, SlotGrant};
pub use selection::EventSelection;
