//! Moving a namespace into another key layout: from one partition (every key under `{<namespace>}`, the layout of
//! a standalone deployment and of every release before partitions) into this store's layout, on the same Redis or
//! another one (a cluster). `wgate migrate` runs it once, with the old deployment stopped.
//!
//! Records move whole (`DUMP` and `RESTORE`, TTL kept) under their tenant's partition. The queues are rebuilt: each
//! stream entry not yet acknowledged (never delivered, or delivered to a worker that did not finish it) is added to
//! its tenant's partition, and each scheduled or dead member to its tenant's sets. A capability token (hook, QR
//! window) minted before partitions does not tell its partition by itself: its partition is written beside it
//! ([`Keys::token_partition`]), where the unauthenticated lookups find it.

use std::{cmp::Ordering, collections::HashSet};

use redis::{
    Value,
    streams::{StreamInfoGroupsReply, StreamPendingCountReply, StreamRangeReply},
};
use wgate_types::TenantId;

use crate::{
    JobStore, Keys, QueueError,
    keys::{GROUP, Queue},
};

/// What a migration did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MigrateReport {
    /// Keys of the namespace found in the source.
    pub keys: usize,
    /// Records copied whole under their tenant's partition.
    pub copied: usize,
    /// Stream entries queued again (not yet acknowledged in the source).
    pub queued: usize,
    /// Scheduled and dead members placed in their tenant's sets.
    pub placed: usize,
    /// Tokens minted for another number of partitions, whose partition is now written beside them.
    pub tokens_mapped: usize,
    /// Keys left behind, with the reason (expired meanwhile, an unknown kind, a record without a tenant).
    pub skipped: Vec<String>,
}

/// How a key of the old layout moves.
enum Kind {
    /// A record hash with a `tenant` field (job, hook and QR of an earlier release, session, delivery).
    Record,
    /// A key whose name names its tenant.
    Named(TenantId),
    /// An event-seen key: the tenant of its hook token.
    EventSeen { hook_token: String },
    /// A queue's stream.
    Stream(Queue),
    /// A queue's scheduled or dead set, whose members are records' ids (`job` or `delivery`).
    Members { q: Queue, dead: bool },
    /// A queue's dead-letter list (diagnostics): to the first partition.
    DeadLetters,
    /// A key of the whole deployment (the webhook signing key).
    Base,
}

fn queue_named(name: &str) -> Option<Queue> {
    [Queue::SessionCreate, Queue::Webhook].into_iter().find(|q| q.as_str() == name)
}

fn tenant_in(text: &str) -> Option<Kind> {
    TenantId::parse(text).ok().map(Kind::Named)
}

/// The kind of a key, from its name without the `{<namespace>}:` prefix.
fn kind_of(rest: &str) -> Option<Kind> {
    let (head, tail) = rest.split_once(':').unwrap_or((rest, ""));
    match head {
        "job" | "hook" | "qr" | "session" | "delivery" => Some(Kind::Record),
        "idem" | "send-idem" | "tenant" | "pace" => tenant_in(tail.split(':').next()?),
        "rate" => tenant_in(tail.split_once(':')?.1),
        "event" => Some(Kind::EventSeen { hook_token: tail.split(':').next()?.to_owned() }),
        "queue" => queue_named(tail).map(Kind::Stream),
        "scheduled" | "dead" => {
            let q = if tail.is_empty() { Some(Queue::SessionCreate) } else { queue_named(tail) };
            q.map(|q| Kind::Members { q, dead: head == "dead" })
        }
        "dead-letters" => Some(Kind::DeadLetters),
        "webhook" if tail == "signing-key" => Some(Kind::Base),
        _ => None,
    }
}

/// A stream id as `(ms, seq)`, for ordering.
fn stream_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

