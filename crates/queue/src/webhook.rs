//! Webhook events and their deliveries to tenants: the second queue of the backend ([`Queue::Webhook`]).
//!
//! Each event WhatsGate posts is stored once (a delivery hash, keyed by a delivery id that is also its
//! `webhook-id`), indexed in the tenant's stored events, and, when it is to be delivered, queued on the webhook
//! stream in the same script. The worker starts and finishes attempts with their own fenced scripts; everything
//! else (fetching, takeover of a dead worker's entries, promotion of due retries, trimming, dead letters, gauges)
//! is the queue machinery shared with session-create jobs. Records expire with the retention (the job TTL).

use std::collections::HashMap;

use redis::Value;
use time::OffsetDateTime;
use wgate_types::{JobId, TenantId};

use crate::{
    Delivery, JobStore, Keys, QueueError, Written,
    attempt::per_partition,
    keys::{GROUP, Queue},
    scripts,
    store::{tagged, text},
};

/// Delivery statuses as stored: `queued`, `delivering`, `retrying`, `delivered`, `dead`, `stored` (kept for
/// events-get only: not to be delivered, because the tenant's event filter leaves it out or no endpoint is set).
pub const DELIVERY_STATUSES: [&str; 6] = ["queued", "delivering", "retrying", "delivered", "dead", "stored"];

/// Events listed with a filter are looked for among at most this many of the tenant's newest.
pub const SCAN_LIMIT: usize = 10_000;

/// One event as WhatsGate posted it, to store.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub id: JobId,
    pub tenant: &'a TenantId,
    pub hook_token: &'a str,
    /// The session's create job (the `X-Job-Id` of deliveries).
    pub job: JobId,
    /// WhatsGate's event id, as text.
    pub event_id: &'a str,
    /// `event_action`.
    pub event: &'a str,
    /// `whatsapp_id`, as text.
    pub session: &'a str,
    /// `event_date`'s instant in Unix seconds, when it could be read (events-get's `date` filter).
    pub event_at: Option<i64>,
    /// The body exactly as received.
    pub body: &'a str,
    /// `false`: kept for events-get only.
    pub deliver: bool,
}

/// What [`JobStore::receive_event`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    Stored(JobId),
    /// WhatsGate sent an event it had sent before: nothing was stored again; this is the first one's delivery.
    Seen(String),
}

/// A stored event and the state of its delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: JobId,
    pub tenant: TenantId,
    pub hook_token: String,
    pub job: Option<JobId>,
    pub event_id: String,
    pub event: String,
    pub session: String,
    pub event_at: Option<i64>,
    pub body: String,
    pub status: String,
    pub attempts: u32,
    pub received_ms: i64,
    pub updated_ms: i64,
    pub next_ms: Option<i64>,
    pub delivered_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_status: Option<u16>,
}

impl DeliveryRecord {
    fn from_map(map: &HashMap<String, String>) -> Result<Option<Self>, QueueError> {
        if map.is_empty() {
            return Ok(None);
        }
        let bad = |what: &str| QueueError::Corrupt(format!("delivery record: bad {what}"));
        let get = |k: &str| map.get(k).cloned().unwrap_or_default();
        let num = |k: &str| map.get(k).and_then(|v| v.parse::<i64>().ok());
        Ok(Some(Self {
            id: map.get("id").and_then(|v| v.parse().ok()).ok_or_else(|| bad("id"))?,
            tenant: map.get("tenant").and_then(|t| TenantId::parse(t).ok()).ok_or_else(|| bad("tenant"))?,
            hook_token: get("token"),
            job: map.get("job").and_then(|v| v.parse().ok()),
            event_id: get("event_id"),
            event: get("event"),
            session: get("session"),
            event_at: num("event_at"),
            body: get("body"),
            status: map.get("status").cloned().ok_or_else(|| bad("status"))?,
            attempts: map.get("attempts").and_then(|v| v.parse().ok()).unwrap_or(0),
            received_ms: num("received_ms").unwrap_or(0),
            updated_ms: num("updated_ms").unwrap_or(0),
            next_ms: num("next_ms"),
            delivered_ms: num("delivered_ms"),
            last_error: map.get("last_error").filter(|e| !e.is_empty()).cloned(),
            last_status: map.get("last_status").and_then(|v| v.parse().ok()),
        }))
    }

