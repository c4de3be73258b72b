//! The acknowledger: each attempt's outcome handed to a writer that batches whatever is queued into one run of
//! the fenced finish script, then the slot freed.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use apalis_core::{error::BoxDynError, task::ExecutionContext, worker::ext::ack::Acknowledge};
use futures::{FutureExt, future::BoxFuture};
use tokio::sync::{mpsc, oneshot};
use wgate_types::JobRecord;

use super::{Shared, batch::run_batches};
use crate::{
    Outcome, QueueError,
    attempt::{Delivery, Finished, Reading, Written, unique_now},
};

/// One attempt's outcome for the writer; `done` fires once it is written (or given up on), true when its slot
/// already runs an entry the same script read.
pub(super) struct AckRequest {
    pub(super) delivery: Delivery,
    pub(super) job: Box<JobRecord>,
    pub(super) outcome: Outcome,
    pub(super) done: oneshot::Sender<bool>,
}

/// Writes each attempt's outcome (ack + outcome + retry + publish in one script) and frees its slot.
#[derive(Clone)]
pub struct StreamAck {
    pub(super) shared: Arc<Shared>,
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
                    let delivery = f.delivery.clone();
                    let mut reused = false;
                    if let Some((job, outcome)) = f.write {
                        let (done, written) = oneshot::channel();
                        let request = AckRequest { delivery: f.delivery.clone(), job, outcome, done };
                        if let Err(mpsc::error::SendError(r)) = shared.acks.send(request) {
                            write_batch(&shared, vec![r]).await;
                        }
                        reused = written.await.unwrap_or(false);
                    }
                    if reused {
                        shared.retire(&delivery);
                    } else {
                        shared.release_slot(&delivery);
                    }
                }
                Err(e) => {
                    // Left un-acked and no longer kept alive: taken over after the visibility timeout, and the
                    // next start counts the attempt.
                    tracing::error!(error = %e, job.id = ?delivery.as_ref().map(|d| d.job_id.to_string()), "job handler failed");
                    if let Some(d) = delivery {
                        shared.release_slot(&d);
                    }
                }
            }
            Ok(())
        }
        .boxed()
    }
}

/// Batches outcomes (see [`run_batches`]).
pub(super) async fn write_loop(shared: Arc<Shared>, rx: mpsc::UnboundedReceiver<AckRequest>) {
    run_batches(rx, move |batch| {
        let shared = shared.clone();
        async move { write_batch(&shared, batch).await }
    })
    .await;
}

/// Writes a batch of outcomes, retrying while Redis is unreachable (bounded by the visibility timeout: after
/// that the entries may be someone else's, and the fence would refuse the writes anyway).
///
/// A try whose answer is lost may still have run: a retry then finds its outcomes written (`Stale`) and gets back
/// the entries it read and started (by the batch's clock, which every try shares), instead of leaving them pending
/// until the visibility timeout.
async fn write_batch(shared: &Shared, batch: Vec<AckRequest>) {
    let deadline = Instant::now() + shared.config.visibility_timeout;
    let mut backoff = Duration::from_millis(50);
    let items: Vec<(&Delivery, &JobRecord, &Outcome)> =
        batch.iter().map(|r| (&r.delivery, r.job.as_ref(), &r.outcome)).collect();
    // The slots this batch frees are filled in the same round trip, but for a quarter of them, which the fetcher
    // gets: it also takes over the entries of consumers that died.
    let count = if shared.is_stopping() { 0 } else { batch.len() - batch.len() / 4 };
    let mut read = Reading { consumer: &shared.config.consumer, count, at: unique_now(), recover: 0 };
    let mut next = Vec::new();
    loop {
        match shared.store.finish_attempts_reading(&items, &read).await {
            Ok((written, got, poison)) => {
                for (r, w) in batch.iter().zip(written) {
                    if w == Written::Stale && read.recover == 0 {
                        tracing::info!(job.id = %r.job.id, attempt = r.job.attempts, "attempt outcome not written: the job was taken over");
                    } else if w == Written::Stale {
                        tracing::info!(job.id = %r.job.id, attempt = r.job.attempts, "attempt outcome not written again: the try whose answer was lost wrote it, or the job was taken over");
                    }
                }
                next = got;
                shared.store.set_aside(&poison).await;
                break;
            }
            Err(e) if Instant::now() + backoff < deadline => {
                tracing::warn!(error = %e, count = batch.len(), "writing attempt outcomes; retrying");
                // This consumer's pending entries: those in flight, and at most `count` the lost try read.
                read.recover = shared.config.concurrency * 2 + count + 64;
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
    let reused = shared.hand_next(next).await;
    for (i, r) in batch.into_iter().enumerate() {
        let _ = r.done.send(i < reused);
    }
}