impl JobStore {
    /// Copies the namespace of `source`, which must have one partition, into this store's layout. Refuses to run
    /// twice into the same namespace (a marker key records the first run).
    pub async fn migrate_from(&self, source: &JobStore) -> Result<MigrateReport, QueueError> {
        if source.layout().count() != 1 {
            return Err(QueueError::Corrupt("the source must be a namespace with one partition".into()));
        }
        let marker = self.layout().base().migrated_marker();
        let from = format!("{} {}", crate::redact_url(&source.config().redis_url), source.config().namespace);
        let claimed: bool = self
            .redis()
            .call("SET NX", |mut c| {
                let (marker, from) = (marker.clone(), from.clone());
                async move { redis::cmd("SET").arg(marker).arg(from).arg("NX").query_async(&mut c).await }
            })
            .await?;
        if !claimed {
            return Err(QueueError::Corrupt(format!(
                "this namespace was migrated into already (key {marker}); delete that key to run the migration again"
            )));
        }
        let old = source.layout().base().clone();
        let mut report = MigrateReport::default();
        for key in source.scan_namespace().await? {
            report.keys += 1;
            let rest = key.strip_prefix(old.prefix()).unwrap_or(&key).to_owned();
            let outcome = match kind_of(&rest) {
                None => Err(format!("{key}: not a key wgate writes")),
                Some(kind) => self.move_key(source, &old, &key, &rest, kind, &mut report).await?,
            };
            if let Err(why) = outcome {
                report.skipped.push(why);
            }
        }
        Ok(report)
    }

    /// Every key of `{<namespace>}:` (`SCAN`, so a large namespace does not block Redis).
    async fn scan_namespace(&self) -> Result<Vec<String>, QueueError> {
        let pattern = format!("{}*", self.layout().base().prefix());
        let mut cursor = 0u64;
        let mut keys = Vec::new();
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(1000);
            let (next, batch): (u64, Vec<String>) = self.redis().query_again("SCAN", &scan).await?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }

    /// The tenant of a record of the source (`None`: gone, or no tenant field).
    async fn tenant_of(&self, key: &str) -> Result<Option<TenantId>, QueueError> {
        Ok(self.field_of(key, "tenant").await?.and_then(|t| TenantId::parse(&t).ok()))
    }

    /// One field of a record of the source (`None`: gone, or no such field).
    async fn field_of(&self, key: &str, field: &'static str) -> Result<Option<String>, QueueError> {
        self.redis().query_again("HGET", redis::cmd("HGET").arg(key).arg(field)).await
    }

    async fn move_key(
        &self,
        source: &JobStore,
        old: &Keys,
        key: &str,
        rest: &str,
        kind: Kind,
        report: &mut MigrateReport,
    ) -> Result<Result<(), String>, QueueError> {
        let layout = self.layout();
        let tenant = match &kind {
            Kind::Record => source.tenant_of(key).await?,
            Kind::Named(t) => Some(t.clone()),
            Kind::EventSeen { hook_token } => source.tenant_of(&old.hook_record(hook_token)).await?,
            Kind::Stream(q) => return self.requeue(source, old, key, *q, report).await.map(Ok),
            Kind::Members { q, dead } => return self.place_members(source, old, key, *q, *dead, report).await.map(Ok),
            Kind::DeadLetters | Kind::Base => {
                let keys = if matches!(kind, Kind::Base) { layout.base() } else { layout.part(0) };
                let copied = self.copy_to(source, key, &format!("{}{rest}", keys.prefix()), report).await?;
                return Ok(copied.map(|_| ()));
            }
        };
        let Some(tenant) = tenant else {
            return Ok(Err(format!("{key}: no tenant (the record expired, or its owner is unknown)")));
        };
        let p = layout.of_tenant(&tenant);
        let moved = self.copy_to(source, key, &format!("{}{rest}", layout.part(p).prefix()), report).await?;
        // A token minted for another number of partitions: its own hash need not point at its tenant's partition
        // here. A hook or QR token of this release is kept in its job's record.
        let mut tokens = Vec::new();
        match rest.strip_prefix("hook:").or_else(|| rest.strip_prefix("qr:")) {
            Some(token) => tokens.push(token.to_owned()),
            None if rest.starts_with("job:") && moved.is_ok() => {
                for field in ["hook_token", "qr_token"] {
                    let token = source.field_of(key, field).await?;
                    tokens.extend(token.filter(|t| wgate_types::token_job(t).is_some()));
                }
            }
            None => {}
        }
        let Ok(ttl) = moved else { return Ok(moved.map(|_| ())) };
        for token in tokens.iter().filter(|t| layout.of_token(t) != p) {
            let alias = layout.base().token_partition(token);
            self.redis()
                .call("SET token partition", |mut c| async move {
                    let mut cmd = redis::cmd("SET");
                    cmd.arg(alias).arg(p);
                    if ttl > 0 {
                        cmd.arg("PX").arg(ttl);
                    }
                    cmd.query_async::<()>(&mut c).await
                })
                .await?;
            report.tokens_mapped += 1;
        }
        Ok(Ok(()))
    }

