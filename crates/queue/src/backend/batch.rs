//! The batching both the starter and the acknowledger use: each batch takes everything queued meanwhile (up to
//! [`BATCH_MAX`]), a few batches at a time, so under load one script run serves many attempts.

use std::{future::Future, sync::Arc};

use tokio::sync::{Semaphore, mpsc};

/// Most requests one batch takes.
const BATCH_MAX: usize = 128;
/// Batches running at once.
const BATCHES_AT_ONCE: usize = 4;

/// Runs `run` over batches of what `rx` receives until it closes.
pub(crate) async fn run_batches<T, F, Fut>(rx: mpsc::UnboundedReceiver<T>, run: F)
where
    F: Fn(Vec<T>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    run_batches_at(rx, BATCHES_AT_ONCE, run).await;
}

/// [`run_batches`] with at most `at_once` batches running at once: while they all run, what arrives waits for the
/// next batch.
pub(crate) async fn run_batches_at<T, F, Fut>(mut rx: mpsc::UnboundedReceiver<T>, at_once: usize, run: F)
where
    F: Fn(Vec<T>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let runners = Arc::new(Semaphore::new(at_once.max(1)));
    loop {
        let Ok(permit) = runners.clone().acquire_owned().await else { return };
        let Some(first) = rx.recv().await else { return };
        let mut batch = vec![first];
        while batch.len() < BATCH_MAX {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let work = run(batch);
        tokio::spawn(async move {
            work.await;
            drop(permit);
        });
    }
}
