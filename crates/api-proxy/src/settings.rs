//! The settings of `wgate-api`: every field is set by `WGATE_<FIELD>` or by `<field> = ...` in the TOML file given
//! by `--config FILE` / `WGATE_CONFIG`. Defaults are the documented ones.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use wgate_queue::RedisSettings;
use wgate_service::{ConfigError, LogFormat, LogSettings};
use wgate_upstream::UpstreamSettings;

/// Everything `wgate-api` reads at start. The Redis, upstream and log settings are the parts every process shares
/// (their own types, loaded from the same file and environment); the rest are the API's own. Secrets are `secrecy`
/// values whose `Debug` prints a placeholder, and `Debug` hides the password a Redis URL may carry.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct ApiSettings {
    /// `WGATE_REDIS_*` and `WGATE_NAMESPACE`.
    #[serde(skip)]
    pub redis: RedisSettings,
    /// `WGATE_UPSTREAM_*`, for the session commands. Without a key the session commands answer 503.
    #[serde(skip)]
    pub upstream: UpstreamSettings,
    /// `WGATE_LOG`, `WGATE_LOG_FORMAT`.
    #[serde(skip)]
    pub logging: LogSettings,
    /// A session-create (with its idempotency record) or a replay is acknowledged only once this many replicas
    /// have it (`WAIT`); 0: at once.
    pub redis_wait_replicas: u32,
    /// How long that wait may take before the client gets 503.
    pub redis_wait_timeout_ms: u64,
    /// `WGATE_JOB_TTL_SECS`, as the worker reads it: how long a deleted session's create job stays the relay's
    /// target, and how long a succeeded job's QR window stays open.
    pub job_ttl_secs: u64,
    pub api_listen: SocketAddr,
    pub api_admin_listen: SocketAddr,
    /// Base of the links the gateway hands out (`Location`).
    #[serde(deserialize_with = "wgate_service::config::de::string_like")]
    pub public_url: String,
    /// HS256 secrets, comma separated; the first signs nothing (wgate only verifies), all verify (rotation).
    #[serde(deserialize_with = "wgate_service::config::de::secret_like")]
    pub jwt_secret: Option<SecretString>,
    /// PEM public key files (RSA, EC P-256, Ed25519), comma separated. A key's `kid` is its file name without
    /// the extension.
    #[serde(deserialize_with = "wgate_service::config::de::opt_string_like")]
    pub jwt_public_keys: Option<String>,
    #[serde(deserialize_with = "wgate_service::config::de::opt_string_like")]
    pub jwt_jwks_url: Option<String>,
    /// Least time between two JWKS fetches triggered by an unknown `kid`.
    pub jwt_jwks_cooldown_ms: u64,
    #[serde(deserialize_with = "wgate_service::config::de::string_like")]
    pub jwt_audience: String,
    #[serde(deserialize_with = "wgate_service::config::de::opt_string_like")]
    pub jwt_issuer: Option<String>,
    /// Longest token lifetime accepted: a token whose `exp` lies further ahead is refused. Unset: no bound.
    pub jwt_max_ttl_secs: Option<u64>,
    /// Default write rate per tenant (reads get ten times this).
    pub rate_per_second: f64,
    pub rate_burst: u32,
    /// Where the tenant buckets live: `redis` (shared by every replica) or `local` (this process only).
    #[serde(deserialize_with = "wgate_service::config::de::string_like")]
    pub rate_limit_store: String,
    /// TOML with `[tenants.<id>] rate_per_second, burst, max_sessions, frame_ancestors`; reloaded on SIGHUP and
    /// when the file changes.
    pub tenants_file: Option<PathBuf>,
    /// How often the tenants file's modification time is checked (SIGHUP reloads at once).
    pub tenants_poll_ms: u64,
    /// Default session quota per tenant; unset means no limit.
    pub max_sessions: Option<u32>,
    pub sync_wait_ms: u64,
    /// Attempts per session-create job, the first included; each job keeps the value it was accepted with.
    pub max_attempts: u32,
    /// The key tenants' webhook secrets are derived from (unset: a random key kept in Redis, made by the first
    /// process that needs it).
    #[serde(deserialize_with = "wgate_service::config::de::secret_like")]
    pub webhook_signing_key: Option<SecretString>,
    /// Bound on reading one request body: a client that stops sending gets 408.
    pub body_read_timeout_ms: u64,
    /// CIDR ranges a tenant's URL may reach although they are not public (comma separated; empty: none).
    #[serde(deserialize_with = "wgate_service::config::de::string_like")]
    pub egress_allow_nets: String,
    /// Default number of sends a session may make in any minute (a tenant's `send_per_minute` wins).
    pub send_per_minute: u32,
    /// Least time between two sends of one session.
    pub send_min_interval_ms: u64,
    /// Up to this much is added at random to `send_min_interval_ms` after each send.
    pub send_jitter_ms: u64,
    /// Largest `send` body (the media travel in it, base64): larger is 413.
    pub media_max_bytes: usize,
}

