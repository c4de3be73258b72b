//! The attempt scripts as `JobStore` methods: start, finish, takeover, refresh, release, promotion, trimming,
//! dead-lettering and vacuuming.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use time::OffsetDateTime;
use wgate_types::{ErrorClass, JobError, JobRecord};

use super::{
    Begun, DEAD_LETTER_CAP, Delivery, MAX_RECONCILE_PASSES, Outcome, Poison, Started, Written, consumer_fields, json,
    parse_begun, parse_entries, parse_read, parse_started,
};
use crate::{JobStore, QueueError, keys::GROUP, record::ts, scripts};

/// What a finish run reads for the slots its batch frees (see [`JobStore::finish_attempts_reading`]).
pub(crate) struct Reading<'a> {
    /// The consumer the entries are read for.
    pub(crate) consumer: &'a str,
    /// How many entries at most.
    pub(crate) count: usize,
    /// The batch's clock ([`unique_now`]), the same on every try: the starts it makes write it as `updated_at`.
    pub(crate) at: OffsetDateTime,
    /// On a retry, how many of the consumer's pending entries to look through for the starts an earlier try made
    /// (0 on the first try).
    pub(crate) recover: usize,
}

/// The time now, later by at least a nanosecond than every time answered before in this process: the `updated_at` a
/// start writes names the script run that made it, which a retry after a lost answer looks for.
pub(crate) fn unique_now() -> OffsetDateTime {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = OffsetDateTime::now_utc();
    let ns = u64::try_from(now.unix_timestamp_nanos()).unwrap_or(0);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = ns.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return OffsetDateTime::from_unix_timestamp_nanos(i128::from(next)).unwrap_or(now),
            Err(seen) => last = seen,
        }
    }
}

