//! The worker's settings: `WGATE_*` environment variables over an optional TOML file.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use secrecy::SecretString;
use serde::Deserialize;
use wgate_queue::RedisSettings;
use wgate_service::{ConfigError, LogSettings};
use wgate_upstream::UpstreamSettings;

/// Every setting, with the documented defaults. The Redis, upstream and log settings are the parts every process
/// shares (their own types, loaded from the same file and environment); the rest are the worker's own.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// `WGATE_REDIS_*` and `WGATE_NAMESPACE`.
    #[serde(skip)]
    pub redis: RedisSettings,
    /// `WGATE_UPSTREAM_*`; the key is required.
    #[serde(skip)]
    pub upstream: UpstreamSettings,
    /// `WGATE_LOG`, `WGATE_LOG_FORMAT`.
    #[serde(skip)]
    pub logging: LogSettings,
    pub worker_admin_listen: SocketAddr,
    /// Base of the relay URL given to WhatsGate as the session callback: `{public_url}/hooks/{hook_token}`.
    #[serde(deserialize_with = "wgate_service::config::de::string_like")]
    pub public_url: String,
    pub worker_concurrency: usize,
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// How long terminal job records (and dead-set entries) are kept.
    pub job_ttl_secs: u64,
    /// A job whose worker stopped answering for this long is taken over by another worker.
    pub visibility_timeout_ms: u64,
    /// How long SIGTERM waits for in-flight jobs.
    pub shutdown_timeout_ms: u64,
    /// How often `wgate_queue_jobs` is read from Redis.
    pub queue_gauge_interval_ms: u64,
    /// Webhook deliveries in flight per worker process.
    pub webhook_concurrency: usize,
    /// Of those, at most this many to one tenant's endpoint (a slow endpoint delays only its own deliveries).
    pub webhook_endpoint_concurrency: usize,
    /// A delivery not answered 2xx within this time is retried.
    pub webhook_timeout_ms: u64,
    /// The waits between delivery attempts, e.g. `5s,5m,30m,2h` (unset: the documented three-day schedule).
    #[serde(deserialize_with = "wgate_service::config::de::opt_string_like")]
    pub webhook_retry_schedule: Option<String>,
    /// The key tenants' webhook secrets are derived from (unset: a random key kept in Redis).
    #[serde(deserialize_with = "wgate_service::config::de::secret_like")]
    pub webhook_signing_key: Option<SecretString>,
    /// Per-tenant settings (the worker uses `webhook_url` and `webhook_secret`); the whole file is checked as
    /// the API checks it.
    pub tenants_file: Option<PathBuf>,
    /// How often the tenants file's modification time is checked (SIGHUP reloads at once).
    pub tenants_poll_ms: u64,
    /// CIDR ranges a tenant's endpoint may be in although they are not public (comma separated; empty: none).
    #[serde(deserialize_with = "wgate_service::config::de::string_like")]
    pub egress_allow_nets: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            redis: RedisSettings::default(),
            upstream: UpstreamSettings::default(),
            logging: LogSettings::default(),
            worker_admin_listen: SocketAddr::from(([0, 0, 0, 0], 9465)),
            public_url: "http://127.0.0.1:8080".into(),
            worker_concurrency: 32,
            retry_base_ms: 1000,
            retry_max_ms: 60_000,
            job_ttl_secs: 7 * 24 * 3600,
            visibility_timeout_ms: 15_000,
            shutdown_timeout_ms: 20_000,
            queue_gauge_interval_ms: 2000,
            webhook_concurrency: 64,
            webhook_endpoint_concurrency: 8,
            webhook_timeout_ms: 15_000,
            webhook_retry_schedule: None,
            webhook_signing_key: None,
            tenants_file: None,
            tenants_poll_ms: 1_000,
            egress_allow_nets: String::new(),
        }
    }
}

impl Settings {
    /// Loads and checks the settings; a missing required one is a one-line error naming its variable.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let s = wgate_service::config::load_with_parts(file, |s: Self, redis, upstream, logging| Self {
            redis,
            upstream,
            logging,
            ..s
        })?;
        s.validate()?;
        Ok(s)
    }

    /// Every setting name `wgate-worker` reads (`redis_url` is `WGATE_REDIS_URL`), its shared parts included.
    pub fn setting_names() -> Vec<&'static str> {
        wgate_service::config::setting_names_with_parts::<Self, RedisSettings, UpstreamSettings, LogSettings>()
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.redis.check()?;
        self.upstream.check()?;
        if self.upstream.api_key.is_none() {
            return Err(ConfigError::setting("upstream_api_key", "is required (the WhatsGate X-Api-Key)"));
        }
        if self.worker_concurrency == 0 {
            return Err(ConfigError::setting("worker_concurrency", "must be at least 1"));
        }
        if self.webhook_concurrency == 0 || self.webhook_endpoint_concurrency == 0 {
            return Err(ConfigError::setting("webhook_concurrency", "must be at least 1"));
        }
        if self.webhook_timeout_ms == 0 {
            return Err(ConfigError::setting("webhook_timeout_ms", "must be at least 1"));
        }
        self.webhook_schedule()?;
        wgate_egress::EgressPolicy::parse_nets(&self.egress_allow_nets)
            .map_err(|e| ConfigError::setting("egress_allow_nets", e))?;
        if wgate_types::CallbackUrl::parse(&wgate_types::relay_url(&self.public_url, "x")).is_err() {
            return Err(ConfigError::setting("public_url", "must be an absolute http(s) URL"));
        }
        Ok(())
    }

    /// The webhook retry schedule, checked by [`Settings::validate`].
    pub fn webhook_schedule(&self) -> Result<wgate_webhooks::RetrySchedule, ConfigError> {
        match self.webhook_retry_schedule.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(wgate_webhooks::RetrySchedule::default()),
            Some(s) => {
                wgate_webhooks::RetrySchedule::parse(s).map_err(|e| ConfigError::setting("webhook_retry_schedule", e))
            }
        }
    }

    /// The queue's configuration: the shared Redis settings and how long finished jobs are kept.
    pub fn queue_config(&self) -> Result<wgate_queue::QueueConfig, ConfigError> {
        let mut queue = self.redis.queue_config()?;
        queue.job_ttl = Duration::from_secs(self.job_ttl_secs.max(1));
        Ok(queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_redis_timeout_is_reported_under_its_own_name() {
        let mut s = Settings::default();
        s.upstream.api_key = Some("k".to_owned().into());
        assert!(s.validate().is_ok());
        s.redis.timeout_ms = 0;
        assert!(s.validate().unwrap_err().to_string().contains("WGATE_REDIS_TIMEOUT_MS"));
    }
}
