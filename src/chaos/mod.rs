//! `wgate chaos`: the delivery guarantees under faults, checked end to end with the real binaries.
//!
//! A private redis-server with the append-only file (`appendfsync always`), the simulator with seeded faults on
//! session-create, the API in this process and real `wgate-worker` processes. Jobs are accepted through the API
//! (`Prefer: respond-async`, one distinct session name and `Idempotency-Key` each) over a window in which workers
//! are SIGKILLed (each replaced at once) and redis-server is SIGKILLed and started again on its port and data.
//! Then every accepted job must become terminal, none may be missing, no job may have made more than one
//! upstream session (the simulator counts sessions per name), and every session upstream must be owned by exactly
//! one succeeded job (an orphan is a paid WhatsGate slot nobody can see or delete). Meanwhile WhatsGate's webhook
//! events are posted to the gateway and delivered to a tenant endpoint that fails most requests: every event the
//! gateway acknowledged must reach it, each under one `webhook-id`. The verdict is a table; any violation is an
//! error.

mod args;
mod client;
mod hooks;
mod report;
mod scenario;
mod worker;

pub use args::{ChaosArgs, command_line};
pub use report::Report;
pub use scenario::run;
pub use worker::worker_bin;

const SIM_KEY: &str = "chaos-upstream-key";
const SECRET: &str = "chaos-secret";
const TENANT: &str = "chaos";
/// Backoff of the workers: short, so a run is quick, and still exponential with jitter.
const RETRY_BASE_MS: u64 = 50;
const RETRY_MAX_MS: u64 = 1000;