    /// Still to be delivered (queued, being delivered or waiting for a retry).
    pub fn is_pending(&self) -> bool {
        matches!(self.status.as_str(), "queued" | "delivering" | "retrying")
    }
}

/// The hook a delivery belongs to, as it is now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookState {
    /// The session's callback (`None`: none set).
    pub callback: Option<String>,
    /// A URL that answered 410 Gone: no delivery goes there until the tenant sets a callback again.
    pub gone: Option<String>,
}

/// What starting a delivery attempt found.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryStart {
    /// Run attempt `record.attempts`.
    Run { record: Box<DeliveryRecord>, hook: HookState },
    /// Out of attempts (the last one's worker never finished it): the delivery is now dead.
    Dead,
    /// Finished or gone: the entry was dropped.
    Skip,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered {
        status: u16,
    },
    /// Try again at `due_ms`.
    Retry {
        due_ms: i64,
        error: String,
        status: Option<u16>,
    },
    /// The endpoint had no free slot: not counted as an attempt, run again at `due_ms`.
    Defer {
        due_ms: i64,
    },
    /// No more attempts; `gone` is the URL that answered 410 Gone, stopped until a callback is set again.
    Dead {
        error: String,
        status: Option<u16>,
        gone: Option<String>,
    },
}

/// A finished attempt to write.
#[derive(Debug, Clone)]
pub struct DeliveryFinish<'a> {
    pub delivery: &'a Delivery,
    pub hook_token: &'a str,
    pub attempt: u32,
    pub outcome: DeliveryOutcome,
}

/// What [`JobStore::replay_delivery`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryReplay {
    Requeued,
    /// Still being delivered (its status): nothing to replay yet.
    Busy(String),
    NotFound,
}

/// Which deliveries a listing wants.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub status: Option<String>,
    pub session: Option<String>,
    pub event: Option<String>,
    /// `[from, to)` in Unix seconds of the event's `event_date` (else its receipt).
    pub between: Option<(i64, i64)>,
}

impl DeliveryFilter {
    fn is_empty(&self) -> bool {
        self.status.is_none() && self.session.is_none() && self.event.is_none() && self.between.is_none()
    }

    fn matches(&self, r: &DeliveryRecord) -> bool {
        let at = r.event_at.unwrap_or(r.received_ms / 1000);
        self.status.as_ref().is_none_or(|s| *s == r.status)
            && self.session.as_ref().is_none_or(|s| *s == r.session)
            && self.event.as_ref().is_none_or(|e| *e == r.event)
            && self.between.is_none_or(|(from, to)| (from..to).contains(&at))
    }
}

/// One page of a tenant's deliveries, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryPage {
    pub items: Vec<DeliveryRecord>,
    /// Matching deliveries in all.
    pub total: usize,
}

fn parse_start(item: Value) -> Result<DeliveryStart, QueueError> {
    let (tag, rest) = tagged(item)?;
    match tag.as_str() {
        "skip" => Ok(DeliveryStart::Skip),
        "dead" => Ok(DeliveryStart::Dead),
        "run" => {
            let record = rest.first().map(flat_map).unwrap_or_default();
            let hook = rest.get(1).map(flat_map).unwrap_or_default();
            let record = DeliveryRecord::from_map(&record)?
                .ok_or_else(|| QueueError::Corrupt("the started delivery vanished".into()))?;
            let hook = HookState {
                callback: hook.get("callback").filter(|c| !c.is_empty()).cloned(),
                gone: hook.get("gone").filter(|c| !c.is_empty()).cloned(),
            };
            Ok(DeliveryStart::Run { record: Box::new(record), hook })
        }
        other => Err(QueueError::Corrupt(format!("delivery start script answered {other:?}"))),
    }
}

