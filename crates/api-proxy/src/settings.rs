//! The settings of `wgate-api`: every field is set by `WGATE_<FIELD>` or by `<field> = ...` in the TOML file given
//! by `--config FILE` / `WGATE_CONFIG`. Defaults are the documented ones.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use wgate_service::{ConfigError, LogFormat};

/// Everything `wgate-api` reads at start. Secrets are `secrecy` values whose `Debug` prints a placeholder, and
/// `Debug` hides the password a Redis URL may carry.
#[derive(Clone, Deserialize)]
pub struct ApiSettings {
    #[serde(default = "default_redis_url")]
    pub redis_url: String,
    /// PEM CA certificate(s) a `rediss://` server's certificate is checked against (unset: the system's store).
    #[serde(default)]
    pub redis_ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for a Redis that requires mutual TLS; set both or neither.
    #[serde(default)]
    pub redis_client_cert: Option<PathBuf>,
    #[serde(default)]
    pub redis_client_key: Option<PathBuf>,
    /// `standalone` or `sentinel` (then `redis_url` lists the sentinels, comma separated).
    #[serde(default = "default_redis_mode", deserialize_with = "wgate_service::config::de::string_like")]
    pub redis_mode: String,
    /// The name the sentinels monitor the primary under (Sentinel mode).
    #[serde(default, deserialize_with = "wgate_service::config::de::opt_string_like")]
    pub redis_sentinel_service: Option<String>,
    /// A session-create (with its idempotency record) or a replay is acknowledged only once this many replicas
    /// have it (`WAIT`); 0: at once.
    #[serde(default)]
    pub redis_wait_replicas: u32,
    /// How long that wait may take before the client gets 503.
    #[serde(default = "default_redis_wait_timeout_ms")]
    pub redis_wait_timeout_ms: u64,
    #[serde(default = "default_namespace", deserialize_with = "wgate_service::config::de::string_like")]
    pub namespace: String,
    #[serde(default = "default_api_listen")]
    pub api_listen: SocketAddr,
    #[serde(default = "default_admin_listen")]
    pub api_admin_listen: SocketAddr,
    /// Base of the links the gateway hands out (`Location`).
    #[serde(default = "default_public_url")]
    pub public_url: String,
    /// HS256 secrets, comma separated; the first signs nothing (wgate only verifies), all verify (rotation).
    #[serde(default, deserialize_with = "wgate_service::config::de::secret_like")]
    pub jwt_secret: Option<SecretString>,
    /// PEM public key files (RSA, EC P-256, Ed25519), comma separated. A key's `kid` is its file name without
    /// the extension.
    #[serde(default, deserialize_with = "wgate_service::config::de::opt_string_like")]
    pub jwt_public_keys: Option<String>,
    #[serde(default, deserialize_with = "wgate_service::config::de::opt_string_like")]
    pub jwt_jwks_url: Option<String>,
    /// Least time between two JWKS fetches triggered by an unknown `kid`.
    #[serde(default = "default_jwks_cooldown_ms")]
    pub jwt_jwks_cooldown_ms: u64,
    #[serde(default = "default_audience", deserialize_with = "wgate_service::config::de::string_like")]
    pub jwt_audience: String,
    #[serde(default, deserialize_with = "wgate_service::config::de::opt_string_like")]
    pub jwt_issuer: Option<String>,
    /// Longest token lifetime accepted: a token whose `exp` lies further ahead is refused. Unset: no bound.
    #[serde(default)]
    pub jwt_max_ttl_secs: Option<u64>,
    /// Default write rate per tenant (reads get ten times this).
    #[serde(default = "default_rate")]
    pub rate_per_second: f64,
    #[serde(default = "default_burst")]
    pub rate_burst: u32,
    /// Where the tenant buckets live: `redis` (shared by every replica) or `local` (this process only).
    #[serde(default = "default_rate_limit_store", deserialize_with = "wgate_service::config::de::string_like")]
    pub rate_limit_store: String,
    /// TOML with `[tenants.<id>] rate_per_second, burst, max_sessions, frame_ancestors`; reloaded on SIGHUP and
    /// when the file changes.
    #[serde(default)]
    pub tenants_file: Option<PathBuf>,
    /// How often the tenants file's modification time is checked (SIGHUP reloads at once).
    #[serde(default = "default_tenants_poll_ms")]
    pub tenants_poll_ms: u64,
    /// Default session quota per tenant; unset means no limit.
    #[serde(default)]
    pub max_sessions: Option<u32>,
    #[serde(default = "default_sync_wait_ms")]
    pub sync_wait_ms: u64,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Bound on every Redis call: a dead Redis is a 503 within this time.
    #[serde(default = "default_redis_timeout_ms")]
    pub redis_timeout_ms: u64,
    /// The key tenants' webhook secrets are derived from (unset: a random key kept in Redis, made by the first
    /// process that needs it).
    #[serde(default, deserialize_with = "wgate_service::config::de::secret_like")]
    pub webhook_signing_key: Option<SecretString>,
    /// Bound on reading one request body: a client that stops sending gets 408.
    #[serde(default = "default_body_read_timeout_ms")]
    pub body_read_timeout_ms: u64,
    /// CIDR ranges a tenant's URL may reach although they are not public (comma separated; empty: none).
    #[serde(default, deserialize_with = "wgate_service::config::de::string_like")]
    pub egress_allow_nets: String,
    /// WhatsGate's base URL, for the session commands (sessions-get, session-delete, set-hook, set-name).
    #[serde(default = "default_upstream_url", deserialize_with = "wgate_service::config::de::string_like")]
    pub upstream_url: String,
    /// WhatsGate's `X-Api-Key`. Optional for the API: without it the session commands answer 503.
    #[serde(default, deserialize_with = "wgate_service::config::de::secret_like")]
    pub upstream_api_key: Option<SecretString>,
    /// Bound on each upstream call of a session command.
    #[serde(default = "default_upstream_timeout_ms")]
    pub upstream_timeout_ms: u64,
    #[serde(default = "default_log")]
    pub log: String,
    #[serde(default)]
    pub log_format: LogFormat,
}

