//! Enqueues, batched: the jobs of concurrent requests share one run of the enqueue script. Whatever is queued
//! while a run is in flight goes in the next one, so an idle gateway adds no wait and a busy one pays the cost of a
//! script call once per batch instead of once per job. The script handles each job of a batch in arrival order,
//! exactly as if each were alone (idempotency, quota, the tenant's bucket), and answers each job's own outcome.
//!
//! A run only touches the keys of one prefix (one hash slot): requests are grouped by the prefix their keys use,
//! and each group is its own run.

use std::sync::{Arc, OnceLock};

use futures::future::join_all;
use redis::Value;
use tokio::sync::{mpsc, oneshot};

use crate::{QueueConfig, QueueError, backend::run_batches_at, keys::GROUP, redis_conn::Redis, scripts, store::ms};

/// Script runs in flight at once: while they run, arriving jobs wait for the next batch.
const RUNS_AT_ONCE: usize = 2;

/// One job for the enqueue script: its keys' prefix and stream, and its arguments (see `enqueue.lua`).
pub(crate) struct EnqueueJob {
    pub(crate) prefix: String,
    pub(crate) stream: String,
    pub(crate) args: Vec<String>,
}

struct Request {
    job: EnqueueJob,
    reply: oneshot::Sender<Result<Value, QueueError>>,
}

/// What a batch's runs need: the connection and the settings every job of a batch shares.
#[derive(Clone)]
struct Runner {
    redis: Redis,
    /// TTL of idempotency keys (ms).
    idempotency_ttl_ms: u64,
}

/// The batching loop's handle, started on first use (it needs a runtime) and shared by a store's clones. The loop
/// holds no store, so it ends when the last clone is dropped.
#[derive(Clone, Default)]
pub(crate) struct Enqueuer {
    tx: Arc<OnceLock<mpsc::UnboundedSender<Request>>>,
}

impl Enqueuer {
    /// Starts the batching loop on the current runtime now, when there is one.
    pub(crate) fn start_now(&self, redis: &Redis, config: &QueueConfig) {
        if tokio::runtime::Handle::try_current().is_ok() {
            self.sender(redis, config);
        }
    }

    fn sender(&self, redis: &Redis, config: &QueueConfig) -> &mpsc::UnboundedSender<Request> {
        self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel::<Request>();
            let runner = Runner::new(redis, config);
            tokio::spawn(run_batches_at(rx, RUNS_AT_ONCE, move |batch| {
                let runner = runner.clone();
                async move { runner.run(batch).await }
            }));
            tx
        })
    }

    /// Runs `job` through the enqueue script with the others arriving now; answers its own reply. Bounded: a job
    /// still waiting for its run when the bound passes is dropped unsent, and the caller told Redis is unavailable.
    pub(crate) async fn enqueue(
        &self,
        redis: &Redis,
        config: &QueueConfig,
        job: EnqueueJob,
    ) -> Result<Value, QueueError> {
        let (reply, answer) = oneshot::channel();
        let request = match self.sender(redis, config).send(Request { job, reply }) {
            Ok(()) => None,
            Err(mpsc::error::SendError(request)) => Some(request),
        };
        if let Some(request) = request {
            // The loop's runtime is gone: this job runs alone, here.
            Runner::new(redis, config).run(vec![request]).await;
        }
        // Waiting for a run in flight, then this job's own run (and its replicas' acknowledgement).
        let bound = config.command_timeout * 4 + config.wait_timeout * 2;
        match tokio::time::timeout(bound, answer).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(QueueError::Unavailable("enqueue: the batch ended without an answer".into())),
            Err(_) => Err(QueueError::Unavailable(format!("enqueue: no answer from redis within {bound:?}"))),
        }
    }
}

impl Runner {
    fn new(redis: &Redis, config: &QueueConfig) -> Self {
        Self { redis: redis.clone(), idempotency_ttl_ms: ms(config.idempotency_ttl) }
    }

    /// One batch: the jobs whose callers still wait, one script run per key prefix.
    async fn run(&self, batch: Vec<Request>) {
        let mut groups: Vec<Vec<Request>> = Vec::new();
        for r in batch.into_iter().filter(|r| !r.reply.is_closed()) {
            match groups.iter_mut().find(|g| g[0].job.prefix == r.job.prefix && g[0].job.stream == r.job.stream) {
                Some(g) => g.push(r),
                None => groups.push(vec![r]),
            }
        }
        join_all(groups.into_iter().map(|g| self.run_one_prefix(g))).await;
    }

    async fn run_one_prefix(&self, group: Vec<Request>) {
        let Some(first) = group.first() else { return };
        let mut inv = scripts::ENQUEUE.prepare_invoke();
        inv.key(&first.job.stream).arg(&first.job.prefix).arg(GROUP).arg(self.idempotency_ttl_ms);
        for r in &group {
            for a in &r.job.args {
                inv.arg(a);
            }
        }
        let replies: Result<Vec<Value>, QueueError> =
            self.redis.call_acknowledged("enqueue", |mut c| async move { inv.invoke_async(&mut c).await }).await;
        match replies {
            Ok(replies) if replies.len() == group.len() => {
                for (r, v) in group.into_iter().zip(replies) {
                    let _ = r.reply.send(Ok(v));
                }
            }
            Ok(replies) => {
                let e = QueueError::Corrupt(format!(
                    "enqueue script answered {} outcomes for {} jobs",
                    replies.len(),
                    group.len()
                ));
                for r in group {
                    let _ = r.reply.send(Err(e.clone()));
                }
            }
            Err(e) => {
                for r in group {
                    let _ = r.reply.send(Err(e.clone()));
                }
            }
        }
    }
}
