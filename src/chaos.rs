//! `wgate chaos`: the delivery guarantees under faults, checked end to end with the real binaries.
//!
//! A private redis-server with the append-only file (`appendfsync always`), the simulator with seeded faults on
//! session-create, the API in this process and real `wgate-worker` processes. Jobs are accepted through the API
//! (`Prefer: respond-async`, one distinct session name and `Idempotency-Key` each) over a window in which workers
//! are SIGKILLed (each replaced at once) and redis-server is SIGKILLed and started again on its port and data.
//! Then every accepted job must become terminal, none may be missing, no job may have made more than one
//! upstream session (the simulator counts sessions per name), and every session upstream must be owned by exactly
//! one succeeded job (an orphan is a paid WhatsGate slot nobody can see or delete). The verdict is a table; any
//! violation is an error.

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::{sync::Semaphore, task::JoinSet};
use wgate_queue::{JobStore, QueueConfig};
use wgate_testkit::{RedisServer, RedisServerOptions};

use crate::token::{self, TokenRequest};

const SIM_KEY: &str = "chaos-upstream-key";
const SECRET: &str = "chaos-secret";
const TENANT: &str = "chaos";
/// Backoff of the workers: short, so a run is quick, and still exponential with jitter.
const RETRY_BASE_MS: u64 = 50;
const RETRY_MAX_MS: u64 = 1000;

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
            worker_bin: None,
            verbose: false,
        }
    }
}

/// What a run did and found. `violations()` is empty when every guarantee held.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub jobs: usize,
    pub accepted: usize,
    /// Submissions never accepted (retried with the same `Idempotency-Key` until the window's end plus 15 s).
    pub refused: usize,
    /// Answers other than an accepted job that made a submission try again (503 while Redis was down, ...).
    pub submit_retries: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub dead: usize,
    /// Accepted, but at the deadline still not terminal.
    pub non_terminal: usize,
    /// Accepted, but the API no longer knows the job (404).
    pub missing: usize,
    pub accepted_before_redis_restart: usize,
    pub lost_of_those: usize,
    pub max_sessions_per_job: u64,
    pub jobs_with_more_than_one_session: usize,
    pub succeeded_without_session: usize,
    /// Sessions upstream that no succeeded job owns (its answer's `unique_id`): created by wgate, owned by nobody.
    pub orphaned_sessions: usize,
    /// Sessions upstream that more than one succeeded job claims.
    pub sessions_owned_twice: usize,
    /// Sessions upstream under names whose submission was never accepted.
    pub sessions_of_refused: u64,
    pub create_calls: u64,
    pub sessions_created: u64,
    pub worker_kills: usize,
    /// Jobs the killed workers had in flight at the moment of each kill (`wgate_worker_busy`).
    pub in_flight_at_kills: u64,
    pub worker_processes: usize,
    /// Workers that exited without being killed.
    pub workers_died: usize,
    pub redis_restarts: usize,
    /// Stream entries and retries still queued or running once every job was terminal (`None`: not read).
    pub left_in_queue: Option<u64>,
    pub elapsed: Duration,
}

impl Report {
    /// Jobs accepted and not terminal, or gone.
    pub fn lost(&self) -> usize {
        self.non_terminal + self.missing
    }

    pub fn violations(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.lost() > 0 {
            v.push(format!(
                "{} accepted jobs lost ({} not terminal, {} missing)",
                self.lost(),
                self.non_terminal,
                self.missing
            ));
        }
        if self.jobs_with_more_than_one_session > 0 {
            v.push(format!(
                "{} jobs made more than one upstream session (at most {})",
                self.jobs_with_more_than_one_session, self.max_sessions_per_job
            ));
        }
        if self.orphaned_sessions > 0 {
            v.push(format!("{} upstream sessions are owned by no job (orphans)", self.orphaned_sessions));
        }
        if self.sessions_owned_twice > 0 {
            v.push(format!("{} upstream sessions are owned by more than one job", self.sessions_owned_twice));
        }
        if self.succeeded_without_session > 0 {
            v.push(format!("{} jobs succeeded without an upstream session", self.succeeded_without_session));
        }
        if self.refused > 0 {
            v.push(format!("{} submissions were never accepted", self.refused));
        }
        if self.workers_died > 0 {
            v.push(format!("{} worker processes exited on their own", self.workers_died));
        }
        match self.left_in_queue {
            Some(0) => {}
            Some(n) => v.push(format!("{n} entries left queued or running after every job was terminal")),
            None if self.lost() == 0 => v.push("the queue's counts could not be read at the end".to_owned()),
            None => {}
        }
        v
    }

