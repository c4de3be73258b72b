//! `wgate-worker`: runs session-create jobs from the Redis queue against WhatsGate, on apalis with our own
//! Redis Streams backend (`wgate_queue::StreamBackend`).
//!
//! Each attempt is counted when it starts; an attempt that may have reached WhatsGate (a lost answer, a timeout
//! after sending, a worker that died mid-call) makes the next one reconcile first: it looks upstream for a
//! session with the job's exact name whose callback is the job's relay URL, and adopts it instead of creating
//! another. Outcomes: `succeeded`, `failed` (permanent upstream refusal, never retried), a retry after an
//! exponential backoff with full jitter (a longer `Retry-After` honoured), or `dead` once every attempt is used;
//! a job whose attempts may have reached WhatsGate is looked for upstream before it ends dead (bounded
//! reconcile-only passes when WhatsGate cannot be reached), so no session it caused is left without an owner.
//!
//! Settings (environment, or the same keys in the `--config` TOML file); beside the documented `WGATE_REDIS_URL`,
//! `WGATE_NAMESPACE`, `WGATE_WORKER_ADMIN_LISTEN`, `WGATE_PUBLIC_URL`, `WGATE_UPSTREAM_URL`,
//! `WGATE_UPSTREAM_API_KEY` (required), `WGATE_UPSTREAM_TIMEOUT_MS`, `WGATE_WORKER_CONCURRENCY`,
//! `WGATE_MAX_ATTEMPTS`, `WGATE_RETRY_BASE_MS`, `WGATE_RETRY_MAX_MS`, `WGATE_LOG`, `WGATE_LOG_FORMAT`:
//! - `WGATE_JOB_TTL_SECS` (604800): how long terminal job records and dead-set entries are kept;
//! - `WGATE_REDIS_TIMEOUT_MS` (1000): bound on every Redis call;
//! - `WGATE_VISIBILITY_TIMEOUT_MS` (15000): a job whose worker stopped answering this long is taken over;
//! - `WGATE_SHUTDOWN_TIMEOUT_MS` (20000): how long SIGTERM waits for in-flight jobs;
//! - `WGATE_QUEUE_GAUGE_INTERVAL_MS` (2000): how often `wgate_queue_jobs` is read from Redis.
//!
//! It also delivers webhook events to tenants from the second queue ([`webhook`]): `WGATE_WEBHOOK_CONCURRENCY`,
//! `WGATE_WEBHOOK_ENDPOINT_CONCURRENCY`, `WGATE_WEBHOOK_TIMEOUT_MS`, `WGATE_WEBHOOK_RETRY_SCHEDULE`,
//! `WGATE_WEBHOOK_SIGNING_KEY`, `WGATE_TENANTS_FILE`, `WGATE_EGRESS_ALLOW_NETS`.
#![warn(unreachable_pub)]

pub mod job;
pub mod metrics;
mod settings;
mod startup;
pub mod webhook;

pub use settings::Settings;
pub use startup::Application;
