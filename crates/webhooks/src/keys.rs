//! The deployment's signing key and a tenant's active secrets.

use std::future::Future;

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::OnceCell;
use wgate_types::TenantId;

use crate::{WebhookSecret, WebhookSecrets};

/// The key tenants' secrets are derived from: `WGATE_WEBHOOK_SIGNING_KEY` when set, otherwise the random one
/// kept in Redis, fetched (or created) once per process on first need.
#[derive(Default)]
pub struct SigningKey {
    configured: Option<SecretString>,
    fetched: OnceCell<SecretString>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

impl SigningKey {
    pub fn new(configured: Option<SecretString>) -> Self {
        Self { configured: configured.filter(|k| !k.expose_secret().is_empty()), fetched: OnceCell::new() }
    }

    /// The tenant's active secrets, newest first: its configured ones, else the one derived from the key
    /// (`fetch` reads or creates the key in Redis; called only when needed, and until it succeeds).
    pub async fn secrets<F, Fut, E>(
        &self,
        tenant: &TenantId,
        configured: Option<&WebhookSecrets>,
        fetch: F,
    ) -> Result<Vec<WebhookSecret>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<String, E>>,
    {
        if let Some(list) = configured {
            return Ok(list.as_slice().to_vec());
        }
        let key = match &self.configured {
            Some(k) => k,
            None => self.fetched.get_or_try_init(|| async { fetch().await.map(SecretString::from) }).await?,
        };
        Ok(vec![WebhookSecret::derive(key.expose_secret().as_bytes(), tenant)])
    }
}