    async fn pttl(&self, key: &str) -> Result<i64, QueueError> {
        self.redis().query_again("PTTL", redis::cmd("PTTL").arg(key)).await
    }

    /// `DUMP` from the source, `RESTORE` here under `to` with the same time to live (answered: in ms, 0 for none).
    async fn copy_to(
        &self,
        source: &JobStore,
        key: &str,
        to: &str,
        report: &mut MigrateReport,
    ) -> Result<Result<i64, String>, QueueError> {
        let ttl = source.pttl(key).await?;
        let dump: Option<Vec<u8>> = source.redis().query_again("DUMP", redis::cmd("DUMP").arg(key)).await?;
        let (Some(dump), true) = (dump, ttl != -2) else {
            return Ok(Err(format!("{key}: expired during the migration")));
        };
        let to = to.to_owned();
        let restored: redis::RedisResult<()> = self
            .redis()
            .call("RESTORE", |mut c| async move {
                Ok(redis::cmd("RESTORE").arg(to).arg(ttl.max(0)).arg(dump).query_async::<()>(&mut c).await)
            })
            .await?;
        match restored {
            Ok(()) => {
                report.copied += 1;
                Ok(Ok(ttl.max(0)))
            }
            Err(e) if e.code() == Some("BUSYKEY") => Ok(Err(format!("{key}: the target already holds it; left as is"))),
            Err(e) => Err(QueueError::from(e)),
        }
    }

    /// The tenant whose partition a queue member belongs to: its record's.
    async fn member_tenant(&self, old: &Keys, q: Queue, id: &str) -> Result<Option<TenantId>, QueueError> {
        let Ok(id) = id.parse() else { return Ok(None) };
        let record = match q {
            Queue::SessionCreate => old.job(id),
            Queue::Webhook => old.delivery(id),
        };
        self.tenant_of(&record).await
    }

