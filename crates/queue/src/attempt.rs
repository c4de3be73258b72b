//! The worker's side of the job store: starting and finishing attempts, the scripts the backend runs in the
//! background (promotion of due retries, takeover, refresh, release).

use serde_json::Value;
use time::OffsetDateTime;
use wgate_types::{ErrorClass, JobError, JobId, JobKind, JobRecord};

use crate::{
    JobStore, QueueError,
    keys::GROUP,
    record::{self, ts},
    scripts,
    store::{tagged, to_strings},
};

/// One stream entry handed to a worker: the apalis task arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub job_id: JobId,
    /// The stream entry id, acked when the attempt finishes.
    pub entry_id: String,
    /// The entry was taken over from a consumer that stopped answering: its attempt may have reached upstream.
    pub taken_over: bool,
}

/// What [`JobStore::start_attempt`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Started {
    /// Run attempt `record.attempts`. `reconcile`: an earlier attempt may have created the session upstream.
    Run { record: Box<JobRecord>, reconcile: bool },
    /// Every attempt was used and the last one never finished: the job is now `dead` (and published).
    Dead(Box<JobRecord>),
    /// The job is already finished or gone: the entry was dropped.
    Skip,
}

/// How an attempt ended, as the worker decided it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded {
        response: Value,
        unique_id: String,
    },
    /// Permanent: never retried.
    Failed(JobError),
    /// Retryable: run again at `due`.
    Retry {
        error: JobError,
        due: OffsetDateTime,
        maybe_sent: bool,
    },
    /// Retryable, but every attempt is used.
    Dead(JobError),
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Succeeded { .. } => "succeeded",
            Self::Failed(_) => "failed",
            Self::Retry { .. } => "retried",
            Self::Dead(_) => "dead",
        }
    }
}

/// A finished attempt: what the handler returns and the acknowledger writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub delivery: Delivery,
    pub job: Option<Box<JobRecord>>,
    /// `None` when there is nothing to write (the start script already dropped or buried the job).
    pub outcome: Option<Outcome>,
}

/// The result of writing an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Ok,
    /// Another attempt owns the job now (it was taken over): nothing was written.
    Stale,
}

