//! The Redis settings every process reads the same way (`WGATE_REDIS_*` and `WGATE_NAMESPACE`), flattened into the
//! API's and the worker's settings and turned into a [`QueueConfig`] here, so defaults and checks live once.

use std::{path::PathBuf, time::Duration};

use serde::Deserialize;
use wgate_service::ConfigError;

use crate::{QueueConfig, RedisMode, RedisTls, redact_url};

/// Where Redis is and how to reach it. Field names are the setting names (`redis_url` is `WGATE_REDIS_URL`).
#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct RedisSettings {
    /// `redis://` or `rediss://`; in Sentinel mode the sentinels, comma separated.
    #[serde(rename = "redis_url", deserialize_with = "wgate_service::config::de::string_like")]
    pub url: String,
    /// PEM CA certificate(s) a `rediss://` server's certificate is checked against (unset: the system's store).
    #[serde(rename = "redis_ca_file")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for a Redis that requires mutual TLS; set both or neither.
    #[serde(rename = "redis_client_cert")]
    pub client_cert: Option<PathBuf>,
    #[serde(rename = "redis_client_key")]
    pub client_key: Option<PathBuf>,
    /// `standalone` or `sentinel` (then `url` lists the sentinels, comma separated).
    #[serde(rename = "redis_mode", deserialize_with = "wgate_service::config::de::string_like")]
    pub mode: String,
    /// The name the sentinels monitor the primary under (Sentinel mode).
    #[serde(rename = "redis_sentinel_service", deserialize_with = "wgate_service::config::de::opt_string_like")]
    pub sentinel_service: Option<String>,
    /// Bound on every Redis call: a dead Redis is an error (a 503 at the API) within this time.
    #[serde(rename = "redis_timeout_ms")]
    pub timeout_ms: u64,
    /// Every key starts with `{<namespace>}:`; processes that share it share the queue.
    #[serde(deserialize_with = "wgate_service::config::de::string_like")]
    pub namespace: String,
    /// Hash tags the keys and queues are split into, 1..=256 (unset: 1, or 16 in cluster mode). Every process of
    /// a deployment must use the same number.
    pub queue_partitions: Option<u32>,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            ca_file: None,
            client_cert: None,
            client_key: None,
            mode: "standalone".into(),
            sentinel_service: None,
            timeout_ms: 1_000,
            namespace: "wgate".into(),
            queue_partitions: None,
        }
    }
}

impl RedisSettings {
    /// The given Redis and namespace, every other setting at its default.
    pub fn new(url: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self { url: url.into(), namespace: namespace.into(), ..Self::default() }
    }

    /// Checks of single values; the error is one line naming the variable.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.timeout_ms == 0 {
            return Err(ConfigError::setting("redis_timeout_ms", "must be at least 1"));
        }
        if self.namespace.is_empty() || self.namespace.contains(['{', '}', ' ']) {
            return Err(ConfigError::setting("namespace", "must be non-empty, without braces or spaces"));
        }
        self.redis_mode()?;
        self.partitions()?;
        Ok(())
    }

    /// `WGATE_QUEUE_PARTITIONS`, or its default for the mode: 1 for one Redis or Sentinel, 16 for a cluster.
    pub fn partitions(&self) -> Result<u16, ConfigError> {
        match self.queue_partitions {
            None if self.redis_mode()? == RedisMode::Cluster => Ok(16),
            None => Ok(1),
            Some(n) => u16::try_from(n).ok().filter(|n| (1..=crate::MAX_PARTITIONS).contains(n)).ok_or_else(|| {
                ConfigError::setting(
                    "queue_partitions",
                    format!("must be 1 to {} (16 suits a cluster of up to 16 primaries)", crate::MAX_PARTITIONS),
                )
            }),
        }
    }

    /// Standalone or Sentinel.
    pub fn redis_mode(&self) -> Result<RedisMode, ConfigError> {
        RedisMode::parse(&self.mode, self.sentinel_service.as_deref())
            .map_err(|e| ConfigError(format!("configuration error: {e}")))
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The queue's configuration: these settings, with the queue's own defaults for the rest.
    pub fn queue_config(&self) -> Result<QueueConfig, ConfigError> {
        let mut queue = QueueConfig::new(self.url.clone(), self.namespace.clone());
        queue.command_timeout = self.timeout();
        queue.tls = RedisTls {
            ca_file: self.ca_file.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
        };
        queue.mode = self.redis_mode()?;
        queue.partitions = self.partitions()?;
        Ok(queue)
    }
}

/// The URL's password never reaches a log.
impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &redact_url(&self.url))
            .field("ca_file", &self.ca_file)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key)
            .field("mode", &self.mode)
            .field("sentinel_service", &self.sentinel_service)
            .field("timeout_ms", &self.timeout_ms)
            .field("namespace", &self.namespace)
            .field("queue_partitions", &self.queue_partitions)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_value_names_its_variable_and_the_password_stays_out_of_debug() {
        let mut s = RedisSettings::new("redis://:redis-pass@h:6379/0", "ns");
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("redis-pass") && dbg.contains("redis://:***@h:6379/0"), "{dbg}");
        s.timeout_ms = 0;
        assert!(s.check().unwrap_err().to_string().contains("WGATE_REDIS_TIMEOUT_MS"));
        let mut s = RedisSettings::new("redis://x", "a{b}");
        assert!(s.check().unwrap_err().to_string().contains("WGATE_NAMESPACE"));
        s.namespace = "ns".into();
        s.mode = "sentinel".into();
        assert!(s.check().unwrap_err().to_string().contains("WGATE_REDIS_SENTINEL_SERVICE"));
    }

    #[test]
    fn partitions_default_by_mode_and_stay_within_1_to_256() {
        let mut s = RedisSettings::new("redis://x", "ns");
        assert_eq!(s.queue_config().unwrap().partitions, 1);
        s.mode = "cluster".into();
        assert_eq!(s.queue_config().unwrap().partitions, 16);
        s.queue_partitions = Some(3);
        assert_eq!(s.queue_config().unwrap().partitions, 3);
        for bad in [0, 257, 70_000] {
            s.queue_partitions = Some(bad);
            let e = s.check().unwrap_err().to_string();
            assert!(e.contains("WGATE_QUEUE_PARTITIONS") && e.contains("1 to 256"), "{e}");
        }
    }
}
