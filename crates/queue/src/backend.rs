//! The apalis backend over a Redis Streams consumer group, in the push/ack style of apalis-amqp.
//!
//! - A fetcher task owns a dedicated connection for `XREADGROUP ... BLOCK` (a blocking call on the shared
//!   multiplexed connection would stall every other command) and reads only as many entries as there are free
//!   slots: the backend is the concurrency gate, like an AMQP prefetch window.
//! - The same loop takes over entries idle past the visibility timeout (`XAUTOCLAIM`): their consumer died.
//! - A janitor task promotes due retries from the scheduled set in batches, trims acked entries off the stream
//!   (cheaper than an `XDEL` per ack), refreshes the idle time of this consumer's in-flight entries (so a slow but
//!   live worker keeps them), and removes idle empty consumers.
//! - The acknowledger (the backend's layer) hands each attempt's outcome to a writer that batches whatever is
//!   queued into one run of the fenced finish script ([`JobStore::finish_attempts`]: outcome, ack, retry, publish),
//!   then frees the slot. A handler error leaves the entry un-acked: it is taken over after the visibility timeout
//!   and its next start counts an attempt.
//! - Closing stops the fetcher and gives fetched-but-unstarted entries back to the stream.
//!
//! A Redis outage never fails the worker: every background loop logs and retries with a capped backoff.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use apalis_core::{
    backend::finalize::Ephemeral,
    backend::{Backend, BackendConfig},
    error::BoxDynError,
    task::{ExecutionContext, Task, builder::TaskBuilder, task_id::RandomId, task_id::TaskId},
    worker::{
        context::WorkerContext,
        ext::ack::{Acknowledge, AcknowledgeLayer},
    },
};
use futures::{FutureExt, future::BoxFuture};
use redis::aio::MultiplexedConnection;
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use wgate_types::{JobKind, JobRecord};

use crate::{
    JobStore, Outcome, QueueError,
    attempt::{Delivery, Finished, Started, Written, parse_entries},
    keys::GROUP,
};

/// How the backend reads and keeps its entries.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// This process's consumer name; unique per process (see [`consumer_name`]).
    pub consumer: String,
    /// Jobs fetched or running at once in this process.
    pub concurrency: usize,
    /// `XREADGROUP BLOCK` time; bounds how long a stop waits for the fetcher.
    pub block: Duration,
    /// An entry idle this long belongs to a dead consumer and is taken over.
    pub visibility_timeout: Duration,
    /// How often idle entries are looked for.
    pub takeover_every: Duration,
    /// How often this consumer's in-flight entries are marked alive (well below the visibility timeout).
    pub refresh_every: Duration,
    /// How often due retries are promoted, and how many per script run.
    pub promote_every: Duration,
    pub promote_batch: usize,
    /// Consumers idle this long with nothing pending are removed from the group.
    pub consumer_idle: Duration,
}

impl StreamConfig {
    pub fn new(consumer: impl Into<String>, concurrency: usize) -> Self {
        Self {
            consumer: consumer.into(),
            concurrency: concurrency.max(1),
            block: Duration::from_millis(500),
            visibility_timeout: Duration::from_secs(15),
            takeover_every: Duration::from_secs(2),
            refresh_every: Duration::from_secs(3),
            promote_every: Duration::from_millis(100),
            promote_batch: 1000,
            consumer_idle: Duration::from_secs(3600),
        }
    }
}

/// A consumer name unique to this process: host, pid and a random suffix, so a restarted worker on the same
/// host starts at once and never inherits a dead process's identity.
pub fn consumer_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".into());
    format!("{host}-{}-{:08x}", std::process::id(), rand::random::<u32>())
}

struct Shared {
    store: JobStore,
    config: StreamConfig,
    slots: Semaphore,
    /// Entry ids handed out and not yet acknowledged: the ones the janitor keeps alive.
    in_flight: Mutex<HashSet<String>>,
    stopping: AtomicBool,
    stop: Notify,
    /// Outcomes on their way to the batching writer.
    acks: mpsc::UnboundedSender<AckRequest>,
    /// Attempts waiting to be started by the batching starter.
    starts: mpsc::UnboundedSender<StartRequest>,
}

struct StartRequest {
    delivery: Delivery,
    reply: oneshot::Sender<Result<Started, QueueError>>,
}

/// Starts attempts for the handler, batching those that arrive together into one script run.
#[derive(Clone)]
pub struct Starter {
    tx: mpsc::UnboundedSender<StartRequest>,
    store: JobStore,
}

