//! Where the queue lives and how long its records are kept.

use std::{path::PathBuf, time::Duration};

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
    /// Certificates for a `rediss://` URL.
    pub tls: RedisTls,
}

/// PEM files for a `rediss://` connection: a private CA to trust instead of the system's, and a client
/// certificate and key for a server that requires mutual TLS. Read when a connection is made, so a renewed
/// certificate is picked up by the next reconnection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisTls {
    /// `WGATE_REDIS_CA_FILE`: the CA certificate(s) that signed the server's certificate.
    pub ca_file: Option<PathBuf>,
    /// `WGATE_REDIS_CLIENT_CERT`: the client certificate chain, given with `client_key`.
    pub client_cert: Option<PathBuf>,
    /// `WGATE_REDIS_CLIENT_KEY`: the client certificate's private key.
    pub client_key: Option<PathBuf>,
}

impl RedisTls {
    /// True when any file is set (then the URL must be `rediss://`).
    pub fn is_set(&self) -> bool {
        self.ca_file.is_some() || self.client_cert.is_some() || self.client_key.is_some()
    }
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
            tls: RedisTls::default(),
        }
    }
}
