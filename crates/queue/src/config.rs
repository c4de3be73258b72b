//! Where the queue lives and how long its records are kept.

use std::time::Duration;

/// Settings shared by every user of the queue (API and worker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    pub redis_url: String,
    /// Every key is `{<namespace>}:...`; the braces are a Redis Cluster hash tag.
    pub namespace: String,
    /// Bound on every Redis call: a dead Redis turns into [`crate::QueueError::Unavailable`] within this time.
    pub command_timeout: Duration,
    /// How long terminal job records, their hooks and dead entries are kept.
    pub job_ttl: Duration,
    /// How long an `Idempotency-Key` holds its job.
    pub idempotency_ttl: Duration,
}

impl QueueConfig {
    /// The documented defaults: 1 s command timeout, 7-day job TTL, 24 h idempotency TTL.
    pub fn new(redis_url: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self {
            redis_url: redis_url.into(),
            namespace: namespace.into(),
            command_timeout: Duration::from_secs(1),
            job_ttl: Duration::from_secs(7 * 24 * 3600),
            idempotency_ttl: Duration::from_secs(24 * 3600),
        }
    }
}