impl Starter {
    /// [`JobStore::start_attempt`], batched with the other attempts starting now.
    pub async fn start(&self, d: &Delivery) -> Result<Started, QueueError> {
        let (reply, answer) = oneshot::channel();
        if self.tx.send(StartRequest { delivery: d.clone(), reply }).is_ok()
            && let Ok(r) = answer.await
        {
            return r;
        }
        self.store.start_attempt(d).await
    }
}

/// One attempt's outcome for the writer; `done` fires once it is written (or given up on).
struct AckRequest {
    delivery: Delivery,
    job: Box<JobRecord>,
    outcome: Outcome,
    done: oneshot::Sender<()>,
}

impl Shared {
    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn release_slot(&self, entry_id: &str) {
        if self.in_flight().remove(entry_id) {
            self.slots.add_permits(1);
        }
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn request_stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.stop.notify_waiters();
    }

    /// Sleeps `d`, or less when a stop is requested; answers whether to go on.
    async fn pause(&self, d: Duration) -> bool {
        if self.is_stopping() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => !self.is_stopping(),
            _ = self.stop.notified() => false,
        }
    }
}

/// Stops the backend's fetching from outside the worker (at SIGTERM, before the worker drains).
#[derive(Clone)]
pub struct StopHandle(Arc<Shared>);

impl StopHandle {
    pub fn stop(&self) {
        self.0.request_stop();
    }
}

/// The apalis backend. `Task<Delivery>` in, [`Finished`] acknowledged.
pub struct StreamBackend {
    shared: Arc<Shared>,
    tx: Option<mpsc::UnboundedSender<Delivery>>,
    rx: mpsc::UnboundedReceiver<Delivery>,
    fetcher: Option<tokio::task::JoinHandle<()>>,
    janitor: Option<tokio::task::JoinHandle<()>>,
    writer: Option<tokio::task::JoinHandle<()>>,
    starter: Option<tokio::task::JoinHandle<()>>,
    ack_rx: Option<mpsc::UnboundedReceiver<AckRequest>>,
    start_rx: Option<mpsc::UnboundedReceiver<StartRequest>>,
    closing: Option<BoxFuture<'static, ()>>,
}

impl std::fmt::Debug for StreamBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamBackend").field("consumer", &self.shared.config.consumer).finish_non_exhaustive()
    }
}

impl StreamBackend {
    /// Nothing runs until the worker polls it.
    pub fn new(store: JobStore, config: StreamConfig) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let (acks, ack_rx) = mpsc::unbounded_channel();
        let (starts, start_rx) = mpsc::unbounded_channel();
        let slots = Semaphore::new(config.concurrency);
        let shared = Arc::new(Shared {
            store,
            config,
            slots,
            in_flight: Mutex::new(HashSet::new()),
            stopping: AtomicBool::new(false),
            stop: Notify::new(),
            acks,
            starts,
        });
        Self {
            shared,
            tx: Some(tx),
            rx,
            fetcher: None,
            janitor: None,
            writer: None,
            starter: None,
            ack_rx: Some(ack_rx),
            start_rx: Some(start_rx),
            closing: None,
        }
    }

    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.shared.clone())
    }

    /// The handle the job handler starts its attempts through.
    pub fn starter(&self) -> Starter {
        Starter { tx: self.shared.starts.clone(), store: self.shared.store.clone() }
    }

    pub fn consumer(&self) -> &str {
        &self.shared.config.consumer
    }

    fn start(&mut self) {
        if let Some(tx) = self.tx.take() {
            self.fetcher = Some(tokio::spawn(fetch_loop(self.shared.clone(), tx)));
            self.janitor = Some(tokio::spawn(janitor_loop(self.shared.clone())));
        }
        if let Some(rx) = self.ack_rx.take() {
            self.writer = Some(tokio::spawn(write_loop(self.shared.clone(), rx)));
        }
        if let Some(rx) = self.start_rx.take() {
            self.starter = Some(tokio::spawn(start_loop(self.shared.clone(), rx)));
        }
    }
}

impl Backend for StreamBackend {
    type Task = Task<Delivery>;
    type Error = QueueError;