/// Unix milliseconds now: the unit of the delivery records' times and of the webhook queue's scheduled set.
pub fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn flat_map(v: &Value) -> HashMap<String, String> {
    match v {
        Value::Array(items) => items.chunks(2).filter_map(|kv| Some((text(kv.first()?)?, text(kv.get(1)?)?))).collect(),
        Value::Map(items) => items.iter().filter_map(|(k, v)| Some((text(k)?, text(v)?))).collect(),
        _ => HashMap::new(),
    }
}

impl JobStore {
    fn retention_ms(&self) -> u64 {
        u64::try_from(self.config().job_ttl.as_millis()).unwrap_or(u64::MAX).max(1)
    }

    /// Stores an event and (when `deliver`) queues its delivery, atomically and acknowledged (with
    /// `WGATE_REDIS_WAIT_REPLICAS`, on that many replicas); an event already stored for the same hook token and
    /// event id stores nothing.
    pub async fn receive_event(&self, ev: &NewEvent<'_>) -> Result<Received, QueueError> {
        let keys = self.layout().tenant(ev.tenant);
        let now = now_ms();
        let id = ev.id.to_string();
        let mut inv = scripts::WEBHOOK_RECEIVE.prepare_invoke();
        inv.key(keys.event_seen(ev.hook_token, ev.event_id))
            .key(keys.delivery(ev.id))
            .key(keys.tenant_deliveries(ev.tenant))
            .key(keys.queue_stream(Queue::Webhook))
            .arg(&id)
            .arg(self.retention_ms())
            .arg(now)
            .arg(GROUP)
            .arg(if ev.deliver { "1" } else { "0" });
        let status = if ev.deliver { "queued" } else { "stored" };
        let job = ev.job.to_string();
        let fields: [(&str, &str); 10] = [
            ("id", &id),
            ("tenant", ev.tenant.as_str()),
            ("token", ev.hook_token),
            ("job", &job),
            ("event_id", ev.event_id),
            ("event", ev.event),
            ("session", ev.session),
            ("body", ev.body),
            ("status", status),
            ("attempts", "0"),
        ];
        for (k, v) in fields {
            inv.arg(k).arg(v);
        }
        inv.arg("received_ms").arg(now).arg("updated_ms").arg(now);
        if let Some(at) = ev.event_at {
            inv.arg("event_at").arg(at);
        }
        let reply: Value = self
            .redis()
            .call_acknowledged("receive event", |mut c| async move { inv.invoke_async(&mut c).await })
            .await?;
        let (tag, rest) = tagged(reply)?;
        let first = rest.first().and_then(text).unwrap_or_default();
        match tag.as_str() {
            "new" => Ok(Received::Stored(ev.id)),
            "seen" => Ok(Received::Seen(first)),
            other => Err(QueueError::Corrupt(format!("receive script answered {other:?}"))),
        }
    }

    /// Starts delivery attempts (one script run per partition among them); `max_attempts` counts the first one.
    pub async fn start_deliveries(
        &self,
        deliveries: &[Delivery],
        max_attempts: u32,
    ) -> Result<Vec<DeliveryStart>, QueueError> {
        per_partition(
            deliveries,
            |d| d.partition,
            |p, group| async move { self.for_partition(p).start_deliveries_here(&group, max_attempts).await },
        )
        .await
    }

