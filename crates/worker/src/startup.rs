//! `Application`: builds every part of the worker (so tests run it in-process on port 0) and runs it until a
//! shutdown future resolves.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use apalis_core::worker::{builder::WorkerBuilder, context::WorkerContext, ext::parallelize::ParallelizeExt};
use wgate_queue::{JobStore, StopHandle, StreamBackend, StreamConfig, consumer_name};
use wgate_service::{AdminServer, ReadyCheck};
use wgate_types::JobKind;
use wgate_upstream::{Upstream, UpstreamMetrics};

use crate::{
    Settings,
    job::{AttemptDeps, RetryPolicy, handle},
    metrics::WorkerMetrics,
};

type RunFuture = futures::future::BoxFuture<'static, Result<(), apalis_core::error::WorkerError>>;

pub struct Application {
    admin: actix_web::dev::Server,
    admin_addr: SocketAddr,
    worker: RunFuture,
    context: WorkerContext,
    stop: StopHandle,
    store: JobStore,
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
        let mut stream = StreamConfig::new(consumer.clone(), settings.worker_concurrency);
        stream.visibility_timeout = Duration::from_millis(settings.visibility_timeout_ms.max(100));
        stream.refresh_every = stream.visibility_timeout / 5;
        stream.takeover_every = (stream.visibility_timeout / 7).max(Duration::from_millis(50));
        let backend = StreamBackend::new(store.clone(), stream);
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
        let worker = WorkerBuilder::new(&context).backend(backend).data(deps).parallelize(tokio::spawn).build(handle);
        let worker: RunFuture = Box::pin(worker.run());
        Ok(Self { admin: admin.into_server(), admin_addr, worker, context, stop, store, metrics, settings, consumer })
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Runs until `shutdown` resolves, then stops fetching, lets in-flight jobs finish (bounded by
    /// `WGATE_SHUTDOWN_TIMEOUT_MS`) and gives fetched-but-unstarted jobs back to the queue.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let Self { admin, admin_addr, worker, context, stop, store, metrics, settings, consumer } = self;
        tracing::info!(admin = %admin_addr, consumer = %consumer, concurrency = settings.worker_concurrency, "wgate-worker started");
        let admin_handle = admin.handle();
        let admin_task = tokio::spawn(admin);
        let gauges =
            tokio::spawn(gauge_loop(store, metrics, Duration::from_millis(settings.queue_gauge_interval_ms.max(50))));
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
                stop.stop();
                let _ = context.stop();
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
        admin_handle.stop(true).await;
        let _ = admin_task.await;
        outcome
    }
}

async fn gauge_loop(store: JobStore, metrics: WorkerMetrics, every: Duration) {
    let queue = JobKind::SessionCreate.as_str();
    loop {
        match store.queue_counts().await {
            Ok(c) => {
                for (state, v) in
                    [("pending", c.pending), ("scheduled", c.scheduled), ("running", c.running), ("dead", c.dead)]
                {
                    metrics.queue_jobs.with_label_values(&[queue, state]).set(i64::try_from(v).unwrap_or(i64::MAX));
                }
                metrics.dead_letters.with_label_values(&[queue]).set(i64::try_from(c.dead_letters).unwrap_or(i64::MAX));
            }
            Err(e) => tracing::debug!(error = %e, "reading queue gauges"),
        }
        tokio::time::sleep(every).await;
    }
}
