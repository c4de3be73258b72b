//! One attempt of a session-create job: start it (counting the attempt), reconcile when an earlier attempt may
//! have created the session, call WhatsGate, and decide the outcome; or, for a job out of attempts that may have
//! created its session, a reconcile-only pass. The acknowledger writes the outcome.

use std::{panic::AssertUnwindSafe, sync::Arc, time::Duration};

use apalis_core::{error::BoxDynError, task::data::Data};
use futures::FutureExt;
use serde_json::Value;
use time::OffsetDateTime;
use tracing::Instrument;
use wgate_queue::{Delivery, Finished, Outcome, Started, Starter};
use wgate_types::{CallbackUrl, ErrorClass, JobError, JobKind, JobRecord};
use wgate_upstream::{SessionsQuery, Upstream, UpstreamError};

use crate::metrics::WorkerMetrics;

/// Exponential backoff with full jitter.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    /// The wait before attempt `n + 1` after attempt `n` failed: uniform in `[0, min(max, base * 2^(n-1))]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let cap = self.base.saturating_mul(1u32 << exp).min(self.max);
        let ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(if ms == 0 { 0 } else { rand::random_range(0..=ms) })
    }
}

/// What every attempt needs.
pub struct AttemptDeps {
    /// Starts attempts in batches (see `wgate_queue::Starter`).
    pub starter: Starter,
    pub upstream: Upstream,
    pub public_url: String,
    pub retry: RetryPolicy,
    pub metrics: WorkerMetrics,
}

impl AttemptDeps {
    fn relay_url(&self, job: &JobRecord) -> String {
        wgate_types::relay_url(&self.public_url, &job.hook_token)
    }
}

/// The apalis handler. A panic becomes an error: the entry is then taken over and the attempt counted.
pub async fn handle(delivery: Delivery, deps: Data<Arc<AttemptDeps>>) -> Result<Finished, BoxDynError> {
    let deps: Arc<AttemptDeps> = (*deps).clone();
    match AssertUnwindSafe(run(delivery, deps)).catch_unwind().await {
        Ok(r) => r,
        Err(_) => Err("the job handler panicked".into()),
    }
}

async fn run(d: Delivery, deps: Arc<AttemptDeps>) -> Result<Finished, BoxDynError> {
    let started = start(&deps.starter, &d).await?;
    let kind = JobKind::SessionCreate.as_str();
    let (record, mode) = match started {
        Started::Skip => return Ok(Finished::nothing(d)),
        Started::Dead(job) => {
            tracing::warn!(job.id = %job.id, tenant = %job.tenant.as_str(), error.name = ?job.error.as_ref().map(|e| &e.name),
                "job is dead: its last attempt or look-up never finished");
            deps.metrics.finished.with_label_values(&[kind, "dead"]).inc();
            observe_latency(&deps, &job);
            return Ok(Finished::nothing(d));
        }
        Started::Reconcile(record) => (record, Mode::ReconcileOnly),
        // An entry taken over mid-attempt has its `maybe_sent` set by its start; one taken over unstarted runs as new.
        Started::Run { record, reconcile: true } => (record, Mode::ReconcileFirst),
        Started::Run { record, .. } => (record, Mode::Create),
    };
    let span = tracing::info_span!("job", job.id = %record.id, tenant = %record.tenant.as_str(),
        attempt = record.attempts, reconcile_only = mode == Mode::ReconcileOnly,
        request.id = record.request_id.as_deref().unwrap_or(""));
    async move {
        deps.metrics.busy.inc();
        let t0 = std::time::Instant::now();
        let outcome = attempt(&deps, &record, mode).await;
        deps.metrics.busy.dec();
        let label = outcome.label();
        deps.metrics.attempt_duration.with_label_values(&[kind, label]).observe(t0.elapsed().as_secs_f64());
        deps.metrics.finished.with_label_values(&[kind, label]).inc();
        match &outcome {
            Outcome::Succeeded { unique_id, .. } => tracing::info!(session.unique_id = %unique_id, "job succeeded"),
            Outcome::Failed(e) => tracing::warn!(error.name = %e.name, error.message = %e.message, "job failed for good"),
            Outcome::Retry { error, due, .. } => {
                tracing::info!(error.name = %error.name, error.message = %error.message, next_attempt_at = %due, "attempt failed; will retry")
            }
            Outcome::Dead(e) => tracing::warn!(error.name = %e.name, error.message = %e.message, "job is dead: no attempt left"),
        }
        if !matches!(outcome, Outcome::Retry { .. }) {
            observe_latency(&deps, &record);
        }
        Ok(Finished::outcome(d, record, outcome))
    }
    .instrument(span)
    .await
}

fn observe_latency(deps: &AttemptDeps, job: &JobRecord) {
    let secs = (OffsetDateTime::now_utc() - job.created_at).as_seconds_f64().max(0.0);
    deps.metrics.latency.with_label_values(&[job.kind.as_str()]).observe(secs);
}

/// Starts the attempt, riding out a short Redis outage (the entry is taken over otherwise, much later).
async fn start(starter: &Starter, d: &Delivery) -> Result<Started, BoxDynError> {
    let mut backoff = Duration::from_millis(50);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match starter.start(d).await {
            Ok(s) => return Ok(s),
            Err(e) if e.is_unavailable() && std::time::Instant::now() + backoff < deadline => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            Err(e) => return Err(Box::new(e)),
        }
    }
}

