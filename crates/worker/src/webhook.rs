//! One delivery attempt of a stored webhook event to its tenant: start it (counting the attempt), find the
//! endpoint (the session's callback, else the tenant's `webhook_url`), sign the unchanged body with every active
//! secret (Standard Webhooks), POST it through the egress guard, and write the outcome: delivered, a retry on the
//! schedule (a longer `Retry-After` wins), or dead (out of attempts, 410 Gone, refused by the egress guard).
//!
//! A waiting retry sits in the webhook queue's scheduled set and holds no slot. One tenant's endpoint never holds
//! more than `WGATE_WEBHOOK_ENDPOINT_CONCURRENCY` of this process's slots: a delivery to an endpoint already at its
//! bound is given back at once (not counted as an attempt) and comes round again shortly, so a hanging endpoint
//! slows only its own deliveries.

use std::{
    collections::HashMap,
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex},
    time::Duration,
};

use apalis_core::{error::BoxDynError, task::data::Data};
use futures::FutureExt;
use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;
use wgate_egress::{EgressClient, EgressError};
use wgate_queue::{
    Delivery, DeliveryBatcher, DeliveryFinish, DeliveryOutcome, DeliveryRecord, DeliveryStart, Finished, HookState,
    JobStore, QueueError, now_ms,
};
use wgate_service::tenants::TenantTable;
use wgate_webhooks::{RetrySchedule, SigningKey};

use crate::metrics::WorkerMetrics;

/// Longest part of an endpoint's answer that is read (and dropped) so its connection can be reused.
const ANSWER_READ_MAX: usize = 64 * 1024;
/// A delivery to an endpoint at its bound comes round again after this (plus up to as much at random).
const DEFER: Duration = Duration::from_millis(250);

/// Bounds concurrent deliveries per tenant endpoint in this process.
pub struct EndpointSlots {
    limit: usize,
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl EndpointSlots {
    pub fn new(limit: usize) -> Self {
        Self { limit: limit.max(1), slots: Mutex::new(HashMap::new()) }
    }

    /// A slot for `key`, or `None` when the endpoint already has `limit` deliveries in flight.
    fn try_take(&self, key: &str) -> Option<OwnedSemaphorePermit> {
        let mut slots = self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if slots.len() > 10_000 {
            let limit = self.limit;
            slots.retain(|_, s| s.available_permits() < limit);
        }
        let sem = slots.entry(key.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(self.limit))).clone();
        sem.try_acquire_owned().ok()
    }
}

/// What every delivery needs.
pub struct DeliveryDeps {
    /// The store on the webhook queue.
    pub store: JobStore,
    /// Starts and finishes attempts in batches.
    pub batcher: DeliveryBatcher,
    pub client: EgressClient,
    pub tenants: TenantTable,
    pub signing_key: SigningKey,
    pub schedule: RetrySchedule,
    pub timeout: Duration,
    pub endpoints: EndpointSlots,
    pub metrics: WorkerMetrics,
}

/// The apalis handler of the webhook queue. It writes its own outcome; the acknowledger only frees the slot.
pub async fn handle(delivery: Delivery, deps: Data<Arc<DeliveryDeps>>) -> Result<Finished, BoxDynError> {
    let deps: Arc<DeliveryDeps> = (*deps).clone();
    match AssertUnwindSafe(run(delivery, deps)).catch_unwind().await {
        Ok(r) => r,
        Err(_) => Err("the delivery handler panicked".into()),
    }
}

