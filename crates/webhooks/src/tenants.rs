//! The webhook settings of a tenant in `WGATE_TENANTS_FILE`:
//!
//! ```toml
//! [tenants.acme]
//! webhook_url = "https://hooks.acme.example/whatsapp"   # where events go when a session has no callback
//! webhook_events = ["message", "ack"]                   # only these are delivered (unset: all)
//! webhook_secret = ["whsec_new...", "whsec_old..."]     # or one string; every one signs (rotation)
//! ```
//!
//! The API reads these with the rest of the tenant's settings; the worker, which needs only these, reads them
//! with [`TenantWebhooks::load`], leaving the other keys to the API.

use std::{collections::HashMap, path::Path};

use serde::{Deserialize, Deserializer};
use wgate_types::{CallbackUrl, TenantId};

use crate::WebhookSecret;

/// One or several `whsec_` secrets, checked when the file is read.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct WebhookSecrets(Vec<WebhookSecret>);

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookSecrets({} redacted)", self.0.len())
    }
}

impl WebhookSecrets {
    pub fn as_slice(&self) -> &[WebhookSecret] {
        &self.0
    }
}

impl<'de> Deserialize<'de> for WebhookSecrets {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        let texts = match OneOrMany::deserialize(d)? {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        };
        if texts.is_empty() || texts.len() > 8 {
            return Err(serde::de::Error::custom("webhook_secret holds 1 to 8 secrets"));
        }
        let secrets = texts
            .iter()
            .map(|t| WebhookSecret::parse(t).map_err(|e| serde::de::Error::custom(format!("webhook_secret: {e}"))))
            .collect::<Result<_, _>>()?;
        Ok(Self(secrets))
    }
}

/// A tenant's webhook settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TenantWebhook {
    /// Where events go for sessions that have no callback of their own.
    #[serde(default, deserialize_with = "deserialize_url")]
    pub webhook_url: Option<CallbackUrl>,
    /// Only these event actions are delivered; unset: every one.
    #[serde(default)]
    pub webhook_events: Option<Vec<String>>,
    /// The secrets deliveries are signed with; unset: derived from the deployment's signing key.
    #[serde(default)]
    pub webhook_secret: Option<WebhookSecrets>,
}

/// `webhook_url`: an absolute http(s) URL (the same rules as a session callback).
pub fn deserialize_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<CallbackUrl>, D::Error> {
    let Some(text) = Option::<String>::deserialize(d)? else { return Ok(None) };
    CallbackUrl::parse(&text)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("webhook_url must be an absolute http(s) URL: {e}")))
}

impl TenantWebhook {
    /// Whether an event with this action is delivered.
    pub fn wants(&self, action: &str) -> bool {
        self.webhook_events.as_ref().is_none_or(|list| list.iter().any(|e| e == action))
    }
}

/// Every tenant's webhook settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantWebhooks(HashMap<TenantId, TenantWebhook>);

impl TenantWebhooks {
    /// The webhook keys of each `[tenants.<id>]` table; other keys are left alone.
    pub fn parse(text: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            tenants: HashMap<String, TenantWebhook>,
        }
        let file: File = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        let mut map = HashMap::new();
        for (id, hooks) in file.tenants {
            let tenant = TenantId::parse(&id).map_err(|e| format!("[tenants.{id}]: {e}"))?;
            map.insert(tenant, hooks);
        }
        Ok(Self(map))
    }

    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn get(&self, tenant: &TenantId) -> Option<&TenantWebhook> {
        self.0.get(tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_keys_are_read_and_bad_ones_are_named() {
        let t = TenantWebhooks::parse(
            "[tenants.acme]\nburst = 3\nwebhook_url = \"https://h.example/x\"\nwebhook_events = [\"message\"]\n\
             webhook_secret = [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\", \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSx\"]\n",
        )
        .unwrap();
        let acme = t.get(&TenantId::parse("acme").unwrap()).unwrap();
        assert_eq!(acme.webhook_url.as_ref().map(CallbackUrl::as_str), Some("https://h.example/x"));
        assert!(acme.wants("message") && !acme.wants("ack"));
        assert_eq!(acme.webhook_secret.as_ref().unwrap().as_slice().len(), 2);
        assert!(TenantWebhooks::parse("[tenants.a]\nwebhook_secret = \"nope\"\n").unwrap_err().contains("whsec_"));
        assert!(TenantWebhooks::parse("[tenants.a]\nwebhook_url = \"ftp://x\"\n").unwrap_err().contains("webhook_url"));
        assert!(TenantWebhook::default().wants("anything"));
    }
}