/// What one run of a job does upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Create the session.
    Create,
    /// An earlier attempt may have created it: look for it first, create only when it is not there.
    ReconcileFirst,
    /// Out of attempts, and one may have created it: look for it and adopt it, or end dead. Never create.
    ReconcileOnly,
}

async fn attempt(deps: &AttemptDeps, job: &JobRecord, mode: Mode) -> Outcome {
    let relay = deps.relay_url(job);
    if mode != Mode::Create {
        match find_created(&deps.upstream, job, &relay).await {
            Ok(Some(session)) => {
                tracing::info!("adopting the session an earlier attempt created");
                return succeeded(deps, job, session);
            }
            Ok(None) if mode == Mode::ReconcileOnly => {
                tracing::info!("no session upstream: the attempts created none");
                return Outcome::Dead(job.error.clone().unwrap_or_else(|| JobError {
                    name: "AttemptsExhausted".into(),
                    message: "every attempt was used and WhatsGate holds no session for this job".into(),
                    class: ErrorClass::Unavailable,
                }));
            }
            Ok(None) => {}
            // A retry; out of attempts, the next start makes it a reconcile-only pass (bounded by the start script).
            Err(e) => return retry_or_dead(deps, job, &e, true),
        }
    }
    let callback = match CallbackUrl::parse(&relay) {
        Ok(c) => c,
        Err(why) => {
            return Outcome::Failed(JobError {
                name: "GatewayMisconfigured".into(),
                message: format!("the relay URL {relay} is not usable: {why}"),
                class: ErrorClass::Unavailable,
            });
        }
    };
    let request = job.request.for_upstream(callback);
    match deps.upstream.session_create(&request).await {
        Ok(data) => succeeded(deps, job, data),
        Err(e) if !e.is_retryable() => Outcome::Failed(job_error(&e)),
        Err(e) if e.maybe_sent() && job.attempts >= job.max_attempts => {
            // The last attempt, and the call may have created the session: look before giving up.
            match find_created(&deps.upstream, job, &relay).await {
                Ok(Some(session)) => {
                    tracing::info!("adopting the session the last attempt created before its answer was lost");
                    succeeded(deps, job, session)
                }
                Ok(None) => Outcome::Dead(job_error(&e)),
                // WhatsGate cannot be reached to look: reconcile-only passes follow (bounded by the start script).
                Err(lookup) => {
                    tracing::warn!(error = %lookup, "could not look for the session the last attempt may have created");
                    retry_or_dead(deps, job, &e, true)
                }
            }
        }
        Err(e) => retry_or_dead(deps, job, &e, e.maybe_sent()),
    }
}

fn succeeded(deps: &AttemptDeps, job: &JobRecord, data: Value) -> Outcome {
    let unique_id = match data.get("unique_id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            let e = UpstreamError::new(
                ErrorClass::Unavailable,
                "UnexpectedAnswer",
                "session-create answered without a unique_id",
                true,
            );
            return retry_or_dead(deps, job, &e, true);
        }
    };
    Outcome::Succeeded { response: data, unique_id }
}

fn job_error(e: &UpstreamError) -> JobError {
    JobError { name: e.name().to_owned(), message: e.message().to_owned(), class: e.class() }
}

/// A retryable failure: another attempt, or `dead` when none is left. A job out of attempts that may have reached
/// WhatsGate (and could not look for its session) is not buried here: it is scheduled like a retry, and its next
/// start runs a reconcile-only pass (look for the session, adopt it or end dead; bounded by the start script), so
/// no session wgate caused is left without an owner.
fn retry_or_dead(deps: &AttemptDeps, job: &JobRecord, e: &UpstreamError, maybe_sent: bool) -> Outcome {
    if job.attempts >= job.max_attempts && !maybe_sent {
        return Outcome::Dead(job_error(e));
    }
    let mut delay = deps.retry.delay(job.attempts);
    if let Some(ra) = e.retry_after() {
        delay = delay.max(ra);
    }
    Outcome::Retry { error: job_error(e), due: OffsetDateTime::now_utc() + delay, maybe_sent }
}

/// Looks upstream for the session an earlier attempt of this job created: same exact name, and the callback is
/// this job's relay URL (the marker only this job carries).
async fn find_created(upstream: &Upstream, job: &JobRecord, relay: &str) -> Result<Option<Value>, UpstreamError> {
    const PAGE: u32 = 100;
    let mut page = 1u32;
    loop {
        let q = SessionsQuery {
            name: Some(job.request.name().as_str().to_owned()),
            page_cnt: Some(PAGE),
            page: Some(page),
            ..SessionsQuery::default()
        };
        let result = upstream.sessions_get(&q).await?;
        if let Some(s) = result.data.into_iter().find(|s| s.get("callback").and_then(Value::as_str) == Some(relay)) {
            return Ok(Some(s));
        }
        if u64::from(page) >= result.pages || page >= 50 {
            return Ok(None);
        }
        page += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_within_its_exponential_cap() {
        let p = RetryPolicy { base: Duration::from_millis(100), max: Duration::from_millis(1000) };
        for _ in 0..200 {
            assert!(p.delay(1) <= Duration::from_millis(100));
            assert!(p.delay(3) <= Duration::from_millis(400));
            assert!(p.delay(10) <= Duration::from_millis(1000));
            assert!(p.delay(64) <= Duration::from_millis(1000));
        }
        let zero = RetryPolicy { base: Duration::ZERO, max: Duration::ZERO };
        assert_eq!(zero.delay(5), Duration::ZERO);
    }
}
