//! The fetcher: reads only as many entries as there are free slots, on a dedicated connection, and takes over
//! entries idle past the visibility timeout.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::{Semaphore, mpsc};

use super::Shared;
use crate::{
    JobStore, QueueError,
    attempt::{Delivery, parse_read},
    keys::GROUP,
    redis_conn::Conn,
};

/// The reader's own connection: its blocking reads hold up no other call. In Sentinel mode every (re)connection
/// asks for the primary anew, and a cluster connection follows the stream's slot, so the reader follows a failover.
async fn reader(store: &JobStore, block: Duration) -> Result<Conn, QueueError> {
    store.redis().dedicated(block + store.config().command_timeout).await
}

/// What the fetch loop keeps between rounds.
struct Fetcher {
    shared: Arc<Shared>,
    /// The store of this fetcher's partition.
    store: JobStore,
    tx: mpsc::UnboundedSender<Delivery>,
    stream: String,
    /// The dedicated reader connection; `None` until made, and after a failure.
    conn: Option<Conn>,
    next_takeover: Instant,
    /// Where the next `XAUTOCLAIM` goes on.
    cursor: String,
    group_ready: bool,
}

pub(super) async fn fetch_loop(shared: Arc<Shared>, store: JobStore, tx: mpsc::UnboundedSender<Delivery>) {
    let stream = store.stream_key();
    let mut f = Fetcher {
        shared,
        store,
        tx,
        stream,
        conn: None,
        next_takeover: Instant::now(),
        cursor: "0-0".to_owned(),
        group_ready: false,
    };
    let mut backoff = Duration::from_millis(50);
    // With several partitions the fetchers share the slots: a fetcher must not sit on them in a blocking read of
    // an idle stream while another partition has work, so it reads without blocking with the slots it took, and
    // blocks holding one slot only.
    let sharing = f.store.layout().count() > 1;
    loop {
        let Some(mut n) = f.claim_slots().await else { break };
        let fetched = if sharing {
            match f.fetch(n, false).await {
                Ok(got) if got.is_empty() => {
                    f.shared.slots.add_permits(n - 1);
                    n = 1;
                    f.fetch(n, true).await
                }
                other => other,
            }
        } else {
            f.fetch(n, true).await
        };
        match fetched {
            Ok(got) => {
                backoff = Duration::from_millis(50);
                f.hand_out(n, got);
            }
            Err(e) => {
                f.shared.slots.add_permits(n);
                f.failed(&e);
                if !f.shared.pause(backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
    tracing::debug!("job stream fetcher stopped");
}

impl Fetcher {
    /// Waits for at least one free slot, then takes every free slot; `None` when the backend stops.
    async fn claim_slots(&self) -> Option<usize> {
        let slots = &self.shared.slots;
        let first = tokio::select! {
            p = slots.acquire() => p,
            _ = self.shared.stop.notified() => return None,
        };
        let Ok(first) = first else { return None };
        if self.shared.is_stopping() {
            return None;
        }
        first.forget();
        let mut n = 1 + take_free(slots);
        // Under load slots free up one by one: gather a batch for a moment rather than paying one XREADGROUP
        // round trip per job. An idle worker has every slot free and reads at once.
        let batch = (self.shared.config.concurrency / 4).clamp(1, 64);
        if n < batch {
            let _ = tokio::time::timeout(Duration::from_millis(1), async {
                while n < batch {
                    match slots.acquire().await {
                        Ok(p) => {
                            p.forget();
                            n += 1 + take_free(slots);
                        }
                        Err(_) => break,
                    }
                }
            })
            .await;
        }
        Some(n)
    }

    /// Up to `n` entries: those due for takeover first, then new ones (waiting up to the block time for them when
    /// `block`).
    async fn fetch(&mut self, n: usize, block: bool) -> Result<Vec<Delivery>, QueueError> {
        if !self.group_ready {
            self.store.ensure_group().await?;
            self.group_ready = true;
        }
        let mut got = self.take_over_idle(n).await?;
        if got.len() < n {
            self.read_new(n - got.len(), block, &mut got).await?;
        }
        Ok(got)
    }

    /// Entries idle past the visibility timeout (their consumer died), at most every `takeover_every`.
    async fn take_over_idle(&mut self, n: usize) -> Result<Vec<Delivery>, QueueError> {
        let config = &self.shared.config;
        if Instant::now() < self.next_takeover {
            return Ok(Vec::new());
        }
        self.next_takeover = Instant::now() + config.takeover_every;
        let (claimed, next) =
            self.store.take_over(&config.consumer, config.visibility_timeout, &self.cursor, n).await?;
        if !claimed.is_empty() {
            tracing::warn!(count = claimed.len(), "took over jobs of a consumer that stopped answering");
        }
        self.cursor = next;
        Ok(claimed)
    }

    /// Up to `count` new entries (`XREADGROUP ... BLOCK`) added to `got`; entries that cannot be parsed are
    /// dead-lettered.
    async fn read_new(&mut self, count: usize, block: bool, got: &mut Vec<Delivery>) -> Result<(), QueueError> {
        let (store, config) = (&self.store, &self.shared.config);
        if self.conn.is_none() {
            self.conn = Some(reader(store, config.block).await?);
        }
        let c = self.conn.as_mut().ok_or_else(|| QueueError::Unavailable("no reader".into()))?;
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP").arg(GROUP).arg(&config.consumer).arg("COUNT").arg(count);
        if block {
            cmd.arg("BLOCK").arg(u64::try_from(config.block.as_millis()).unwrap_or(500));
        }
        let read: Result<redis::Value, QueueError> =
            cmd.arg("STREAMS").arg(&self.stream).arg(">").query_async(c).await.map_err(QueueError::from);
        let reply = match read {
            Ok(reply) => reply,
            // Entries just taken over are ours now: run them rather than leave them to idle again.
            Err(e) if !got.is_empty() => {
                tracing::warn!(error = %e, "reading the job stream");
                self.conn = None;
                redis::Value::Nil
            }
            Err(e) => return Err(e),
        };
        let (good, poison) = parse_read(&reply, store.partition());
        got.extend(good);
        store.set_aside(&poison).await;
        Ok(())
    }

    /// Hands the fetched entries to the worker, giving back the slots it did not fill.
    fn hand_out(&self, n: usize, got: Vec<Delivery>) {
        let shared = &self.shared;
        shared.slots.add_permits(n.saturating_sub(got.len()));
        {
            let mut in_flight = shared.in_flight();
            for d in &got {
                in_flight.insert(super::slot_of(d));
            }
        }
        for d in got {
            if self.tx.send(d.clone()).is_err() {
                shared.release_slot(&d);
            }
        }
    }

    fn failed(&mut self, e: &QueueError) {
        let msg = e.to_string();
        if msg.contains("NOGROUP") {
            // Redis lost the group (restarted without persistence): create it again.
            self.group_ready = false;
        } else {
            tracing::warn!(error = %msg, "reading the job stream; retrying");
            self.conn = None;
        }
    }
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
