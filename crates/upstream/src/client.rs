//! `Upstream`: one pooled HTTP client for every WhatsGate command.

use std::{sync::Arc, time::Duration};

use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use wgate_types::{ErrorClass, SessionCreate};

use crate::{UpstreamError, UpstreamMetrics};

/// Where WhatsGate is and how to call it.
#[derive(Clone)]
pub struct UpstreamConfig {
    /// e.g. `https://whatsgate.ru`; commands go to `{base_url}/api/v1/<command>`.
    pub base_url: String,
    pub api_key: SecretString,
    /// Bound on each call, connection included (`WGATE_UPSTREAM_TIMEOUT_MS`).
    pub timeout: Duration,
    /// Idle keep-alive connections kept per host.
    pub max_idle_connections: usize,
}

impl UpstreamConfig {
    pub fn new(base_url: impl Into<String>, api_key: SecretString, timeout: Duration) -> Self {
        Self { base_url: base_url.into(), api_key, timeout, max_idle_connections: 256 }
    }
}

impl std::fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &"[redacted]")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `sessions-get` filters and paging; absent fields are not sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionsQuery {
    #[serde(rename = "WhatsappID", skip_serializing_if = "Option::is_none")]
    pub whatsapp_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_cnt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
}

/// One page of `sessions-get`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionsPage {
    #[serde(default, deserialize_with = "lenient_u64")]
    pub pages: u64,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub elements: u64,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub page: u64,
    #[serde(default)]
    pub data: Vec<Value>,
}

/// Numbers that may come as JSON numbers or strings.
fn lenient_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => Ok(n.as_u64().unwrap_or(0)),
        Value::String(s) => Ok(s.trim().parse().unwrap_or(0)),
        _ => Ok(0),
    }
}

struct Inner {
    http: reqwest::Client,
    base: String,
    api_key: SecretString,
    timeout: Duration,
    metrics: Option<UpstreamMetrics>,
}

/// The WhatsGate client: cheap to clone, one connection pool per process.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream").field("base", &self.inner.base).finish_non_exhaustive()
    }
}

