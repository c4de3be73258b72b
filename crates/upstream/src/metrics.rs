//! `wgate_upstream_requests_total{command,status}` and `wgate_upstream_request_duration_seconds{command}`.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Upstream call metrics; register once per process and hand to [`crate::Upstream::with_metrics`].
#[derive(Clone)]
pub struct UpstreamMetrics {
    pub(crate) requests: IntCounterVec,
    pub(crate) duration: HistogramVec,
}

impl UpstreamMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                "wgate_upstream_requests_total",
                "WhatsGate calls by command and HTTP status (or transport error).",
            ),
            &["command", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new("wgate_upstream_request_duration_seconds", "WhatsGate call duration.").buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0,
            ]),
            &["command"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self { requests, duration })
    }
}
