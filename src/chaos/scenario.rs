//! The scenario: the stack started, jobs submitted over the window while faults are injected, then every
//! guarantee checked.

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use serde_json::Value;
use tokio::{sync::Semaphore, task::JoinSet};
use wgate_queue::{JobStore, QueueConfig};
use wgate_testkit::{Behaviour, Receiver, RedisServer, RedisServerOptions, WorkerProcess};

use super::{
    ChaosArgs, RETRY_BASE_MS, RETRY_MAX_MS, Report, SECRET, SIM_KEY, TENANT,
    client::{Submitted, is_terminal, job_status, submit, upstream_sessions},
    worker::worker_bin,
};
use crate::token::{self, TokenRequest};

/// Runs the whole scenario and returns what it found; the caller decides what a violation means.
pub async fn run(args: &ChaosArgs) -> anyhow::Result<Report> {
    anyhow::ensure!(args.workers >= 1, "--workers must be at least 1");
    anyhow::ensure!(args.window_secs > 0.0, "--window-secs must be positive");
    let bin = worker_bin(args.worker_bin.as_deref())?;
    wgate_service::init_crypto();
    let started = Instant::now();
    let http = wgate_testkit::http_client();

    let mut stack = Stack::start(args).await?;
    let mut report = Report { jobs: args.jobs, ..Report::default() };
    let mut workers = Vec::with_capacity(args.workers);
    for _ in 0..args.workers {
        workers.push(WorkerProcess::start(&bin, &stack.env, args.verbose).await?);
        report.worker_processes += 1;
    }

    let token = token::mint(SECRET.as_bytes(), &TokenRequest::day_pass(TENANT), token::now_secs())?;
    // The session whose hook WhatsGate's events arrive at: one more accepted job, checked like the others.
    let hooked = if args.events > 0 { Some(stack.hooked_session(&http, &token).await?) } else { None };
    let hook_url = hooked.as_ref().map(|(url, _)| url.clone()).unwrap_or_default();
    let window = Window::new(args);
    let submitter = spawn_submitter(&http, &stack.api_url, &token, args, &window);
    let events =
        tokio::spawn(super::hooks::post_events(http.clone(), hook_url, args.events, window.length, window.give_up));
    let redis_restart_at = inject_faults(args, &window, &mut stack, &bin, &mut workers, &mut report).await?;
    let submitted = submitter.await.context("the submitter task")?;
    let (acknowledged, event_retries) = events.await.context("the webhook event poster")?;
    report.events = args.events;
    report.event_post_retries = event_retries;
    let (mut accepted, refused_names) = sort_submissions(submitted, args.verbose, &mut report);
    if let Some((_, job)) = hooked {
        accepted.push(job);
        report.jobs += 1;
        report.accepted += 1;
    }

    let outcomes = await_terminal(&http, &stack.api_url, &token, &accepted, args.deadline_secs).await;
    count_outcomes(&accepted, &outcomes, redis_restart_at, args.verbose, &mut report);
    check_upstream(&http, &stack.sim_url, &accepted, &outcomes, &refused_names, &mut report).await?;
    // The endpoint starts answering every request: what is acknowledged must now arrive.
    stack.receiver.set(wgate_testkit::Behaviour::OK);
    let deadline = Duration::from_secs(args.deadline_secs);
    super::hooks::check_delivered(&stack.receiver, &acknowledged, deadline, &mut report).await;
    if outcomes.all_terminal {
        check_queue_drained(&stack, &mut report).await?;
    }
    report.workers_died = workers.iter_mut().map(WorkerProcess::exited).filter(|&e| e).count();
    report.elapsed = started.elapsed();

    drop(workers);
    drop(stack);
    Ok(report)
}

/// Redis, the simulator and the API, and what a worker process needs to join them. Dropped in this order:
/// the API, the simulator, then redis-server.
struct Stack {
    _api_task: AbortOnDrop,
    _sim_task: AbortOnDrop,
    redis: RedisServer,
    /// The tenant's webhook endpoint, failing most requests during the window.
    receiver: Receiver,
    namespace: String,
    sim_url: String,
    api_url: String,
    /// The workers' environment.
    env: Vec<(String, String)>,
}