impl Upstream {
    /// Checks the base URL and the key and builds the pool.
    pub fn new(config: UpstreamConfig) -> Result<Self, String> {
        // reqwest is built without a default TLS provider and panics without one.
        wgate_service::init_crypto();
        let url = url::Url::parse(&config.base_url).map_err(|e| format!("WGATE_UPSTREAM_URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("WGATE_UPSTREAM_URL: must be an http(s) URL".into());
        }
        if HeaderValue::from_str(config.api_key.expose_secret()).is_err() || config.api_key.expose_secret().is_empty() {
            return Err("WGATE_UPSTREAM_API_KEY: must be non-empty printable ASCII".into());
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(config.max_idle_connections)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .user_agent(concat!("wgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("building the upstream HTTP client: {e}"))?;
        let base = config.base_url.trim_end_matches('/').to_owned();
        Ok(Self {
            inner: Arc::new(Inner { http, base, api_key: config.api_key, timeout: config.timeout, metrics: None }),
        })
    }

    /// The same client, recording every call in `metrics`.
    pub fn with_metrics(self, metrics: UpstreamMetrics) -> Self {
        let inner = &self.inner;
        Self {
            inner: Arc::new(Inner {
                http: inner.http.clone(),
                base: inner.base.clone(),
                api_key: inner.api_key.clone(),
                timeout: inner.timeout,
                metrics: Some(metrics),
            }),
        }
    }

    /// `session-create`; answers upstream's `data` (the new session).
    pub async fn session_create(&self, request: &SessionCreate) -> Result<Value, UpstreamError> {
        let mut body = self.call("session-create", request).await?;
        match body.get_mut("data").map(Value::take) {
            Some(data @ Value::Object(_)) => Ok(data),
            _ => Err(UpstreamError::unexpected(200, "session-create answered OK without a data object".into())),
        }
    }

    /// `sessions-get`: one page of sessions matching the query.
    pub async fn sessions_get(&self, query: &SessionsQuery) -> Result<SessionsPage, UpstreamError> {
        let body = self.call("sessions-get", query).await?;
        serde_json::from_value(body)
            .map_err(|e| UpstreamError::unexpected(200, format!("sessions-get answered an unexpected shape: {e}")))
    }

    /// `session-delete`; answers upstream's whole body.
    pub async fn session_delete(&self, whatsapp_id: &str) -> Result<Value, UpstreamError> {
        self.call("session-delete", &serde_json::json!({ "WhatsappID": whatsapp_id })).await
    }

    /// `set-hook`; answers upstream's whole body.
    pub async fn set_hook(&self, whatsapp_id: &str, callback: &str) -> Result<Value, UpstreamError> {
        self.call("set-hook", &serde_json::json!({ "WhatsappID": whatsapp_id, "callback": callback })).await
    }

    /// `set-name`; answers upstream's whole body.
    pub async fn set_name(&self, whatsapp_id: &str, name: &str) -> Result<Value, UpstreamError> {
        self.call("set-name", &serde_json::json!({ "WhatsappID": whatsapp_id, "name": name })).await
    }

    /// Any command: `POST {base}/api/v1/<command>` with a JSON body. Answers the whole body of a
    /// `{"result":"OK",...}` answer (or of `send`'s `{"result":{...}}`).
    pub async fn call<B: Serialize + ?Sized>(&self, command: &'static str, body: &B) -> Result<Value, UpstreamError> {
        let mut count = Counted::new(self, command);
        let result = self.send(command, body).await;
        count.finish(result.as_ref().err());
        result
    }

    /// Any command whose answer may be large (`get-media`): the HTTP 200 answer unread, for the caller to stream
    /// on; any other answer read and turned into the error. The call is counted once its head arrived.
    pub async fn open<B: Serialize + ?Sized>(
        &self,
        command: &'static str,
        body: &B,
    ) -> Result<reqwest::Response, UpstreamError> {
        let mut count = Counted::new(self, command);
        let result = self.post(command, body).await;
        count.finish(result.as_ref().err());
        result
    }

    /// The POST of one command: the answer of an HTTP 200, else the error its body describes.
    async fn post<B: Serialize + ?Sized>(&self, command: &str, body: &B) -> Result<reqwest::Response, UpstreamError> {
        let inner = &self.inner;
        let url = format!("{}/api/v1/{command}", inner.base);
        let mut key = HeaderValue::from_str(inner.api_key.expose_secret())
            .map_err(|_| UpstreamError::new(ErrorClass::Credentials, "InvalidApiKey", "unusable API key", false))?;
        key.set_sensitive(true);
        let response = inner
            .http
            .post(&url)
            .header("X-Api-Key", key)
            .header(CONTENT_TYPE, "application/json")
            .json(body)
            .send()
            .await
            .map_err(|e| UpstreamError::from_transport(&e, inner.timeout))?;
        let status = response.status().as_u16();
        if status == 200 {
            return Ok(response);
        }
        let retry_after = response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bytes = response.bytes().await.map_err(|e| UpstreamError::from_transport(&e, inner.timeout))?;
        let e = UpstreamError::from_response(status, retry_after.as_deref(), &bytes);
        tracing::debug!(upstream.command = command, upstream.status = status, error.name = e.name(), "upstream error");
        Err(e)
    }

    async fn send<B: Serialize + ?Sized>(&self, command: &str, body: &B) -> Result<Value, UpstreamError> {
        let response = self.post(command, body).await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| UpstreamError::from_transport(&e, self.inner.timeout))?;
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| UpstreamError::unexpected(status, format!("{command} answered 200 with invalid JSON: {e}")))?;
        // `{"result":"OK",...}`, or for `send` `{"result":<the message>}` (`{}` when queued).
        let ok = match value.get("result") {
            Some(Value::String(r)) => r == "OK",
            Some(Value::Object(_)) => true,
            _ => false,
        };
        if !ok {
            // A 200 that is not OK: read it as WhatsGate's error body if it is one.
            let e = UpstreamError::from_response(500, None, &bytes);
            return Err(if e.name().starts_with("Http") {
                UpstreamError::unexpected(status, format!("{command} answered 200 without result OK"))
            } else {
                e
            });
        }
        Ok(value)
    }
}

/// Counts one call in the upstream metrics when it ends, or as `timeout` when its caller's deadline drops it first
/// (a call cut short still went out, and may have reached WhatsGate).
struct Counted<'a> {
    upstream: &'a Upstream,
    command: &'static str,
    started: std::time::Instant,
    done: bool,
}

impl<'a> Counted<'a> {
    fn new(upstream: &'a Upstream, command: &'static str) -> Self {
        Self { upstream, command, started: std::time::Instant::now(), done: false }
    }

    fn finish(&mut self, error: Option<&UpstreamError>) {
        self.done = true;
        let status = match error {
            None => "200".to_owned(),
            Some(e) => match (e.status(), e.class()) {
                (Some(s), _) => s.to_string(),
                (None, ErrorClass::Timeout) => "timeout".to_owned(),
                (None, _) => "error".to_owned(),
            },
        };
        self.record(&status);
    }

    fn record(&self, status: &str) {
        let Some(m) = &self.upstream.inner.metrics else { return };
        m.requests.with_label_values(&[self.command, status]).inc();
        m.duration.with_label_values(&[self.command]).observe(self.started.elapsed().as_secs_f64());
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.record("timeout");
        }
    }
}
