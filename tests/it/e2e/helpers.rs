//! `Stack`: the real API, a real worker and the simulator in this process, against a private redis-server.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Response;
use serde_json::{Value, json};
use wgate_api_proxy::ApiSettings;
use wgate_queue::{Completions, JobStore, RedisMode, RedisTls};
use wgate_testkit::{RedisServer, RedisTlsOptions};
use wgate_types::{JobId, JobRecord, TenantId};

pub const SECRET: &str = "e2e-secret";
pub const SIM_KEY: &str = "e2e-upstream-key";

/// Knobs a test may turn before the stack starts.
pub struct StackOptions {
    /// Simulator faults, as `POST /sim/faults` takes them.
    pub faults: Value,
    /// The key the worker sends upstream (the simulator accepts only `SIM_KEY`).
    pub worker_upstream_key: String,
    pub upstream_timeout_ms: u64,
    pub max_attempts: u32,
    pub workers: usize,
    /// The API's default session quota (`WGATE_MAX_SESSIONS`).
    pub max_sessions: Option<u32>,
    /// How long a new (or failed) simulator session stays PENDING.
    pub sim_init_ms: u64,
    /// How often the simulator shows a session a new QR code.
    pub sim_qr_rotate_ms: u64,
    /// Run Redis over TLS only; the API, the worker and the test's own store use its certificates.
    pub redis_tls: Option<RedisTlsOptions>,
    /// The workers' webhook retry schedule (`WGATE_WEBHOOK_RETRY_SCHEDULE`).
    pub webhook_retry_schedule: String,
    pub webhook_timeout_ms: u64,
    pub webhook_concurrency: usize,
    pub webhook_endpoint_concurrency: usize,
    /// Where the workers may deliver webhooks besides public addresses (`WGATE_EGRESS_ALLOW_NETS`).
    pub worker_egress_allow_nets: String,
    /// `WGATE_TENANTS_FILE` of the API and the workers.
    pub tenants_file: Option<std::path::PathBuf>,
    /// `WGATE_QUEUE_PARTITIONS` of every process (unset: the mode's default).
    pub queue_partitions: Option<u32>,
    /// The Redis namespace (default: a fresh one), for a stack that takes over keys a test wrote beforehand.
    pub namespace: Option<String>,
    /// The simulator's seed: its session ids follow from it.
    pub sim_seed: u64,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            faults: json!({}),
            worker_upstream_key: SIM_KEY.into(),
            upstream_timeout_ms: 2_000,
            max_attempts: 6,
            workers: 1,
            max_sessions: None,
            sim_init_ms: 50,
            sim_qr_rotate_ms: 20_000,
            redis_tls: None,
            webhook_retry_schedule: "100ms,100ms,100ms,100ms,100ms".into(),
            webhook_timeout_ms: 2_000,
            webhook_concurrency: 16,
            webhook_endpoint_concurrency: 4,
            worker_egress_allow_nets: wgate_api_proxy::settings::LOOPBACK_NETS.into(),
            tenants_file: None,
            queue_partitions: None,
            namespace: None,
            sim_seed: 7,
        }
    }
}

pub struct Stack {
    pub api: String,
    pub sim: String,
    pub http: reqwest::Client,
    pub store: JobStore,
    completions: Completions,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stop_workers: Vec<tokio::sync::oneshot::Sender<()>>,
    _redis: Option<RedisServer>,
}