    async fn start_deliveries_here(
        &self,
        deliveries: &[Delivery],
        max_attempts: u32,
    ) -> Result<Vec<DeliveryStart>, QueueError> {
        let keys = self.keys();
        let (stream, dead) = (keys.queue_stream(Queue::Webhook), keys.queue_dead(Queue::Webhook));
        let mut inv = scripts::WEBHOOK_START.prepare_invoke();
        inv.arg(GROUP)
            .arg(now_ms())
            .arg(max_attempts)
            .arg(self.retention_ms())
            .arg("the worker delivering the last attempt stopped before finishing it, and no attempt is left")
            .arg(keys.prefix());
        for d in deliveries {
            inv.key(keys.delivery(d.job_id)).key(&stream).key(&dead);
            inv.arg(&d.entry_id).arg(d.job_id.to_string()).arg(if d.taken_over { "1" } else { "0" });
        }
        let reply: Value =
            self.redis().call("start deliveries", |mut c| async move { inv.invoke_async(&mut c).await }).await?;
        let Value::Array(items) = reply else {
            return Err(QueueError::Corrupt("delivery start script answered no list".into()));
        };
        if items.len() != deliveries.len() {
            return Err(QueueError::Corrupt("delivery start script answered a list of another length".into()));
        }
        // One record that cannot be read must not fail the batch: it is set aside (dead-lettered), the others run.
        let mut started = Vec::with_capacity(items.len());
        let mut poison = Vec::new();
        for (d, item) in deliveries.iter().zip(items) {
            match parse_start(item) {
                Ok(s) => started.push(s),
                Err(e) => {
                    poison.push(crate::Poison {
                        entry_id: d.entry_id.clone(),
                        fields: vec![("job".into(), d.job_id.to_string())],
                        reason: format!("the delivery record cannot be read: {e}"),
                    });
                    started.push(DeliveryStart::Skip);
                }
            }
        }
        if !poison.is_empty()
            && let Err(e) = self.for_queue(Queue::Webhook).dead_letter(&poison).await
        {
            tracing::warn!(error = %e, "could not dead-letter deliveries; they will be taken over and tried again");
        }
        Ok(started)
    }

