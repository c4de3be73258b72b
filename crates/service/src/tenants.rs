//! Per-tenant overrides from `WGATE_TENANTS_FILE`:
//!
//! ```toml
//! [tenants.acme]
//! rate_per_second = 50
//! burst = 100
//! max_sessions = 10
//! send_per_minute = 20
//! frame_ancestors = "https://app.acme.example"
//! webhook_url = "https://hooks.acme.example/whatsapp"
//! webhook_events = ["message", "ack"]
//! webhook_secret = ["whsec_...", "whsec_..."]
//! ```
//!
//! The API uses every key, the worker the `webhook_*` ones; both read the file with this one parser, so they
//! agree on what a valid file is. It is read at start (a bad file stops the process) and again on SIGHUP or when
//! its modification time or size changes (a bad file then is logged and the previous settings stay).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::{Duration, SystemTime},
};

use serde::Deserialize;
use wgate_types::TenantId;

/// One `[tenants.<id>]` table; every key is optional (unset: the deployment's default).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    pub rate_per_second: Option<f64>,
    pub burst: Option<u32>,
    pub max_sessions: Option<u32>,
    /// Sends per minute of each of the tenant's sessions (default `WGATE_SEND_PER_MINUTE`).
    pub send_per_minute: Option<u32>,
    pub frame_ancestors: Option<String>,
    /// Where events go for sessions without a callback of their own.
    #[serde(default, deserialize_with = "wgate_webhooks::tenants::deserialize_url")]
    pub webhook_url: Option<wgate_types::CallbackUrl>,
    /// Only these event actions are delivered (all are stored for events-get).
    pub webhook_events: Option<Vec<String>>,
    /// The secrets deliveries are signed with (several during a rotation); unset: derived.
    pub webhook_secret: Option<wgate_webhooks::WebhookSecrets>,
}

impl TenantSettings {
    /// Whether an event with this action is delivered (`webhook_events` unset: every one).
    pub fn wants(&self, action: &str) -> bool {
        self.webhook_events.as_ref().is_none_or(|list| list.iter().any(|e| e == action))
    }
}

/// Every tenant's settings from the file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tenants(HashMap<TenantId, TenantSettings>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    tenants: HashMap<String, TenantSettings>,
}

impl Tenants {
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: File = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        let mut map = HashMap::new();
        for (id, o) in file.tenants {
            let tenant = TenantId::parse(&id).map_err(|e| format!("[tenants.{id}]: {e}"))?;
            if let Some(r) = o.rate_per_second
                && !(r.is_finite() && r > 0.0)
            {
                return Err(format!("[tenants.{id}] rate_per_second must be a number above 0"));
            }
            if o.send_per_minute == Some(0) {
                return Err(format!("[tenants.{id}] send_per_minute must be at least 1"));
            }
            if o.burst == Some(0) {
                return Err(format!("[tenants.{id}] burst must be at least 1"));
            }
            map.insert(tenant, o);
        }
        Ok(Self(map))
    }

    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn get(&self, tenant: &TenantId) -> Option<&TenantSettings> {
        self.0.get(tenant)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&TenantId, &TenantSettings)> {
        self.0.iter()
    }
}

/// The current overrides, swapped as a whole on reload.
#[derive(Clone, Default)]
pub struct TenantTable(Arc<RwLock<Arc<Tenants>>>);

impl TenantTable {
    pub fn new(t: Tenants) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(t))))
    }

    pub fn current(&self) -> Arc<Tenants> {
        match self.0.read() {
            Ok(t) => t.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set(&self, t: Tenants) {
        match self.0.write() {
            Ok(mut g) => *g = Arc::new(t),
            Err(p) => *p.into_inner() = Arc::new(t),
        }
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reloads the file on SIGHUP and when its modification time or size changes (checked every `poll`), calling
/// `on_change` with each new table. Runs until the task is aborted.
pub async fn watch(path: PathBuf, table: TenantTable, poll: Duration, on_change: impl Fn(&Tenants) + Send + 'static) {
    let stamp = |p: &Path| (mtime(p), std::fs::metadata(p).map(|m| m.len()).ok());
    let mut seen = stamp(&path);
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        #[cfg(unix)]
        let by_signal = async {
            match hup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let by_signal = std::future::pending::<()>();
        let forced = tokio::select! {
            _ = by_signal => true,
            _ = tick.tick() => false,
        };
        let now = stamp(&path);
        if !forced && now == seen {
            continue;
        }
        seen = now;
        match Tenants::load(&path) {
            Ok(t) => {
                tracing::info!(path = %path.display(), tenants = t.len(), signal = forced, "tenants file reloaded");
                on_change(&t);
                table.set(t);
            }
            Err(e) => tracing::error!(error = %e, "tenants file not reloaded; keeping the previous settings"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_with_overrides_parses_and_bad_values_are_named() {
        let t = Tenants::parse("[tenants.acme]\nrate_per_second = 2\nburst = 3\nmax_sessions = 1\n").unwrap();
        let o = t.get(&TenantId::parse("acme").unwrap()).unwrap();
        assert_eq!((o.rate_per_second, o.burst, o.max_sessions), (Some(2.0), Some(3), Some(1)));
        assert!(Tenants::parse("[tenants.acme]\nburst = 0\n").unwrap_err().contains("burst"));
        assert!(Tenants::parse("[tenants.\"bad id!\"]\nburst = 1\n").is_err());
        assert!(Tenants::parse("[tenants.acme]\nrate = 1\n").is_err(), "unknown keys are typos");
    }

    #[test]
    fn webhook_keys_are_read_and_bad_ones_are_named() {
        let t = Tenants::parse(
            "[tenants.acme]\nburst = 3\nwebhook_url = \"https://h.example/x\"\nwebhook_events = [\"message\"]\n\
             webhook_secret = [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\", \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSx\"]\n",
        )
        .unwrap();
        let acme = t.get(&TenantId::parse("acme").unwrap()).unwrap();
        assert_eq!(acme.webhook_url.as_ref().map(wgate_types::CallbackUrl::as_str), Some("https://h.example/x"));
        assert!(acme.wants("message") && !acme.wants("ack"));
        assert_eq!(acme.webhook_secret.as_ref().unwrap().as_slice().len(), 2);
        assert!(Tenants::parse("[tenants.a]\nwebhook_secret = \"nope\"\n").unwrap_err().contains("whsec_"));
        assert!(Tenants::parse("[tenants.a]\nwebhook_url = \"ftp://x\"\n").unwrap_err().contains("webhook_url"));
        assert!(TenantSettings::default().wants("anything"));
    }
}