fn ms_of(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

impl JobStore {
    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.config().job_ttl.as_millis()).unwrap_or(u64::MAX).max(1)
    }

    /// How scripts publish completions: `SPUBLISH` to a shard channel on a cluster (it stays on the shard that owns
    /// the partition's slot), `PUBLISH` elsewhere (Redis 6 has no shard channels).
    fn publish_command(&self) -> &'static str {
        if self.config().mode == crate::RedisMode::Cluster { "SPUBLISH" } else { "PUBLISH" }
    }

    /// The stream of this store's queue.
    pub(crate) fn stream_key(&self) -> String {
        self.keys().queue_stream(self.queue())
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

    /// [`JobStore::start_attempt`] for many entries: one script run per partition among them.
    pub async fn start_attempts(&self, deliveries: &[Delivery]) -> Result<Vec<Started>, QueueError> {
        per_partition(
            deliveries,
            |d| d.partition,
            |p, group| async move { self.for_partition(p).start_attempts_here(&group).await },
        )
        .await
    }

    async fn start_attempts_here(&self, deliveries: &[Delivery]) -> Result<Vec<Started>, QueueError> {
        let keys = self.keys();
        let now = unique_now();
        let (lost, unreconciled) = start_errors();
        let (stream, dead) = (self.stream_key(), keys.dead());
        let mut inv = scripts::START.prepare_invoke();
        inv.arg(GROUP)
            .arg(ts(now))
            .arg(ms_of(now))
            .arg(self.ttl_ms())
            .arg(keys.done_channel())
            .arg(keys.prefix())
            .arg(lost)
            .arg(MAX_RECONCILE_PASSES)
            .arg(unreconciled)
            .arg(self.publish_command());
        for d in deliveries {
            inv.key(keys.job(d.job_id)).key(&stream).key(&dead);
            inv.arg(&d.entry_id).arg(if d.taken_over { "1" } else { "0" }).arg(d.job_id.to_string());
        }
        let reply: redis::Value =
            self.redis().call("start", |mut c| async move { inv.invoke_async(&mut c).await }).await?;
        let redis::Value::Array(items) = reply else {
            return Err(QueueError::Corrupt("start script answered no list".into()));
        };
        if items.len() != deliveries.len() {
            return Err(QueueError::Corrupt("start script answered a list of another length".into()));
        }
        // One record that cannot be read must not fail the batch: it is set aside, the others run.
        let mut started = Vec::with_capacity(items.len());
        let mut poison = Vec::new();
        for (d, item) in deliveries.iter().zip(items) {
            match parse_started(item) {
                Ok(s) => started.push(s),
                Err(e) => {
                    poison.push(Poison {
                        entry_id: d.entry_id.clone(),
                        fields: vec![("job".into(), d.job_id.to_string())],
                        reason: format!("the job record cannot be read: {e}"),
                    });
                    started.push(Started::Skip);
                }
            }
        }
        self.set_aside(&poison).await;
        Ok(started)
    }

    /// [`JobStore::dead_letter`], logging a failure: the entries are left pending, taken over after the
    /// visibility timeout and set aside then.
    pub(crate) async fn set_aside(&self, entries: &[Poison]) {
        if let Err(e) = self.dead_letter(entries).await {
            tracing::warn!(error = %e, count = entries.len(), "could not dead-letter entries; retried at takeover");
        }
    }

    /// Acks `entries` and keeps them in the queue's dead-letter list (capped at [`DEAD_LETTER_CAP`], expiring with
    /// the job TTL); answers the list's length. Each is logged.
    pub async fn dead_letter(&self, entries: &[Poison]) -> Result<u64, QueueError> {
        if entries.is_empty() {
            return Ok(0);
        }
        let now = OffsetDateTime::now_utc();
        let mut inv = scripts::DEAD_LETTER.prepare_invoke();
        inv.key(self.stream_key())
            .key(self.keys().queue_dead_letters(self.queue()))
            .arg(GROUP)
            .arg(DEAD_LETTER_CAP)
            .arg(self.ttl_ms());
        for p in entries {
            tracing::warn!(entry.id = %p.entry_id, fields = ?p.fields, reason = %p.reason, "queue entry cannot be run; dead-lettered");
            let letter = serde_json::json!({
                "entry_id": p.entry_id,
                "fields": p.fields,
                "reason": p.reason,
                "at_ms": ms_of(now),
            });
            inv.arg(&p.entry_id).arg(letter.to_string());
        }
        self.redis().call("dead letter", |mut c| async move { inv.invoke_async(&mut c).await }).await
    }

    /// The newest dead letters of every partition first, at most `count`, as JSON (`entry_id`, `fields`,
    /// `reason`, `at_ms`).
    pub async fn dead_letters(&self, count: usize) -> Result<Vec<Value>, QueueError> {
        let mut all = Vec::new();
        for part in self.partitions() {
            all.extend(part.partition_dead_letters(count).await?);
        }
        if self.layout().count() > 1 {
            all.sort_by_key(|l| std::cmp::Reverse(l.get("at_ms").and_then(Value::as_i64).unwrap_or(0)));
            all.truncate(count);
        }
        Ok(all)
    }

    async fn partition_dead_letters(&self, count: usize) -> Result<Vec<Value>, QueueError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let key = self.keys().queue_dead_letters(self.queue());
        let stop = i64::try_from(count).unwrap_or(i64::MAX) - 1;
        let raw: Vec<String> =
            self.redis().query_again("LRANGE dead letters", redis::cmd("LRANGE").arg(key).arg(0).arg(stop)).await?;
        raw.iter()
            .map(|s| serde_json::from_str(s).map_err(|e| QueueError::Corrupt(format!("dead letter: {e}"))))
            .collect()
    }

    /// Writes the outcome of attempt `job.attempts` (`job` as its start answered it: its `updated_at` is the fence
    /// together with the attempt number), acks the entry and (when terminal) publishes the completion.
    pub async fn finish_attempt(
        &self,
        d: &Delivery,
        job: &JobRecord,
        outcome: &Outcome,
    ) -> Result<Written, QueueError> {
        let written = self.finish_attempts(&[(d, job, outcome)]).await?;
        written.into_iter().next().ok_or_else(|| QueueError::Corrupt("finish script answered nothing".into()))
    }

    /// [`JobStore::finish_attempt`] for many attempts (each fenced on its own): one script run per partition among
    /// them.
    pub async fn finish_attempts(
        &self,
        items: &[(&Delivery, &JobRecord, &Outcome)],
    ) -> Result<Vec<Written>, QueueError> {
        per_partition(
            items,
            |(d, _, _)| d.partition,
            |p, group| async move { Ok(self.for_partition(p).finish_attempts_here(&group, None).await?.0) },
        )
        .await
    }

    /// [`JobStore::finish_attempts`], and in the same round trip up to `read.count` entries of the stream for
    /// `read.consumer` (the slots the batch frees, filled at once), started. Only with one partition, where the
    /// stream is the only one: with several, the fetchers share the slots among the partitions, and nothing is
    /// read here.
    ///
    /// A retry of a batch whose answer was lost passes the same clock (`read.at`) with `read.recover` set: the
    /// entries the earlier run read and started come back as they are, in place of as many new ones.
    pub(crate) async fn finish_attempts_reading(
        &self,
        items: &[(&Delivery, &JobRecord, &Outcome)],
        read: &Reading<'_>,
    ) -> Result<(Vec<Written>, Vec<(Delivery, Option<Begun>)>, Vec<Poison>), QueueError> {
        if self.layout().count() != 1 || read.count == 0 {
            return Ok((self.finish_attempts(items).await?, Vec::new(), Vec::new()));
        }
        let (written, unstarted, begun) = self.finish_attempts_here(items, Some(read)).await?;
        let (unstarted, bad) = parse_read(&unstarted, self.partition());
        let mut got: Vec<(Delivery, Option<Begun>)> =
            parse_begun(begun, self.partition())?.into_iter().map(|(d, b)| (d, Some(b))).collect();
        // Read but not started: the handler's own start runs them.
        got.extend(unstarted.into_iter().map(|d| (d, None)));
        Ok((written, got, bad))
    }

    async fn finish_attempts_here(
        &self,
        items: &[(&Delivery, &JobRecord, &Outcome)],
        read: Option<&Reading<'_>>,
    ) -> Result<(Vec<Written>, redis::Value, redis::Value), QueueError> {
        let keys = self.keys();
        let now = read.map_or_else(unique_now, |r| r.at);
        let stream = self.stream_key();
        let (scheduled, dead) = (keys.scheduled(), keys.dead());
        let mut inv = scripts::FINISH.prepare_invoke();
        inv.key(&stream).key(&scheduled).key(&dead);
        inv.arg(GROUP)
            .arg(ts(now))
            .arg(ms_of(now))
            .arg(self.ttl_ms())
            .arg(keys.done_channel())
            .arg(self.publish_command())
            .arg(keys.prefix())
            .arg(read.map_or("", |r| r.consumer))
            .arg(read.map_or(0, |r| r.count));
        let (lost, unreconciled) = start_errors();
        inv.arg(lost).arg(MAX_RECONCILE_PASSES).arg(unreconciled).arg(read.map_or(0, |r| r.recover));
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
                .arg(&job.hook_token)
                .arg(ts(job.updated_at));
        }
        let (written, next, begun): (Vec<String>, redis::Value, redis::Value) =
            self.redis().call("finish", |mut c| async move { inv.invoke_async(&mut c).await }).await?;
        Ok((written.into_iter().map(|r| if r == "ok" { Written::Ok } else { Written::Stale }).collect(), next, begun))
    }

    /// Moves due retries to the stream, `batch` at a time; answers how many moved.
    pub async fn promote_due(&self, batch: usize) -> Result<usize, QueueError> {
        let mut inv = scripts::PROMOTE.prepare_invoke();
        inv.key(self.keys().queue_scheduled(self.queue()))
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
        let (entries, poison) = match parts.get(1) {
            Some(v) => parse_entries(v, true, self.partition()),
            None => (Vec::new(), Vec::new()),
        };
        // The entries claimed with them are ours now: run them even if the poison must wait for the next takeover.
        if let Err(e) = self.dead_letter(&poison).await {
            tracing::warn!(error = %e, count = poison.len(), "could not dead-letter entries; retried at the next takeover");
        }
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

    /// Puts entries that `consumer` fetched but never ran back on the queue (one script run per partition),
    /// unstarting those whose attempt the finish script started as it read them; an entry another consumer has taken
    /// over meanwhile is left to it.
    pub(crate) async fn release(
        &self,
        consumer: &str,
        entries: &[(Delivery, Option<Begun>)],
    ) -> Result<(), QueueError> {
        per_partition(
            entries,
            |(d, _)| d.partition,
            |p, group| async move {
                self.for_partition(p).release_here(consumer, &group).await.map(|()| vec![(); group.len()])
            },
        )
        .await
        .map(drop)
    }

    async fn release_here(&self, consumer: &str, entries: &[(Delivery, Option<Begun>)]) -> Result<(), QueueError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut inv = scripts::RELEASE.prepare_invoke();
        inv.key(self.stream_key()).arg(GROUP).arg(self.keys().prefix()).arg(consumer);
        for (d, begun) in entries {
            inv.arg(&d.entry_id).arg(d.job_id.to_string()).arg(Begun::undo_args(begun.as_ref()));
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
        let dead = self.keys().queue_dead(self.queue());
        let cutoff = ms_of(OffsetDateTime::now_utc()) - i64::try_from(self.ttl_ms()).unwrap_or(i64::MAX);
        self.redis()
            .call("ZREMRANGEBYSCORE dead", |mut c| async move {
                redis::cmd("ZREMRANGEBYSCORE").arg(dead).arg("-inf").arg(cutoff).query_async::<()>(&mut c).await
            })
            .await
    }
}

