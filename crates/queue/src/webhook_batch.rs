//! Starting and finishing webhook delivery attempts in batches: the attempts that arrive together share one run
//! of `webhook_start` or `webhook_finish` (the batching the session-create starter and acknowledger use), so under
//! load a delivery costs a fraction of a round trip to Redis instead of two.

use tokio::sync::{mpsc, oneshot};

use crate::{
    Delivery, DeliveryFinish, DeliveryOutcome, DeliveryStart, JobStore, QueueError, Written, backend::run_batches,
};

struct StartRequest {
    delivery: Delivery,
    reply: oneshot::Sender<Result<DeliveryStart, QueueError>>,
}

struct FinishRequest {
    delivery: Delivery,
    hook_token: String,
    attempt: u32,
    outcome: DeliveryOutcome,
    reply: oneshot::Sender<Result<Written, QueueError>>,
}

/// Batches delivery starts and finishes; cheap to share (behind an `Arc`). Its loops end when it is dropped.
pub struct DeliveryBatcher {
    store: JobStore,
    max_attempts: u32,
    starts: mpsc::UnboundedSender<StartRequest>,
    finishes: mpsc::UnboundedSender<FinishRequest>,
}

impl DeliveryBatcher {
    /// Spawns the two batching loops on the current runtime.
    pub fn start(store: JobStore, max_attempts: u32) -> Self {
        let (starts, start_rx) = mpsc::unbounded_channel::<StartRequest>();
        let (finishes, finish_rx) = mpsc::unbounded_channel::<FinishRequest>();
        let s = store.clone();
        tokio::spawn(run_batches(start_rx, move |batch: Vec<StartRequest>| {
            let store = s.clone();
            async move {
                let deliveries: Vec<Delivery> = batch.iter().map(|r| r.delivery.clone()).collect();
                match store.start_deliveries(&deliveries, max_attempts).await {
                    Ok(started) if started.len() == batch.len() => {
                        for (r, s) in batch.into_iter().zip(started) {
                            let _ = r.reply.send(Ok(s));
                        }
                    }
                    Ok(_) => reply_all(batch.into_iter().map(|r| r.reply), QueueError::Corrupt("short answer".into())),
                    Err(e) => reply_all(batch.into_iter().map(|r| r.reply), e),
                }
            }
        }));
        let s = store.clone();
        tokio::spawn(run_batches(finish_rx, move |batch: Vec<FinishRequest>| {
            let store = s.clone();
            async move {
                let items: Vec<DeliveryFinish<'_>> = batch
                    .iter()
                    .map(|r| DeliveryFinish {
                        delivery: &r.delivery,
                        hook_token: &r.hook_token,
                        attempt: r.attempt,
                        outcome: r.outcome.clone(),
                    })
                    .collect();
                let written = store.finish_deliveries(&items).await;
                drop(items);
                match written {
                    Ok(w) if w.len() == batch.len() => {
                        for (r, w) in batch.into_iter().zip(w) {
                            let _ = r.reply.send(Ok(w));
                        }
                    }
                    Ok(_) => reply_all(batch.into_iter().map(|r| r.reply), QueueError::Corrupt("short answer".into())),
                    Err(e) => reply_all(batch.into_iter().map(|r| r.reply), e),
                }
            }
        }));
        Self { store, max_attempts, starts, finishes }
    }

    /// [`JobStore::start_deliveries`] for one delivery, batched with the others starting now.
    pub async fn start_delivery(&self, delivery: &Delivery) -> Result<DeliveryStart, QueueError> {
        let (reply, answer) = oneshot::channel();
        if self.starts.send(StartRequest { delivery: delivery.clone(), reply }).is_ok()
            && let Ok(r) = answer.await
        {
            return r;
        }
        let started = self.store.start_deliveries(std::slice::from_ref(delivery), self.max_attempts).await?;
        started.into_iter().next().ok_or_else(|| QueueError::Corrupt("start script answered nothing".into()))
    }

    /// [`JobStore::finish_deliveries`] for one attempt, batched with the others finishing now.
    pub async fn finish_delivery(&self, finish: &DeliveryFinish<'_>) -> Result<Written, QueueError> {
        let (reply, answer) = oneshot::channel();
        let request = FinishRequest {
            delivery: finish.delivery.clone(),
            hook_token: finish.hook_token.to_owned(),
            attempt: finish.attempt,
            outcome: finish.outcome.clone(),
            reply,
        };
        if self.finishes.send(request).is_ok()
            && let Ok(r) = answer.await
        {
            return r;
        }
        let written = self.store.finish_deliveries(std::slice::from_ref(finish)).await?;
        written.into_iter().next().ok_or_else(|| QueueError::Corrupt("finish script answered nothing".into()))
    }
}

fn reply_all<T>(replies: impl Iterator<Item = oneshot::Sender<Result<T, QueueError>>>, e: QueueError) {
    for r in replies {
        let _ = r.send(Err(e.clone()));
    }
}
