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
//!   then frees the slot. With one partition the same script reads the next entries for three quarters of the
//!   slots it frees and starts their attempts, and they pass straight to those slots: a job read so costs one round
//!   trip (its finish) instead of three; the fetcher gets the other quarter, so it keeps reading and taking over. A handler error leaves the entry un-acked: it is taken over after the visibility timeout
//!   and its next start counts an attempt.
//! - Closing stops the fetcher and gives fetched-but-unrun entries back to the stream, unstarted.
//!
//! A Redis outage never fails the worker: every background loop logs and retries with a capped backoff.

mod ack;
mod batch;
mod config;
mod fetcher;
mod janitor;
mod start;

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use apalis_core::{
    backend::finalize::Ephemeral,
    backend::{Backend, BackendConfig},
    task::{Task, builder::TaskBuilder, task_id::RandomId, task_id::TaskId},
    worker::{context::WorkerContext, ext::ack::AcknowledgeLayer},
};
use futures::{FutureExt, future::BoxFuture};
use tokio::sync::{Notify, Semaphore, mpsc};

pub(crate) use self::batch::{run_batches, run_batches_at};
pub use self::{
    ack::StreamAck,
    config::{StreamConfig, consumer_name},
    start::Starter,
};
use self::{
    ack::{AckRequest, write_loop},
    fetcher::fetch_loop,
    janitor::janitor_loop,
    start::{StartRequest, start_loop},
};
use crate::{
    JobStore, QueueError,
    attempt::{Begun, Delivery},
};

struct Shared {
    store: JobStore,
    config: StreamConfig,
    slots: Semaphore,
    /// Entries (partition, entry id) handed out and not yet acknowledged: the ones the janitor keeps alive.
    in_flight: Mutex<HashSet<(usize, String)>>,
    stopping: AtomicBool,
    stop: Notify,
    /// Outcomes on their way to the batching writer.
    acks: mpsc::UnboundedSender<AckRequest>,
    /// Attempts waiting to be started by the batching starter.
    starts: mpsc::UnboundedSender<StartRequest>,
    /// Where the writer hands the entries its finish script read for the slots it freed; gone once stopping, so
    /// the worker's stream ends when the fetchers do.
    next: Mutex<Option<mpsc::UnboundedSender<Delivery>>>,
    /// The attempts the finish script started as it read their entries, by (partition, entry id), until the
    /// handler's start takes them.
    begun: Mutex<HashMap<(usize, String), Begun>>,
}

/// The key of an entry in flight (and of its started attempt): its partition and entry id.
fn slot_of(d: &Delivery) -> (usize, String) {
    (d.partition, d.entry_id.clone())
}

impl Shared {
    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashSet<(usize, String)>> {
        self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn begun(&self) -> std::sync::MutexGuard<'_, HashMap<(usize, String), Begun>> {
        self.begun.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The attempt already started for `d`, once.
    fn take_begun(&self, d: &Delivery) -> Option<Begun> {
        self.begun().remove(&slot_of(d))
    }

    fn release_slot(&self, d: &Delivery) {
        self.take_begun(d);
        if self.in_flight().remove(&slot_of(d)) {
            self.slots.add_permits(1);
        }
    }

    /// `d` is done and its slot already runs another entry: no longer in flight, no slot freed.
    fn retire(&self, d: &Delivery) {
        self.take_begun(d);
        self.in_flight().remove(&slot_of(d));
    }

    /// Hands entries read for slots being freed to the worker, with the attempts the read started; answers how many
    /// slots they took (the rest are freed). Once stopping, they go back to the stream instead, unstarted.
    async fn hand_next(&self, got: Vec<(Delivery, Option<Begun>)>) -> usize {
        if got.is_empty() {
            return 0;
        }
        let next = self.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let Some(tx) = next else {
            if let Err(e) = self.store.release(&self.config.consumer, &got).await {
                tracing::warn!(error = %e, count = got.len(), "could not give entries back; they will be taken over");
            }
            return 0;
        };
        // Each started attempt moves into the map (its record is not copied).
        let deliveries: Vec<Delivery> = {
            let mut in_flight = self.in_flight();
            let mut begun = self.begun();
            got.into_iter()
                .map(|(d, b)| {
                    in_flight.insert(slot_of(&d));
                    if let Some(b) = b {
                        begun.insert(slot_of(&d), b);
                    }
                    d
                })
                .collect()
        };
        let mut taken = 0;
        for d in deliveries {
            match tx.send(d) {
                Ok(()) => taken += 1,
                // The worker's stream is gone: the entry stays pending and is taken over.
                Err(mpsc::error::SendError(d)) => self.retire(&d),
            }
        }
        taken
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn request_stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
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
    /// One fetcher per partition.
    fetchers: Vec<tokio::task::JoinHandle<()>>,
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
            next: Mutex::new(Some(tx.clone())),
            begun: Mutex::new(HashMap::new()),
        });
        Self {
            shared,
            tx: Some(tx),
            rx,
            fetchers: Vec::new(),
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
        Starter { tx: self.shared.starts.clone(), shared: self.shared.clone() }
    }

    fn start(&mut self) {
        if let Some(tx) = self.tx.take() {
            // Every partition has its fetcher; they share the slots, so the concurrency stays the worker's total.
            for part in self.shared.store.partitions() {
                self.fetchers.push(tokio::spawn(fetch_loop(self.shared.clone(), part, tx.clone())));
            }
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
            let fetchers = std::mem::take(&mut self.fetchers);
            let janitor = self.janitor.take();
            let writer = self.writer.take();
            let starter = self.starter.take();
            let shared = self.shared.clone();
            // Entries already fetched but never started go back to the stream.
            let mut rx = std::mem::replace(&mut self.rx, mpsc::unbounded_channel().1);
            self.closing = Some(
                async move {
                    for f in fetchers {
                        let _ = f.await;
                    }
                    let mut unstarted = Vec::new();
                    while let Ok(d) = rx.try_recv() {
                        let begun = shared.take_begun(&d);
                        unstarted.push((d, begun));
                    }
                    if !unstarted.is_empty() {
                        match shared.store.release(&shared.config.consumer, &unstarted).await {
                            Ok(()) => tracing::info!(count = unstarted.len(), "gave unstarted jobs back to the queue"),
                            Err(e) => tracing::warn!(error = %e, "could not give unstarted jobs back; they will be taken over"),
                        }
                        for (d, _) in &unstarted {
                            shared.release_slot(d);
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
