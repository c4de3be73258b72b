//! Worker and queue benchmark: end-to-end jobs/s against the simulator (latency 0), no-op drain through the
//! Streams backend, idle pickup latency (enqueue to handler), and Redis bytes per finished job.
//!
//! Run: `cargo bench -p wgate-worker --bench queue` (env `BENCH_JOBS`, default 20000; `BENCH_CONCURRENCY`, 256;
//! `BENCH_REDIS_URL`: the no-op drain runs against that Redis instead of its own, so a peer's baseline can share
//! the server, as `benches/load/peers.sh` does; `BENCH_SCHEDULED=N`: N retries wait in the scheduled set during the
//! pickup measurement; `BENCH_STATS=1` prints Redis's `INFO commandstats` of the no-op drain). Against a Redis Cluster: `BENCH_REDIS_MODE=cluster` with `BENCH_REDIS_URL` listing every
//! node (comma separated; Redis CPU is summed over them), `BENCH_PARTITIONS` (default: the mode's, 16 on a
//! cluster) and `BENCH_TENANTS` (the jobs' tenants, default 1 with one partition and 64 with more, so the jobs
//! spread over the partitions); e.g. `BENCH_ONLY=noop BENCH_REDIS_MODE=cluster BENCH_REDIS_URL=redis://127.0.0.1:7000,...`.
//! Prints a table for docs/BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use apalis_core::{
    error::BoxDynError,
    task::data::Data,
    worker::{builder::WorkerBuilder, context::WorkerContext, ext::parallelize::ParallelizeExt},
};
use futures::{StreamExt, stream};
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use wgate_queue::{
    Delivery, Finished, JobStore, Outcome, QueueConfig, RedisSettings, Started, StreamBackend, StreamConfig,
};
use wgate_testkit::{RedisServer, unique_namespace};
use wgate_types::{JobId, JobRecord, NewJob, SessionCreate, TenantId};
use wgate_upstream::UpstreamSettings;

// The allocator of the wgate-worker binary, so the drain measured is the one it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use wgate_upstream_sim::SimConfig;
use wgate_worker::{Application, Settings};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The queue's configuration for `url`: standalone, or what `BENCH_REDIS_MODE` and `BENCH_PARTITIONS` say.
fn queue_config(url: String, ns: String) -> QueueConfig {
    let mut settings = RedisSettings::new(url, ns);
    settings.mode = std::env::var("BENCH_REDIS_MODE").unwrap_or_else(|_| "standalone".into());
    settings.queue_partitions = std::env::var("BENCH_PARTITIONS").ok().and_then(|p| p.parse().ok());
    settings.queue_config().unwrap()
}

/// The tenants the jobs are spread over (`BENCH_TENANTS`; by default one, or 64 when there are partitions to fill).
fn tenants(store: &JobStore) -> Vec<TenantId> {
    let default = if store.layout().count() > 1 { 64 } else { 1 };
    match env_usize("BENCH_TENANTS", default) {
        0 | 1 => vec![TenantId::parse("bench").unwrap()],
        n => (0..n).map(|i| TenantId::parse(&format!("bench-{i}")).unwrap()).collect(),
    }
}

fn job(store: &JobStore, tenants: &[TenantId], i: usize) -> JobRecord {
    let request = SessionCreate::from_json(json!({"name": format!("bench {i}")}).to_string().as_bytes()).unwrap();
    let id = JobId::new();
    let tenant = tenants[i % tenants.len()].clone();
    let hook_token = store.layout().mint_job_token(&tenant, id);
    let new = NewJob { tenant, request, max_attempts: 6, request_id: None, hook_token, qr_token: String::new() };
    JobRecord::accepted(id, new, OffsetDateTime::now_utc())
}

async fn enqueue_all(store: &JobStore, n: usize) -> Duration {
    let tenants = tenants(store);
    let t = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let store = store.clone();
            let j = job(&store, &tenants, i);
            async move { store.enqueue(&j, None, None).await.unwrap() }
        })
        .buffer_unordered(128)
        .collect::<Vec<_>>()
        .await;
    t.elapsed()
}

/// The Redis a part runs against: a private redis-server, or an outside one given by `BENCH_REDIS_URL`.
enum Target {
    Own(RedisServer),
    Url(String),
}

impl Target {
    async fn from_env() -> Self {
        match std::env::var("BENCH_REDIS_URL") {
            Ok(url) if !url.is_empty() => Self::Url(url),
            _ => Self::Own(RedisServer::start().await),
        }
    }

    fn url(&self) -> String {
        match self {
            Self::Own(r) => r.url(),
            Self::Url(u) => u.clone(),
        }
    }