/// Loopback, IPv4 and IPv6: what tests and the local stack open to tenants' callbacks.
pub const LOOPBACK_NETS: &str = "127.0.0.0/8, ::1/128";

fn default_redis_url() -> String {
    "redis://127.0.0.1:6379".into()
}
fn default_redis_mode() -> String {
    "standalone".into()
}
fn default_redis_wait_timeout_ms() -> u64 {
    500
}
fn default_namespace() -> String {
    "wgate".into()
}
fn default_api_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8080))
}
fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 9464))
}
fn default_public_url() -> String {
    "http://127.0.0.1:8080".into()
}
fn default_jwks_cooldown_ms() -> u64 {
    10_000
}
fn default_audience() -> String {
    "wgate".into()
}
fn default_rate() -> f64 {
    10.0
}
fn default_burst() -> u32 {
    20
}
fn default_rate_limit_store() -> String {
    "redis".into()
}
fn default_tenants_poll_ms() -> u64 {
    1_000
}
fn default_sync_wait_ms() -> u64 {
    25_000
}
fn default_max_attempts() -> u32 {
    6
}
fn default_redis_timeout_ms() -> u64 {
    1_000
}
fn default_body_read_timeout_ms() -> u64 {
    10_000
}
fn default_upstream_url() -> String {
    "https://whatsgate.ru".into()
}
fn default_upstream_timeout_ms() -> u64 {
    15_000
}
fn default_log() -> String {
    "info".into()
}

