//! A private redis-server, an in-process simulator, and the worker (in-process or as the real binary).

use std::{net::SocketAddr, time::Duration};

use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::{sync::oneshot, task::JoinHandle};
use wgate_queue::{Completions, Enqueued, JobStore, QueueConfig, RedisSettings};
use wgate_testkit::{RedisServer, RedisServerOptions, WorkerProcess, unique_namespace};
use wgate_types::{JobId, JobRecord, NewJob, SessionCreate, TenantId};
use wgate_upstream::UpstreamSettings;
use wgate_upstream_sim::SimConfig;
use wgate_worker::{Application, Settings};

pub const PUBLIC_URL: &str = "http://gateway.test";

pub struct Sim {
    pub base: String,
    http: reqwest::Client,
}

impl Sim {
    pub async fn start(faults: Value) -> Self {
        let config = SimConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            seed: Some(42),
            workers: Some(1),
            ..SimConfig::default()
        };
        let (addr, _task) = wgate_upstream_sim::spawn(config).await.unwrap();
        let sim = Self { base: format!("http://{addr}"), http: wgate_testkit::http_client() };
        sim.faults(faults).await;
        sim
    }

    pub async fn faults(&self, faults: Value) {
        if faults.as_object().is_some_and(|o| o.is_empty()) {
            return;
        }
        let r = self.http.post(format!("{}/sim/faults", self.base)).json(&faults).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }

    pub async fn stats(&self) -> Value {
        self.http.get(format!("{}/sim/stats", self.base)).send().await.unwrap().json().await.unwrap()
    }

    /// Sessions upstream with exactly this name.
    pub async fn created(&self, name: &str) -> u64 {
        self.stats().await["by_name"][name].as_u64().unwrap_or(0)
    }

    /// Upstream's sessions of that name, as `sessions-get` answers them.
    pub async fn sessions(&self, name: &str) -> Vec<Value> {
        let r: Value = self
            .http
            .post(format!("{}/api/v1/sessions-get", self.base))
            .header("X-Api-Key", "sim-key")
            .json(&json!({"name": name, "page_cnt": 100}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["data"].as_array().cloned().unwrap_or_default()
    }
}

/// Redis + simulator + job store: the world a worker runs in.
pub struct World {
    pub redis: RedisServer,
    pub sim: Sim,
    pub queue: QueueConfig,
    pub store: JobStore,
    pub completions: Completions,
}

impl World {
    pub async fn start(faults: Value) -> Self {
        Self::start_with(faults, RedisServerOptions::default()).await
    }

    pub async fn start_with(faults: Value, options: RedisServerOptions) -> Self {
        Self::start_partitioned(faults, options, 1).await
    }

    /// A world whose keys and queues are split into `partitions` (`WGATE_QUEUE_PARTITIONS`) on its one Redis.
    pub async fn start_partitioned(faults: Value, options: RedisServerOptions, partitions: u16) -> Self {
        wgate_service::init_test_tracing();
        wgate_service::init_crypto();
        let redis = RedisServer::start_with(options).await;
        let sim = Sim::start(faults).await;
        let queue = QueueConfig { partitions, ..QueueConfig::new(redis.url(), unique_namespace("worker")) };
        let store = JobStore::new(queue.clone()).unwrap();
        let completions = Completions::start(&queue);
        Self { redis, sim, queue, store, completions }
    }

    /// Settings for a worker in this world: small backoff so tests are quick.
    pub fn settings(&self) -> Settings {
        let mut redis = RedisSettings::new(self.redis.url(), self.queue.namespace.clone());
        redis.queue_partitions = Some(u32::from(self.queue.partitions));
        Settings {
            redis,
            upstream: UpstreamSettings {
                url: self.sim.base.clone(),
                api_key: Some("sim-key".to_owned().into()),
                timeout_ms: 2000,
            },
            worker_admin_listen: "127.0.0.1:0".parse().unwrap(),
            public_url: PUBLIC_URL.into(),
            worker_concurrency: 8,
            retry_base_ms: 5,
            retry_max_ms: 50,
            queue_gauge_interval_ms: 50,
            visibility_timeout_ms: 2000,
            ..Settings::default()
        }
    }

    pub async fn worker(&self) -> TestWorker {
        TestWorker::start(self.settings()).await
    }

    /// Accepts a job as the API does.
    pub async fn enqueue(&self, name: &str, max_attempts: u32) -> JobRecord {
        self.try_enqueue(name, max_attempts).await.unwrap()
    }

    pub async fn try_enqueue(&self, name: &str, max_attempts: u32) -> Result<JobRecord, wgate_queue::QueueError> {
        self.enqueue_as(&acme(), name, max_attempts).await
    }

    /// Accepts a job of `tenant` as the API does (its hook token minted in the tenant's partition).
    pub async fn enqueue_as(
        &self,
        tenant: &TenantId,
        name: &str,
        max_attempts: u32,
    ) -> Result<JobRecord, wgate_queue::QueueError> {
        let request = SessionCreate::from_json(
            json!({"name": name, "callback": "https://tenant.example/hook"}).to_string().as_bytes(),
        )
        .unwrap();
        let id = JobId::new();
        let new = NewJob {
            tenant: tenant.clone(),
            request,
            max_attempts,
            request_id: Some(format!("req-{id}")),
            hook_token: self.store.layout().mint_job_token(tenant, id),
            qr_token: String::new(),
        };
        let job = JobRecord::accepted(id, new, OffsetDateTime::now_utc());
        assert_eq!(self.store.enqueue(&job, None, None).await?, Enqueued::Created);
        Ok(job)
    }

    /// Accepts a job as a client retrying after 503s would, once Redis answers again (the first call may meet
    /// the dead connection); fails the test naming the job when Redis does not take it `within`.
    pub async fn enqueue_when_redis_answers(&self, name: &str, within: Duration) -> JobRecord {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match self.try_enqueue(name, 6).await {
                Ok(job) => return job,
                Err(e) => assert!(
                    tokio::time::Instant::now() < deadline,
                    "Redis did not accept the job {name:?} within {within:?}; last error: {e}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn enqueue_named(&self, i: usize) -> JobRecord {
        self.enqueue(&format!("job {i}"), 6).await
    }

    /// Waits (on completion notifications) until the job is terminal.
    pub async fn finished(&self, id: JobId, within: Duration) -> JobRecord {
        let wait = async {
            loop {
                let waiter = self.completions.waiter(id);
                if let Ok(Some(r)) = self.store.find(id).await
                    && r.status.is_terminal()
                {
                    return r;
                }
                // Also re-read now and then: a notification may be lost while Redis restarts.
                let _ = tokio::time::timeout(Duration::from_millis(500), waiter).await;
            }
        };
        match tokio::time::timeout(within, wait).await {
            Ok(r) => r,
            Err(_) => panic!("job {id} not finished within {within:?}: {:?}", self.store.find(id).await),
        }
    }

    /// Waits until the job's record satisfies `f` (for states no notification announces, such as `running`).
    pub async fn until(&self, id: JobId, within: Duration, f: impl Fn(&JobRecord) -> bool) -> JobRecord {
        let wait = async {
            loop {
                if let Ok(Some(r)) = self.store.find(id).await
                    && f(&r)
                {
                    return r;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        match tokio::time::timeout(within, wait).await {
            Ok(r) => r,
            Err(_) => {
                panic!("job {id} did not reach the expected state within {within:?}: {:?}", self.store.find(id).await)
            }
        }
    }

    pub fn key(&self, rest: &str) -> String {
        format!("{{{}}}:{rest}", self.queue.namespace)
    }

    /// The real `wgate-worker` binary, started with these settings in this world.
    pub async fn process(&self, settings: &Settings) -> WorkerProcess {
        self.process_with(self.env(settings)).await
    }

    /// The real `wgate-worker` binary with this environment.
    pub async fn process_with(&self, env: Vec<(String, String)>) -> WorkerProcess {
        let bin = std::path::Path::new(env!("CARGO_BIN_EXE_wgate-worker"));
        WorkerProcess::start(bin, &env, false).await.unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Environment for the real `wgate-worker` binary in this world.
    pub fn env(&self, settings: &Settings) -> Vec<(String, String)> {
        vec![
            ("WGATE_REDIS_URL".into(), settings.redis.url.clone()),
            ("WGATE_NAMESPACE".into(), settings.redis.namespace.clone()),
            ("WGATE_PUBLIC_URL".into(), settings.public_url.clone()),
            ("WGATE_UPSTREAM_URL".into(), settings.upstream.url.clone()),
            ("WGATE_UPSTREAM_API_KEY".into(), "sim-key".into()),
            ("WGATE_UPSTREAM_TIMEOUT_MS".into(), settings.upstream.timeout_ms.to_string()),
            ("WGATE_WORKER_CONCURRENCY".into(), settings.worker_concurrency.to_string()),
            ("WGATE_RETRY_BASE_MS".into(), settings.retry_base_ms.to_string()),
            ("WGATE_RETRY_MAX_MS".into(), settings.retry_max_ms.to_string()),
            ("WGATE_VISIBILITY_TIMEOUT_MS".into(), settings.visibility_timeout_ms.to_string()),
            ("WGATE_SHUTDOWN_TIMEOUT_MS".into(), settings.shutdown_timeout_ms.to_string()),
        ]
    }
}

/// The worker running in-process.
pub struct TestWorker {
    pub admin: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestWorker {
    pub async fn start(settings: Settings) -> Self {
        let app = Application::build(settings).await.unwrap();
        let admin = app.admin_addr();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        Self { admin, stop: Some(tx), task: Some(task) }
    }

    pub async fn metrics(&self) -> String {
        wgate_testkit::http_client()
            .get(format!("http://{}/metrics", self.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn readyz(&self) -> u16 {
        wgate_testkit::http_client()
            .get(format!("http://{}/readyz", self.admin))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Stops it as SIGTERM would, and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestWorker {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The tenant most tests act as.
pub fn acme() -> TenantId {
    TenantId::parse("acme").expect("a tenant id")
}
