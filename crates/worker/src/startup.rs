//! `Application`: builds every part of the worker (so tests run it in-process on port 0) and runs it until a
//! shutdown future resolves.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use apalis_core::worker::{builder::WorkerBuilder, context::WorkerContext, ext::parallelize::ParallelizeExt};
use futures::FutureExt as _;
use wgate_queue::{JobStore, Queue, StopHandle, StreamBackend, StreamConfig, consumer_name};
use wgate_service::{
    AdminServer, ReadyCheck,
    tenants::{TenantTable, Tenants},
};
use wgate_types::JobKind;
use wgate_upstream::{Upstream, UpstreamMetrics};

use crate::{
    Settings,
    job::{AttemptDeps, RetryPolicy, handle},
    metrics::WorkerMetrics,
    webhook::{DeliveryDeps, EndpointSlots},
};

type RunFuture = futures::future::BoxFuture<'static, Result<(), apalis_core::error::WorkerError>>;

pub struct Application {
    admin: actix_web::dev::Server,
    admin_addr: SocketAddr,
    worker: RunFuture,
    contexts: Vec<WorkerContext>,
    stops: Vec<StopHandle>,
    store: JobStore,
    /// The tenants file's settings (the webhook keys are used here), followed while the worker runs.
    tenants: TenantTable,
    metrics: WorkerMetrics,
    settings: Settings,
    consumer: String,
}

impl Application {
    /// Builds everything and binds the admin listener; nothing runs until [`Application::run_until_stopped`].
    /// Redis need not be up.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.validate()?;
        let mut upstream_config = settings.upstream.config().context("WGATE_UPSTREAM_API_KEY is required")?;
        let store = JobStore::new(settings.queue_config()?).map_err(|e| anyhow::anyhow!("{e}"))?;

        let registry = wgate_service::metrics::new_registry();
        let metrics = WorkerMetrics::register(&registry).context("registering worker metrics")?;
        let upstream_metrics = UpstreamMetrics::register(&registry).context("registering upstream metrics")?;
        upstream_config.max_idle_connections = settings.worker_concurrency.max(8);
        let upstream = Upstream::new(upstream_config).map_err(|e| anyhow::anyhow!(e))?.with_metrics(upstream_metrics);

        let ready_store = store.clone();
        let ready: ReadyCheck = Arc::new(move || {
            let store = ready_store.clone();
            Box::pin(async move { store.ping().await.map_err(|e| e.to_string()) })
        });
        let admin = AdminServer::bind(settings.worker_admin_listen, registry, ready)
            .with_context(|| format!("WGATE_WORKER_ADMIN_LISTEN: cannot listen on {}", settings.worker_admin_listen))?;
        let admin_addr = admin.local_addr();

        let consumer = consumer_name();
        let stream_config = |concurrency: usize| {
            let mut stream = StreamConfig::new(consumer.clone(), concurrency);
            stream.visibility_timeout = Duration::from_millis(settings.visibility_timeout_ms.max(100));
            stream.refresh_every = stream.visibility_timeout / 5;
            stream.takeover_every = (stream.visibility_timeout / 7).max(Duration::from_millis(50));
            stream
        };
        let backend = StreamBackend::new(store.clone(), stream_config(settings.worker_concurrency));
        let stop = backend.stop_handle();

        let deps = Arc::new(AttemptDeps {
            starter: backend.starter(),
            upstream,
            public_url: settings.public_url.clone(),
            retry: RetryPolicy {
                base: Duration::from_millis(settings.retry_base_ms),
                max: Duration::from_millis(settings.retry_max_ms),
            },
            metrics: metrics.clone(),
        });
        let context = WorkerContext::new(&consumer);
        let jobs = WorkerBuilder::new(&context).backend(backend).data(deps).parallelize(tokio::spawn).build(handle);