impl ApiSettings {
    /// Reads the settings (file, then environment) and checks what can be checked without IO.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let s: Self = wgate_service::load_config(file)?;
        s.check()?;
        Ok(s)
    }

    /// Settings for a test: listeners on 127.0.0.1 port 0, the given Redis and namespace, one HS256 secret, and
    /// loopback opened to tenants' callbacks ([`LOOPBACK_NETS`]), where a test's or a local stack's receivers listen.
    pub fn for_tests(redis_url: &str, namespace: &str, secret: &str) -> Self {
        Self {
            redis_url: redis_url.into(),
            redis_ca_file: None,
            redis_client_cert: None,
            redis_client_key: None,
            redis_mode: default_redis_mode(),
            redis_sentinel_service: None,
            redis_wait_replicas: 0,
            redis_wait_timeout_ms: default_redis_wait_timeout_ms(),
            namespace: namespace.into(),
            api_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_admin_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: default_public_url(),
            jwt_secret: Some(SecretString::from(secret.to_owned())),
            jwt_public_keys: None,
            jwt_jwks_url: None,
            jwt_jwks_cooldown_ms: default_jwks_cooldown_ms(),
            jwt_audience: default_audience(),
            jwt_issuer: None,
            jwt_max_ttl_secs: None,
            rate_per_second: default_rate(),
            rate_burst: default_burst(),
            rate_limit_store: default_rate_limit_store(),
            tenants_file: None,
            tenants_poll_ms: default_tenants_poll_ms(),
            max_sessions: None,
            sync_wait_ms: default_sync_wait_ms(),
            max_attempts: default_max_attempts(),
            redis_timeout_ms: default_redis_timeout_ms(),
            webhook_signing_key: None,
            body_read_timeout_ms: default_body_read_timeout_ms(),
            egress_allow_nets: LOOPBACK_NETS.to_owned(),
            upstream_url: default_upstream_url(),
            upstream_api_key: None,
            upstream_timeout_ms: default_upstream_timeout_ms(),
            log: default_log(),
            log_format: LogFormat::Pretty,
        }
    }

    /// Checks of single values; keys and files are checked when the application is built.
    pub fn check(&self) -> Result<(), ConfigError> {
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
        if self.redis_timeout_ms == 0 {
            return Err(ConfigError::setting("redis_timeout_ms", "must be at least 1"));
        }
        self.redis_mode()?;
        if self.redis_wait_timeout_ms == 0 {
            return Err(ConfigError::setting("redis_wait_timeout_ms", "must be at least 1"));
        }
        check_http_url(&self.upstream_url).map_err(|p| ConfigError::setting("upstream_url", p))?;
        if self.upstream_timeout_ms == 0 {
            return Err(ConfigError::setting("upstream_timeout_ms", "must be at least 1"));
        }
        if self.namespace.is_empty() || self.namespace.contains(['{', '}', ' ']) {
            return Err(ConfigError::setting("namespace", "must be non-empty, without braces or spaces"));
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

    /// Standalone or Sentinel, checked by [`ApiSettings::check`].
    pub fn redis_mode(&self) -> Result<wgate_queue::RedisMode, ConfigError> {
        wgate_queue::RedisMode::parse(&self.redis_mode, self.redis_sentinel_service.as_deref())
            .map_err(|e| ConfigError(format!("configuration error: {e}")))
    }

    /// The certificates of a `rediss://` connection.
    pub fn redis_tls(&self) -> wgate_queue::RedisTls {
        wgate_queue::RedisTls::new(&self.redis_ca_file, &self.redis_client_cert, &self.redis_client_key)
    }

    pub fn sync_wait(&self) -> Duration {
        Duration::from_millis(self.sync_wait_ms)
    }

    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms)
    }

    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.body_read_timeout_ms)
    }

    /// The ranges `WGATE_EGRESS_ALLOW_NETS` opens.
    pub fn egress_nets(&self) -> Result<Vec<wgate_egress::IpNet>, ConfigError> {
        wgate_egress::EgressPolicy::parse_nets(&self.egress_allow_nets)
            .map_err(|p| ConfigError::setting("egress_allow_nets", p))
    }

    pub fn upstream_timeout(&self) -> Duration {
        Duration::from_millis(self.upstream_timeout_ms)
    }

    /// The public URL without a trailing slash.
    pub fn public_base(&self) -> &str {
        self.public_url.trim_end_matches('/')
    }
}