    /// A markdown table of the counts, then what was checked.
    pub fn to_markdown(&self, args: &ChaosArgs) -> String {
        let rows: Vec<(&str, String)> = vec![
            ("jobs submitted", self.jobs.to_string()),
            ("accepted (202 with a job id)", self.accepted.to_string()),
            ("never accepted", self.refused.to_string()),
            ("submission retries (503 while Redis was down, ...)", self.submit_retries.to_string()),
            ("succeeded", self.succeeded.to_string()),
            ("failed", self.failed.to_string()),
            ("dead (attempts used up)", self.dead.to_string()),
            ("**lost** (accepted, then missing or not terminal)", format!("**{}**", self.lost())),
            (
                "accepted before the Redis restart / lost of those",
                format!("{} / {}", self.accepted_before_redis_restart, self.lost_of_those),
            ),
            ("**upstream sessions per job, max**", format!("**{}**", self.max_sessions_per_job)),
            ("jobs with more than one session", self.jobs_with_more_than_one_session.to_string()),
            ("succeeded without a session", self.succeeded_without_session.to_string()),
            ("**orphaned upstream sessions** (no job owns them)", format!("**{}**", self.orphaned_sessions)),
            ("upstream sessions owned by more than one job", self.sessions_owned_twice.to_string()),
            ("sessions under never-accepted names", self.sessions_of_refused.to_string()),
            ("simulator create calls / sessions created", format!("{} / {}", self.create_calls, self.sessions_created)),
            (
                "worker SIGKILLs (jobs in flight in the killed workers)",
                format!("{} ({})", self.worker_kills, self.in_flight_at_kills),
            ),
            (
                "worker processes started / exited on their own",
                format!("{} / {}", self.worker_processes, self.workers_died),
            ),
            ("redis-server SIGKILL + restart (AOF)", self.redis_restarts.to_string()),
            (
                "queue entries left after the end",
                self.left_in_queue.map_or_else(|| "not read".to_owned(), |n| n.to_string()),
            ),
            ("wall time", format!("{:.1} s", self.elapsed.as_secs_f64())),
        ];
        let mut out = String::from("| measure | count |\n| --- | --- |\n");
        for (k, v) in rows {
            out.push_str(&format!("| {k} | {v} |\n"));
        }
        out.push_str(&format!(
            "\nFaults on session-create: error {}, throttle {}, timeout {}, ambiguous {} (seed {}), simulator \
             latency {} ms; {} worker processes x concurrency {}, max attempts {}, upstream timeout {} ms, visibility timeout {} ms.\n",
            args.error_rate,
            args.throttle_rate,
            args.timeout_rate,
            args.ambiguous_rate,
            args.seed,
            args.sim_latency_ms,
            args.workers,
            args.worker_concurrency,
            args.max_attempts,
            args.upstream_timeout_ms,
            args.visibility_timeout_ms,
        ));
        out.push_str(
            "Verified: every job the API acknowledged (202 + X-Job-Id) is terminal (succeeded, failed or dead) and \
             readable through GET /api/v1/jobs/{id}; the simulator holds at most one session per job name (every \
             job has its own name) and one for each succeeded job; every session in the simulator is the \
             `unique_id` of exactly one succeeded job (no orphan); no stream entry or retry is left; no worker died \
             unasked. redis-server runs with appendfsync always, so its restart keeps every write it acknowledged: \
             this run checks that the gateway acknowledges nothing Redis has not stored and recovers from the \
             restart (reconnects, takes over the killed workers' jobs), not a Redis that loses acknowledged \
             writes.\n",
        );
        out
    }
}

