//! The API's Prometheus metrics, registered in the process registry served on the admin listener.

use std::{collections::HashSet, sync::Mutex};

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

/// At most this many distinct tenant label values; later tenants are counted as `other`.
pub const MAX_TENANT_LABELS: usize = 1000;

const HTTP_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0];

pub struct ApiMetrics {
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub auth_failures: IntCounterVec,
    pub rate_limited: IntCounterVec,
    pub jobs_enqueued: IntCounterVec,
    pub sync_wait: Histogram,
    pub redis_errors: IntCounterVec,
    /// Messaging commands answered, by command and outcome.
    pub messages: IntCounterVec,
    /// Sends refused because their session's pace was reached.
    pub send_paced: IntCounter,
    /// `wgate_webhook_events_received_total{event}` (events stored; WhatsGate's repeats not counted).
    pub webhook_events_received: IntCounterVec,
    /// `wgate_webhook_deliveries_total{outcome}`; the API counts `filtered` (stored, not to be delivered).
    pub webhook_deliveries: IntCounterVec,
    tenants: Mutex<HashSet<String>>,
}

/// The `method` label: one of HTTP's standard methods, else `other`, so a client inventing methods makes no new
/// series.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

impl ApiMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let http_requests = IntCounterVec::new(
            Opts::new("wgate_http_requests_total", "HTTP requests answered, by route pattern, method and status."),
            &["route", "method", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new("wgate_http_request_duration_seconds", "Time to answer an HTTP request, by route.")
                .buckets(HTTP_BUCKETS.to_vec()),
            &["route", "method"],
        )?;
        let auth_failures = IntCounterVec::new(
            Opts::new("wgate_auth_failures_total", "Requests refused by authentication or scope, by reason."),
            &["reason"],
        )?;
        let rate_limited = IntCounterVec::new(
            Opts::new("wgate_rate_limited_total", "Requests refused with 429, by tenant (bounded; then `other`)."),
            &["tenant"],
        )?;
        let jobs_enqueued = IntCounterVec::new(
            Opts::new("wgate_jobs_enqueued_total", "Jobs stored and queued, by tenant (bounded) and job type."),
            &["tenant", "type"],
        )?;
        let sync_wait = Histogram::with_opts(
            HistogramOpts::new(
                "wgate_sync_wait_seconds",
                "Time a synchronous session-create waited for its job (finished or not).",
            )
            .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0]),
        )?;
        let redis_errors = IntCounterVec::new(
            Opts::new("wgate_redis_errors_total", "Redis calls that failed or timed out, by operation."),
            &["op"],
        )?;
        // Known operations start at 0, so the series exist before the first failure.
        for op in ["ping", "enqueue", "get", "replay", "hook", "rate_limit"] {
            redis_errors.with_label_values(&[op]);
        }
        let messages = IntCounterVec::new(
            Opts::new(
                "wgate_messages_total",
                "Messaging commands answered, by command and outcome (ok, replayed, invalid, denied, paced, \
                 rejected, failed).",
            ),
            &["command", "outcome"],
        )?;
        let send_paced = IntCounter::new(
            "wgate_send_paced_total",
            "Sends refused with 429 because their session's pace (per minute, least interval) was reached.",
        )?;
        registry.register(Box::new(messages.clone()))?;
        registry.register(Box::new(send_paced.clone()))?;
        let (webhook_events_received, webhook_deliveries) = webhook_counters(registry)?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(auth_failures.clone()))?;
        registry.register(Box::new(rate_limited.clone()))?;
        registry.register(Box::new(jobs_enqueued.clone()))?;
        registry.register(Box::new(sync_wait.clone()))?;
        registry.register(Box::new(redis_errors.clone()))?;
        Ok(Self {
            http_requests,
            http_duration,
            auth_failures,
            rate_limited,
            jobs_enqueued,
            sync_wait,
            redis_errors,
            messages,
            send_paced,
            webhook_events_received,
            webhook_deliveries,
            tenants: Mutex::new(HashSet::new()),
        })
    }

    /// The label value for a tenant: itself while fewer than `MAX_TENANT_LABELS` tenants have been seen.
    pub fn tenant_label(&self, tenant: &str) -> String {
        let mut seen = match self.tenants.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        if seen.contains(tenant) {
            return tenant.to_owned();
        }
        if seen.len() < MAX_TENANT_LABELS {
            seen.insert(tenant.to_owned());
            return tenant.to_owned();
        }
        "other".to_owned()
    }
}

/// The webhook counters the API shares with the worker's names (each process registers its own).
fn webhook_counters(registry: &Registry) -> prometheus::Result<(IntCounterVec, IntCounterVec)> {
    let received = IntCounterVec::new(
        Opts::new("wgate_webhook_events_received_total", "WhatsGate webhook events stored, by event action."),
        &["event"],
    )?;
    for e in wgate_webhooks::KNOWN_EVENTS.iter().chain(&["other"]) {
        received.with_label_values(&[e]);
    }
    let deliveries = IntCounterVec::new(
        Opts::new("wgate_webhook_deliveries_total", "Webhook deliveries to tenants, by outcome."),
        &["outcome"],
    )?;
    deliveries.with_label_values(&["filtered"]);
    registry.register(Box::new(received.clone()))?;
    registry.register(Box::new(deliveries.clone()))?;
    Ok((received, deliveries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_method_label_is_a_standard_method_or_other() {
        use actix_web::http::Method;
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(method_label(&Method::from_bytes(b"M123").unwrap()), "other");
        assert_eq!(method_label(&Method::from_bytes(b"get").unwrap()), "other");
    }

    #[test]
    fn the_tenant_label_is_bounded() {
        let m = ApiMetrics::register(&Registry::new()).unwrap();
        for i in 0..MAX_TENANT_LABELS {
            assert_eq!(m.tenant_label(&format!("t{i}")), format!("t{i}"));
        }
        assert_eq!(m.tenant_label("one-too-many"), "other");
        assert_eq!(m.tenant_label("t5"), "t5");
    }
}