    fn poll_ready(&mut self, _cx: &mut Context<'_>, _worker: &WorkerContext) -> Poll<Result<(), Self::Error>> {
        self.start();
        Poll::Ready(Ok(()))
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        _worker: &WorkerContext,
    ) -> Poll<Option<Result<Self::Task, Self::Error>>> {
        self.start();
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(d)) => {
                let task =
                    TaskBuilder::new(d.clone()).task_id(TaskId::from_string(d.job_id.to_string())).data(d).build();
                Poll::Ready(Some(Ok(task)))
            }
            // The fetcher stopped: no more tasks.
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_close(&mut self, cx: &mut Context<'_>, _worker: &WorkerContext) -> Poll<Result<(), Self::Error>> {
        if self.closing.is_none() {
            self.shared.request_stop();
            let fetcher = self.fetcher.take();
            let janitor = self.janitor.take();
            let writer = self.writer.take();
            let starter = self.starter.take();
            let shared = self.shared.clone();
            // Entries already fetched but never started go back to the stream.
            let mut rx = std::mem::replace(&mut self.rx, mpsc::unbounded_channel().1);
            self.closing = Some(
                async move {
                    if let Some(f) = fetcher {
                        let _ = f.await;
                    }
                    let mut unstarted = Vec::new();
                    while let Ok(d) = rx.try_recv() {
                        unstarted.push(d);
                    }
                    if !unstarted.is_empty() {
                        match shared.store.release(&unstarted).await {
                            Ok(()) => tracing::info!(count = unstarted.len(), "gave unstarted jobs back to the queue"),
                            Err(e) => tracing::warn!(error = %e, "could not give unstarted jobs back; they will be taken over"),
                        }
                        for d in &unstarted {
                            shared.release_slot(&d.entry_id);
                        }
                    }
                    // Every acknowledgement has been awaited before the worker closes its backend.
                    for task in [janitor, writer, starter].into_iter().flatten() {
                        task.abort();
                    }
                }
                .boxed(),
            );
        }
        match self.closing.as_mut().map(|f| f.poll_unpin(cx)) {
            Some(Poll::Pending) => Poll::Pending,
            _ => Poll::Ready(Ok(())),
        }
    }
}

impl BackendConfig for StreamBackend {
    type Args = Delivery;
    type Id = RandomId;
    type Kind = Ephemeral;
    type Config = StreamConfig;
    type Layer = AcknowledgeLayer<StreamAck>;

    fn config(&self) -> &Self::Config {
        &self.shared.config
    }

    fn middleware(&mut self, _worker: &mut WorkerContext) -> Self::Layer {
        AcknowledgeLayer::new(StreamAck { shared: self.shared.clone() })
    }
}

/// Writes each attempt's outcome (ack + outcome + retry + publish in one script) and frees its slot.
#[derive(Clone)]
pub struct StreamAck {
    shared: Arc<Shared>,
}

impl Acknowledge<Finished> for StreamAck {
    type Error = QueueError;
    type Future = BoxFuture<'static, Result<(), QueueError>>;

    fn ack(&mut self, res: &Result<Finished, BoxDynError>, ctx: &ExecutionContext) -> Self::Future {
        let shared = self.shared.clone();
        let delivery = ctx.data().get::<Delivery>().cloned();
        let finished = match res {
            Ok(f) => Ok(f.clone()),
            Err(e) => Err(e.to_string()),
        };
        async move {
            match finished {
                Ok(f) => {
                    let entry_id = f.delivery.entry_id.clone();
                    if let (Some(job), Some(outcome)) = (f.job, f.outcome) {
                        let (done, written) = oneshot::channel();
                        let request = AckRequest { delivery: f.delivery, job, outcome, done };
                        match shared.acks.send(request) {
                            Ok(()) => {
                                let _ = written.await;
                            }
                            Err(mpsc::error::SendError(r)) => write_batch(&shared, vec![r]).await,
                        }
                    }
                    shared.release_slot(&entry_id);
                }
                Err(e) => {
                    // Left un-acked and no longer kept alive: taken over after the visibility timeout, and the
                    // next start counts the attempt.
                    tracing::error!(error = %e, job.id = ?delivery.as_ref().map(|d| d.job_id.to_string()), "job handler failed");
                    if let Some(d) = delivery {
                        shared.release_slot(&d.entry_id);
                    }
                }
            }
            Ok(())
        }
        .boxed()
    }
}

