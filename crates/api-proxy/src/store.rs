//! The job store as the API uses it: every call bounded in time, every failure counted in
//! `wgate_redis_errors_total{op}` and turned into an `ApiError` (unreachable Redis: 503).

mod webhooks;

use std::{future::Future, sync::Arc, time::Duration};

use wgate_queue::{Enqueued, HookTarget, JobStore, QueueError, RateAnswer, RateDraw, Replay, SessionOwner};
use wgate_types::{CallbackUrl, IdempotencyKey, JobId, JobRecord, TenantId};

use crate::{error::ApiError, metrics::ApiMetrics};

/// The queue's `JobStore` behind the API's bounds: each call within `WGATE_REDIS_TIMEOUT_MS` (plus the replicas'
/// wait for acknowledged writes), counted when it fails, and answered as an `ApiError`.
#[derive(Clone)]
pub struct BoundedStore {
    inner: JobStore,
    timeout: Duration,
    /// Added to the bound of the writes that wait for replicas (`WGATE_REDIS_WAIT_TIMEOUT_MS` and one more round
    /// trip; zero when they do not wait).
    acknowledged_extra: Duration,
    metrics: Arc<ApiMetrics>,
}

impl BoundedStore {
    pub fn new(inner: JobStore, timeout: Duration, metrics: Arc<ApiMetrics>) -> Self {
        let config = inner.config();
        let acknowledged_extra =
            if config.wait_replicas > 0 { config.wait_timeout + config.command_timeout } else { Duration::ZERO };
        Self { inner, timeout, acknowledged_extra, metrics }
    }

    /// The longest one write may take, waiting for replicas included.
    pub fn write_bound(&self) -> Duration {
        self.timeout + self.acknowledged_extra
    }

    async fn call<T>(&self, op: &'static str, fut: impl Future<Output = Result<T, QueueError>>) -> Result<T, ApiError> {
        self.call_within(op, self.timeout, fut).await
    }

    async fn call_within<T>(
        &self,
        op: &'static str,
        bound: Duration,
        fut: impl Future<Output = Result<T, QueueError>>,
    ) -> Result<T, ApiError> {
        // The queue bounds its own calls; this outer bound keeps the promise even if one path forgets.
        let outcome = tokio::time::timeout(bound + Duration::from_millis(50), fut).await;
        let err = match outcome {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => e,
            Err(_) => QueueError::Unavailable(format!("{op} timed out")),
        };
        self.metrics.redis_errors.with_label_values(&[op]).inc();
        Err(match err {
            QueueError::Unavailable(cause) => ApiError::Unavailable { op, cause },
            other => ApiError::Internal(anyhow::Error::new(other).context(op)),
        })
    }

    pub async fn ping(&self) -> Result<(), ApiError> {
        self.call("ping", self.inner.ping()).await
    }

    pub async fn enqueue(
        &self,
        job: &JobRecord,
        key: Option<&IdempotencyKey>,
        max_sessions: Option<u32>,
    ) -> Result<Enqueued, ApiError> {
        self.call_within("enqueue", self.write_bound(), self.inner.enqueue(job, key, max_sessions)).await
    }

    /// [`enqueue`](Self::enqueue) after a draw from the tenant's shared bucket, in the same script.
    pub async fn enqueue_drawing(
        &self,
        job: &JobRecord,
        key: Option<&IdempotencyKey>,
        max_sessions: Option<u32>,
        draw: RateDraw<'_>,
    ) -> Result<(RateAnswer, Option<Enqueued>), ApiError> {
        self.call_within("enqueue", self.write_bound(), self.inner.enqueue_drawing(job, key, max_sessions, draw)).await
    }

    /// A hook or QR token for the tenant's new job `job` (see `Layout::mint_job_token`).
    pub fn mint_job_token(&self, tenant: &TenantId, job: JobId) -> String {
        self.inner.layout().mint_job_token(tenant, job)
    }

    pub async fn get(&self, tenant: &TenantId, id: JobId) -> Result<Option<JobRecord>, ApiError> {
        self.call("get", self.inner.get(tenant, id)).await
    }

    pub async fn replay(&self, tenant: &TenantId, id: JobId, max_sessions: Option<u32>) -> Result<Replay, ApiError> {
        self.call_within("replay", self.write_bound(), self.inner.replay(tenant, id, max_sessions)).await
    }

    pub async fn hook_target(&self, token: &str) -> Result<Option<HookTarget>, ApiError> {
        self.call("hook", self.inner.hook_target(token)).await
    }

    pub async fn qr_target(&self, token: &str) -> Result<Option<wgate_queue::QrTarget>, ApiError> {
        self.call("qr_target", self.inner.qr_target(token)).await
    }

    // --- the session commands ---

    pub async fn session_owner(&self, tenant: &TenantId, unique_id: &str) -> Result<Option<SessionOwner>, ApiError> {
        self.call("session_owner", self.inner.session_owner(tenant, unique_id)).await
    }

    pub async fn tenant_sessions(&self, tenant: &TenantId) -> Result<Vec<String>, ApiError> {
        self.call("tenant_sessions", self.inner.tenant_sessions(tenant)).await
    }

    pub async fn forget_session(&self, tenant: &TenantId, unique_id: &str) -> Result<Option<SessionOwner>, ApiError> {
        self.call("forget_session", self.inner.forget_session(tenant, unique_id)).await
    }

    pub async fn set_hook_callback(
        &self,
        tenant: &TenantId,
        token: &str,
        callback: Option<&CallbackUrl>,
    ) -> Result<bool, ApiError> {
        self.call("set_hook_callback", self.inner.set_hook_callback(tenant, token, callback)).await
    }

    // --- the messaging commands ---

    pub async fn send_claim(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        fingerprint: &str,
    ) -> Result<wgate_queue::SendClaim, ApiError> {
        self.call_within(
            "send_claim",
            self.write_bound(),
            self.inner.send_claim(tenant, key.as_str(), fingerprint, SEND_IDEMPOTENCY_TTL),
        )
        .await
    }

    pub async fn send_finish(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        fingerprint: &str,
        answer: Option<(u16, &str)>,
    ) -> Result<(), ApiError> {
        self.call_within(
            "send_finish",
            self.write_bound(),
            self.inner.send_finish(tenant, key.as_str(), fingerprint, answer, SEND_IDEMPOTENCY_TTL),
        )
        .await
    }

    pub async fn pace_send(
        &self,
        tenant: &TenantId,
        unique_id: &str,
        pace: wgate_queue::Pace,
    ) -> Result<wgate_queue::PaceAnswer, ApiError> {
        self.call("pace", self.inner.pace_send(tenant, unique_id, pace)).await
    }
}

/// How long a send's `Idempotency-Key` keeps its answer.
pub const SEND_IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);