    /// A connection to each server (every node listed, for a cluster).
    async fn connections(&self) -> Vec<redis::aio::MultiplexedConnection> {
        match self {
            Self::Own(r) => vec![r.connection().await],
            Self::Url(u) => {
                let mut out = Vec::new();
                for one in u.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    out.push(redis::Client::open(one).unwrap().get_multiplexed_async_connection().await.unwrap());
                }
                out
            }
        }
    }

    async fn connection(&self) -> redis::aio::MultiplexedConnection {
        self.connections().await.swap_remove(0)
    }
}

/// An `INFO` field summed over every server.
async fn info_sum(redis: &Target, section: &str, fields: &[&str]) -> f64 {
    let mut sum = 0.0;
    for mut c in redis.connections().await {
        let info: String = redis::cmd("INFO").arg(section).query_async(&mut c).await.unwrap();
        for name in fields {
            sum += info
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0);
        }
    }
    sum
}

async fn used_memory(redis: &Target) -> i64 {
    info_sum(redis, "memory", &["used_memory:"]).await as i64
}

/// Redis's own CPU time (user + sys, every server), in seconds: robust to other processes competing for the cores.
async fn redis_cpu(redis: &Target) -> f64 {
    info_sum(redis, "cpu", &["used_cpu_user:", "used_cpu_sys:"]).await
}

/// Jobs not finished yet: the tenants' pending sets (on a cluster, through the store's cluster connection).
async fn unfinished(store: &JobStore, tenants: &[TenantId]) -> u64 {
    let mut n = 0;
    for t in tenants {
        n += store.unfinished_jobs(t).await.unwrap();
    }
    n
}

async fn wait_drained(store: &JobStore) {
    let tenants = tenants(store);
    while unfinished(store, &tenants).await > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// End to end through the real worker and the simulator: a backlog of `n` jobs drained.
async fn end_to_end(n: usize, concurrency: usize) -> (f64, f64, f64) {
    let redis = Target::Own(RedisServer::start().await);
    let sim =
        SimConfig { listen: "127.0.0.1:0".parse().unwrap(), seed: Some(1), workers: Some(1), ..SimConfig::default() };
    let (sim_addr, _sim) = wgate_upstream_sim::spawn(sim).await.unwrap();
    let ns = unique_namespace("bench");
    let store = JobStore::new(QueueConfig::new(redis.url(), ns.clone())).unwrap();
    store.ensure_group().await.unwrap();
    let before = used_memory(&redis).await;
    let enq = enqueue_all(&store, n).await;
    let settings = Settings {
        redis: RedisSettings::new(redis.url(), ns.clone()),
        upstream: UpstreamSettings {
            url: format!("http://{sim_addr}"),
            api_key: Some("sim-key".to_owned().into()),
            ..UpstreamSettings::default()
        },
        worker_admin_listen: "127.0.0.1:0".parse().unwrap(),
        worker_concurrency: concurrency,
        ..Settings::default()
    };
    let app = Application::build(settings).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let t = Instant::now();
    let run = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    wait_drained(&store).await;
    let drain = t.elapsed();
    let _ = tx.send(());
    run.await.unwrap().unwrap();
    let after = used_memory(&redis).await;
    let per_job = (after - before) as f64 / n as f64;
    (n as f64 / enq.as_secs_f64(), n as f64 / drain.as_secs_f64(), per_job)
}

struct Probe {
    starter: wgate_queue::Starter,
    picked: Option<mpsc::UnboundedSender<Instant>>,
}

/// A no-op handler: start the attempt, finish it as succeeded (two scripts, no upstream).
async fn noop(d: Delivery, probe: Data<Arc<Probe>>) -> Result<Finished, BoxDynError> {
    if let Some(tx) = &probe.picked {
        let _ = tx.send(Instant::now());
    }
    match probe.starter.start(&d).await? {
        Started::Run { record, .. } => Ok(Finished::outcome(
            d,
            record,
            Outcome::Succeeded { response: json!({"unique_id": "1"}), unique_id: "1".into() },
        )),
        _ => Ok(Finished::nothing(d)),
    }
}

fn start_noop_worker(
    store: &JobStore,
    concurrency: usize,
    picked: Option<mpsc::UnboundedSender<Instant>>,
) -> WorkerContext {
    let backend = StreamBackend::new(store.clone(), StreamConfig::new(wgate_queue::consumer_name(), concurrency));
    let starter = backend.starter();
    let ctx = WorkerContext::new("bench");
    let worker = WorkerBuilder::new(&ctx)
        .backend(backend)
        .data(Arc::new(Probe { starter, picked }))
        .parallelize(tokio::spawn)
        .build(noop);
    tokio::spawn(worker.run());
    ctx
}

/// The Streams backend alone: a backlog drained by the no-op handler.
async fn noop_drain(n: usize, concurrency: usize) -> (f64, f64, f64) {
    let redis = Target::from_env().await;
    let ns = unique_namespace("noop");
    let store = JobStore::new(queue_config(redis.url(), ns.clone())).unwrap();
    for p in 0..store.layout().count() {
        store.for_partition(p).ensure_group().await.unwrap();
    }
    let enqueued = enqueue_all(&store, n).await;
    let stats = std::env::var("BENCH_STATS").is_ok();
    if stats {
        // The commands of the drain alone.
        let mut c = redis.connection().await;
        let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut c).await.unwrap();
    }
    let cpu = redis_cpu(&redis).await;
    let t = Instant::now();
    let ctx = start_noop_worker(&store, concurrency, None);
    wait_drained(&store).await;
    let rate = n as f64 / t.elapsed().as_secs_f64();
    let cpu_per_job = (redis_cpu(&redis).await - cpu) / n as f64;
    let _ = ctx.stop();
    if stats {
        let mut c = redis.connection().await;
        let stats: String = redis::cmd("INFO").arg("commandstats").query_async(&mut c).await.unwrap();
        eprintln!("{stats}");
    }
    (rate, cpu_per_job, n as f64 / enqueued.as_secs_f64())
}