/// Where a stack's Redis is.
pub struct RedisTarget {
    /// One server, the sentinels or the cluster's nodes (comma separated), as `mode` says.
    pub url: String,
    pub tls: RedisTls,
    pub mode: RedisMode,
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(StackOptions::default()).await
    }

    pub async fn start_with(options: StackOptions) -> Self {
        let (redis, tls) = match &options.redis_tls {
            None => (RedisServer::start().await, RedisTls::default()),
            Some(tls) => (
                RedisServer::start_tls(tls.clone()).await,
                RedisTls {
                    ca_file: Some(tls.certs.ca_cert()),
                    client_cert: Some(tls.certs.client_cert()),
                    client_key: Some(tls.certs.client_key()),
                },
            ),
        };
        let target = RedisTarget { url: redis.url(), tls, mode: RedisMode::Standalone };
        let mut stack = Self::start_on(options, target).await;
        stack._redis = Some(redis);
        stack
    }

    /// The stack against a Redis the test runs itself.
    pub async fn start_on(options: StackOptions, target: RedisTarget) -> Self {
        wgate_service::init_test_tracing();
        let RedisTarget { url: redis_url, tls: redis_tls, mode } = target;
        let (mode_name, sentinel_service) = match &mode {
            RedisMode::Standalone => ("standalone", None),
            RedisMode::Sentinel { service } => ("sentinel", Some(service.clone())),
            RedisMode::Cluster => ("cluster", None),
        };
        let namespace = options.namespace.clone().unwrap_or_else(|| wgate_testkit::unique_namespace("e2e"));
        let http = wgate_testkit::http_client();
        let mut tasks = Vec::new();

        let sim = wgate_upstream_sim::Application::build(wgate_upstream_sim::SimConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            api_keys: vec![SIM_KEY.into()],
            seed: Some(options.sim_seed),
            init_ms: options.sim_init_ms,
            qr_rotate_ms: options.sim_qr_rotate_ms,
            workers: Some(1),
            ..Default::default()
        })
        .await
        .expect("simulator starts");
        let sim_url = sim.base_url();
        tasks.push(tokio::spawn(async move {
            let _ = sim.run_until_stopped().await;
        }));
        let r = http.post(format!("{sim_url}/sim/faults")).json(&options.faults).send().await.expect("sim faults");
        assert!(r.status().is_success(), "faults refused: {}", r.text().await.unwrap_or_default());

        let mut api_settings = ApiSettings::on_loopback(&redis_url, &namespace, SECRET);
        // The API and the worker must agree on WGATE_PUBLIC_URL (relay and QR links), so the API's listener is bound
        // first and handed over.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding the API's listener");
        let api_address = listener.local_addr().expect("the API's address");
        api_settings.public_url = format!("http://{api_address}");
        api_settings.max_attempts = options.max_attempts;
        api_settings.sync_wait_ms = 10_000;
        // These tests are about the pipeline, not the limiter (the API's own tests cover it).
        api_settings.rate_per_second = 10_000.0;
        api_settings.rate_burst = 10_000;
        api_settings.max_sessions = options.max_sessions;
        api_settings.tenants_file = options.tenants_file.clone();
        api_settings.tenants_poll_ms = 50;
        api_settings.redis.ca_file = redis_tls.ca_file.clone();
        api_settings.redis.client_cert = redis_tls.client_cert.clone();
        api_settings.redis.client_key = redis_tls.client_key.clone();
        api_settings.redis.mode = mode_name.into();
        api_settings.redis.sentinel_service = sentinel_service.clone();
        api_settings.redis.queue_partitions = options.queue_partitions;
        // The API asks WhatsGate itself for the session commands and the QR windows.
        api_settings.upstream.url = sim_url.clone();
        api_settings.upstream.api_key = Some(SIM_KEY.to_owned().into());
        let worker_redis = api_settings.redis.clone();
        let api = wgate_api_proxy::Application::build_on(api_settings, listener).await.expect("API starts");
        assert_eq!(api.address(), api_address);
        let api_url = format!("http://{}", api.address());
        tasks.push(tokio::spawn(async move {
            let _ = api.run_until_stopped().await;
        }));

        let mut stop_workers = Vec::new();
        for _ in 0..options.workers {
            let worker = wgate_worker::Application::build(wgate_worker::Settings {
                redis: worker_redis.clone(),
                upstream: wgate_upstream::UpstreamSettings {
                    url: sim_url.clone(),
                    api_key: Some(options.worker_upstream_key.clone().into()),
                    timeout_ms: options.upstream_timeout_ms,
                },
                worker_admin_listen: "127.0.0.1:0".parse().expect("addr"),
                public_url: api_url.clone(),
                retry_base_ms: 10,
                retry_max_ms: 200,
                webhook_retry_schedule: Some(options.webhook_retry_schedule.clone()),
                webhook_timeout_ms: options.webhook_timeout_ms,
                webhook_concurrency: options.webhook_concurrency,
                webhook_endpoint_concurrency: options.webhook_endpoint_concurrency,
                egress_allow_nets: options.worker_egress_allow_nets.clone(),
                tenants_file: options.tenants_file.clone(),
                tenants_poll_ms: 50,
                queue_gauge_interval_ms: 100,
                ..Default::default()
            })
            .await
            .expect("worker starts");
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            stop_workers.push(tx);
            tasks.push(tokio::spawn(async move {
                let _ = worker
                    .run_until_stopped(async move {
                        let _ = rx.await;
                    })
                    .await;
            }));
        }

        // The test reads what the processes write: the same settings, partitions included.
        let queue = worker_redis.queue_config().expect("the stack's queue configuration");
        let store = JobStore::new(queue.clone()).expect("job store");
        let completions = Completions::start(&queue);
        Self { api: api_url, sim: sim_url, http, store, completions, tasks, stop_workers, _redis: None }
    }

    pub fn token(&self, tenant: &str) -> String {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = json!({"sub": tenant, "exp": now + 600, "iat": now, "aud": "wgate"});
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(SECRET.as_bytes()))
            .expect("signing")
    }

    /// A token with exactly these scopes (space separated).
    pub fn token_with_scope(&self, tenant: &str, scope: &str) -> String {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = json!({"sub": tenant, "exp": now + 600, "iat": now, "aud": "wgate", "scope": scope});
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(SECRET.as_bytes()))
            .expect("signing")
    }

    /// `POST /api/v1/session-create` as `tenant`, with extra headers.
    pub async fn create(&self, tenant: &str, body: &Value, headers: &[(&str, &str)]) -> Response {
        let mut req = self.http.post(format!("{}/api/v1/session-create", self.api)).bearer_auth(self.token(tenant));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.json(body).send().await.expect("session-create answered")
    }

    pub async fn get_job(&self, tenant: &str, id: &str) -> Response {
        self.http
            .get(format!("{}/api/v1/jobs/{id}", self.api))
            .bearer_auth(self.token(tenant))
            .send()
            .await
            .expect("job answered")
    }

    pub async fn sim_stats(&self) -> Value {
        self.http.get(format!("{}/sim/stats", self.sim)).send().await.expect("stats").json().await.expect("json")
    }

    /// Waits (on the completion channel, not by polling) until the job is terminal.
    pub async fn finished(&self, id: JobId, within: Duration) -> JobRecord {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let waiter = self.completions.waiter(id);
            let record = self.store.find(id).await.expect("redis").expect("job exists");
            if record.status.is_terminal() {
                return record;
            }
            if tokio::time::timeout_at(deadline, waiter).await.is_err() {
                panic!("job {id} not terminal within {within:?}: {record:?}");
            }
        }
    }

    /// Stops the workers gracefully and checks that nothing is left unprocessed in the queue.
    pub async fn assert_queue_drained(&self) {
        let counts = self.store.queue_counts().await.expect("counts");
        assert_eq!((counts.pending, counts.scheduled, counts.running), (0, 0, 0), "jobs left unprocessed");
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for tx in self.stop_workers.drain(..) {
            let _ = tx.send(());
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}

pub async fn json_of(r: Response) -> Value {
    r.json().await.expect("a JSON body")
}

pub fn header(r: &Response, name: &str) -> Option<String> {
    r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The tenant most tests act as.
pub fn acme() -> TenantId {
    TenantId::parse("acme").expect("a tenant id")
}