/// Loopback, IPv4 and IPv6: what tests and the local stack open to tenants' callbacks.
pub const LOOPBACK_NETS: &str = "127.0.0.0/8, ::1/128";

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            redis: RedisSettings::default(),
            upstream: UpstreamSettings::default(),
            logging: LogSettings::default(),
            redis_wait_replicas: 0,
            redis_wait_timeout_ms: 500,
            job_ttl_secs: 7 * 24 * 3600,
            api_listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            api_admin_listen: SocketAddr::from(([0, 0, 0, 0], 9464)),
            public_url: "http://127.0.0.1:8080".into(),
            jwt_secret: None,
            jwt_public_keys: None,
            jwt_jwks_url: None,
            jwt_jwks_cooldown_ms: 10_000,
            jwt_audience: "wgate".into(),
            jwt_issuer: None,
            jwt_max_ttl_secs: None,
            rate_per_second: 10.0,
            rate_burst: 20,
            rate_limit_store: "redis".into(),
            tenants_file: None,
            tenants_poll_ms: 1_000,
            max_sessions: None,
            sync_wait_ms: 25_000,
            max_attempts: 6,
            webhook_signing_key: None,
            body_read_timeout_ms: 10_000,
            egress_allow_nets: String::new(),
            send_per_minute: 30,
            send_min_interval_ms: 1_000,
            send_jitter_ms: 500,
            media_max_bytes: 16 * 1024 * 1024,
        }
    }
}