impl Stack {
    async fn start(args: &ChaosArgs) -> anyhow::Result<Self> {
        let redis = RedisServer::try_start_with(RedisServerOptions { appendonly: true })
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

        let mut api_settings = wgate_api_proxy::ApiSettings::on_loopback(&redis.url(), &namespace, SECRET);
        api_settings.max_attempts = args.max_attempts;
        // The limiter is not under test here.
        api_settings.rate_per_second = 1_000_000.0;
        api_settings.rate_burst = 1_000_000;
        api_settings.upstream.url = sim_url.clone();
        api_settings.upstream.api_key = Some(SIM_KEY.to_owned().into());
        let api = wgate_api_proxy::Application::build(api_settings).await.context("starting the API")?;
        let api_url = format!("http://{}", api.address());
        let api_task = AbortOnDrop(tokio::spawn(async move {
            let _ = api.run_until_stopped().await;
        }));

        let env = worker_env(args, &redis.url(), &namespace, &api_url, &sim_url);
        let receiver = Receiver::start(Behaviour::Flaky { ok_every: args.endpoint_ok_every }).await;
        Ok(Self { _api_task: api_task, _sim_task: sim_task, redis, receiver, namespace, sim_url, api_url, env })
    }

    /// A session whose callback is the flaky endpoint, created before the window; answers the hook URL WhatsGate
    /// posts its events to.
    async fn hooked_session(&self, http: &reqwest::Client, token: &str) -> anyhow::Result<(String, Accepted)> {
        let name = "chaos webhooks".to_owned();
        let r = http
            .post(format!("{}/api/v1/session-create", self.api_url))
            .bearer_auth(token)
            .header("prefer", "respond-async")
            .json(&serde_json::json!({"name": name, "callback": self.receiver.url}))
            .send()
            .await
            .context("creating the hooked session")?;
        anyhow::ensure!(r.status() == 202, "creating the hooked session answered {}", r.status());
        let job = r.headers().get("x-job-id").and_then(|v| v.to_str().ok()).context("X-Job-Id")?.to_owned();
        let store = JobStore::new(QueueConfig::new(self.redis.url(), self.namespace.clone()))?;
        let record = store.find(job.parse().context("the job id")?).await?.context("the hooked session's job")?;
        let url = format!("{}/hooks/{}", self.api_url, record.hook_token);
        Ok((url, Accepted { name, id: job, at: Instant::now() }))
    }
}