impl std::fmt::Debug for ApiSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiSettings")
            .field("redis_url", &wgate_queue::redact_url(&self.redis_url))
            .field("namespace", &self.namespace)
            .field("api_listen", &self.api_listen)
            .field("api_admin_listen", &self.api_admin_listen)
            .field("public_url", &self.public_url)
            .field("jwt_secret", &self.jwt_secret)
            .field("jwt_public_keys", &self.jwt_public_keys)
            .field("jwt_jwks_url", &self.jwt_jwks_url)
            .field("jwt_jwks_cooldown_ms", &self.jwt_jwks_cooldown_ms)
            .field("jwt_audience", &self.jwt_audience)
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_max_ttl_secs", &self.jwt_max_ttl_secs)
            .field("rate_per_second", &self.rate_per_second)
            .field("rate_burst", &self.rate_burst)
            .field("tenants_file", &self.tenants_file)
            .field("tenants_poll_ms", &self.tenants_poll_ms)
            .field("max_sessions", &self.max_sessions)
            .field("sync_wait_ms", &self.sync_wait_ms)
            .field("max_attempts", &self.max_attempts)
            .field("redis_timeout_ms", &self.redis_timeout_ms)
            .field("webhook_signing_key", &self.webhook_signing_key)
            .field("body_read_timeout_ms", &self.body_read_timeout_ms)
            .field("egress_allow_nets", &self.egress_allow_nets)
            .field("upstream_url", &self.upstream_url)
            .field("upstream_api_key", &self.upstream_api_key)
            .field("upstream_timeout_ms", &self.upstream_timeout_ms)
            .field("log", &self.log)
            .field("log_format", &self.log_format)
            .finish()
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
        let mut s = ApiSettings::for_tests("redis://:redis-pass@h:6379/0", "ns", "super-secret-value");
        s.upstream_api_key = Some(SecretString::from("upstream-key-value"));
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("super-secret-value") && !dbg.contains("upstream-key-value"), "{dbg}");
        assert!(!dbg.contains("redis-pass") && dbg.contains("redis://:***@h:6379/0"), "{dbg}");
    }

    #[test]
    fn no_key_at_all_is_an_error_naming_the_variable() {
        let mut s = ApiSettings::for_tests("redis://x", "ns", "k");
        s.jwt_secret = None;
        let err = s.check().unwrap_err().to_string();
        assert!(err.contains("WGATE_JWT_SECRET") && !err.contains('\n'), "{err}");
    }

    #[test]
    fn a_bad_rate_or_url_names_its_variable() {
        let mut s = ApiSettings::for_tests("redis://x", "ns", "k");
        s.rate_per_second = 0.0;
        assert!(s.check().unwrap_err().to_string().contains("WGATE_RATE_PER_SECOND"));
        let mut s = ApiSettings::for_tests("redis://x", "ns", "k");
        s.public_url = "not a url".into();
        assert!(s.check().unwrap_err().to_string().contains("WGATE_PUBLIC_URL"));
        let mut s = ApiSettings::for_tests("redis://x", "ns", "k");
        s.upstream_url = "ftp://whatsgate.ru".into();
        assert!(s.check().unwrap_err().to_string().contains("WGATE_UPSTREAM_URL"));
        let mut s = ApiSettings::for_tests("redis://x", "ns", "k");
        s.upstream_timeout_ms = 0;
        assert!(s.check().unwrap_err().to_string().contains("WGATE_UPSTREAM_TIMEOUT_MS"));
    }
}