impl ApiSettings {
    /// Reads the settings (file, then environment) and checks what can be checked without IO.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let s = wgate_service::config::load_with_parts(file, |s: Self, redis, upstream, logging| Self {
            redis,
            upstream,
            logging,
            ..s
        })?;
        s.check()?;
        Ok(s)
    }

    /// Every setting name `wgate-api` reads (`redis_url` is `WGATE_REDIS_URL`), its shared parts included.
    pub fn setting_names() -> Vec<&'static str> {
        wgate_service::config::setting_names_with_parts::<Self, RedisSettings, UpstreamSettings, LogSettings>()
    }

    /// Settings for a process on this machine: listeners on 127.0.0.1 port 0, the given Redis and namespace, one
    /// HS256 secret, pretty logs, and loopback opened to tenants' callbacks ([`LOOPBACK_NETS`]), where a test's or
    /// a local stack's receivers listen. Every other setting has its default.
    pub fn on_loopback(redis_url: &str, namespace: &str, secret: &str) -> Self {
        Self {
            redis: RedisSettings::new(redis_url, namespace),
            logging: LogSettings { log: "info".into(), log_format: LogFormat::Pretty },
            api_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_admin_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            jwt_secret: Some(SecretString::from(secret.to_owned())),
            egress_allow_nets: LOOPBACK_NETS.to_owned(),
            ..Self::default()
        }
    }

    /// Checks of single values; keys and files are checked when the application is built.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.redis.check()?;
        self.upstream.check()?;
        if self.jwt_secret.is_none() && self.jwt_public_keys.is_none() && self.jwt_jwks_url.is_none() {
            return Err(ConfigError::setting(
                "jwt_secret",
                "no JWT key configured: set WGATE_JWT_SECRET, WGATE_JWT_PUBLIC_KEYS or WGATE_JWT_JWKS_URL",
            ));
        }
        if let Some(secret) = &self.jwt_secret
            && secret.expose_secret().split(',').any(|s| s.trim().is_empty())
        {
            return Err(ConfigError::setting("jwt_secret", "an empty secret in the comma-separated list"));
        }
        if let Some(url) = &self.jwt_jwks_url {
            check_jwks_url(url).map_err(|p| ConfigError::setting("jwt_jwks_url", p))?;
        }
        if self.jwt_max_ttl_secs == Some(0) {
            return Err(ConfigError::setting("jwt_max_ttl_secs", "must be at least 1 (unset it for no bound)"));
        }
        if self.body_read_timeout_ms == 0 {
            return Err(ConfigError::setting("body_read_timeout_ms", "must be at least 1"));
        }
        self.egress_nets()?;
        check_http_url(&self.public_url).map_err(|p| ConfigError::setting("public_url", p))?;
        if self.jwt_audience.trim().is_empty() {
            return Err(ConfigError::setting("jwt_audience", "must not be empty"));
        }
        if !(self.rate_per_second.is_finite() && self.rate_per_second > 0.0) {
            return Err(ConfigError::setting("rate_per_second", "must be a number above 0"));
        }
        if self.rate_burst == 0 {
            return Err(ConfigError::setting("rate_burst", "must be at least 1"));
        }
        self.shared_rate_limits()?;
        if self.max_attempts == 0 {
            return Err(ConfigError::setting("max_attempts", "must be at least 1"));
        }
        if self.redis_wait_timeout_ms == 0 {
            return Err(ConfigError::setting("redis_wait_timeout_ms", "must be at least 1"));
        }
        if self.send_per_minute == 0 {
            return Err(ConfigError::setting("send_per_minute", "must be at least 1"));
        }
        if self.media_max_bytes < 1024 {
            return Err(ConfigError::setting("media_max_bytes", "must be at least 1024"));
        }
        Ok(())
    }

    /// True when the tenant buckets live in Redis (`WGATE_RATE_LIMIT_STORE=redis`).
    pub fn shared_rate_limits(&self) -> Result<bool, ConfigError> {
        match self.rate_limit_store.trim().to_ascii_lowercase().as_str() {
            "redis" => Ok(true),
            "local" => Ok(false),
            other => Err(ConfigError::setting("rate_limit_store", format!("{other:?} is not one of redis, local"))),
        }
    }

    /// The queue's configuration: the shared Redis settings, the API's `WAIT` for acknowledged writes and the job
    /// TTL.
    pub fn queue_config(&self) -> Result<wgate_queue::QueueConfig, ConfigError> {
        let mut queue = self.redis.queue_config()?;
        queue.wait_replicas = self.redis_wait_replicas;
        queue.wait_timeout = Duration::from_millis(self.redis_wait_timeout_ms);
        queue.job_ttl = Duration::from_secs(self.job_ttl_secs.max(1));
        Ok(queue)
    }

    pub fn sync_wait(&self) -> Duration {
        Duration::from_millis(self.sync_wait_ms)
    }

    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.body_read_timeout_ms)
    }

    /// The ranges `WGATE_EGRESS_ALLOW_NETS` opens.
    pub fn egress_nets(&self) -> Result<Vec<wgate_egress::IpNet>, ConfigError> {
        wgate_egress::EgressPolicy::parse_nets(&self.egress_allow_nets)
            .map_err(|p| ConfigError::setting("egress_allow_nets", p))
    }

    /// The pacing and body bound of the messaging commands.
    pub fn messaging(&self) -> crate::state::Messaging {
        crate::state::Messaging {
            send_per_minute: self.send_per_minute,
            min_interval: Duration::from_millis(self.send_min_interval_ms),
            jitter: Duration::from_millis(self.send_jitter_ms),
            media_max_bytes: self.media_max_bytes,
        }
    }

    /// The public URL without a trailing slash.
    pub fn public_base(&self) -> &str {
        self.public_url.trim_end_matches('/')
    }
}

