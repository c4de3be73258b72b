//! The worker's Prometheus metrics (names as listed in deploy/README.md).

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

#[derive(Clone)]
pub struct WorkerMetrics {
    pub finished: IntCounterVec,
    pub attempt_duration: HistogramVec,
    pub latency: HistogramVec,
    pub queue_jobs: IntGaugeVec,
    pub dead_letters: IntGaugeVec,
    pub busy: IntGauge,
    /// `wgate_webhook_deliveries_total{outcome}`: `delivered`, `retried`, `dead`, `refused` (the API counts
    /// `filtered`).
    pub webhook_deliveries: IntCounterVec,
    /// `wgate_webhook_delivery_duration_seconds`: one POST to a tenant's endpoint.
    pub webhook_duration: Histogram,
    /// `wgate_webhook_lag_seconds`: from the event's receipt to its delivery.
    pub webhook_lag: Histogram,
}

impl WorkerMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let finished = IntCounterVec::new(
            Opts::new("wgate_jobs_finished_total", "Job attempts finished, by outcome (retried counts each retry)."),
            &["type", "outcome"],
        )?;
        let attempt_duration = HistogramVec::new(
            HistogramOpts::new("wgate_job_attempt_duration_seconds", "Duration of one job attempt.").buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0,
            ]),
            &["type", "outcome"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("wgate_job_latency_seconds", "From accept to a terminal state.").buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
                1800.0, 3600.0, 7200.0, 14400.0,
            ]),
            &["type"],
        )?;
        let queue_jobs = IntGaugeVec::new(
            Opts::new("wgate_queue_jobs", "Jobs in the queue by state, read from Redis."),
            &["queue", "state"],
        )?;
        let dead_letters = IntGaugeVec::new(
            Opts::new(
                "wgate_queue_dead_letters",
                "Queue entries that could not be run, kept in the dead-letter list, read from Redis.",
            ),
            &["queue"],
        )?;
        let busy = IntGauge::new("wgate_worker_busy", "Jobs this worker is running now.")?;
        let webhook_deliveries = IntCounterVec::new(
            Opts::new("wgate_webhook_deliveries_total", "Webhook delivery attempts to tenants, by outcome."),
            &["outcome"],
        )?;
        for outcome in ["delivered", "retried", "dead", "refused"] {
            webhook_deliveries.with_label_values(&[outcome]);
        }
        let webhook_duration = Histogram::with_opts(
            HistogramOpts::new("wgate_webhook_delivery_duration_seconds", "One webhook POST to a tenant's endpoint.")
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0,
                ]),
        )?;
        let webhook_lag = Histogram::with_opts(
            HistogramOpts::new("wgate_webhook_lag_seconds", "From a webhook event's receipt to its delivery.").buckets(
                vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
                    1800.0, 7200.0, 36000.0, 86400.0, 259200.0,
                ],
            ),
        )?;
        registry.register(Box::new(webhook_deliveries.clone()))?;
        registry.register(Box::new(webhook_duration.clone()))?;
        registry.register(Box::new(webhook_lag.clone()))?;
        registry.register(Box::new(finished.clone()))?;
        registry.register(Box::new(attempt_duration.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(queue_jobs.clone()))?;
        registry.register(Box::new(dead_letters.clone()))?;
        registry.register(Box::new(busy.clone()))?;
        Ok(Self {
            finished,
            attempt_duration,
            latency,
            queue_jobs,
            dead_letters,
            busy,
            webhook_deliveries,
            webhook_duration,
            webhook_lag,
        })
    }
}
