//! WhatsGate's address, key and timeout (`WGATE_UPSTREAM_*`), read the same way by the API and the worker and
//! turned into an [`UpstreamConfig`] here.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use wgate_service::ConfigError;

use crate::UpstreamConfig;

/// Field names are the setting names (`upstream_url` is `WGATE_UPSTREAM_URL`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct UpstreamSettings {
    /// WhatsGate's base URL; commands go to `{url}/api/v1/<command>`.
    #[serde(rename = "upstream_url", deserialize_with = "wgate_service::config::de::string_like")]
    pub url: String,
    /// WhatsGate's `X-Api-Key` (its `Debug` prints a placeholder).
    #[serde(rename = "upstream_api_key", deserialize_with = "wgate_service::config::de::secret_like")]
    pub api_key: Option<SecretString>,
    /// Bound on each upstream call, connection included.
    #[serde(rename = "upstream_timeout_ms")]
    pub timeout_ms: u64,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self { url: "https://whatsgate.ru".into(), api_key: None, timeout_ms: 15_000 }
    }
}

impl UpstreamSettings {
    /// Checks of single values (the key is checked by whoever requires it); one line naming the variable.
    pub fn check(&self) -> Result<(), ConfigError> {
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| ConfigError::setting("upstream_url", format!("{:?} is not a URL ({e})", self.url)))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(ConfigError::setting("upstream_url", format!("{:?} is not an absolute http(s) URL", self.url)));
        }
        if self.timeout_ms == 0 {
            return Err(ConfigError::setting("upstream_timeout_ms", "must be at least 1"));
        }
        Ok(())
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The client's configuration, or `None` without a key.
    pub fn config(&self) -> Option<UpstreamConfig> {
        let key = self.api_key.clone()?;
        Some(UpstreamConfig::new(self.url.clone(), key, self.timeout()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_url_or_timeout_names_its_variable() {
        let mut s = UpstreamSettings { url: "ftp://whatsgate.ru".into(), ..UpstreamSettings::default() };
        assert!(s.check().unwrap_err().to_string().contains("WGATE_UPSTREAM_URL"));
        s.url = "not a url".into();
        assert!(s.check().unwrap_err().to_string().contains("WGATE_UPSTREAM_URL"));
        s.url = "http://127.0.0.1:1".into();
        s.timeout_ms = 0;
        assert!(s.check().unwrap_err().to_string().contains("WGATE_UPSTREAM_TIMEOUT_MS"));
        s.timeout_ms = 1;
        assert!(s.check().is_ok() && s.config().is_none(), "no key, no client");
    }
}