    /// Adds each entry the source's workers have not acknowledged to its tenant's partition's stream.
    async fn requeue(
        &self,
        source: &JobStore,
        old: &Keys,
        key: &str,
        q: Queue,
        report: &mut MigrateReport,
    ) -> Result<(), QueueError> {
        let groups: StreamInfoGroupsReply =
            source.redis().query_again("XINFO GROUPS", redis::cmd("XINFO").arg("GROUPS").arg(key)).await?;
        let last = groups.groups.iter().find(|g| g.name == GROUP).map(|g| stream_id(&g.last_delivered_id));
        let pending: StreamPendingCountReply = match last {
            None => StreamPendingCountReply::default(),
            Some(_) => {
                source
                    .redis()
                    .query_again(
                        "XPENDING",
                        redis::cmd("XPENDING").arg(key).arg(GROUP).arg("-").arg("+").arg(1_000_000),
                    )
                    .await?
            }
        };
        let pending: HashSet<String> = pending.ids.into_iter().map(|p| p.id).collect();
        let entries: StreamRangeReply =
            source.redis().query_again("XRANGE", redis::cmd("XRANGE").arg(key).arg("-").arg("+")).await?;
        let mut grouped = HashSet::new();
        for entry in entries.ids {
            let delivered = last.is_some_and(|l| stream_id(&entry.id).cmp(&l) != Ordering::Greater);
            if delivered && !pending.contains(&entry.id) {
                continue; // acknowledged: done
            }
            let Some(Value::BulkString(id)) = entry.map.get("job") else {
                report.skipped.push(format!("{key} entry {}: no job field", entry.id));
                continue;
            };
            let id = String::from_utf8_lossy(id).into_owned();
            let Some(tenant) = source.member_tenant(old, q, &id).await? else {
                report.skipped.push(format!("{key} entry {}: record {id} is gone", entry.id));
                continue;
            };
            let p = self.layout().of_tenant(&tenant);
            let target = self.for_partition(p).for_queue(q);
            // The group first, from the stream's start, so the workers read what is added here.
            if grouped.insert(p) {
                target.ensure_group().await?;
            }
            let stream = target.stream_key();
            self.redis()
                .call("XADD", |mut c| async move {
                    redis::cmd("XADD").arg(stream).arg("*").arg("job").arg(id).query_async::<()>(&mut c).await
                })
                .await?;
            report.queued += 1;
        }
        Ok(())
    }

    /// Places each member of a scheduled or dead set in its tenant's partition's set, with its score.
    async fn place_members(
        &self,
        source: &JobStore,
        old: &Keys,
        key: &str,
        q: Queue,
        dead: bool,
        report: &mut MigrateReport,
    ) -> Result<(), QueueError> {
        let members: Vec<(String, f64)> = source
            .redis()
            .query_again("ZRANGE", redis::cmd("ZRANGE").arg(key).arg(0).arg(-1).arg("WITHSCORES"))
            .await?;
        for (id, score) in members {
            let Some(tenant) = source.member_tenant(old, q, &id).await? else {
                report.skipped.push(format!("{key} member {id}: the record is gone"));
                continue;
            };
            let keys = self.layout().tenant(&tenant);
            let set = if dead { keys.queue_dead(q) } else { keys.queue_scheduled(q) };
            self.redis()
                .call("ZADD", |mut c| async move {
                    redis::cmd("ZADD").arg(set).arg(score).arg(id).query_async::<()>(&mut c).await
                })
                .await?;
            report.placed += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_kind_of_the_old_layout_is_known() {
        for rest in [
            "job:01M8SNE4YR9931N1VNVC1VAPGW",
            "hook:1yrVC5OgPkO3JpcFVm7O7vW4d-px3S5bVN430zer1sQ",
            "qr:27wMPK9cjojhS1axj4npKJXEG956y21Dj6QxXI8yMGM",
            "session:6495688466837",
            "delivery:01M8SNE4YR9931N1VNVC1VAPGW",
            "idem:acme:0baf",
            "send-idem:acme:0baf",
            "tenant:acme:pending",
            "tenant:acme:deliveries",
            "pace:acme:6495688466837:next",
            "rate:write:acme",
            "event:1yrVC5OgPkO3JpcFVm7O7vW4d-px3S5bVN430zer1sQ:0123",
            "queue:session-create",
            "queue:webhook",
            "scheduled",
            "dead:webhook",
            "dead-letters:webhook",
            "webhook:signing-key",
        ] {
            assert!(kind_of(rest).is_some(), "{rest}");
        }
        assert!(matches!(kind_of("rate:write:acme"), Some(Kind::Named(t)) if t.as_str() == "acme"));
        assert!(kind_of("something:else").is_none());
        assert!(stream_id("5-1") < stream_id("5-2") && stream_id("5-9") < stream_id("6-0"));
    }
}
