//! Completion notifications: one pub/sub subscription per process to every partition's `{tag}:done` channel,
//! fanned out in memory to the requests waiting for a job. Waiting costs no Redis call per waiter. On a cluster the
//! channels are shard channels (`SSUBSCRIBE`, answered by the node that owns the partition's slot, so a publish
//! does not travel to every node); one Redis or Sentinel uses plain `SUBSCRIBE`.
//!
//! A publish can be missed while the subscription is down, so every (re)subscription wakes every waiter; a woken
//! waiter re-reads the job and waits again if it is not finished.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use futures::StreamExt;
use tokio::sync::oneshot;
use wgate_types::JobId;

use crate::{Layout, QueueConfig, RedisMode, redis_conn::Redis};

type Registry = HashMap<JobId, Vec<(u64, oneshot::Sender<()>)>>;

struct Inner {
    waiters: Mutex<Registry>,
    next: AtomicU64,
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.waiters.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn wake(&self, id: JobId) {
        if let Some(list) = self.lock().remove(&id) {
            for (_, tx) in list {
                let _ = tx.send(());
            }
        }
    }

    fn wake_all(&self) {
        let all = std::mem::take(&mut *self.lock());
        for (_, list) in all {
            for (_, tx) in list {
                let _ = tx.send(());
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            task.abort();
        }
    }
}

/// The process's completion subscription. Clones share it; the subscription ends with the last clone.
#[derive(Clone)]
pub struct Completions {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Completions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completions").finish_non_exhaustive()
    }
}

/// Resolves when its job is published as finished, or when the subscription was re-established (re-read then).
/// Dropping it unregisters it.
pub struct Waiter {
    id: JobId,
    key: u64,
    rx: oneshot::Receiver<()>,
    inner: Weak<Inner>,
}

impl Future for Waiter {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // A dropped sender (subscription gone) resolves too: the caller re-reads.
        Pin::new(&mut self.rx).poll(cx).map(|_| ())
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            let mut reg = inner.lock();
            if let Some(list) = reg.get_mut(&self.id) {
                list.retain(|(k, _)| *k != self.key);
                if list.is_empty() {
                    reg.remove(&self.id);
                }
            }
        }
    }
}

impl Completions {
    /// Spawns the subscription task on the current tokio runtime. An invalid URL is logged and retried like a
    /// dead Redis (waiters then only resolve by their own timeouts); `JobStore::new` reports it properly.
    pub fn start(config: &QueueConfig) -> Self {
        let inner =
            Arc::new(Inner { waiters: Mutex::new(HashMap::new()), next: AtomicU64::new(0), task: Mutex::new(None) });
        let task = tokio::spawn(run(Arc::downgrade(&inner), config.clone()));
        *inner.task.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(task.abort_handle());
        Self { inner }
    }

    /// Register before enqueueing or reading the job, so that a fast finish is not missed.
    pub fn waiter(&self, id: JobId) -> Waiter {
        let (tx, rx) = oneshot::channel();
        let key = self.inner.next.fetch_add(1, Ordering::Relaxed);
        self.inner.lock().entry(id).or_default().push((key, tx));
        Waiter { id, key, rx, inner: Arc::downgrade(&self.inner) }
    }

    /// Waiters currently registered (for tests and metrics).
    pub fn waiting(&self) -> usize {
        self.inner.lock().values().map(Vec::len).sum()
    }
}

async fn run(inner: Weak<Inner>, config: QueueConfig) {
    let layout = Layout::new(&config.namespace, config.partitions);
    let channels: Vec<String> = layout.all().iter().map(crate::Keys::done_channel).collect();
    let mut backoff = Duration::from_millis(50);
    let redis = Redis::new(&config);
    loop {
        let listened = match &redis {
            Ok(_) if config.mode == RedisMode::Cluster => {
                shard_subscribe_and_listen(&inner, &config, &layout, &channels).await
            }
            Ok(redis) => subscribe_and_listen(&inner, redis, config.command_timeout, &channels).await,
            Err(e) => Err(e.to_string()),
        };
        match listened {
            Ok(()) => return, // every Completions handle is gone
            Err(e) => tracing::warn!(error = %e, "completion subscription lost; reconnecting"),
        }
        if inner.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

/// Subscribes, wakes everyone (a publish may have been missed before), then relays messages until the connection
/// fails (`Err`) or the handles are dropped (`Ok`).
async fn subscribe_and_listen(
    inner: &Weak<Inner>,
    redis: &Redis,
    t: Duration,
    channels: &[String],
) -> Result<(), String> {
    // In Sentinel mode this is the primary the sentinels name now.
    let client = redis.client().await.map_err(|e| e.to_string())?;
    let (mut sink, mut stream) = within(t, "connect", client.get_async_pubsub()).await?.split();
    within(t, "subscribe", sink.subscribe(channels)).await?;
    if !subscribed(inner) {
        return Ok(());
    }
    let mut ping = tokio::time::interval(Duration::from_secs(5));
    ping.tick().await;
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else { return Err("subscription closed".into()) };
                let Some(inner) = inner.upgrade() else { return Ok(()) };
                match std::str::from_utf8(msg.get_payload_bytes()).ok().and_then(|s| s.parse::<JobId>().ok()) {
                    Some(id) => inner.wake(id),
                    None => tracing::warn!("ignoring a malformed completion message"),
                }
            }
            _ = ping.tick() => {
                if inner.strong_count() == 0 {
                    return Ok(());
                }
                within(t, "ping", sink.ping::<redis::Value>()).await?;
                // A demoted primary keeps the connection open; subscribe again where the sentinels point.
                if redis.moved_from(&client).await {
                    return Err("the primary moved".into());
                }
            }
        }
    }
}