        // The second queue: webhook deliveries to tenants, on the same machinery with its own slots.
        let tenants = match &settings.tenants_file {
            Some(path) => {
                Tenants::load(path).map_err(|e| anyhow::anyhow!("configuration error: WGATE_TENANTS_FILE: {e}"))?
            }
            None => Tenants::default(),
        };
        let tenants = TenantTable::new(tenants);
        let hook_store = store.for_queue(Queue::Webhook);
        let hook_backend = StreamBackend::new(hook_store.clone(), stream_config(settings.webhook_concurrency));
        let hook_stop = hook_backend.stop_handle();
        let schedule = settings.webhook_schedule()?;
        let delivery = Arc::new(DeliveryDeps {
            batcher: wgate_queue::DeliveryBatcher::start(hook_store.clone(), schedule.attempts()),
            store: hook_store,
            client: delivery_client(&settings, admin_addr)?,
            tenants: tenants.clone(),
            signing_key: wgate_webhooks::SigningKey::new(settings.webhook_signing_key.clone()),
            schedule,
            timeout: Duration::from_millis(settings.webhook_timeout_ms),
            endpoints: EndpointSlots::new(settings.webhook_endpoint_concurrency),
            metrics: metrics.clone(),
        });
        let hook_context = WorkerContext::new(&format!("{consumer}-webhooks"));
        let hooks = WorkerBuilder::new(&hook_context)
            .backend(hook_backend)
            .data(delivery)
            .parallelize(tokio::spawn)
            .build(crate::webhook::handle);
        let (jobs, hooks): (RunFuture, RunFuture) = (Box::pin(jobs.run()), Box::pin(hooks.run()));
        let worker: RunFuture = Box::pin(futures::future::join(jobs, hooks).map(|(a, b)| a.and(b)));
        Ok(Self {
            admin: admin.into_server(),
            admin_addr,
            worker,
            contexts: vec![context, hook_context],
            stops: vec![stop, hook_stop],
            store,
            tenants,
            metrics,
            settings,
            consumer,
        })
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Runs until `shutdown` resolves, then stops fetching, lets in-flight jobs finish (bounded by
    /// `WGATE_SHUTDOWN_TIMEOUT_MS`) and gives fetched-but-unstarted jobs back to the queue.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let Self { admin, admin_addr, worker, contexts, stops, store, tenants, metrics, settings, consumer } = self;
        tracing::info!(admin = %admin_addr, consumer = %consumer, concurrency = settings.worker_concurrency, "wgate-worker started");
        let admin_handle = admin.handle();
        let admin_task = tokio::spawn(admin);
        let every = Duration::from_millis(settings.queue_gauge_interval_ms.max(50));
        let gauges = tokio::spawn(gauge_loop(store, metrics, every));
        // SIGHUP or a changed file reloads it; a bad file is logged and the previous settings stay.
        let tenants_watch = settings.tenants_file.clone().map(|path| {
            let poll = Duration::from_millis(settings.tenants_poll_ms.max(10));
            tokio::spawn(wgate_service::tenants::watch(path, tenants, poll, |_| {}))
        });
        let mut worker = tokio::spawn(worker);
        let result = tokio::select! {
            r = &mut worker => Some(r),
            _ = shutdown => None,
        };
        let outcome = match result {
            Some(r) => match r {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(anyhow::anyhow!("the worker stopped: {e}")),
                Err(e) => Err(anyhow::anyhow!("the worker task failed: {e}")),
            },
            None => {
                tracing::info!("stopping: no new jobs; waiting for those in flight");
                for stop in &stops {
                    stop.stop();
                }
                for context in &contexts {
                    let _ = context.stop();
                }
                match tokio::time::timeout(Duration::from_millis(settings.shutdown_timeout_ms), &mut worker).await {
                    Ok(_) => tracing::info!("all in-flight jobs finished"),
                    Err(_) => {
                        worker.abort();
                        tracing::warn!(
                            "shutdown timeout: jobs still running are left to be taken over by another worker"
                        );
                    }
                }
                Ok(())
            }
        };
        gauges.abort();
        if let Some(watch) = tenants_watch {
            watch.abort();
        }
        admin_handle.stop(true).await;
        let _ = admin_task.await;
        outcome
    }
}

/// The client webhook deliveries go through: the egress guard (public addresses only unless
/// `WGATE_EGRESS_ALLOW_NETS` opens more, never the gateway's own addresses, no redirects, no proxy).
fn delivery_client(settings: &Settings, admin: std::net::SocketAddr) -> anyhow::Result<wgate_egress::EgressClient> {
    let nets = wgate_egress::EgressPolicy::parse_nets(&settings.egress_allow_nets)
        .map_err(|e| anyhow::anyhow!("configuration error: WGATE_EGRESS_ALLOW_NETS: {e}"))?;
    let timeout = Duration::from_millis(settings.webhook_timeout_ms);
    wgate_egress::EgressPolicy::new(nets, vec![admin])
        .with_public_url(&settings.public_url)
        .client(
            reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(5)))
                .pool_max_idle_per_host(settings.webhook_endpoint_concurrency),
        )
        .context("building the webhook delivery client")
}

/// Reads both queues' gauges from Redis.
async fn gauge_loop(store: JobStore, metrics: WorkerMetrics, every: Duration) {
    let queues = [JobKind::SessionCreate.into(), Queue::Webhook].map(|q: Queue| (q.as_str(), store.for_queue(q)));
    loop {
        for (queue, store) in &queues {
            match store.queue_counts().await {
                Ok(c) => {
                    for (state, v) in
                        [("pending", c.pending), ("scheduled", c.scheduled), ("running", c.running), ("dead", c.dead)]
                    {
                        metrics.queue_jobs.with_label_values(&[queue, state]).set(i64::try_from(v).unwrap_or(i64::MAX));
                    }
                    metrics
                        .dead_letters
                        .with_label_values(&[queue])
                        .set(i64::try_from(c.dead_letters).unwrap_or(i64::MAX));
                }
                Err(e) => tracing::debug!(error = %e, "reading queue gauges"),
            }
        }
        tokio::time::sleep(every).await;
    }
}
