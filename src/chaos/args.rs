//! What `wgate chaos` takes on its command line.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, clap::Args)]
pub struct ChaosArgs {
    /// Jobs to accept through the API.
    #[arg(long, default_value_t = 1000)]
    pub jobs: usize,
    /// Worker SIGKILLs (each killed worker is replaced at once).
    #[arg(long, default_value_t = 3)]
    pub kills: usize,
    /// Worker processes running at any time.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Do not SIGKILL and restart redis-server mid-run.
    #[arg(long)]
    pub no_redis_restart: bool,
    /// How long redis-server stays down, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub redis_down_ms: u64,
    /// Seconds over which the jobs are submitted and the kills and the Redis restart happen.
    #[arg(long, default_value_t = 10.0)]
    pub window_secs: f64,
    /// Seconds to wait, after the window, for every accepted job to be terminal.
    #[arg(long, default_value_t = 120)]
    pub deadline_secs: u64,
    /// Share of session-create calls the simulator answers 500 without creating.
    #[arg(long, default_value_t = 0.1)]
    pub error_rate: f64,
    /// Share answered 429 `Retry-After: 1` without creating.
    #[arg(long, default_value_t = 0.05)]
    pub throttle_rate: f64,
    /// Share never answered (nothing created).
    #[arg(long, default_value_t = 0.05)]
    pub timeout_rate: f64,
    /// Share that create the session and then lose the answer.
    #[arg(long, default_value_t = 0.15)]
    pub ambiguous_rate: f64,
    /// The simulator's delay before each answer, in milliseconds (keeps jobs in flight when a worker is killed).
    #[arg(long, default_value_t = 50)]
    pub sim_latency_ms: u64,
    /// Seed of the simulator's fault generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Upstream attempts per job (`WGATE_MAX_ATTEMPTS`).
    #[arg(long, default_value_t = 8)]
    pub max_attempts: u32,
    /// Jobs in flight per worker process (`WGATE_WORKER_CONCURRENCY`).
    #[arg(long, default_value_t = 16)]
    pub worker_concurrency: usize,
    /// Per upstream call (`WGATE_UPSTREAM_TIMEOUT_MS`); a `timeout` fault costs this much.
    #[arg(long, default_value_t = 1000)]
    pub upstream_timeout_ms: u64,
    /// After this long a killed worker's jobs are taken over (`WGATE_VISIBILITY_TIMEOUT_MS`).
    #[arg(long, default_value_t = 2000)]
    pub visibility_timeout_ms: u64,
    /// WhatsGate webhook events to post to the gateway over the window, delivered to a flaky tenant endpoint
    /// (0: none).
    #[arg(long, default_value_t = 300)]
    pub events: usize,
    /// The tenant endpoint answers 200 to one request in this many, 503 to the others.
    #[arg(long, default_value_t = 3)]
    pub endpoint_ok_every: u32,
    /// The `wgate-worker` binary (default: next to this executable).
    #[arg(long, env = "WGATE_CHAOS_WORKER_BIN")]
    pub worker_bin: Option<PathBuf>,
    /// Show the workers' logs (JSON, on stdout).
    #[arg(long)]
    pub verbose: bool,
}

impl Default for ChaosArgs {
    fn default() -> Self {
        Self {
            jobs: 1000,
            kills: 3,
            workers: 2,
            no_redis_restart: false,
            redis_down_ms: 500,
            window_secs: 10.0,
            deadline_secs: 120,
            error_rate: 0.1,
            throttle_rate: 0.05,
            timeout_rate: 0.05,
            ambiguous_rate: 0.15,
            sim_latency_ms: 50,
            seed: 1,
            max_attempts: 8,
            worker_concurrency: 16,
            upstream_timeout_ms: 1000,
            visibility_timeout_ms: 2000,
            events: 300,
            endpoint_ok_every: 3,
            worker_bin: None,
            verbose: false,
        }
    }
}

/// This process's command line, for the "reproduce" line under the table.
pub fn command_line() -> String {
    let mut args = std::env::args();
    let first = args.next().map(|a| Path::new(&a).file_name().and_then(|f| f.to_str()).unwrap_or("wgate").to_owned());
    std::iter::once(first.unwrap_or_else(|| "wgate".into())).chain(args).collect::<Vec<_>>().join(" ")
}
