//! How the backend reads and keeps its entries, and the consumer name of this process.

use std::time::Duration;

/// How the backend reads and keeps its entries.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// This process's consumer name; unique per process (see [`consumer_name`]).
    pub consumer: String,
    /// Jobs fetched or running at once in this process.
    pub concurrency: usize,
    /// `XREADGROUP BLOCK` time; bounds how long a stop waits for the fetcher.
    pub block: Duration,
    /// An entry idle this long belongs to a dead consumer and is taken over.
    pub visibility_timeout: Duration,
    /// How often idle entries are looked for.
    pub takeover_every: Duration,
    /// How often this consumer's in-flight entries are marked alive (well below the visibility timeout).
    pub refresh_every: Duration,
    /// How often due retries are promoted, and how many per script run.
    pub promote_every: Duration,
    pub promote_batch: usize,
    /// Consumers idle this long with nothing pending are removed from the group.
    pub consumer_idle: Duration,
}

impl StreamConfig {
    pub fn new(consumer: impl Into<String>, concurrency: usize) -> Self {
        Self {
            consumer: consumer.into(),
            concurrency: concurrency.max(1),
            block: Duration::from_millis(500),
            visibility_timeout: Duration::from_secs(15),
            takeover_every: Duration::from_secs(2),
            refresh_every: Duration::from_secs(3),
            promote_every: Duration::from_millis(100),
            promote_batch: 1000,
            consumer_idle: Duration::from_secs(3600),
        }
    }
}

/// A consumer name unique to this process: host, pid and a random suffix, so a restarted worker on the same
/// host starts at once and never inherits a dead process's identity.
pub fn consumer_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".into());
    format!("{host}-{}-{:08x}", std::process::id(), rand::random::<u32>())
}