/// The cluster's way: one RESP3 cluster connection subscribed to every partition's shard channel, on the node
/// that owns each channel's slot. Every few seconds the owners are read again (`CLUSTER SLOTS`): when one changed (a
/// failover, a moved slot) or a node's link is lost, everything is subscribed anew where the slots are now, and the
/// new subscription wakes everyone (a publish may have been missed meanwhile).
async fn shard_subscribe_and_listen(
    inner: &Weak<Inner>,
    config: &QueueConfig,
    layout: &Layout,
    channels: &[String],
) -> Result<(), String> {
    let t = config.command_timeout;
    let (tx, mut pushes) = tokio::sync::mpsc::unbounded_channel();
    let client = crate::redis_conn::cluster_subscriber(config, tx).map_err(|e| e.to_string())?;
    let mut conn = within(t, "connect", client.get_async_connection()).await?;
    let slots: Vec<u16> = layout.all().iter().map(|k| crate::key_slot(k.prefix())).collect();
    let owners = within(t, "CLUSTER SLOTS", slot_owners(&mut conn, &slots)).await?;
    // One channel a command: the channels are in different slots.
    for channel in channels {
        within(t, "subscribe", conn.ssubscribe(channel)).await?;
    }
    if !subscribed(inner) {
        return Ok(());
    }
    let mut check = tokio::time::interval(Duration::from_secs(1));
    check.tick().await;
    loop {
        tokio::select! {
            push = pushes.recv() => {
                let Some(push) = push else { return Err("subscription closed".into()) };
                let Some(inner) = inner.upgrade() else { return Ok(()) };
                match push.kind {
                    redis::PushKind::SMessage | redis::PushKind::Message => {
                        let id = push.data.get(1).and_then(crate::store::text).and_then(|s| s.parse::<JobId>().ok());
                        match id {
                            Some(id) => inner.wake(id),
                            None => tracing::warn!("ignoring a malformed completion message"),
                        }
                    }
                    redis::PushKind::Disconnection => return Err("a node's link was lost".into()),
                    _ => {}
                }
            }
            _ = check.tick() => {
                if inner.strong_count() == 0 {
                    return Ok(());
                }
                match within(t, "CLUSTER SLOTS", slot_owners(&mut conn, &slots)).await {
                    Ok(now) if now != owners => return Err("a partition's primary changed".into()),
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "reading the cluster's slots"),
                }
            }
        }
    }
}

/// The address (`host:port`) of the primary serving each slot, from `CLUSTER SLOTS`.
async fn slot_owners(conn: &mut redis::cluster_async::ClusterConnection, slots: &[u16]) -> Result<Vec<String>, String> {
    use redis::Value;
    let reply: Value = redis::cmd("CLUSTER").arg("SLOTS").query_async(conn).await.map_err(|e| e.to_string())?;
    let Value::Array(ranges) = reply else { return Err(format!("CLUSTER SLOTS answered {reply:?}")) };
    let mut parsed = Vec::with_capacity(ranges.len());
    for range in &ranges {
        if let Value::Array(parts) = range
            && let [Value::Int(from), Value::Int(to), Value::Array(primary), ..] = parts.as_slice()
            && let (Some(host), Some(Value::Int(port))) = (primary.first().and_then(crate::store::text), primary.get(1))
        {
            parsed.push((*from, *to, format!("{host}:{port}")));
        }
    }
    slots
        .iter()
        .map(|&slot| {
            parsed
                .iter()
                .find(|(from, to, _)| (*from..=*to).contains(&i64::from(slot)))
                .map(|(_, _, addr)| addr.clone())
                .ok_or_else(|| format!("no primary serves slot {slot}"))
        })
        .collect()
}

/// `fut` within `t`; a timeout or a failure is the error that ends the subscription (then made anew).
async fn within<T, E: std::fmt::Display>(
    t: Duration,
    what: &str,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    tokio::time::timeout(t, fut).await.map_err(|_| format!("{what} timed out"))?.map_err(|e| format!("{what}: {e}"))
}

/// After a (re)subscription: wakes every waiter (a publish may have been missed); false when every handle is gone.
fn subscribed(inner: &Weak<Inner>) -> bool {
    match inner.upgrade() {
        Some(i) => {
            i.wake_all();
            true
        }
        None => false,
    }
}
