//! What every handler shares, built once by `Application::build`.

use std::{sync::Arc, time::Duration};

use wgate_queue::Completions;
use wgate_service::tenants::TenantTable;

use crate::{
    auth::Verifier, callback_check::CallbackChecks, limits::Limits, metrics::ApiMetrics, qr_cache::SessionCache,
    store::BoundedStore, upstream::SessionUpstream,
};

pub struct AppState {
    pub verifier: Verifier,
    pub limits: Arc<Limits>,
    pub tenants: TenantTable,
    pub store: BoundedStore,
    pub completions: Completions,
    pub metrics: Arc<ApiMetrics>,
    /// Longest a synchronous session-create waits (`WGATE_SYNC_WAIT_MS`).
    pub sync_wait: Duration,
    /// Stored in each job record (`WGATE_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// Default session quota (`WGATE_MAX_SESSIONS`); a tenant's own `max_sessions` wins.
    pub max_sessions: Option<u32>,
    /// `WGATE_PUBLIC_URL` without a trailing slash.
    pub public_base: String,
    /// The egress guard (public addresses only, checked when connecting; no redirects), whose policy checks a
    /// tenant's callback when it is handed over.
    pub hooks: wgate_egress::EgressClient,
    /// Recent verdicts on tenants' callback hosts.
    pub callback_checks: CallbackChecks,
    /// Bound on reading one request body (`WGATE_BODY_READ_TIMEOUT_MS`).
    pub body_read_timeout: Duration,
    /// WhatsGate, for the session commands; `None` without `WGATE_UPSTREAM_API_KEY` (they answer 503 then).
    pub upstream: Option<SessionUpstream>,
    /// The QR windows' per-session cache of upstream state.
    pub qr_cache: SessionCache,
    /// The messaging commands' pacing and body bound.
    pub messaging: Messaging,
    /// What tenants' webhook secrets are derived from (`GET /api/v1/webhooks/secret`).
    pub signing_key: wgate_webhooks::SigningKey,
}

/// How the messaging commands pace sends and bound their bodies.
#[derive(Debug, Clone, Copy)]
pub struct Messaging {
    /// Default sends per minute of a session (`WGATE_SEND_PER_MINUTE`); a tenant's `send_per_minute` wins.
    pub send_per_minute: u32,
    /// Least time between two sends of a session (`WGATE_SEND_MIN_INTERVAL_MS`).
    pub min_interval: Duration,
    /// Most that is added at random to `min_interval` (`WGATE_SEND_JITTER_MS`).
    pub jitter: Duration,
    /// Largest `send` body (`WGATE_MEDIA_MAX_BYTES`).
    pub media_max_bytes: usize,
}

impl AppState {
    /// Sends per minute of each of the tenant's sessions.
    pub fn send_per_minute(&self, tenant: &wgate_types::TenantId) -> u32 {
        self.tenants.current().get(tenant).and_then(|o| o.send_per_minute).unwrap_or(self.messaging.send_per_minute)
    }

    /// The tenant's session quota: its own `max_sessions`, else `WGATE_MAX_SESSIONS`; `None` is no limit.
    pub fn max_sessions(&self, tenant: &wgate_types::TenantId) -> Option<u32> {
        self.tenants.current().get(tenant).and_then(|o| o.max_sessions).or(self.max_sessions)
    }
}
