//! Starting attempts for the handler, batched: those that arrive together share one script run.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{Shared, batch::run_batches};
use crate::{
    JobStore, QueueError,
    attempt::{Delivery, Started},
};

pub(super) struct StartRequest {
    pub(super) delivery: Delivery,
    pub(super) reply: oneshot::Sender<Result<Started, QueueError>>,
}

/// Starts attempts for the handler, batching those that arrive together into one script run.
#[derive(Clone)]
pub struct Starter {
    pub(super) tx: mpsc::UnboundedSender<StartRequest>,
    pub(super) shared: Arc<Shared>,
}

impl Starter {
    /// [`JobStore::start_attempt`], batched with the other attempts starting now; or, for an entry the finish
    /// script read and started already, that start (no round trip).
    pub async fn start(&self, d: &Delivery) -> Result<Started, QueueError> {
        if let Some(b) = self.shared.take_begun(d) {
            return Ok(b.started);
        }
        let (reply, answer) = oneshot::channel();
        if self.tx.send(StartRequest { delivery: d.clone(), reply }).is_ok()
            && let Ok(r) = answer.await
        {
            return r;
        }
        self.shared.store.start_attempt(d).await
    }
}

/// Batches attempt starts (see [`run_batches`]).
pub(super) async fn start_loop(shared: Arc<Shared>, rx: mpsc::UnboundedReceiver<StartRequest>) {
    let store = shared.store.clone();
    run_batches(rx, move |batch| {
        let store = store.clone();
        async move { start_batch(&store, batch).await }
    })
    .await;
}

/// Starts a batch in one script run and answers each request.
async fn start_batch(store: &JobStore, batch: Vec<StartRequest>) {
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
}