/// Retries a Redis call through a short outage (the entry is taken over otherwise, much later).
async fn with_redis<T, F, Fut>(what: &str, f: F) -> Result<T, BoxDynError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, QueueError>>,
{
    let mut backoff = Duration::from_millis(50);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_unavailable() && std::time::Instant::now() + backoff < deadline => {
                tracing::debug!(error = %e, "{what}: redis unavailable; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            Err(e) => return Err(Box::new(e)),
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

async fn run(d: Delivery, deps: Arc<DeliveryDeps>) -> Result<Finished, BoxDynError> {
    let started = with_redis("starting a delivery", || deps.batcher.start_delivery(&d)).await?;
    let (record, hook) = match started {
        DeliveryStart::Run { record, hook } => (record, hook),
        DeliveryStart::Dead => {
            tracing::warn!(delivery.id = %d.job_id, "webhook delivery is dead: its last attempt never finished");
            deps.metrics.webhook_deliveries.with_label_values(&["dead"]).inc();
            return Ok(Finished::nothing(d));
        }
        DeliveryStart::Skip => return Ok(Finished::nothing(d)),
    };
    let span = tracing::info_span!("webhook", delivery.id = %record.id, tenant = %record.tenant.as_str(),
        attempt = record.attempts, event = %record.event);
    async move {
        let outcome = attempt(&deps, &record, &hook).await;
        let (label, lag) = match &outcome {
            DeliveryOutcome::Delivered { .. } => ("delivered", true),
            DeliveryOutcome::Retry { .. } => ("retried", false),
            DeliveryOutcome::Defer { .. } => ("", false),
            DeliveryOutcome::Dead { error, .. } if error.starts_with(REFUSED) => ("refused", false),
            DeliveryOutcome::Dead { .. } => ("dead", false),
        };
        match &outcome {
            DeliveryOutcome::Retry { error, due_ms, .. } => {
                tracing::info!(error = %error, next_in_ms = due_ms - now_ms(), "webhook delivery failed; will retry")
            }
            DeliveryOutcome::Dead { error, .. } => tracing::warn!(error = %error, "webhook delivery is dead"),
            _ => {}
        }
        if !label.is_empty() {
            deps.metrics.webhook_deliveries.with_label_values(&[label]).inc();
        }
        if lag {
            let secs = (now_ms() - record.received_ms).max(0) as f64 / 1000.0;
            deps.metrics.webhook_lag.observe(secs);
        }
        let finish = DeliveryFinish { delivery: &d, hook_token: &record.hook_token, attempt: record.attempts, outcome };
        match with_redis("finishing a delivery", || deps.store.finish_deliveries(std::slice::from_ref(&finish))).await {
            Ok(_) => Ok(Finished::nothing(d.clone())),
            // Left un-acked: taken over after the visibility timeout, and tried again (the same webhook-id).
            Err(e) => Err(e),
        }
    }
    .instrument(span)
    .await
}

/// The first words of the error of a delivery the egress guard refused (counted as `refused`).
const REFUSED: &str = "refused by the egress guard";

async fn attempt(deps: &DeliveryDeps, record: &DeliveryRecord, hook: &HookState) -> DeliveryOutcome {
    let tenants = deps.tenants.current();
    let settings = tenants.get(&record.tenant);
    let url = match hook
        .callback
        .clone()
        .or_else(|| settings.and_then(|s| s.webhook_url.as_ref()).map(|u| u.as_str().to_owned()))
    {
        Some(url) => url,
        None => {
            return DeliveryOutcome::Dead {
                error: "the session has no callback and the tenant no webhook_url".into(),
                status: None,
                gone: None,
            };
        }
    };
    if hook.gone.as_deref() == Some(url.as_str()) {
        return DeliveryOutcome::Dead {
            error: "this endpoint answered 410 Gone; deliveries resume once a callback is set again (set-hook)".into(),
            status: Some(410),
            gone: None,
        };
    }
    let origin = url::Url::parse(&url).map(|u| u.origin().ascii_serialization()).unwrap_or_else(|_| url.clone());
    let Some(_slot) = deps.endpoints.try_take(&format!("{}|{origin}", record.tenant.as_str())) else {
        let jitter = DEFER.mul_f64(rand::random::<f64>());
        return DeliveryOutcome::Defer { due_ms: now_ms() + ms(DEFER + jitter) };
    };
    let secrets = match deps
        .signing_key
        .secrets(&record.tenant, settings.and_then(|s| s.webhook_secret.as_ref()), || deps.store.webhook_signing_key())
        .await
    {
        Ok(s) => s,
        Err(e) => return retry(deps, record, format!("the signing key could not be read from redis: {e}"), None, None),
    };
    let id = record.id.to_string();
    let timestamp = OffsetDateTime::now_utc().unix_timestamp();
    let signature = wgate_webhooks::signature_header(&secrets, &id, timestamp, record.body.as_bytes());
    let request = match deps.client.post(&url) {
        Ok(r) => r,
        Err(EgressError::Refused(r)) => return refused(format!("{REFUSED}: {}", r.rule)),
        Err(EgressError::Gateway(_)) => return refused(format!("{REFUSED}: the endpoint is the gateway itself")),
        Err(EgressError::BadUrl) => {
            return DeliveryOutcome::Dead {
                error: "the endpoint is not a usable URL".into(),
                status: None,
                gone: None,
            };
        }
    };
    let mut request = request
        .timeout(deps.timeout)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .header("user-agent", concat!("wgate-webhooks/", env!("CARGO_PKG_VERSION")));
    if let Some(job) = record.job {
        request = request.header("x-job-id", job.to_string());
    }
    let t0 = std::time::Instant::now();
    let sent = request.body(record.body.clone()).send().await;
    deps.metrics.webhook_duration.observe(t0.elapsed().as_secs_f64());
    match sent {
        Ok(mut answer) => {
            let status = answer.status();
            let retry_after = answer
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| wgate_types::retry_after(v, std::time::SystemTime::now()));
            // Read (a bounded part of) the answer so the connection can serve the next delivery.
            let mut read = 0;
            while read < ANSWER_READ_MAX {
                match tokio::time::timeout(Duration::from_secs(1), answer.chunk()).await {
                    Ok(Ok(Some(chunk))) => read += chunk.len(),
                    _ => break,
                }
            }
            if status.is_success() {
                DeliveryOutcome::Delivered { status: status.as_u16() }
            } else if status == reqwest::StatusCode::GONE {
                DeliveryOutcome::Dead {
                    error: "the endpoint answered 410 Gone: no more deliveries to it until a callback is set again"
                        .into(),
                    status: Some(410),
                    gone: Some(url),
                }
            } else {
                retry(deps, record, format!("the endpoint answered {status}"), Some(status.as_u16()), retry_after)
            }
        }
        Err(e) => match wgate_egress::refused_by_policy(&e) {
            Some(r) => refused(format!("{REFUSED}: {}", r.rule)),
            None if e.is_timeout() => {
                retry(deps, record, format!("no answer within {} ms", deps.timeout.as_millis()), None, None)
            }
            None => retry(
                deps,
                record,
                format!("the endpoint could not be reached: {}", wgate_egress::describe(e)),
                None,
                None,
            ),
        },
    }
}

fn refused(error: String) -> DeliveryOutcome {
    DeliveryOutcome::Dead { error, status: None, gone: None }
}

fn retry(
    deps: &DeliveryDeps,
    record: &DeliveryRecord,
    error: String,
    status: Option<u16>,
    retry_after: Option<Duration>,
) -> DeliveryOutcome {
    match deps.schedule.after(record.attempts, retry_after) {
        Some(wait) => DeliveryOutcome::Retry { due_ms: now_ms() + ms(wait), error, status },
        None => DeliveryOutcome::Dead { error: format!("{error}; no attempt left"), status, gone: None },
    }
}
