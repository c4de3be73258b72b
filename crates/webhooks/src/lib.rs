//! Webhooks to tenants, the parts the API and the worker share: Standard Webhooks signing and the tenants'
//! secrets ([`signing`]), the retry schedule ([`schedule`]), how the tenants file's webhook keys are read
//! ([`tenants`]) and the event names metrics may carry. No IO.

pub mod keys;
pub mod schedule;
pub mod signing;
pub mod tenants;

pub use keys::SigningKey;
pub use schedule::{DEFAULT_SCHEDULE, RetrySchedule};
pub use signing::{WebhookSecret, signature_header};
pub use tenants::WebhookSecrets;

/// WhatsGate's `event_action` values; any other is `other` in metric labels.
pub const KNOWN_EVENTS: [&str; 8] = ["message", "ack", "media", "sent", "error", "disconnect", "create", "ready"];

/// The `event` label of an event action: one of [`KNOWN_EVENTS`], else `other`.
pub fn event_label(action: &str) -> &'static str {
    KNOWN_EVENTS.iter().find(|e| **e == action).copied().unwrap_or("other")
}
