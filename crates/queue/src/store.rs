//! `JobStore`: what the API (and the worker's bookkeeping) reads and writes about jobs.

use std::{collections::HashMap, time::Duration};

use redis::Value;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use wgate_types::{CallbackUrl, IdempotencyKey, JobId, JobRecord, JobStatus, TenantId};

use crate::{
    Keys, Layout, QueueConfig, QueueError,
    enqueue::{EnqueueJob, Enqueuer},
    keys::{self, GROUP, Queue, sha256_hex},
    record,
    redis_conn::Redis,
    scripts,
};

/// The outcome of [`JobStore::enqueue`].
// Returned once per request and matched at once: boxing the record would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Enqueued {
    /// The job was stored and queued.
    Created,
    /// The same tenant sent the same request under the same `Idempotency-Key`: this is the job it made.
    Existing(JobRecord),
    /// The same tenant used the same `Idempotency-Key` for another request.
    IdempotencyConflict,
    /// The tenant's live sessions plus unfinished create jobs already reach `limit`.
    QuotaExceeded { limit: u32 },
}

/// The outcome of [`JobStore::replay`].
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Replay {
    Requeued(JobRecord),
    NotDead(JobStatus),
    NotFound,
    /// The tenant's live sessions plus unfinished create jobs already reach `limit`: replaying could make one more.
    QuotaExceeded {
        limit: u32,
    },
}

/// Queue gauges, read from Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueCounts {
    /// In the stream and not yet delivered to any worker.
    pub pending: u64,
    /// Retries waiting for their backoff.
    pub scheduled: u64,
    /// Delivered to a worker and not yet finished.
    pub running: u64,
    /// Out of attempts, kept for inspection and replay.
    pub dead: u64,
    /// Stream entries that could not be run, set aside in the dead-letter list.
    pub dead_letters: u64,
}

/// Where a webhook for a relay token goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookTarget {
    pub tenant: TenantId,
    pub job_id: JobId,
    /// The tenant's own callback, if it gave one.
    pub callback: Option<CallbackUrl>,
}

/// Who owns an upstream session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOwner {
    pub tenant: TenantId,
    pub job_id: JobId,
    pub hook_token: String,
}

/// The job store: cheap to clone, connects lazily and reconnects by itself.
#[derive(Clone)]
pub struct JobStore {
    redis: Redis,
    layout: std::sync::Arc<Layout>,
    /// The partition the queue machinery works on (the fetcher, takeover, promotion, trimming of one partition).
    part: usize,
    config: QueueConfig,
    /// The queue the backend's machinery (stream, takeover, promotion, trimming, dead letters, gauges) works on.
    queue: Queue,
    /// Batches the enqueues of concurrent requests into shared script runs.
    enqueuer: Enqueuer,
}

impl std::fmt::Debug for JobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobStore").field("namespace", &self.config.namespace).finish_non_exhaustive()
    }
}

pub(crate) fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

pub(crate) fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Okay => Some("OK".into()),
        _ => None,
    }
}

pub(crate) fn to_strings(v: &Value) -> Result<Vec<String>, QueueError> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| text(i).ok_or_else(|| QueueError::Corrupt(format!("unexpected script reply item {i:?}"))))
            .collect(),
        other => Err(QueueError::Corrupt(format!("unexpected script reply {other:?}"))),
    }
}

/// Splits a script reply `{tag, ...}` into its tag and the rest.
pub(crate) fn tagged(v: Value) -> Result<(String, Vec<Value>), QueueError> {
    match v {
        Value::Array(mut items) if !items.is_empty() => {
            let tag = text(&items[0]).ok_or_else(|| QueueError::Corrupt("script reply without a tag".into()))?;
            items.remove(0);
            Ok((tag, items))
        }
        other => Err(QueueError::Corrupt(format!("unexpected script reply {other:?}"))),
    }
}

/// What a shared rate-limit bucket decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateAnswer {
    pub allowed: bool,
    /// Requests that would still pass now.
    pub remaining: u32,
    /// Until the bucket is full again.
    pub reset: Duration,
    /// When refused: until one request fits.
    pub retry_after: Duration,
}