fn ms_of(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

impl JobStore {
    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.config().job_ttl.as_millis()).unwrap_or(u64::MAX).max(1)
    }

    fn stream_key(&self) -> String {
        self.keys().stream(JobKind::SessionCreate)
    }

    /// Creates the consumer group (and the stream) if missing.
    pub async fn ensure_group(&self) -> Result<(), QueueError> {
        let stream = self.stream_key();
        let r: Result<(), QueueError> = self
            .redis()
            .call("XGROUP CREATE", |mut c| async move {
                redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(stream)
                    .arg(GROUP)
                    .arg("0")
                    .arg("MKSTREAM")
                    .query_async::<()>(&mut c)
                    .await
            })
            .await;
        match r {
            Err(QueueError::Redis(m)) if m.contains("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    /// Starts an attempt: increments the attempt counter and marks the job running (see [`Started`]).
    pub async fn start_attempt(&self, d: &Delivery) -> Result<Started, QueueError> {
        let started = self.start_attempts(std::slice::from_ref(d)).await?;
        started.into_iter().next().ok_or_else(|| QueueError::Corrupt("start script answered nothing".into()))
    }

    /// [`JobStore::start_attempt`] for many entries in one script run.
    pub async fn start_attempts(&self, deliveries: &[Delivery]) -> Result<Vec<Started>, QueueError> {
        let keys = self.keys();
        let now = OffsetDateTime::now_utc();
        let lost = JobError {
            name: "WorkerLost".into(),
            message: "the worker running the last attempt stopped before finishing it, and no attempt is left".into(),
            class: ErrorClass::Unavailable,
        };
        let (stream, dead) = (self.stream_key(), keys.dead());
        let mut inv = scripts::START.prepare_invoke();
        inv.arg(GROUP)
            .arg(ts(now))
            .arg(ms_of(now))
            .arg(self.ttl_ms())
            .arg(keys.done_channel())
            .arg(keys.prefix())
            .arg(json(&lost));
        for d in deliveries {
            inv.key(keys.job(d.job_id)).key(&stream).key(&dead);
            inv.arg(&d.entry_id).arg(if d.taken_over { "1" } else { "0" }).arg(d.job_id.to_string());
        }
        let reply: redis::Value =
            self.redis().call("start", |mut c| async move { inv.invoke_async(&mut c).await }).await?;
        let redis::Value::Array(items) = reply else {
            return Err(QueueError::Corrupt("start script answered no list".into()));
        };
        items.into_iter().map(parse_started).collect()
    }

    /// Writes the outcome of attempt `job.attempts`, acks the entry and (when terminal) publishes the completion.
    pub async fn finish_attempt(
        &self,
        d: &Delivery,
        job: &JobRecord,
        outcome: &Outcome,
    ) -> Result<Written, QueueError> {
        let written = self.finish_attempts(&[(d, job, outcome)]).await?;
        written.into_iter().next().ok_or_else(|| QueueError::Corrupt("finish script answered nothing".into()))
    }

    /// [`JobStore::finish_attempt`] for many attempts in one script run (each fenced on its own).
    pub async fn finish_attempts(
        &self,
        items: &[(&Delivery, &JobRecord, &Outcome)],
    ) -> Result<Vec<Written>, QueueError> {
        let keys = self.keys();
        let now = OffsetDateTime::now_utc();
        let stream = self.stream_key();
        let (scheduled, dead) = (keys.scheduled(), keys.dead());
        let mut inv = scripts::FINISH.prepare_invoke();
        inv.arg(GROUP).arg(ts(now)).arg(ms_of(now)).arg(self.ttl_ms()).arg(keys.done_channel());
        for (d, job, outcome) in items {
            let (kind, error, response, due, maybe_sent, unique_id) = match outcome {
                Outcome::Succeeded { response, unique_id } => {
                    ("succeeded", String::new(), json(response), None, false, unique_id.as_str())
                }
                Outcome::Failed(e) => ("failed", json(e), String::new(), None, false, ""),
                Outcome::Dead(e) => ("dead", json(e), String::new(), None, false, ""),
                Outcome::Retry { error, due, maybe_sent } => {
                    ("retry", json(error), String::new(), Some(*due), *maybe_sent, "")
                }
            };
            let session_key = if unique_id.is_empty() { keys.job(job.id) } else { keys.session(unique_id) };
            inv.key(keys.job(job.id))
                .key(&stream)
                .key(&scheduled)
                .key(&dead)
                .key(keys.tenant_pending(&job.tenant))
                .key(keys.tenant_sessions(&job.tenant))
                .key(session_key)
                .key(keys.hook(&job.hook_token));
            inv.arg(&d.entry_id)
                .arg(job.attempts)
                .arg(kind)
                .arg(job.id.to_string())
                .arg(error)
                .arg(response)
                .arg(due.map(ts).unwrap_or_default())
                .arg(due.map(ms_of).unwrap_or(0))
                .arg(if maybe_sent { "1" } else { "0" })
                .arg(unique_id)
                .arg(job.tenant.as_str())
                .arg(&job.hook_token);
        }
        let reply: Vec<String> =
            self.redis().call("finish", |mut c| async move { inv.invoke_async(&mut c).await }).await?;
        Ok(reply.into_iter().map(|r| if r == "ok" { Written::Ok } else { Written::Stale }).collect())
    }

    /// Moves due retries to the stream, `batch` at a time; answers how many moved.
    pub async fn promote_due(&self, batch: usize) -> Result<usize, QueueError> {
        let mut inv = scripts::PROMOTE.prepare_invoke();
        inv.key(self.keys().scheduled())
            .key(self.stream_key())
            .arg(ms_of(OffsetDateTime::now_utc()))
            .arg(batch)
            .arg(GROUP);
        self.redis().call("promote", |mut c| async move { inv.invoke_async(&mut c).await }).await
    }

    /// Removes acked entries from the stream (below the oldest pending one); answers how many.
    pub async fn trim(&self) -> Result<u64, QueueError> {
        let stream = self.stream_key();
        self.redis()
            .call("trim", |mut c| {
                let mut inv = scripts::TRIM.prepare_invoke();
                inv.key(&stream).arg(GROUP);
                async move { inv.invoke_async(&mut c).await }
            })
            .await
    }

    /// Takes over up to `count` entries idle for `min_idle` (their consumer is presumed dead). Answers the
    /// deliveries and the cursor to continue from.
    pub async fn take_over(
        &self,
        consumer: &str,
        min_idle: std::time::Duration,
        cursor: &str,
        count: usize,
    ) -> Result<(Vec<Delivery>, String), QueueError> {
        let stream = self.stream_key();
        let consumer = consumer.to_owned();
        let cursor = cursor.to_owned();
        let idle = u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX);
        let reply: redis::Value = self
            .redis()
            .call("XAUTOCLAIM", |mut c| async move {
                redis::cmd("XAUTOCLAIM")
                    .arg(stream)
                    .arg(GROUP)
                    .arg(consumer)
                    .arg(idle)
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(count)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let redis::Value::Array(parts) = reply else {
            return Err(QueueError::Corrupt("XAUTOCLAIM reply".into()));
        };
        let next = parts.first().and_then(crate::store::text).unwrap_or_else(|| "0-0".into());
        let entries = match parts.get(1) {
            Some(v) => parse_entries(v, true),
            None => Vec::new(),
        };
        Ok((entries, next))
    }

    /// Keeps this consumer's entries from looking idle; answers the ids another consumer took over.
    pub async fn refresh(&self, consumer: &str, entry_ids: &[String]) -> Result<Vec<String>, QueueError> {
        if entry_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = scripts::REFRESH.prepare_invoke();
        inv.key(self.stream_key()).arg(GROUP).arg(consumer);
        for id in entry_ids {
            inv.arg(id);
        }
        self.redis().call("refresh", |mut c| async move { inv.invoke_async(&mut c).await }).await
    }

    /// Puts entries that were fetched but never started back on the queue.
    pub async fn release(&self, deliveries: &[Delivery]) -> Result<(), QueueError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let mut inv = scripts::RELEASE.prepare_invoke();
        inv.key(self.stream_key()).arg(GROUP);
        for d in deliveries {
            inv.arg(&d.entry_id).arg(d.job_id.to_string());
        }
        self.redis().call("release", |mut c| async move { inv.invoke_async::<()>(&mut c).await }).await
    }

    /// Housekeeping: removes consumers idle for `idle` with nothing pending, and dead-set entries older than the
    /// job TTL (their records have expired).
    pub async fn vacuum(&self, idle: std::time::Duration) -> Result<(), QueueError> {
        let stream = self.stream_key();
        let consumers: redis::Value = self
            .redis()
            .call("XINFO CONSUMERS", |mut c| {
                let stream = stream.clone();
                async move { redis::cmd("XINFO").arg("CONSUMERS").arg(stream).arg(GROUP).query_async(&mut c).await }
            })
            .await?;
        let idle_ms = i64::try_from(idle.as_millis()).unwrap_or(i64::MAX);
        if let redis::Value::Array(list) = consumers {
            for c in list {
                let fields = consumer_fields(&c);
                let name = fields.iter().find(|(k, _)| k == "name").map(|(_, v)| v.clone());
                let pending = fields.iter().find(|(k, _)| k == "pending").and_then(|(_, v)| v.parse::<i64>().ok());
                let seen = fields.iter().find(|(k, _)| k == "idle").and_then(|(_, v)| v.parse::<i64>().ok());
                if let (Some(name), Some(0), Some(seen)) = (name, pending, seen)
                    && seen > idle_ms
                {
                    let stream = stream.clone();
                    let _: Result<i64, _> = self
                        .redis()
                        .call("XGROUP DELCONSUMER", |mut c| async move {
                            redis::cmd("XGROUP")
                                .arg("DELCONSUMER")
                                .arg(stream)
                                .arg(GROUP)
                                .arg(name)
                                .query_async(&mut c)
                                .await
                        })
                        .await;
                }
            }
        }
        let dead = self.keys().dead();
        let cutoff = ms_of(OffsetDateTime::now_utc()) - i64::try_from(self.ttl_ms()).unwrap_or(i64::MAX);
        self.redis()
            .call("ZREMRANGEBYSCORE dead", |mut c| async move {
                redis::cmd("ZREMRANGEBYSCORE").arg(dead).arg("-inf").arg(cutoff).query_async::<()>(&mut c).await
            })
            .await
    }
}

fn consumer_fields(v: &redis::Value) -> Vec<(String, String)> {
    match v {
        redis::Value::Array(items) => items
            .chunks(2)
            .filter_map(|kv| match kv {
                [k, v] => Some((crate::store::text(k)?, crate::store::text(v)?)),
                _ => None,
            })
            .collect(),
        redis::Value::Map(items) => {
            items.iter().filter_map(|(k, v)| Some((crate::store::text(k)?, crate::store::text(v)?))).collect()
        }
        _ => Vec::new(),
    }
}

fn parse_started(item: redis::Value) -> Result<Started, QueueError> {
    let (tag, rest) = tagged(item)?;
    let flat = rest.first().map(to_strings).transpose()?.unwrap_or_default();
    match tag.as_str() {
        "skip" => Ok(Started::Skip),
        "dead" => {
            let rec = record::from_flat(flat)?.ok_or_else(|| QueueError::Corrupt("dead job vanished".into()))?;
            Ok(Started::Dead(Box::new(rec)))
        }
        "run" => {
            let reconcile = flat.chunks(2).any(|kv| kv.len() == 2 && kv[0] == "maybe_sent" && kv[1] == "1");
            let rec = record::from_flat(flat)?.ok_or_else(|| QueueError::Corrupt("started job vanished".into()))?;
            Ok(Started::Run { record: Box::new(rec), reconcile })
        }
        other => Err(QueueError::Corrupt(format!("start script answered {other:?}"))),
    }
}

/// Parses `[[id, [field, value, ...]], ...]` into deliveries (entries without a valid `job` field are skipped).
pub(crate) fn parse_entries(v: &redis::Value, taken_over: bool) -> Vec<Delivery> {
    let redis::Value::Array(entries) = v else { return Vec::new() };
    entries
        .iter()
        .filter_map(|e| {
            let redis::Value::Array(parts) = e else { return None };
            let entry_id = crate::store::text(parts.first()?)?;
            let redis::Value::Array(fields) = parts.get(1)? else { return None };
            let job = fields
                .chunks(2)
                .find(|kv| kv.len() == 2 && crate::store::text(&kv[0]).as_deref() == Some("job"))
                .and_then(|kv| crate::store::text(&kv[1]))?;
            Some(Delivery { job_id: job.parse().ok()?, entry_id, taken_over })
        })
        .collect()
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}