/// The JWKS is fetched over https; plain http only from a loopback host (a local identity provider), where nobody
/// on the network can swap the keys.
fn check_jwks_url(s: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(s).map_err(|e| format!("{s:?} is not a URL ({e})"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => return Err(format!("{s:?} has no host")),
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(format!("{s:?} must use https (plain http only for a loopback host)")),
        other => Err(format!("{s:?} must use https, not {other}")),
    }
}

fn check_http_url(s: &str) -> Result<(), String> {
    let url = url_parse(s)?;
    if !matches!(url.0.as_str(), "http" | "https") || url.1.is_empty() {
        return Err(format!("{s:?} is not an absolute http(s) URL"));
    }
    Ok(())
}

/// Scheme and host of an absolute URL (reqwest re-exports the `url` parser).
fn url_parse(s: &str) -> Result<(String, String), String> {
    let url = reqwest::Url::parse(s).map_err(|e| format!("{s:?} is not a URL ({e})"))?;
    Ok((url.scheme().to_owned(), url.host_str().unwrap_or_default().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_secret() {
        let mut s = ApiSettings::on_loopback("redis://:redis-pass@h:6379/0", "ns", "super-secret-value");
        s.upstream.api_key = Some(SecretString::from("upstream-key-value"));
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("super-secret-value") && !dbg.contains("upstream-key-value"), "{dbg}");
        assert!(!dbg.contains("redis-pass") && dbg.contains("redis://:***@h:6379/0"), "{dbg}");
    }

    #[test]
    fn one_file_sets_the_shared_parts_and_the_own_settings_and_a_bad_shared_value_names_its_variable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.toml");
        std::fs::write(
            &path,
            "jwt_secret = \"k\"\nredis_url = \"redis://r:1\"\nnamespace = 7\nupstream_url = \"http://u:2\"\n\
             log_format = \"pretty\"\nrate_burst = 3\n",
        )
        .unwrap();
        let s = ApiSettings::load(Some(&path)).unwrap();
        assert_eq!((s.redis.url.as_str(), s.redis.namespace.as_str()), ("redis://r:1", "7"));
        assert_eq!((s.upstream.url.as_str(), s.logging.log_format, s.rate_burst), ("http://u:2", LogFormat::Pretty, 3));
        std::fs::write(&path, "jwt_secret = \"k\"\nredis_timeout_ms = \"soon\"\n").unwrap();
        let err = ApiSettings::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("WGATE_REDIS_TIMEOUT_MS") && !err.contains('\n'), "{err}");
    }

    #[test]
    fn no_key_at_all_is_an_error_naming_the_variable() {
        let mut s = ApiSettings::on_loopback("redis://x", "ns", "k");
        s.jwt_secret = None;
        let err = s.check().unwrap_err().to_string();
        assert!(err.contains("WGATE_JWT_SECRET") && !err.contains('\n'), "{err}");
    }

    #[test]
    fn a_bad_rate_or_url_names_its_variable() {
        let mut s = ApiSettings::on_loopback("redis://x", "ns", "k");
        s.rate_per_second = 0.0;
        assert!(s.check().unwrap_err().to_string().contains("WGATE_RATE_PER_SECOND"));
        let mut s = ApiSettings::on_loopback("redis://x", "ns", "k");
        s.public_url = "not a url".into();
        assert!(s.check().unwrap_err().to_string().contains("WGATE_PUBLIC_URL"));
        let mut s = ApiSettings::on_loopback("redis://x", "ns", "k");
        s.upstream.url = "ftp://whatsgate.ru".into();
        assert!(s.check().unwrap_err().to_string().contains("WGATE_UPSTREAM_URL"));
        let mut s = ApiSettings::on_loopback("redis://x", "ns", "k");
        s.upstream.timeout_ms = 0;
        assert!(s.check().unwrap_err().to_string().contains("WGATE_UPSTREAM_TIMEOUT_MS"));
    }
}