/// Runs `run` once per partition found among `items` (`part` tells an item's), each with that partition's items
/// in order, and answers the results in the order of `items`. The usual case, every item in one partition, is
/// one call with the items as they are.
pub(crate) async fn per_partition<T, R, P, F, Fut>(items: &[T], part: P, run: F) -> Result<Vec<R>, QueueError>
where
    T: Clone,
    P: Fn(&T) -> usize,
    F: Fn(usize, Vec<T>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<R>, QueueError>>,
{
    let Some(first) = items.first().map(&part) else { return Ok(Vec::new()) };
    if items.iter().all(|i| part(i) == first) {
        return run(first, items.to_vec()).await;
    }
    let mut parts: Vec<usize> = items.iter().map(&part).collect();
    parts.sort_unstable();
    parts.dedup();
    let groups: Vec<Vec<usize>> =
        parts.iter().map(|&p| (0..items.len()).filter(|&i| part(&items[i]) == p).collect()).collect();
    // The partitions' scripts run at once: on a cluster they go to different primaries.
    let answers = futures::future::try_join_all(
        parts.iter().zip(&groups).map(|(&p, at)| run(p, at.iter().map(|&i| items[i].clone()).collect())),
    )
    .await?;
    let mut out: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    for (at, results) in groups.into_iter().zip(answers) {
        if results.len() != at.len() {
            return Err(QueueError::Corrupt("a script answered a list of another length".into()));
        }
        for (i, r) in at.into_iter().zip(results) {
            out[i] = Some(r);
        }
    }
    out.into_iter().map(|r| r.ok_or_else(|| QueueError::Corrupt("a result is missing".into()))).collect()
}

/// The errors a job out of attempts ends with (the start scripts' arguments, as JSON): its last attempt never
/// finished, or its reconcile-only passes could not reach upstream.
fn start_errors() -> &'static (String, String) {
    static ERRORS: std::sync::LazyLock<(String, String)> = std::sync::LazyLock::new(|| {
        let lost = JobError {
            name: "WorkerLost".into(),
            message: "the worker running the last attempt stopped before finishing it, and no attempt is left".into(),
            class: ErrorClass::Unavailable,
        };
        let unreconciled = JobError {
            name: "Unreconciled".into(),
            message: "an attempt may have created the session upstream, and WhatsGate could not be reached to look \
                  for it; a replay looks for it again before creating"
                .into(),
            class: ErrorClass::Unavailable,
        };
        (json(&lost), json(&unreconciled))
    });
    &ERRORS
}
