//! The worker's settings: `WGATE_*` environment variables over an optional TOML file.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use secrecy::SecretString;
use serde::Deserialize;
use wgate_service::{ConfigError, LogFormat};

/// Every setting, with the documented defaults.
#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub redis_url: String,
    /// PEM CA certificate(s) a `rediss://` server's certificate is checked against (unset: the system's store).
    pub redis_ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for a Redis that requires mutual TLS; set both or neither.
    pub redis_client_cert: Option<PathBuf>,
    pub redis_client_key: Option<PathBuf>,
    /// `standalone` or `sentinel` (then `redis_url` lists the sentinels, comma separated).
    #[serde(deserialize_with = "wgate_service::config::de::string_like")]
    pub redis_mode: String,
    /// The name the sentinels monitor the primary under (Sentinel mode).
    #[serde(deserialize_with = "wgate_service::config::de::opt_string_like")]
    pub redis_sentinel_service: Option<String>,
    #[serde(deserialize_with = "wgate_service::config::de::string_like")]
    pub namespace: String,
    pub worker_admin_listen: SocketAddr,
    /// Base of the relay URL given to WhatsGate as the session callback: `{public_url}/hooks/{hook_token}`.
    pub public_url: String,
    pub upstream_url: String,
    #[serde(deserialize_with = "wgate_service::config::de::secret_like")]
    pub upstream_api_key: Option<SecretString>,
    pub upstream_timeout_ms: u64,
    pub worker_concurrency: usize,
    /// Attempts per job, the first included. Jobs carry the value they were accepted with; this one applies to
    /// records that carry none (0).
    pub max_attempts: u32,
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    pub log: String,
    pub log_format: LogFormat,
    /// How long terminal job records (and dead-set entries) are kept.
    pub job_ttl_secs: u64,
    /// Bound on every Redis call.
    pub redis_timeout_ms: u64,
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
    /// Per-tenant settings (the worker reads `webhook_url`, `webhook_events`, `webhook_secret`).
    pub tenants_file: Option<PathBuf>,
    /// CIDR ranges a tenant's endpoint may be in although they are not public (comma separated; empty: none).
    #[serde(deserialize_with = "wgate_service::config::de::string_like")]
    pub egress_allow_nets: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_ca_file: None,
            redis_client_cert: None,
            redis_client_key: None,
            redis_mode: "standalone".into(),
            redis_sentinel_service: None,
            namespace: "wgate".into(),
            worker_admin_listen: SocketAddr::from(([0, 0, 0, 0], 9465)),
            public_url: "http://127.0.0.1:8080".into(),
            upstream_url: "https://whatsgate.ru".into(),
            upstream_api_key: None,
            upstream_timeout_ms: 15_000,
            worker_concurrency: 32,
            max_attempts: 6,
            retry_base_ms: 1000,
            retry_max_ms: 60_000,
            log: "info".into(),
            log_format: LogFormat::Json,
            job_ttl_secs: 7 * 24 * 3600,
            redis_timeout_ms: 1000,
            visibility_timeout_ms: 15_000,
            shutdown_timeout_ms: 20_000,
            queue_gauge_interval_ms: 2000,
            webhook_concurrency: 64,
            webhook_endpoint_concurrency: 8,
            webhook_timeout_ms: 15_000,
            webhook_retry_schedule: None,
            webhook_signing_key: None,
            tenants_file: None,
            egress_allow_nets: String::new(),
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("namespace", &self.namespace)
            .field("upstream_url", &self.upstream_url)
            .field("upstream_api_key", &self.upstream_api_key.as_ref().map(|_| "[redacted]"))
            .field("worker_concurrency", &self.worker_concurrency)
            .field("webhook_concurrency", &self.webhook_concurrency)
            .field("webhook_signing_key", &self.webhook_signing_key.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Loads and checks the settings; a missing required one is a one-line error naming its variable.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let s: Self = wgate_service::load_config(file)?;
        s.validate()?;
        Ok(s)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.upstream_api_key.is_none() {
            return Err(ConfigError::setting("upstream_api_key", "is required (the WhatsGate X-Api-Key)"));
        }
        self.redis_mode()?;
        if self.worker_concurrency == 0 {
            return Err(ConfigError::setting("worker_concurrency", "must be at least 1"));
        }
        if self.max_attempts == 0 {
            return Err(ConfigError::setting("max_attempts", "must be at least 1"));
        }
        if self.upstream_timeout_ms == 0 || self.redis_timeout_ms == 0 {
            return Err(ConfigError::setting("upstream_timeout_ms", "timeouts must be positive"));
        }
        if self.webhook_concurrency == 0 || self.webhook_endpoint_concurrency == 0 {
            return Err(ConfigError::setting("webhook_concurrency", "must be at least 1"));
        }
        if self.webhook_timeout_ms == 0 {
            return Err(ConfigError::setting("webhook_timeout_ms", "must be positive"));
        }
        self.webhook_schedule()?;
        wgate_egress::EgressPolicy::parse_nets(&self.egress_allow_nets)
            .map_err(|e| ConfigError::setting("egress_allow_nets", e))?;
        let url = url_ok(&self.public_url);
        if !url {
            return Err(ConfigError::setting("public_url", "must be an absolute http(s) URL"));
        }
        Ok(())
    }

    /// Standalone or Sentinel, checked by [`Settings::validate`].
    pub fn redis_mode(&self) -> Result<wgate_queue::RedisMode, ConfigError> {
        wgate_queue::RedisMode::parse(&self.redis_mode, self.redis_sentinel_service.as_deref())
            .map_err(|e| ConfigError(format!("configuration error: {e}")))
    }

    /// The certificates of a `rediss://` connection.
    pub fn redis_tls(&self) -> wgate_queue::RedisTls {
        wgate_queue::RedisTls::new(&self.redis_ca_file, &self.redis_client_cert, &self.redis_client_key)
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

    pub fn upstream_timeout(&self) -> Duration {
        Duration::from_millis(self.upstream_timeout_ms)
    }
}

fn url_ok(s: &str) -> bool {
    wgate_types::CallbackUrl::parse(&wgate_types::relay_url(s, "x")).is_ok()
}