    /// Writes finished attempts (fenced by their attempt number), acks their entries; one script run per
    /// partition among them.
    pub async fn finish_deliveries(&self, items: &[DeliveryFinish<'_>]) -> Result<Vec<Written>, QueueError> {
        per_partition(
            items,
            |f| f.delivery.partition,
            |p, group| async move { self.for_partition(p).finish_deliveries_here(&group).await },
        )
        .await
    }

    async fn finish_deliveries_here(&self, items: &[DeliveryFinish<'_>]) -> Result<Vec<Written>, QueueError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let keys = self.keys();
        let q = Queue::Webhook;
        let (stream, scheduled, dead) = (keys.queue_stream(q), keys.queue_scheduled(q), keys.queue_dead(q));
        let mut inv = scripts::WEBHOOK_FINISH.prepare_invoke();
        inv.arg(GROUP).arg(now_ms()).arg(self.retention_ms());
        for f in items {
            inv.key(keys.delivery(f.delivery.job_id))
                .key(&stream)
                .key(&scheduled)
                .key(&dead)
                .key(keys.hook_record(if f.hook_token.is_empty() { "-" } else { f.hook_token }));
            let code = |s: &Option<u16>| s.map(|c| c.to_string()).unwrap_or_default();
            let (outcome, due, error, status, gone) = match &f.outcome {
                DeliveryOutcome::Delivered { status } => ("delivered", 0, String::new(), status.to_string(), ""),
                DeliveryOutcome::Retry { due_ms, error, status } => ("retry", *due_ms, error.clone(), code(status), ""),
                DeliveryOutcome::Defer { due_ms } => ("defer", *due_ms, String::new(), String::new(), ""),
                DeliveryOutcome::Dead { error, status, gone } => {
                    ("dead", 0, error.clone(), code(status), gone.as_deref().unwrap_or(""))
                }
            };
            inv.arg(&f.delivery.entry_id)
                .arg(f.delivery.job_id.to_string())
                .arg(f.attempt)
                .arg(outcome)
                .arg(due)
                .arg(error)
                .arg(status)
                .arg(gone);
        }
        let reply: Vec<String> =
            self.redis().call("finish deliveries", |mut c| async move { inv.invoke_async(&mut c).await }).await?;
        Ok(reply.iter().map(|r| if r == "ok" { Written::Ok } else { Written::Stale }).collect())
    }

    /// A stored event and its delivery state, looked for in every partition; `None` when unknown or expired.
    pub async fn delivery(&self, id: JobId) -> Result<Option<DeliveryRecord>, QueueError> {
        for keys in self.layout().all() {
            let key = keys.delivery(id);
            let map: HashMap<String, String> =
                self.redis().query_again("HGETALL delivery", redis::cmd("HGETALL").arg(&key)).await?;
            if let Some(found) = DeliveryRecord::from_map(&map)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Records by id, in order; missing (expired) ones are left out.
    async fn deliveries_by_id(&self, keys: &Keys, ids: &[String]) -> Result<Vec<DeliveryRecord>, QueueError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> =
            ids.iter().filter_map(|i| i.parse::<JobId>().ok()).map(|id| keys.delivery(id)).collect();
        let maps: Vec<HashMap<String, String>> = self
            .redis()
            .call_again("HGETALL deliveries", |mut c| {
                let mut pipe = redis::pipe();
                for k in &keys {
                    pipe.cmd("HGETALL").arg(k);
                }
                async move { pipe.query_async(&mut c).await }
            })
            .await?;
        let mut out = Vec::with_capacity(maps.len());
        for m in &maps {
            if let Some(r) = DeliveryRecord::from_map(m)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// The tenant's stored events and their deliveries, newest first: `take` of them after skipping `skip`
    /// matches. With a filter, the tenant's newest [`SCAN_LIMIT`] events are looked through.
    pub async fn tenant_deliveries(
        &self,
        tenant: &TenantId,
        filter: &DeliveryFilter,
        skip: usize,
        take: usize,
    ) -> Result<DeliveryPage, QueueError> {
        let keys = self.layout().tenant(tenant);
        let key = keys.tenant_deliveries(tenant);
        let range = |start: usize, stop: usize| {
            let key = key.clone();
            move |mut c: crate::redis_conn::Conn| {
                let key = key.clone();
                async move {
                    redis::cmd("ZREVRANGE").arg(key).arg(start).arg(stop.saturating_sub(1)).query_async(&mut c).await
                }
            }
        };
        if filter.is_empty() {
            let total: usize = self.redis().query_again("ZCARD deliveries", redis::cmd("ZCARD").arg(&key)).await?;
            if take == 0 || skip >= total {
                return Ok(DeliveryPage { items: Vec::new(), total });
            }
            let ids: Vec<String> = self.redis().call_again("ZREVRANGE deliveries", range(skip, skip + take)).await?;
            return Ok(DeliveryPage { items: self.deliveries_by_id(keys, &ids).await?, total });
        }
        let (mut total, mut items, mut at) = (0, Vec::new(), 0);
        const CHUNK: usize = 500;
        while at < SCAN_LIMIT {
            let ids: Vec<String> = self.redis().call_again("ZREVRANGE deliveries", range(at, at + CHUNK)).await?;
            let got = ids.len();
            for r in self.deliveries_by_id(keys, &ids).await? {
                if filter.matches(&r) {
                    if total >= skip && items.len() < take {
                        items.push(r);
                    }
                    total += 1;
                }
            }
            if got < CHUNK {
                break;
            }
            at += CHUNK;
        }
        Ok(DeliveryPage { items, total })
    }

    /// Sends a finished delivery again (a fresh attempt budget, the same `webhook-id`); `tenant` restricts it to
    /// that tenant's deliveries (another tenant's is `NotFound`).
    /// Without a tenant (the command line) every partition is looked in.
    pub async fn replay_delivery(&self, id: JobId, tenant: Option<&TenantId>) -> Result<DeliveryReplay, QueueError> {
        if let Some(t) = tenant {
            return self.replay_delivery_in(self.layout().tenant(t), id, tenant).await;
        }
        for keys in self.layout().all() {
            match self.replay_delivery_in(keys, id, None).await? {
                DeliveryReplay::NotFound => continue,
                found => return Ok(found),
            }
        }
        Ok(DeliveryReplay::NotFound)
    }

    async fn replay_delivery_in(
        &self,
        keys: &Keys,
        id: JobId,
        tenant: Option<&TenantId>,
    ) -> Result<DeliveryReplay, QueueError> {
        let mut inv = scripts::WEBHOOK_REPLAY.prepare_invoke();
        inv.key(keys.delivery(id))
            .key(keys.queue_stream(Queue::Webhook))
            .key(keys.queue_dead(Queue::Webhook))
            .arg(id.to_string())
            .arg(tenant.map_or("", TenantId::as_str))
            .arg(now_ms())
            .arg(GROUP)
            .arg(self.retention_ms());
        let reply: Value = self
            .redis()
            .call_acknowledged("replay delivery", |mut c| async move { inv.invoke_async(&mut c).await })
            .await?;
        let (tag, rest) = tagged(reply)?;
        match tag.as_str() {
            "requeued" => Ok(DeliveryReplay::Requeued),
            "notfound" => Ok(DeliveryReplay::NotFound),
            "busy" => Ok(DeliveryReplay::Busy(rest.first().and_then(text).unwrap_or_default())),
            other => Err(QueueError::Corrupt(format!("delivery replay script answered {other:?}"))),
        }
    }

    /// The deployment's random key tenants' webhook secrets are derived from (when none is configured): the
    /// first process to ask creates it (`SET NX`), every process reads the same one.
    pub async fn webhook_signing_key(&self) -> Result<String, QueueError> {
        let key = self.layout().base().webhook_signing_key();
        let fresh: [u8; 32] = rand::random();
        let candidate = hex::encode(fresh);
        let current: Option<String> = self
            .redis()
            .call_again("webhook signing key", |mut c| {
                let (key, candidate) = (key.clone(), candidate.clone());
                async move {
                    let _: Option<String> =
                        redis::cmd("SET").arg(&key).arg(&candidate).arg("NX").query_async(&mut c).await?;
                    redis::cmd("GET").arg(&key).query_async(&mut c).await
                }
            })
            .await?;
        current.ok_or_else(|| QueueError::Corrupt("the webhook signing key vanished".into()))
    }
}

#[cfg(test)]
mod tests {
    use wgate_testkit::{RedisServer, unique_namespace};
    use wgate_types::{JobId, TenantId};

    use super::{DeliveryStart, NewEvent, Queue, Received};
    use crate::{Delivery, GROUP, JobStore, QueueConfig};

    #[tokio::test]
    async fn a_delivery_start_asked_again_after_its_answer_was_lost_counts_no_second_attempt() {
        let redis = RedisServer::start().await;
        let store = JobStore::new(QueueConfig::new(redis.url(), unique_namespace("hooks"))).expect("store");
        let keys = store.keys();
        let mut c = redis.connection().await;
        let () = redis::cmd("HSET")
            .arg(keys.hook("token"))
            .arg("tenant")
            .arg("acme")
            .arg("callback")
            .arg("https://tenant.example/hook")
            .query_async(&mut c)
            .await
            .expect("hook");
        let tenant = TenantId::parse("acme").expect("tenant");
        let event = NewEvent {
            id: JobId::new(),
            tenant: &tenant,
            hook_token: "token",
            job: JobId::new(),
            event_id: "1",
            event: "message",
            session: "6345454545454",
            event_at: None,
            body: "{}",
            deliver: true,
        };
        assert!(matches!(store.receive_event(&event).await.expect("receive"), Received::Stored(_)));
        let read: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg("w")
            .arg("STREAMS")
            .arg(keys.queue_stream(Queue::Webhook))
            .arg(">")
            .query_async(&mut c)
            .await
            .expect("XREADGROUP");
        let entry = read.keys.first().and_then(|k| k.ids.first()).expect("the event's entry");
        let d = Delivery { job_id: event.id, entry_id: entry.id.clone(), taken_over: false, partition: 0 };
        let attempts = |s: DeliveryStart| match s {
            DeliveryStart::Run { record, .. } => record.attempts,
            other => panic!("not run: {other:?}"),
        };
        let start = |d: Delivery| {
            let store = store.clone();
            async move { store.start_deliveries(&[d], 8).await.expect("start").remove(0) }
        };
        assert_eq!(attempts(start(d.clone()).await), 1);
        assert_eq!(attempts(start(d.clone()).await), 1, "the start whose answer was lost, answered again");
        assert_eq!(attempts(start(Delivery { taken_over: true, ..d }).await), 2, "taken over: a new attempt");
    }
}