/// Batches outcomes: each write takes everything queued meanwhile (up to 128), a few writes at a time, so
/// under load one script run acknowledges many attempts.
async fn write_loop(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<AckRequest>) {
    let writers = Arc::new(Semaphore::new(4));
    loop {
        let Ok(permit) = writers.clone().acquire_owned().await else { return };
        let Some(first) = rx.recv().await else { return };
        let mut batch = vec![first];
        while batch.len() < 128 {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let shared = shared.clone();
        tokio::spawn(async move {
            write_batch(&shared, batch).await;
            drop(permit);
        });
    }
}

/// Batches attempt starts the same way as outcomes.
async fn start_loop(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<StartRequest>) {
    let runners = Arc::new(Semaphore::new(4));
    loop {
        let Ok(permit) = runners.clone().acquire_owned().await else { return };
        let Some(first) = rx.recv().await else { return };
        let mut batch = vec![first];
        while batch.len() < 128 {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let store = shared.store.clone();
        tokio::spawn(async move {
            let deliveries: Vec<Delivery> = batch.iter().map(|r| r.delivery.clone()).collect();
            match store.start_attempts(&deliveries).await {
                Ok(started) if started.len() == batch.len() => {
                    for (r, s) in batch.into_iter().zip(started) {
                        let _ = r.reply.send(Ok(s));
                    }
                }
                Ok(_) => {
                    for r in batch {
                        let _ = r.reply.send(Err(QueueError::Corrupt("start script answered a short list".into())));
                    }
                }
                Err(e) => {
                    for r in batch {
                        let _ = r.reply.send(Err(e.clone()));
                    }
                }
            }
            drop(permit);
        });
    }
}

/// Writes a batch of outcomes, retrying while Redis is unreachable (bounded by the visibility timeout: after
/// that the entries may be someone else's, and the fence would refuse the writes anyway).
async fn write_batch(shared: &Shared, batch: Vec<AckRequest>) {
    let deadline = Instant::now() + shared.config.visibility_timeout;
    let mut backoff = Duration::from_millis(50);
    let items: Vec<(&Delivery, &JobRecord, &Outcome)> =
        batch.iter().map(|r| (&r.delivery, r.job.as_ref(), &r.outcome)).collect();
    loop {
        match shared.store.finish_attempts(&items).await {
            Ok(written) => {
                for (r, w) in batch.iter().zip(written) {
                    if w == Written::Stale {
                        tracing::info!(job.id = %r.job.id, attempt = r.job.attempts, "attempt outcome not written: the job was taken over");
                    }
                }
                break;
            }
            Err(e) if Instant::now() + backoff < deadline => {
                tracing::warn!(error = %e, count = batch.len(), "writing attempt outcomes; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            Err(e) => {
                tracing::error!(error = %e, count = batch.len(), "could not write attempt outcomes; the jobs will be taken over and reconciled");
                break;
            }
        }
    }
    drop(items);
    for r in batch {
        let _ = r.done.send(());
    }
}

async fn reader(store: &JobStore, block: Duration) -> Result<MultiplexedConnection, QueueError> {
    let timeout = store.config().command_timeout;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(block + timeout));
    // In Sentinel mode every (re)connection asks for the primary anew, so the reader follows a failover.
    let client = store.redis().client().await?;
    let conn = tokio::time::timeout(timeout, client.get_multiplexed_async_connection_with_config(&config))
        .await
        .map_err(|_| QueueError::Unavailable("connecting the stream reader timed out".into()))??;
    Ok(conn)
}

async fn fetch_loop(shared: Arc<Shared>, tx: mpsc::UnboundedSender<Delivery>) {
    let store = shared.store.clone();
    let config = shared.config.clone();
    let stream = store.keys().stream(JobKind::SessionCreate);
    let mut conn: Option<MultiplexedConnection> = None;
    let mut backoff = Duration::from_millis(50);
    let mut next_takeover = Instant::now();
    let mut cursor = "0-0".to_owned();
    let mut group_ready = false;
    loop {
        // Wait for at least one free slot, then take every free slot.
        let first = tokio::select! {
            p = shared.slots.acquire() => p,
            _ = shared.stop.notified() => break,
        };
        let Ok(first) = first else { break };
        if shared.is_stopping() {
            break;
        }
        first.forget();
        let mut n = 1 + take_free(&shared.slots);
        // Under load slots free up one by one: gather a batch for a moment rather than paying one XREADGROUP
        // round trip per job. An idle worker has every slot free and reads at once.
        let batch = (config.concurrency / 4).clamp(1, 64);
        if n < batch {
            let _ = tokio::time::timeout(Duration::from_millis(1), async {
                while n < batch {
                    match shared.slots.acquire().await {
                        Ok(p) => {
                            p.forget();
                            n += 1 + take_free(&shared.slots);
                        }
                        Err(_) => break,
                    }
                }
            })
            .await;
        }
        let result = async {
            if !group_ready {
                store.ensure_group().await?;
                group_ready = true;
            }
            let mut got = Vec::new();
            if Instant::now() >= next_takeover {
                next_takeover = Instant::now() + config.takeover_every;
                let (claimed, next) = store.take_over(&config.consumer, config.visibility_timeout, &cursor, n).await?;
                if !claimed.is_empty() {
                    tracing::warn!(count = claimed.len(), "took over jobs of a consumer that stopped answering");
                }
                cursor = next;
                got = claimed;
            }
            if got.len() < n {
                if conn.is_none() {
                    conn = Some(reader(&store, config.block).await?);
                }
                let c = conn.as_mut().ok_or_else(|| QueueError::Unavailable("no reader".into()))?;
                let read: Result<redis::Value, QueueError> = redis::cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg(GROUP)
                    .arg(&config.consumer)
                    .arg("COUNT")
                    .arg(n - got.len())
                    .arg("BLOCK")
                    .arg(u64::try_from(config.block.as_millis()).unwrap_or(500))
                    .arg("STREAMS")
                    .arg(&stream)
                    .arg(">")
                    .query_async(c)
                    .await
                    .map_err(QueueError::from);
                let reply = match read {
                    Ok(reply) => reply,
                    // Entries just taken over are ours now: run them rather than leave them to idle again.
                    Err(e) if !got.is_empty() => {
                        tracing::warn!(error = %e, "reading the job stream");
                        conn = None;
                        redis::Value::Nil
                    }
                    Err(e) => return Err(e),
                };
                let mut poison = Vec::new();
                if let redis::Value::Array(streams) = reply {
                    for s in streams {
                        if let redis::Value::Array(parts) = s
                            && let Some(entries) = parts.get(1)
                        {
                            let (good, bad) = parse_entries(entries, false);
                            got.extend(good);
                            poison.extend(bad);
                        }
                    }
                }
                // Left pending, they would be taken over (and set aside) after the visibility timeout.
                if let Err(e) = store.dead_letter(&poison).await {
                    tracing::warn!(error = %e, count = poison.len(), "could not dead-letter entries; retried at takeover");
                }
            }
            Ok::<_, QueueError>(got)
        }
        .await;
        match result {
            Ok(got) => {
                backoff = Duration::from_millis(50);
                let unused = n.saturating_sub(got.len());
                shared.slots.add_permits(unused);
                {
                    let mut in_flight = shared.in_flight();
                    for d in &got {
                        in_flight.insert(d.entry_id.clone());
                    }
                }
                for d in got {
                    if tx.send(d.clone()).is_err() {
                        shared.release_slot(&d.entry_id);
                    }
                }
            }
            Err(e) => {
                shared.slots.add_permits(n);
                let msg = e.to_string();
                if msg.contains("NOGROUP") {
                    // Redis lost the group (restarted without persistence): create it again.
                    group_ready = false;
                } else {
                    tracing::warn!(error = %msg, "reading the job stream; retrying");
                    conn = None;
                }
                if !shared.pause(backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
    tracing::debug!("job stream fetcher stopped");
}

/// Takes every free slot at once; answers how many.
fn take_free(slots: &Semaphore) -> usize {
    let mut n = 0;
    while let Ok(p) = slots.try_acquire() {
        p.forget();
        n += 1;
    }
    n
}

async fn janitor_loop(shared: Arc<Shared>) {
    let store = shared.store.clone();
    let config = shared.config.clone();
    let mut next_refresh = Instant::now() + config.refresh_every;
    let mut next_vacuum = Instant::now() + Duration::from_secs(5);
    let mut failing = false;
    loop {
        let mut result = Ok(());
        loop {
            match store.promote_due(config.promote_batch).await {
                Ok(n) if n >= config.promote_batch => continue,
                Ok(_) => break,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if result.is_ok()
            && let Err(e) = store.trim().await
        {
            result = Err(e);
        }
        if result.is_ok() && Instant::now() >= next_refresh {
            next_refresh = Instant::now() + config.refresh_every;
            let ids: Vec<String> = shared.in_flight().iter().cloned().collect();
            match store.refresh(&config.consumer, &ids).await {
                Ok(lost) => {
                    for id in lost {
                        tracing::warn!(entry.id = %id, "an in-flight job was taken over by another worker");
                    }
                }
                Err(e) => result = Err(e),
            }
        }
        if result.is_ok() && Instant::now() >= next_vacuum {
            next_vacuum = Instant::now() + Duration::from_secs(60);
            result = store.vacuum(config.consumer_idle).await;
        }
        match result {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "queue housekeeping failed; retrying");
            }
            Err(_) => {}
        }
        if !shared.pause(config.promote_every).await {
            break;
        }
    }
}