/// Idle pickup: one job at a time into an idle worker; time from the enqueue call to the handler. With
/// `scheduled` > 0, that many retries wait in the scheduled set beside it (due in an hour), as a large backlog of
/// backed-off jobs would.
async fn pickup(samples: usize, scheduled: usize) -> (Duration, Duration, Duration) {
    let redis = RedisServer::start().await;
    let ns = unique_namespace("pickup");
    let store = JobStore::new(QueueConfig::new(redis.url(), ns.clone())).unwrap();
    store.ensure_group().await.unwrap();
    if scheduled > 0 {
        let key = store.keys().scheduled();
        let due = (OffsetDateTime::now_utc().unix_timestamp() + 3600) * 1000;
        let mut c = redis.connection().await;
        for start in (0..scheduled).step_by(10_000) {
            let mut cmd = redis::cmd("ZADD");
            cmd.arg(&key);
            for i in start..(start + 10_000).min(scheduled) {
                cmd.arg(due).arg(format!("scheduled-{i}"));
            }
            cmd.query_async::<()>(&mut c).await.unwrap();
        }
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let ctx = start_noop_worker(&store, 32, Some(tx));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut lat = Vec::with_capacity(samples);
    let tenants = tenants(&store);
    for i in 0..samples {
        let j = job(&store, &tenants, i);
        let t = Instant::now();
        store.enqueue(&j, None, None).await.unwrap();
        let at = rx.recv().await.unwrap();
        lat.push(at.saturating_duration_since(t));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let _ = ctx.stop();
    lat.sort();
    let q = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    (q(0.5), q(0.99), q(1.0))
}

fn main() {
    wgate_service::init_crypto();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let n = env_usize("BENCH_JOBS", 20_000);
        let c = env_usize("BENCH_CONCURRENCY", 256);
        let only = std::env::var("BENCH_ONLY").unwrap_or_default();
        let run = |what: &str| only.is_empty() || only == what;
        let scheduled = env_usize("BENCH_SCHEDULED", 0);
        let (p50, p99, max) =
            if run("pickup") { pickup(env_usize("BENCH_PICKUPS", 1000), scheduled).await } else { Default::default() };
        let (noop, noop_cpu, noop_enq) = if run("noop") { noop_drain(n, c).await } else { (0.0, 0.0, 0.0) };
        let (enq, e2e, bytes) = if run("e2e") { end_to_end(n, c).await } else { (0.0, 0.0, 0.0) };
        println!();
        println!("| measure | result |");
        println!("| --- | --- |");
        println!(
            "| idle pickup, enqueue to handler{} | p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms |",
            if scheduled > 0 { format!(" ({scheduled} retries scheduled beside)") } else { String::new() },
            ms(p50),
            ms(p99),
            ms(max)
        );
        println!("| no-op drain ({n} jobs, concurrency {c}) | {noop:.0} jobs/s |");
        println!("| Redis CPU per job in that drain (start + finish + read) | {:.1} us |", noop_cpu * 1e6);
        println!("| enqueue before that drain (JobStore::enqueue, 128 concurrent, its Redis) | {noop_enq:.0} jobs/s |");
        println!("| enqueue (JobStore::enqueue, 128 concurrent) | {enq:.0} jobs/s |");
        println!("| end to end, simulator latency 0 ({n} jobs, concurrency {c}) | {e2e:.0} jobs/s |");
        println!("| Redis bytes per finished job (before TTL) | {bytes:.0} |");
        println!();
        println!("command: BENCH_JOBS={n} BENCH_CONCURRENCY={c} cargo bench -p wgate-worker --bench queue");
    });
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