/// The environment of every worker process.
fn worker_env(
    args: &ChaosArgs,
    redis_url: &str,
    namespace: &str,
    api_url: &str,
    sim_url: &str,
) -> Vec<(String, String)> {
    [
        ("WGATE_REDIS_URL", redis_url.to_owned()),
        ("WGATE_NAMESPACE", namespace.to_owned()),
        ("WGATE_PUBLIC_URL", api_url.to_owned()),
        ("WGATE_UPSTREAM_URL", sim_url.to_owned()),
        ("WGATE_UPSTREAM_API_KEY", SIM_KEY.to_owned()),
        ("WGATE_UPSTREAM_TIMEOUT_MS", args.upstream_timeout_ms.to_string()),
        ("WGATE_WORKER_CONCURRENCY", args.worker_concurrency.to_string()),
        ("WGATE_MAX_ATTEMPTS", args.max_attempts.to_string()),
        ("WGATE_RETRY_BASE_MS", RETRY_BASE_MS.to_string()),
        ("WGATE_RETRY_MAX_MS", RETRY_MAX_MS.to_string()),
        ("WGATE_VISIBILITY_TIMEOUT_MS", args.visibility_timeout_ms.to_string()),
        ("WGATE_LOG", if args.verbose { "info" } else { "error" }.to_owned()),
        // The tenant endpoint is on this machine; retries come quickly so a run is short.
        ("WGATE_EGRESS_ALLOW_NETS", "127.0.0.0/8".to_owned()),
        ("WGATE_WEBHOOK_RETRY_SCHEDULE", "100ms,200ms,300ms,500ms,500ms,500ms,500ms,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The submission window: when it started, how long it lasts, and when a submission stops retrying.
struct Window {
    t0: tokio::time::Instant,
    length: Duration,
    give_up: Instant,
}

impl Window {
    fn new(args: &ChaosArgs) -> Self {
        let length = Duration::from_secs_f64(args.window_secs);
        Self { t0: tokio::time::Instant::now(), length, give_up: Instant::now() + length + Duration::from_secs(15) }
    }

    /// The instant a fraction `at` of the way through the window.
    fn at(&self, at: f64) -> tokio::time::Instant {
        self.t0 + self.length.mul_f64(at)
    }
}

/// Submissions, spread evenly over the window, at most 64 in flight.
fn spawn_submitter(
    http: &reqwest::Client,
    api_url: &str,
    token: &str,
    args: &ChaosArgs,
    window: &Window,
) -> tokio::task::JoinHandle<Vec<(Submitted, usize)>> {
    let create_url = format!("{api_url}/api/v1/session-create");
    let (http, token, jobs, seed) = (http.clone(), token.to_owned(), args.jobs, args.seed);
    let (t0, length, give_up) = (window.t0, window.length, window.give_up);
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(64));
        let mut set = JoinSet::new();
        for i in 0..jobs {
            tokio::time::sleep_until(t0 + length.mul_f64(i as f64 / jobs as f64)).await;
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
}

/// The faults, at fixed points of the window: kills evenly spread, the Redis restart just before the middle.
/// Returns when Redis was killed, if it was.
async fn inject_faults(
    args: &ChaosArgs,
    window: &Window,
    stack: &mut Stack,
    bin: &std::path::Path,
    workers: &mut [WorkerProcess],
    report: &mut Report,
) -> anyhow::Result<Option<Instant>> {
    let mut events: Vec<(f64, Option<usize>)> =
        (0..args.kills).map(|k| ((k + 1) as f64 / (args.kills + 1) as f64, Some(k))).collect();
    if !args.no_redis_restart {
        events.push((0.45, None));
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut redis_restart_at = None;
    for (at, what) in events {
        tokio::time::sleep_until(window.at(at)).await;
        match what {
            Some(k) => {
                let (i, busy) = busiest_worker(workers, k % workers.len()).await;
                report.in_flight_at_kills += busy;
                workers[i].kill();
                report.worker_kills += 1;
                workers[i] = WorkerProcess::start(bin, &stack.env, args.verbose).await?;
                report.worker_processes += 1;
            }
            None => {
                redis_restart_at = Some(Instant::now());
                stack.redis.kill();
                tokio::time::sleep(Duration::from_millis(args.redis_down_ms)).await;
                stack.redis.start_again().await;
                report.redis_restarts += 1;
            }
        }
    }
    Ok(redis_restart_at)
}

/// The busiest worker and its jobs in flight, waiting up to a second for one with jobs in flight (a kill of an
/// idle worker proves little); `fallback` when none has any.
async fn busiest_worker(workers: &[WorkerProcess], fallback: usize) -> (usize, u64) {
    let (mut i, mut busy) = (fallback, 0);
    let until = Instant::now() + Duration::from_secs(1);
    while busy == 0 && Instant::now() < until {
        for (j, w) in workers.iter().enumerate() {
            let b = w.busy().await.unwrap_or(0);
            if b > busy {
                (i, busy) = (j, b);
            }
        }
        if busy == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    (i, busy)
}

/// A job the API accepted: its session name, its id, and when it was accepted.
struct Accepted {
    name: String,
    id: String,
    at: Instant,
}

/// The accepted jobs and the names never accepted, counted into the report.
fn sort_submissions(
    submitted: Vec<(Submitted, usize)>,
    verbose: bool,
    report: &mut Report,
) -> (Vec<Accepted>, Vec<String>) {
    let mut accepted = Vec::new();
    let mut refused_names = Vec::new();
    for (s, retries) in submitted {
        report.submit_retries += retries;
        match s {
            Submitted::Accepted { name, id, at } => accepted.push(Accepted { name, id, at }),
            Submitted::Refused { name, last } => {
                if verbose {
                    eprintln!("chaos: {name:?} never accepted, last answer: {last}");
                }
                refused_names.push(name);
            }
        }
    }
    report.accepted = accepted.len();
    report.refused = refused_names.len();
    (accepted, refused_names)
}

/// What the API last said of each accepted job (index for index).
struct Outcomes {
    status: Vec<String>,
    /// The `unique_id` of each job's session, when it has one.
    sessions: Vec<Option<String>>,
    /// Every job reached a terminal status before the deadline.
    all_terminal: bool,
}

/// Waits, bounded, until every accepted job is terminal, asking the API as its tenant would.
async fn await_terminal(
    http: &reqwest::Client,
    api_url: &str,
    token: &str,
    accepted: &[Accepted],
    deadline_secs: u64,
) -> Outcomes {
    let deadline = Instant::now() + Duration::from_secs(deadline_secs);
    let mut open: Vec<usize> = (0..accepted.len()).collect();
    let mut status: Vec<String> = vec![String::new(); accepted.len()];
    let mut sessions: Vec<Option<String>> = vec![None; accepted.len()];
    loop {
        let slots = Arc::new(Semaphore::new(32));
        let mut set = JoinSet::new();
        for &i in &open {
            let (http, api, token, id, slots) =
                (http.clone(), api_url.to_owned(), token.to_owned(), accepted[i].id.clone(), slots.clone());
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
    Outcomes { status, sessions, all_terminal: open.is_empty() }
}

/// The jobs by final status, and those accepted before the Redis restart that did not end.
fn count_outcomes(
    accepted: &[Accepted],
    outcomes: &Outcomes,
    redis_restart_at: Option<Instant>,
    verbose: bool,
    report: &mut Report,
) {
    for (i, s) in outcomes.status.iter().enumerate() {
        match s.as_str() {
            "succeeded" => report.succeeded += 1,
            "failed" => report.failed += 1,
            "dead" => report.dead += 1,
            "missing" => report.missing += 1,
            _ => report.non_terminal += 1,
        }
        if let Some(at) = redis_restart_at
            && accepted[i].at < at
        {
            report.accepted_before_redis_restart += 1;
            if !is_terminal(s) {
                report.lost_of_those += 1;
            }
        }
        if verbose && !is_terminal(s) {
            eprintln!("chaos: job {} ({:?}) is {s:?}", accepted[i].id, accepted[i].name);
        }
    }
}

/// Upstream's side: sessions per job (from the simulator's counts by name) and ownership: every session upstream
/// is the answer of exactly one succeeded job.
async fn check_upstream(
    http: &reqwest::Client,
    sim_url: &str,
    accepted: &[Accepted],
    outcomes: &Outcomes,
    refused_names: &[String],
    report: &mut Report,
) -> anyhow::Result<()> {
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
    for (job, s) in accepted.iter().zip(&outcomes.status) {
        let n = by_name.get(&job.name).copied().unwrap_or(0);
        report.max_sessions_per_job = report.max_sessions_per_job.max(n);
        if n > 1 {
            report.jobs_with_more_than_one_session += 1;
        }
        if s == "succeeded" && n == 0 {
            report.succeeded_without_session += 1;
        }
    }
    report.sessions_of_refused = refused_names.iter().map(|n| by_name.get(n).copied().unwrap_or(0)).sum();

    let mut owners: HashMap<&str, usize> = HashMap::new();
    for (s, unique_id) in outcomes.status.iter().zip(&outcomes.sessions) {
        if s == "succeeded"
            && let Some(u) = unique_id
        {
            *owners.entry(u.as_str()).or_default() += 1;
        }
    }
    report.sessions_owned_twice = owners.values().filter(|&&n| n > 1).count();
    let upstream: HashSet<String> = upstream_sessions(http, sim_url).await?.into_iter().collect();
    report.orphaned_sessions = upstream.iter().filter(|u| !owners.contains_key(u.as_str())).count();
    Ok(())
}

/// Nothing may be left in the stream or the retry set once every job is terminal (acks are atomic with the
/// outcome, so a short wait covers only a takeover in progress).
async fn check_queue_drained(stack: &Stack, report: &mut Report) -> anyhow::Result<()> {
    let store = JobStore::new(QueueConfig::new(stack.redis.url(), stack.namespace.clone()))
        .context("connecting the job store")?;
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(c) = store.queue_counts().await {
            report.left_in_queue = Some(c.pending + c.scheduled + c.running);
        }
        if report.left_in_queue == Some(0) || Instant::now() > until {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Aborts the task when dropped, so an early `?` stops the in-process services too.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