/// One draw from a tenant's shared bucket, made by the script that does the request's write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDraw<'a> {
    /// The bucket's name (`write`).
    pub bucket: &'a str,
    /// The time one request's worth takes to come back (1 / rate).
    pub interval: Duration,
    /// The bucket's size.
    pub burst: u32,
}

fn interval_us(interval: Duration) -> u64 {
    u64::try_from(interval.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// The reply of `gcra()`: {allowed 1|0, left, microseconds until full, microseconds until one fits}.
fn rate_answer((allowed, remaining, reset_us, retry_us): (i64, i64, i64, i64)) -> RateAnswer {
    let us = |v: i64| Duration::from_micros(u64::try_from(v).unwrap_or(0));
    RateAnswer {
        allowed: allowed == 1,
        remaining: u32::try_from(remaining).unwrap_or(0),
        reset: us(reset_us),
        retry_after: us(retry_us),
    }
}

/// The enqueue script's outcome `{tag, ...}`.
fn enqueued(tag: &str, rest: Vec<Value>, max_sessions: Option<u32>, job: &JobRecord) -> Result<Enqueued, QueueError> {
    match tag {
        "created" => Ok(Enqueued::Created),
        "conflict" => Ok(Enqueued::IdempotencyConflict),
        "quota" => Ok(Enqueued::QuotaExceeded { limit: max_sessions.unwrap_or(0) }),
        "existing" => {
            let flat = rest.first().map(to_strings).transpose()?.unwrap_or_default();
            record::from_flat(flat)?
                .map(Enqueued::Existing)
                .ok_or_else(|| QueueError::Corrupt("idempotent job vanished".into()))
        }
        "duplicate" => Err(QueueError::Corrupt(format!("job id {} is already taken", job.id))),
        "error" => Err(QueueError::Redis(format!(
            "enqueue of job {}: {}",
            job.id,
            rest.first().and_then(text).unwrap_or_default()
        ))),
        other => Err(QueueError::Corrupt(format!("enqueue script answered {other:?}"))),
    }
}

impl JobStore {
    /// Checks the URL only; nothing is connected until the first call.
    pub fn new(config: QueueConfig) -> Result<Self, QueueError> {
        let redis = Redis::new(&config)?;
        let layout = std::sync::Arc::new(Layout::new(&config.namespace, config.partitions));
        let enqueuer = Enqueuer::default();
        enqueuer.start_now(&redis, &config);
        Ok(Self { redis, layout, part: 0, config, queue: Queue::SessionCreate, enqueuer })
    }

    /// The same store (same connections) whose queue machinery works on partition `p`.
    pub fn for_partition(&self, p: usize) -> Self {
        Self { part: p % self.layout.count(), ..self.clone() }
    }

    /// The partition this store's queue machinery works on.
    pub fn partition(&self) -> usize {
        self.part
    }

    /// The key layout: partitions, and which tenant and token lives in which.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// This store's partition as a store of each partition, partition 0 first (with one partition, this one).
    pub(crate) fn partitions(&self) -> impl Iterator<Item = Self> + '_ {
        (0..self.layout.count()).map(|p| self.for_partition(p))
    }

    /// The same store (same connections) working on queue `q`.
    pub fn for_queue(&self, q: Queue) -> Self {
        Self { queue: q, ..self.clone() }
    }

    /// The queue this store's queue machinery works on.
    pub fn queue(&self) -> Queue {
        self.queue
    }

    pub(crate) fn redis(&self) -> &Redis {
        &self.redis
    }

    /// The keys of this store's partition.
    pub fn keys(&self) -> &Keys {
        self.layout.part(self.part)
    }

    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    pub async fn ping(&self) -> Result<(), QueueError> {
        self.redis.query_again("PING", &redis::cmd("PING")).await
    }

    /// Stores and queues `job` atomically, with the idempotency and quota checks in the same script.
    pub async fn enqueue(
        &self,
        job: &JobRecord,
        idempotency_key: Option<&IdempotencyKey>,
        max_sessions: Option<u32>,
    ) -> Result<Enqueued, QueueError> {
        let (_, outcome) = self.enqueue_with(job, idempotency_key, max_sessions, None).await?;
        outcome.ok_or_else(|| QueueError::Corrupt("enqueue script refused a draw it was not asked for".into()))
    }

    /// [`enqueue`](Self::enqueue) after drawing one request from the tenant's shared bucket `draw.bucket`, in the
    /// same script (one round trip): the bucket's answer, and the outcome when the draw was allowed (nothing is
    /// stored when it was refused).
    pub async fn enqueue_drawing(
        &self,
        job: &JobRecord,
        idempotency_key: Option<&IdempotencyKey>,
        max_sessions: Option<u32>,
        draw: RateDraw<'_>,
    ) -> Result<(RateAnswer, Option<Enqueued>), QueueError> {
        let (answer, outcome) = self.enqueue_with(job, idempotency_key, max_sessions, Some(draw)).await?;
        let answer = answer.ok_or_else(|| QueueError::Corrupt("enqueue script did not draw from the bucket".into()))?;
        Ok((answer, outcome))
    }

    async fn enqueue_with(
        &self,
        job: &JobRecord,
        idempotency_key: Option<&IdempotencyKey>,
        max_sessions: Option<u32>,
        draw: Option<RateDraw<'_>>,
    ) -> Result<(Option<RateAnswer>, Option<Enqueued>), QueueError> {
        let keys = self.layout.tenant(&job.tenant);
        let p = self.layout.of_tenant(&job.tenant);
        if wgate_types::token_job(&job.hook_token) != Some(job.id) {
            return Err(QueueError::Corrupt("the job's hook token was not minted from its id".into()));
        }
        if self.layout.of_token(&job.hook_token) != p
            || (!job.qr_token.is_empty() && self.layout.of_token(&job.qr_token) != p)
        {
            return Err(QueueError::Corrupt("the job's tokens were not minted in its tenant's partition".into()));
        }
        // The script derives the job's keys from the prefix and these ids (see `enqueue.lua`).
        let mut args = Vec::with_capacity(32);
        match draw {
            Some(d) => {
                args.extend([d.bucket.to_owned(), interval_us(d.interval).to_string(), d.burst.max(1).to_string()])
            }
            None => args.extend([String::new(), String::new(), String::new()]),
        }
        args.extend([
            job.id.to_string(),
            job.tenant.as_str().to_owned(),
            job.request.callback().map_or("", CallbackUrl::as_str).to_owned(),
            max_sessions.map_or(-1, i64::from).to_string(),
        ]);
        match idempotency_key {
            Some(k) => {
                let request_hash = sha256_hex(job.request.canonical_json().as_bytes());
                args.extend([keys::idempotency_id(k.as_str()), format!("{}:{request_hash}", job.id)]);
            }
            None => args.extend([String::new(), String::new()]),
        }
        args.extend([job.hook_token.clone(), job.qr_token.clone()]);
        record::enqueue_args(job, &mut args)?;
        let request = EnqueueJob { prefix: keys.prefix().to_owned(), stream: keys.stream(job.kind), args };
        let reply = self.enqueuer.enqueue(&self.redis, &self.config, request).await?;
        let (tag, rest) = tagged(reply)?;
        if tag != "rated" {
            return Ok((None, Some(enqueued(&tag, rest, max_sessions, job)?)));
        }
        // {allowed, left, until full, until one fits, outcome tag, outcome...}, flat.
        if rest.len() < 5 {
            return Err(QueueError::Corrupt("enqueue script answered a draw without its outcome".into()));
        }
        let mut outcome = rest;
        let answer: Vec<Value> = outcome.drain(..4).collect();
        let answer: (i64, i64, i64, i64) = redis::from_redis_value(Value::Array(answer))
            .map_err(|e| QueueError::Corrupt(format!("enqueue script answered a bad draw: {e}")))?;
        let (tag, rest) = tagged(Value::Array(outcome))?;
        let outcome = if tag == "limited" { None } else { Some(enqueued(&tag, rest, max_sessions, job)?) };
        Ok((Some(rate_answer(answer)), outcome))
    }

    /// Draws one request from a tenant's shared bucket (GCRA on Redis's clock): `interval` is the time one
    /// request's worth takes to come back (1 / rate), `burst` the bucket's size.
    pub async fn rate_check(
        &self,
        bucket: &str,
        tenant: &wgate_types::TenantId,
        interval: Duration,
        burst: u32,
    ) -> Result<RateAnswer, QueueError> {
        let mut inv = scripts::RATE.prepare_invoke();
        inv.key(self.layout.tenant(tenant).rate(bucket, tenant)).arg(interval_us(interval)).arg(burst.max(1));
        let answer = self.redis.call("rate", |mut c| async move { inv.invoke_async(&mut c).await }).await?;
        Ok(rate_answer(answer))
    }

    /// A tenant's job (`None` when unknown, expired, or in another tenant's partition).
    pub async fn get(&self, tenant: &TenantId, id: JobId) -> Result<Option<JobRecord>, QueueError> {
        match self.read_record("job", self.layout.tenant(tenant).job(id)).await? {
            Some(record) => record::from_map(&record.fields),
            None => Ok(None),
        }
    }

    /// A job of any tenant: looked for in every partition (the command line, which knows no tenant).
    pub async fn find(&self, id: JobId) -> Result<Option<JobRecord>, QueueError> {
        for keys in self.layout.all() {
            if let Some(record) = self.read_record("job", keys.job(id)).await? {
                return record::from_map(&record.fields);
            }
        }
        Ok(None)
    }

    /// The `fields` of a capability token's record (`key` builds its name in a partition's keys): in the token's
    /// own partition, or, for a token minted before partitions, in the one `wgate migrate` wrote beside it. Only the
    /// fields asked for are read: a token of this release names its job's whole record.
    pub(crate) async fn token_record(
        &self,
        what: &'static str,
        token: &str,
        fields: &[&str],
        key: impl Fn(&Keys) -> String,
    ) -> Result<Option<RecordHash>, QueueError> {
        let layout = &self.layout;
        let own = layout.of_token(token);
        if let Some(record) = self.read_fields(what, key(layout.part(own)), fields).await? {
            return Ok(Some(record));
        }
        if layout.count() == 1 {
            return Ok(None);
        }
        let alias = layout.base().token_partition(token);
        let p: Option<usize> = self.redis.query_again("token partition", redis::cmd("GET").arg(&alias)).await?;
        match p {
            Some(p) if p != own && p < layout.count() => self.read_fields(what, key(layout.part(p)), fields).await,
            _ => Ok(None),
        }
    }

    /// Some fields of one record hash (`HMGET`), retried once on a dropped connection; `None` when none of them is
    /// there (no such key).
    async fn read_fields(
        &self,
        what: &'static str,
        key: String,
        fields: &[&str],
    ) -> Result<Option<RecordHash>, QueueError> {
        let values: Vec<Option<String>> =
            self.redis.query_again(what, redis::cmd("HMGET").arg(&key).arg(fields)).await?;
        let fields: HashMap<String, String> =
            fields.iter().zip(values).filter_map(|(f, v)| Some(((*f).to_owned(), v?))).collect();
        Ok((!fields.is_empty()).then_some(RecordHash { what, fields }))
    }

    /// One record hash (`HGETALL`), retried once on a dropped connection; `None` when the key does not exist.
    /// `what` names the record in the error a malformed one gives.
    pub(crate) async fn read_record(&self, what: &'static str, key: String) -> Result<Option<RecordHash>, QueueError> {
        let fields: HashMap<String, String> = self.redis.query_again(what, redis::cmd("HGETALL").arg(&key)).await?;
        Ok((!fields.is_empty()).then_some(RecordHash { what, fields }))
    }

    /// A dead job goes back to `queued` with its attempts reset to 0 and a new stream entry, unless the tenant's
    /// live sessions plus unfinished creates already reach `max_sessions` (the quota session-create enforces). A job
    /// whose attempts may have created its session upstream keeps `maybe_sent`, so its first new attempt looks for
    /// that session before creating one.
    pub async fn replay(&self, tenant: &TenantId, id: JobId, max_sessions: Option<u32>) -> Result<Replay, QueueError> {
        let keys = self.layout.tenant(tenant);
        let mut inv = scripts::REPLAY.prepare_invoke();
        inv.key(keys.job(id))
            .key(keys.stream(wgate_types::JobKind::SessionCreate))
            .key(keys.dead())
            .arg(id.to_string())
            .arg(record::ts(OffsetDateTime::now_utc()))
            .arg(GROUP)
            .arg(keys.prefix())
            .arg(max_sessions.map_or(-1, i64::from));
        let reply: Value =
            self.redis.call_acknowledged("replay", |mut c| async move { inv.invoke_async(&mut c).await }).await?;
        let (tag, rest) = tagged(reply)?;
        match tag.as_str() {
            "notfound" => Ok(Replay::NotFound),
            "quota" => Ok(Replay::QuotaExceeded { limit: max_sessions.unwrap_or(0) }),
            "notdead" => {
                let status = rest.first().and_then(text).unwrap_or_default();
                status.parse().map(Replay::NotDead).map_err(QueueError::Corrupt)
            }
            "requeued" => {
                let flat = rest.first().map(to_strings).transpose()?.unwrap_or_default();
                record::from_flat(flat)?
                    .map(Replay::Requeued)
                    .ok_or_else(|| QueueError::Corrupt("replayed job vanished".into()))
            }
            other => Err(QueueError::Corrupt(format!("replay script answered {other:?}"))),
        }
    }

    /// The queue's gauges, summed over every partition.
    pub async fn queue_counts(&self) -> Result<QueueCounts, QueueError> {
        let mut sum = QueueCounts::default();
        for part in self.partitions() {
            let c = part.partition_counts().await?;
            sum.pending += c.pending;
            sum.scheduled += c.scheduled;
            sum.running += c.running;
            sum.dead += c.dead;
            sum.dead_letters += c.dead_letters;
        }
        Ok(sum)
    }

    async fn partition_counts(&self) -> Result<QueueCounts, QueueError> {
        let (keys, q) = (self.keys(), self.queue);
        let (stream, scheduled, dead, letters) =
            (keys.queue_stream(q), keys.queue_scheduled(q), keys.queue_dead(q), keys.queue_dead_letters(q));
        let (pending, scheduled, running, dead, dead_letters): (i64, i64, i64, i64, i64) = self
            .redis
            .call_again("queue counts", |mut c| {
                let mut inv = scripts::COUNTS.prepare_invoke();
                inv.key(&stream).key(&scheduled).key(&dead).key(&letters).arg(GROUP);
                async move { inv.invoke_async(&mut c).await }
            })
            .await?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(QueueCounts {
            pending: n(pending),
            scheduled: n(scheduled),
            running: n(running),
            dead: n(dead),
            dead_letters: n(dead_letters),
        })
    }

    /// The tenant's unfinished jobs (its pending set, which the session quota counts).
    pub async fn unfinished_jobs(&self, tenant: &TenantId) -> Result<u64, QueueError> {
        let key = self.layout.tenant(tenant).tenant_pending(tenant);
        self.redis.query_again("SCARD pending", redis::cmd("SCARD").arg(&key)).await
    }

    /// The relay target of a hook token; `None` for an unknown (or malformed) token. A token of this release is
    /// looked up in its job's record and must equal the one the record keeps; one of an earlier release has a
    /// record of its own.
    pub async fn hook_target(&self, token: &str) -> Result<Option<HookTarget>, QueueError> {
        let job_id = wgate_types::token_job(token);
        if job_id.is_none() && !wgate_types::is_capability_token(token) {
            return Ok(None);
        }
        let fields = ["tenant", "job", "hook_token", "callback"];
        let Some(record) = self.token_record("hook", token, &fields, |k| k.hook_record(token)).await? else {
            return Ok(None);
        };
        let job_id = match job_id {
            Some(id) => {
                if !record.keeps("hook_token", token) {
                    return Ok(None);
                }
                id
            }
            None => record.job()?,
        };
        let callback = match record.optional("callback") {
            Some(c) => Some(CallbackUrl::parse(c).map_err(|_| record.bad("callback"))?),
            None => None,
        };
        Ok(Some(HookTarget { tenant: record.tenant()?, job_id, callback }))
    }

    /// The owner of an upstream session created through the gateway, looked for in `tenant`'s partition; `None`
    /// for any other id (the caller still compares the owner with the tenant).
    pub async fn session_owner(&self, tenant: &TenantId, unique_id: &str) -> Result<Option<SessionOwner>, QueueError> {
        if !safe_key_part(unique_id) {
            return Ok(None);
        }
        let key = self.layout.tenant(tenant).session(unique_id);
        let Some(record) = self.read_record("session", key).await? else { return Ok(None) };
        let hook_token = record.optional("hook_token").ok_or_else(|| record.bad("hook_token"))?.to_owned();
        Ok(Some(SessionOwner { tenant: record.tenant()?, job_id: record.job()?, hook_token }))
    }
}

impl JobStore {
    /// After a successful upstream `session-delete`: removes the session's owner record and its place in the
    /// tenant's sessions set (freeing a quota slot), and lets its relay hook expire with the job TTL. Answers the
    /// owner it had, `None` when the session was not known.
    pub async fn forget_session(&self, tenant: &TenantId, unique_id: &str) -> Result<Option<SessionOwner>, QueueError> {
        if !safe_key_part(unique_id) {
            return Ok(None);
        }
        let keys = self.layout.tenant(tenant);
        let mut inv = scripts::FORGET_SESSION.prepare_invoke();
        inv.key(keys.session(unique_id)).arg(unique_id).arg(keys.prefix()).arg(ms(self.config.job_ttl));
        let owner: Vec<Option<String>> =
            self.redis.call("forget session", |mut c| async move { inv.invoke_async(&mut c).await }).await?;
        let [Some(tenant), Some(job), Some(hook_token)] = owner.as_slice() else { return Ok(None) };
        let bad = |what: &str| QueueError::Corrupt(format!("session {unique_id}: bad {what}"));
        Ok(Some(SessionOwner {
            tenant: TenantId::parse(tenant).map_err(|_| bad("tenant"))?,
            job_id: job.parse().map_err(|_| bad("job"))?,
            hook_token: hook_token.clone(),
        }))
    }
}

/// One record hash as `HGETALL` returned it, with the readers of the fields several records share.
pub(crate) struct RecordHash {
    what: &'static str,
    fields: HashMap<String, String>,
}

impl RecordHash {
    pub(crate) fn bad(&self, field: &str) -> QueueError {
        QueueError::Corrupt(format!("{} record: bad {field}", self.what))
    }

    /// A field's value; `None` when absent or empty.
    pub(crate) fn optional(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// The owner (`tenant`).
    pub(crate) fn tenant(&self) -> Result<TenantId, QueueError> {
        self.optional("tenant").and_then(|t| TenantId::parse(t).ok()).ok_or_else(|| self.bad("tenant"))
    }

    /// The create job (`job`).
    pub(crate) fn job(&self) -> Result<JobId, QueueError> {
        self.optional("job").and_then(|j| j.parse().ok()).ok_or_else(|| self.bad("job"))
    }

    /// True when the record keeps exactly `token` in `field` (a capability token: compared in constant time).
    pub(crate) fn keeps(&self, field: &str, token: &str) -> bool {
        let kept = self.optional(field).unwrap_or_default();
        bool::from(kept.as_bytes().ct_eq(token.as_bytes()))
    }
}

/// Upstream session ids (client-supplied) are short and URL-safe, or they match nothing.
fn safe_key_part(s: &str) -> bool {
    (1..=256).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}