/// A real `wgate-worker` process.
struct WorkerProcess {
    child: Child,
    admin: SocketAddr,
}

impl WorkerProcess {
    async fn start(bin: &Path, env: &[(String, String)], verbose: bool) -> anyhow::Result<Self> {
        let admin = SocketAddr::from(([127, 0, 0, 1], wgate_testkit::free_port()));
        let child = Command::new(bin)
            .env_remove("WGATE_CONFIG")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("WGATE_WORKER_ADMIN_LISTEN", admin.to_string())
            .stdin(Stdio::null())
            .stdout(if verbose { Stdio::inherit() } else { Stdio::null() })
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut p = Self { child, admin };
        let http = wgate_testkit::http_client();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = p.child.try_wait()? {
                bail!("the worker exited at start with {status}");
            }
            if http.get(format!("http://{admin}/healthz")).send().await.is_ok() {
                return Ok(p);
            }
            if Instant::now() > deadline {
                bail!("the worker did not answer /healthz on {admin} within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Jobs it has in flight right now, from its metrics (0 when it cannot say).
    async fn busy(&self, http: &reqwest::Client) -> u64 {
        let Ok(r) = http.get(format!("http://{}/metrics", self.admin)).send().await else { return 0 };
        let text = r.text().await.unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("wgate_worker_busy "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    }

    fn sigkill(&mut self) {
        // `Child::kill` is SIGKILL on Unix: no shutdown code runs.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.sigkill();
    }
}

/// The worker binary: the flag, else the one next to this executable.
pub fn worker_bin(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match flag {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe().context("locating this executable")?.with_file_name("wgate-worker"),
    };
    if !path.is_file() {
        bail!(
            "the worker binary {} is missing: build it with `cargo build --release --workspace --bins` (or pass --worker-bin)",
            path.display()
        );
    }
    Ok(path)
}

enum Submitted {
    Accepted { name: String, id: String, at: Instant },
    Refused { name: String, last: String },
}

/// Submits one job until the API takes it; retries reuse the `Idempotency-Key`, so a lost answer cannot make
/// a second job.
async fn submit(
    http: reqwest::Client,
    url: String,
    token: String,
    name: String,
    give_up: Instant,
) -> (Submitted, usize) {
    let mut retries = 0;
    let mut last = String::new();
    while Instant::now() < give_up {
        let sent = http
            .post(&url)
            .bearer_auth(&token)
            .header("Prefer", "respond-async")
            .header("Idempotency-Key", format!("key-{name}"))
            .json(&json!({"name": name}))
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match sent {
            Ok(r) => {
                let status = r.status().as_u16();
                let id = r.headers().get("x-job-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
                match (status, id) {
                    (200 | 202 | 422 | 502 | 504, Some(id)) => {
                        return (Submitted::Accepted { name, id, at: Instant::now() }, retries);
                    }
                    (400 | 401 | 403 | 404 | 409 | 413 | 415, _) => {
                        let body = r.text().await.unwrap_or_default();
                        return (Submitted::Refused { name, last: format!("{status} {body}") }, retries);
                    }
                    _ => last = format!("{status}"),
                }
            }
            Err(e) => last = format!("{e}"),
        }
        retries += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (Submitted::Refused { name, last }, retries)
}

/// The job's status as its tenant sees it: `Some("succeeded")`, ..., `Some("missing")` for a 404, `None` when the
/// API could not say (it is asked again); with the `unique_id` of its session when it has one.
async fn job_status(http: &reqwest::Client, api: &str, token: &str, id: &str) -> Option<(String, Option<String>)> {
    let r = http.get(format!("{api}/api/v1/jobs/{id}")).bearer_auth(token).send().await.ok()?;
    match r.status().as_u16() {
        200 => {
            let v: Value = r.json().await.ok()?;
            let status = v["data"]["status"].as_str()?.to_owned();
            Some((status, unique_id(&v["data"]["response"]["unique_id"])))
        }
        404 => Some(("missing".to_owned(), None)),
        _ => None,
    }
}

/// A `unique_id` as WhatsGate writes it (a string, or a number).
fn unique_id(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Every session the simulator holds, by `unique_id`, paging through `sessions-get`.
async fn upstream_sessions(http: &reqwest::Client, sim: &str) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut page = 1u64;
    loop {
        let r: Value = http
            .post(format!("{sim}/api/v1/sessions-get"))
            .header("X-Api-Key", SIM_KEY)
            .json(&json!({"page_cnt": 100, "page": page}))
            .send()
            .await
            .context("listing the simulator's sessions")?
            .json()
            .await
            .context("the simulator's sessions")?;
        let data = r["data"].as_array().with_context(|| format!("sessions-get answered {r}"))?;
        ids.extend(data.iter().filter_map(|s| unique_id(&s["unique_id"])));
        if page >= r["pages"].as_u64().unwrap_or(0) {
            return Ok(ids);
        }
        page += 1;
    }
}

fn is_terminal(status: &str) -> bool {
    matches!(status, "succeeded" | "failed" | "dead")
}

/// Runs the whole scenario and returns what it found; the caller decides what a violation means.
pub async fn run(args: &ChaosArgs) -> anyhow::Result<Report> {
    anyhow::ensure!(args.workers >= 1, "--workers must be at least 1");
    anyhow::ensure!(args.window_secs > 0.0, "--window-secs must be positive");
    let bin = worker_bin(args.worker_bin.as_deref())?;
    wgate_service::init_crypto();
    let started = Instant::now();
    let http = wgate_testkit::http_client();

    let mut redis = RedisServer::try_start_with(RedisServerOptions { appendonly: true })
        .await
        .context("starting redis-server (install it with `sudo apt-get install -y redis-server`)")?;
    let namespace = "chaos".to_owned();

    let sim = wgate_upstream_sim::Application::build(wgate_upstream_sim::SimConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        api_keys: vec![SIM_KEY.to_owned()],
        error_rate: args.error_rate,
        throttle_rate: args.throttle_rate,
        timeout_rate: args.timeout_rate,
        ambiguous_rate: args.ambiguous_rate,
        latency_ms: args.sim_latency_ms,
        seed: Some(args.seed),
        workers: Some(1),
        ..Default::default()
    })
    .await
    .context("starting the simulator")?;
    let sim_url = sim.base_url();
    let sim_task = AbortOnDrop(tokio::spawn(async move {
        let _ = sim.run_until_stopped().await;
    }));

    let mut api_settings = wgate_api_proxy::ApiSettings::for_tests(&redis.url(), &namespace, SECRET);
    api_settings.max_attempts = args.max_attempts;
    // The limiter is not under test here.
    api_settings.rate_per_second = 1_000_000.0;
    api_settings.rate_burst = 1_000_000;
    api_settings.upstream_url = sim_url.clone();
    api_settings.upstream_api_key = Some(SIM_KEY.to_owned().into());
    let api = wgate_api_proxy::Application::build(api_settings).await.context("starting the API")?;
    let api_url = format!("http://{}", api.address());
    let api_task = AbortOnDrop(tokio::spawn(async move {
        let _ = api.run_until_stopped().await;
    }));

    let env: Vec<(String, String)> = [
        ("WGATE_REDIS_URL", redis.url()),
        ("WGATE_NAMESPACE", namespace.clone()),
        ("WGATE_PUBLIC_URL", api_url.clone()),
        ("WGATE_UPSTREAM_URL", sim_url.clone()),
        ("WGATE_UPSTREAM_API_KEY", SIM_KEY.to_owned()),
        ("WGATE_UPSTREAM_TIMEOUT_MS", args.upstream_timeout_ms.to_string()),
        ("WGATE_WORKER_CONCURRENCY", args.worker_concurrency.to_string()),
        ("WGATE_MAX_ATTEMPTS", args.max_attempts.to_string()),
        ("WGATE_RETRY_BASE_MS", RETRY_BASE_MS.to_string()),
        ("WGATE_RETRY_MAX_MS", RETRY_MAX_MS.to_string()),
        ("WGATE_VISIBILITY_TIMEOUT_MS", args.visibility_timeout_ms.to_string()),
        ("WGATE_LOG", if args.verbose { "info" } else { "error" }.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();

    let mut report = Report { jobs: args.jobs, ..Report::default() };
    let mut workers = Vec::with_capacity(args.workers);
    for _ in 0..args.workers {
        workers.push(WorkerProcess::start(&bin, &env, args.verbose).await?);
        report.worker_processes += 1;
    }

    let token = token::mint(SECRET.as_bytes(), &TokenRequest::day_pass(TENANT), token::now_secs())?;

    // Submissions, spread evenly over the window, at most 64 in flight.
    let window = Duration::from_secs_f64(args.window_secs);
    let t0 = tokio::time::Instant::now();
    let give_up = Instant::now() + window + Duration::from_secs(15);
    let create_url = format!("{api_url}/api/v1/session-create");
    let submitter = {
        let (http, token, jobs, seed) = (http.clone(), token.clone(), args.jobs, args.seed);
        tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(64));
            let mut set = JoinSet::new();
            for i in 0..jobs {
                tokio::time::sleep_until(t0 + window.mul_f64(i as f64 / jobs as f64)).await;
                let Ok(permit) = slots.clone().acquire_owned().await else { break };
                let (http, url, token) = (http.clone(), create_url.clone(), token.clone());
                let name = format!("chaos {seed} {i}");
                set.spawn(async move {
                    let r = submit(http, url, token, name, give_up).await;
                    drop(permit);
                    r
                });
            }
            set.join_all().await
        })
    };

    // The faults, at fixed points of the window: kills evenly spread, the Redis restart just before the middle.
    let mut events: Vec<(f64, Option<usize>)> =
        (0..args.kills).map(|k| ((k + 1) as f64 / (args.kills + 1) as f64, Some(k))).collect();
    if !args.no_redis_restart {
        events.push((0.45, None));
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut redis_restart_at = None;
    for (at, what) in events {
        tokio::time::sleep_until(t0 + window.mul_f64(at)).await;
        match what {
            Some(k) => {
                // The busiest worker, waiting up to a second for one with jobs in flight: a kill of an idle
                // worker proves little.
                let (mut i, mut busy) = (k % workers.len(), 0);
                let until = Instant::now() + Duration::from_secs(1);
                while busy == 0 && Instant::now() < until {
                    for (j, w) in workers.iter().enumerate() {
                        let b = w.busy(&http).await;
                        if b > busy {
                            (i, busy) = (j, b);
                        }
                    }
                    if busy == 0 {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                report.in_flight_at_kills += busy;
                workers[i].sigkill();
                report.worker_kills += 1;
                workers[i] = WorkerProcess::start(&bin, &env, args.verbose).await?;
                report.worker_processes += 1;
            }
            None => {
                redis_restart_at = Some(Instant::now());
                redis.kill();
                tokio::time::sleep(Duration::from_millis(args.redis_down_ms)).await;
                redis.start_again().await;
                report.redis_restarts += 1;
            }
        }
    }

    let submitted = submitter.await.context("the submitter task")?;
    let mut accepted: Vec<(String, String, Instant)> = Vec::new();
    let mut refused_names = Vec::new();
    for (s, retries) in submitted {
        report.submit_retries += retries;
        match s {
            Submitted::Accepted { name, id, at } => accepted.push((name, id, at)),
            Submitted::Refused { name, last } => {
                if args.verbose {
                    eprintln!("chaos: {name:?} never accepted, last answer: {last}");
                }
                refused_names.push(name);
            }
        }
    }
    report.accepted = accepted.len();
    report.refused = refused_names.len();

    // Wait, bounded, until every accepted job is terminal, asking the API as its tenant would.
    let deadline = Instant::now() + Duration::from_secs(args.deadline_secs);
    let mut open: Vec<usize> = (0..accepted.len()).collect();
    let mut status: Vec<String> = vec![String::new(); accepted.len()];
    let mut sessions: Vec<Option<String>> = vec![None; accepted.len()];
    loop {
        let slots = Arc::new(Semaphore::new(32));
        let mut set = JoinSet::new();
        for &i in &open {
            let (http, api, token, id, slots) =
                (http.clone(), api_url.clone(), token.clone(), accepted[i].1.clone(), slots.clone());
            set.spawn(async move {
                let _permit = slots.acquire_owned().await.ok();
                (i, job_status(&http, &api, &token, &id).await)
            });
        }
        for (i, s) in set.join_all().await {
            if let Some((s, unique_id)) = s {
                status[i] = s;
                sessions[i] = unique_id;
            }
        }
        open.retain(|&i| !is_terminal(&status[i]));
        if open.is_empty() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    for (i, s) in status.iter().enumerate() {
        match s.as_str() {
            "succeeded" => report.succeeded += 1,
            "failed" => report.failed += 1,
            "dead" => report.dead += 1,
            "missing" => report.missing += 1,
            _ => report.non_terminal += 1,
        }
        if let Some(at) = redis_restart_at
            && accepted[i].2 < at
        {
            report.accepted_before_redis_restart += 1;
            if !is_terminal(s) {
                report.lost_of_those += 1;
            }
        }
        if args.verbose && !is_terminal(s) {
            eprintln!("chaos: job {} ({:?}) is {s:?}", accepted[i].1, accepted[i].0);
        }
    }

    let stats: Value = http
        .get(format!("{sim_url}/sim/stats"))
        .send()
        .await
        .context("asking the simulator for its stats")?
        .json()
        .await
        .context("the simulator's stats")?;
    let by_name: HashMap<String, u64> = stats["by_name"]
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect())
        .unwrap_or_default();
    report.create_calls = stats["create_calls"].as_u64().unwrap_or(0);
    report.sessions_created = stats["sessions_created"].as_u64().unwrap_or(0);
    for ((name, _, _), s) in accepted.iter().zip(&status) {
        let n = by_name.get(name).copied().unwrap_or(0);
        report.max_sessions_per_job = report.max_sessions_per_job.max(n);
        if n > 1 {
            report.jobs_with_more_than_one_session += 1;
        }
        if s == "succeeded" && n == 0 {
            report.succeeded_without_session += 1;
        }
    }
    report.sessions_of_refused = refused_names.iter().map(|n| by_name.get(n).copied().unwrap_or(0)).sum();

    // Ownership: every session upstream is the answer of exactly one succeeded job.
    let mut owners: HashMap<&str, usize> = HashMap::new();
    for (s, unique_id) in status.iter().zip(&sessions) {
        if s == "succeeded"
            && let Some(u) = unique_id
        {
            *owners.entry(u.as_str()).or_default() += 1;
        }
    }
    report.sessions_owned_twice = owners.values().filter(|&&n| n > 1).count();
    let upstream: HashSet<String> = upstream_sessions(&http, &sim_url).await?.into_iter().collect();
    report.orphaned_sessions = upstream.iter().filter(|u| !owners.contains_key(u.as_str())).count();

    // Nothing may be left in the stream or the retry set once every job is terminal (acks are atomic with the
    // outcome, so a short wait covers only a takeover in progress).
    if open.is_empty() {
        let store = JobStore::new(QueueConfig::new(redis.url(), namespace)).context("connecting the job store")?;
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(c) = store.queue_counts().await {
                report.left_in_queue = Some(c.pending + c.scheduled + c.running);
            }
            if report.left_in_queue == Some(0) || Instant::now() > until {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    report.workers_died = workers.iter_mut().map(WorkerProcess::exited).filter(|&e| e).count();
    report.elapsed = started.elapsed();

    drop(workers);
    drop(api_task);
    drop(sim_task);
    drop(redis);
    Ok(report)
}

/// Aborts the task when dropped, so an early `?` stops the in-process services too.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// This process's command line, for the "reproduce" line under the table.
pub fn command_line() -> String {
    let mut args = std::env::args();
    let first = args.next().map(|a| Path::new(&a).file_name().and_then(|f| f.to_str()).unwrap_or("wgate").to_owned());
    std::iter::once(first.unwrap_or_else(|| "wgate".into())).chain(args).collect::<Vec<_>>().join(" ")
}
