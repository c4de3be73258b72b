//! How the webhook keys of a tenant in `WGATE_TENANTS_FILE` are read:
//!
//! ```toml
//! [tenants.acme]
//! webhook_url = "https://hooks.acme.example/whatsapp"   # where events go when a session has no callback
//! webhook_events = ["message", "ack"]                   # only these are delivered (unset: all)
//! webhook_secret = ["whsec_new...", "whsec_old..."]     # or one string; every one signs (rotation)
//! ```
//!
//! The file itself is read by `wgate_service::tenants`, for the API and the worker alike.

use serde::{Deserialize, Deserializer};
use wgate_types::CallbackUrl;

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

/// `webhook_url`: an absolute http(s) URL (the same rules as a session callback).
pub fn deserialize_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<CallbackUrl>, D::Error> {
    let Some(text) = Option::<String>::deserialize(d)? else { return Ok(None) };
    CallbackUrl::parse(&text)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("webhook_url must be an absolute http(s) URL: {e}")))
}
