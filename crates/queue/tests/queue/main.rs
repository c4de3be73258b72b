//! The job store against a real redis-server: records, idempotency, quota, availability, completions, replay.
#![allow(clippy::unwrap_used)] // a panic is the failure report of a test

mod batch;
mod dead_letters;
mod helpers;
mod qr;
mod reconcile;
mod relay;
mod sentinel;
mod tls;
mod wait;

use std::time::Duration;

use futures::future::join_all;
use helpers::{TestQueue, job, tenant, within};
use redis::AsyncCommands;
use serde_json::json;
use time::OffsetDateTime;
use wgate_queue::{Completions, Enqueued, JobStore, QueueConfig, QueueError, Replay};
use wgate_testkit::{ClosedPort, RedisServerOptions};
use wgate_types::{ErrorClass, IdempotencyKey, JobError, JobId, JobStatus};

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::parse(k).unwrap()
}

#[tokio::test]
async fn a_job_record_round_trips_through_redis_exactly() {
    let q = TestQueue::start().await;
    let mut j = job(
        "acme",
        json!({"name":"  Shop ✓ ","callback":"https://t.example/h","auth_type":"CODE","number":"+79999999999"}),
    );
    j.attempts = 2;
    j.status = JobStatus::Retrying;
    j.next_attempt_at = Some(OffsetDateTime::now_utc() + Duration::from_millis(1234));
    j.error =
        Some(JobError { name: "InternalError".into(), message: "boom \"x\"".into(), class: ErrorClass::Unavailable });
    j.response = Some(json!({"id": 151, "unique_id": "6345", "qr": null}));
    assert_eq!(q.store.enqueue(&j, None, None).await.unwrap(), Enqueued::Created);
    assert_eq!(q.store.find(j.id).await.unwrap(), Some(j.clone()));

    let plain = job("acme", json!({"name":"Plain"}));
    let plain = wgate_types::JobRecord { request_id: None, ..plain };
    q.store.enqueue(&plain, None, None).await.unwrap();
    assert_eq!(q.store.find(plain.id).await.unwrap(), Some(plain));
}

#[tokio::test]
async fn an_unknown_job_hook_or_session_is_none() {
    let q = TestQueue::start().await;
    assert_eq!(q.store.find(JobId::new()).await.unwrap(), None);
    assert_eq!(q.store.hook_target("nope").await.unwrap(), None);
    assert_eq!(q.store.hook_target("../../x y").await.unwrap(), None);
    assert_eq!(q.store.session_owner(&tenant("acme"), "123").await.unwrap(), None);
}

#[tokio::test]
async fn an_accepted_job_is_queued_with_its_hook_and_counted_as_pending() {
    let q = TestQueue::start().await;
    let j = job("acme", json!({"name":"Shop","callback":"https://t.example/h"}));
    q.store.enqueue(&j, None, None).await.unwrap();
    let hook = q.store.hook_target(&j.hook_token).await.unwrap().unwrap();
    assert_eq!((hook.tenant.as_str(), hook.job_id), ("acme", j.id));
    assert_eq!(hook.callback.unwrap().as_str(), "https://t.example/h");
    let j2 = job("acme", json!({"name":"No callback"}));
    q.store.enqueue(&j2, None, None).await.unwrap();
    assert_eq!(q.store.hook_target(&j2.hook_token).await.unwrap().unwrap().callback, None);

    let counts = q.store.queue_counts().await.unwrap();
    assert_eq!((counts.pending, counts.scheduled, counts.running, counts.dead), (2, 0, 0, 0));
    let mut c = q.conn().await;
    let pending: Vec<String> = c.smembers(q.key("tenant:acme:pending")).await.unwrap();
    assert_eq!(pending.len(), 2);
    let len: u64 = c.xlen(q.key("queue:session-create")).await.unwrap();
    assert_eq!(len, 2);
    let ttl: i64 = c.ttl(q.key(&format!("job:{}", j.id))).await.unwrap();
    assert_eq!(ttl, -1, "an unfinished job never expires");
}

#[tokio::test]
async fn the_same_idempotency_key_and_body_return_the_existing_job() {
    let q = TestQueue::start().await;
    let first = job("acme", json!({"name":"Shop"}));
    assert_eq!(q.store.enqueue(&first, Some(&key("k1")), None).await.unwrap(), Enqueued::Created);
    let again = job("acme", json!({"name":"Shop"}));
    assert_eq!(q.store.enqueue(&again, Some(&key("k1")), None).await.unwrap(), Enqueued::Existing(first.clone()));
    assert_eq!(q.store.find(again.id).await.unwrap(), None, "no second job is stored");
    let mut c = q.conn().await;
    let ttl: i64 = c.pttl(q.key(&format!("idem:acme:{}", sha256_hex("k1")))).await.unwrap();
    assert!(ttl > 23 * 3600 * 1000 && ttl <= 24 * 3600 * 1000, "idempotency TTL {ttl} ms");
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

#[tokio::test]
async fn the_same_idempotency_key_with_another_body_is_a_conflict() {
    let q = TestQueue::start().await;
    q.store.enqueue(&job("acme", json!({"name":"Shop"})), Some(&key("k")), None).await.unwrap();
    let other = job("acme", json!({"name":"Other shop"}));
    assert_eq!(q.store.enqueue(&other, Some(&key("k")), None).await.unwrap(), Enqueued::IdempotencyConflict);
    assert_eq!(q.store.find(other.id).await.unwrap(), None);
}

#[tokio::test]
async fn another_tenant_with_the_same_key_gets_its_own_job() {
    let q = TestQueue::start().await;
    let a = job("acme", json!({"name":"Shop"}));
    let b = job("globex", json!({"name":"Shop"}));
    assert_eq!(q.store.enqueue(&a, Some(&key("same")), None).await.unwrap(), Enqueued::Created);
    assert_eq!(q.store.enqueue(&b, Some(&key("same")), None).await.unwrap(), Enqueued::Created);
    assert_eq!(q.store.queue_counts().await.unwrap().pending, 2);
}

#[tokio::test]
async fn twenty_concurrent_first_requests_with_one_key_create_exactly_one_job() {
    let q = TestQueue::start().await;
    let jobs: Vec<_> = (0..20).map(|_| job("acme", json!({"name":"Shop"}))).collect();
    let k = key("race");
    let results = join_all(jobs.iter().map(|j| q.store.enqueue(j, Some(&k), None))).await;
    let created: Vec<_> = results.iter().filter(|r| matches!(r, Ok(Enqueued::Created))).collect();
    assert_eq!(created.len(), 1, "{results:?}");
    let winner = jobs.iter().zip(&results).find(|(_, r)| matches!(r, Ok(Enqueued::Created))).unwrap().0;
    for r in &results {
        match r {
            Ok(Enqueued::Created) => {}
            Ok(Enqueued::Existing(rec)) => assert_eq!(rec.id, winner.id),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(q.store.queue_counts().await.unwrap().pending, 1);
}

#[tokio::test]
async fn the_quota_admits_exactly_one_of_many_concurrent_requests_at_one_below_it() {
    let q = TestQueue::start().await;
    let mut c = q.conn().await;
    // 3 live sessions + 1 unfinished job = 4 of a quota of 5.
    let _: () = c.sadd(q.key("tenant:acme:sessions"), &["s1", "s2", "s3"]).await.unwrap();
    q.store.enqueue(&job("acme", json!({"name":"first"})), None, Some(5)).await.unwrap();
    let jobs: Vec<_> = (0..16).map(|i| job("acme", json!({"name": format!("n{i}")}))).collect();
    let results = join_all(jobs.iter().map(|j| q.store.enqueue(j, None, Some(5)))).await;
    let created = results.iter().filter(|r| matches!(r, Ok(Enqueued::Created))).count();
    let refused = results.iter().filter(|r| matches!(r, Ok(Enqueued::QuotaExceeded { limit: 5 }))).count();
    assert_eq!((created, refused), (1, 15), "{results:?}");
    // Another tenant is not affected, and no quota means no limit.
    assert_eq!(q.store.enqueue(&job("globex", json!({"name":"x"})), None, Some(1)).await.unwrap(), Enqueued::Created);
    assert_eq!(q.store.enqueue(&job("acme", json!({"name":"x"})), None, None).await.unwrap(), Enqueued::Created);
}

#[tokio::test]
async fn a_store_is_built_while_redis_is_down_and_answers_unavailable_within_a_second() {
    let closed = ClosedPort::new();
    let config = QueueConfig::new(closed.redis_url(), "down");
    let store = JobStore::new(config).unwrap();
    let started = std::time::Instant::now();
    let err = store.ping().await.unwrap_err();
    assert!(matches!(err, QueueError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() <= HUNG_BOUND, "{:?}", started.elapsed());
}

#[tokio::test]
async fn an_invalid_redis_url_is_a_configuration_error() {
    let err = JobStore::new(QueueConfig::new("http://not-redis", "x")).unwrap_err();
    assert!(matches!(err, QueueError::Config(_)), "{err:?}");
}

#[tokio::test]
async fn calls_fail_fast_while_redis_is_dead_and_work_again_once_it_is_back() {
    let mut q = TestQueue::start_with(RedisServerOptions { appendonly: true }).await;
    let j = job("acme", json!({"name":"Shop"}));
    q.store.enqueue(&j, None, None).await.unwrap();
    q.redis.kill();
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let err = q.store.find(j.id).await.unwrap_err();
        assert!(err.is_unavailable(), "{err:?}");
        assert!(started.elapsed() <= HUNG_BOUND, "{:?}", started.elapsed());
    }
    let started = std::time::Instant::now();
    assert!(q.store.enqueue(&job("acme", json!({"name":"x"})), None, None).await.unwrap_err().is_unavailable());
    assert!(started.elapsed() <= HUNG_BOUND, "{:?}", started.elapsed());
    q.redis.start_again().await;
    within("recovery", Duration::from_secs(5), async {
        loop {
            if let Ok(Some(r)) = q.store.find(j.id).await {
                assert_eq!(r, j);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// The bound on every call while Redis hangs: the 1 s command timeout, plus scheduling slack on a busy machine.
const HUNG_BOUND: Duration = Duration::from_millis(1200);
/// How long a test waits for any one call before it fails instead of hanging.
const SECS5: Duration = Duration::from_secs(5);

#[tokio::test]
async fn calls_to_a_frozen_redis_fail_within_a_second_and_the_first_call_after_it_thaws_succeeds() {
    let q = TestQueue::start().await;
    let j = job("acme", json!({"name":"Shop"}));
    q.store.enqueue(&j, None, None).await.unwrap();
    assert_eq!(q.store.find(j.id).await.unwrap(), Some(j.clone()));
    let frozen = q.redis.freeze();
    for round in 0..3 {
        let started = std::time::Instant::now();
        let err = within("a read of a hung Redis", SECS5, q.store.find(j.id)).await.unwrap_err();
        assert!(err.is_unavailable(), "{err:?}");
        assert!(started.elapsed() <= HUNG_BOUND, "read {round} took {:?}", started.elapsed());
        let started = std::time::Instant::now();
        let other = job("acme", json!({"name":"x"}));
        let err = within("an enqueue to a hung Redis", SECS5, q.store.enqueue(&other, None, None)).await.unwrap_err();
        assert!(err.is_unavailable(), "{err:?}");
        assert!(started.elapsed() <= HUNG_BOUND, "enqueue {round} took {:?}", started.elapsed());
        let started = std::time::Instant::now();
        assert!(within("a ping of a hung Redis", SECS5, q.store.ping()).await.unwrap_err().is_unavailable());
        assert!(started.elapsed() <= HUNG_BOUND, "ping {round} took {:?}", started.elapsed());
    }
    frozen.thaw();
    // No error once Redis answers again: the calls that timed out left nothing behind that the next one waits on.
    let started = std::time::Instant::now();
    assert_eq!(q.store.find(j.id).await.unwrap(), Some(j.clone()), "the first read after the thaw");
    q.store.enqueue(&job("acme", json!({"name":"after"})), None, None).await.unwrap();
    q.store.ping().await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(500), "service came back after {:?}", started.elapsed());
}

#[tokio::test]
async fn a_waiter_is_woken_by_the_publish_of_its_job_id_only() {
    let q = TestQueue::start().await;
    let completions = Completions::start(&q.config);
    // The first subscription wakes any early waiter; wait until it is established.
    within("subscription", Duration::from_secs(5), async {
        loop {
            // A waiter registered just after the subscription's wake-up waits for the next one: keep each wait short.
            let _ = tokio::time::timeout(Duration::from_millis(200), completions.waiter(JobId::new())).await;
            let mut c = q.conn().await;
            let subs: Vec<(String, i64)> =
                redis::cmd("PUBSUB").arg("NUMSUB").arg(q.key("done")).query_async(&mut c).await.unwrap();
            if subs[0].1 == 1 {
                break;
            }
        }
    })
    .await;
    let (mine, other) = (JobId::new(), JobId::new());
    let waiter = completions.waiter(mine);
    let mut untouched = Box::pin(completions.waiter(other));
    let mut c = q.conn().await;
    let _: () = c.publish(q.key("done"), mine.to_string()).await.unwrap();
    within("the waiter wakes", Duration::from_secs(2), waiter).await;
    assert!(futures::poll!(&mut untouched).is_pending());
    assert_eq!(completions.waiting(), 1);
    drop(untouched);
    assert_eq!(completions.waiting(), 0, "a dropped waiter unregisters");
}

#[tokio::test]
async fn waiters_are_woken_when_the_subscription_comes_back_after_a_redis_restart() {
    let mut q = TestQueue::start().await;
    let completions = Completions::start(&q.config);
    // Let the first subscription happen (it wakes early waiters).
    within("subscription", Duration::from_secs(5), completions.waiter(JobId::new())).await;
    let waiters: Vec<_> = (0..10).map(|_| completions.waiter(JobId::new())).collect();
    q.redis.kill();
    q.redis.start_again().await;
    within("all waiters wake after the reconnect", Duration::from_secs(5), join_all(waiters)).await;
}

#[tokio::test]
async fn a_dead_job_is_replayed_with_its_attempts_reset_and_other_jobs_are_not() {
    let q = TestQueue::start().await;
    assert_eq!(q.store.replay(&tenant("acme"), JobId::new(), None).await.unwrap(), Replay::NotFound);
    let mut dead = job("acme", json!({"name":"Shop"}));
    dead.status = JobStatus::Dead;
    dead.attempts = 6;
    dead.error = Some(JobError { name: "InternalError".into(), message: "x".into(), class: ErrorClass::Unavailable });
    q.store.enqueue(&dead, None, None).await.unwrap();
    let mut c = q.conn().await;
    let _: () = c.zadd(q.key("dead"), dead.id.to_string(), 1).await.unwrap();
    let _: () = c.expire(q.key(&format!("job:{}", dead.id)), 100).await.unwrap();
    let Replay::Requeued(r) = q.store.replay(&tenant("acme"), dead.id, None).await.unwrap() else {
        panic!("not requeued")
    };
    assert_eq!((r.status, r.attempts, r.error.as_ref()), (JobStatus::Queued, 0, None));
    let ttl: i64 = c.ttl(q.key(&format!("job:{}", dead.id))).await.unwrap();
    assert_eq!(ttl, -1, "a queued job does not expire");
    let counts = q.store.queue_counts().await.unwrap();
    assert_eq!((counts.dead, counts.pending), (0, 2), "{counts:?}");
    assert_eq!(q.store.replay(&tenant("acme"), dead.id, None).await.unwrap(), Replay::NotDead(JobStatus::Queued));
}

#[tokio::test]
async fn sessions_are_found_by_their_owner_record() {
    let q = TestQueue::start().await;
    let id = JobId::new();
    let mut c = q.conn().await;
    let _: () = c
        .hset_multiple(q.key("session:6345"), &[("tenant", "acme"), ("job", &id.to_string()), ("hook_token", "tok")])
        .await
        .unwrap();
    let owner = q.store.session_owner(&tenant("acme"), "6345").await.unwrap().unwrap();
    assert_eq!((owner.tenant, owner.job_id, owner.hook_token.as_str()), (tenant("acme"), id, "tok"));
}

/// Reads the next entry of the stream as a worker would.
async fn deliver(q: &TestQueue) -> wgate_queue::Delivery {
    helpers::deliver_up_to(q, 1).await.remove(0)
}

fn boom() -> JobError {
    JobError { name: "InternalError".into(), message: "x".into(), class: ErrorClass::Unavailable }
}

#[tokio::test]
async fn a_finished_attempt_acks_its_entry_and_terminal_records_get_their_ttl() {
    let q = TestQueue::start().await;
    let j = job("acme", json!({"name":"Shop"}));
    q.store.enqueue(&j, None, None).await.unwrap();
    let d = deliver(&q).await;
    let wgate_queue::Started::Run { record, reconcile } = q.store.start_attempt(&d).await.unwrap() else {
        panic!("not started")
    };
    assert_eq!((record.status, record.attempts, reconcile), (JobStatus::Running, 1, false));
    assert_eq!(q.store.queue_counts().await.unwrap().running, 1);
    let outcome = wgate_queue::Outcome::Failed(JobError {
        name: "ValidationError".into(),
        message: "no".into(),
        class: ErrorClass::Rejected,
    });
    assert_eq!(q.store.finish_attempt(&d, &record, &outcome).await.unwrap(), wgate_queue::Written::Ok);
    let mut c = q.conn().await;
    let job_ttl: i64 = c.ttl(q.key(&format!("job:{}", j.id))).await.unwrap();
    assert!(job_ttl > 6 * 24 * 3600 && job_ttl <= 7 * 24 * 3600, "{job_ttl}");
    let len: u64 = c.xlen(q.key("queue:session-create")).await.unwrap();
    assert_eq!(len, 1, "acked, not yet trimmed");
    assert_eq!(q.store.trim().await.unwrap(), 1);
    let len: u64 = c.xlen(q.key("queue:session-create")).await.unwrap();
    assert_eq!(len, 0, "the acked entry is trimmed");
    let counts = q.store.queue_counts().await.unwrap();
    assert_eq!((counts.pending, counts.running), (0, 0));
    assert_eq!(q.store.find(j.id).await.unwrap().unwrap().status, JobStatus::Failed);
}

#[tokio::test]
async fn an_attempt_that_was_taken_over_writes_nothing() {
    let q = TestQueue::start().await;
    let j = job("acme", json!({"name":"Shop"}));
    q.store.enqueue(&j, None, None).await.unwrap();
    let d = deliver(&q).await;
    let wgate_queue::Started::Run { record: first, .. } = q.store.start_attempt(&d).await.unwrap() else { panic!() };
    // Another worker takes the entry over and starts attempt 2, which must reconcile first.
    let taken = wgate_queue::Delivery { taken_over: true, ..d.clone() };
    let wgate_queue::Started::Run { record: second, reconcile } = q.store.start_attempt(&taken).await.unwrap() else {
        panic!()
    };
    assert_eq!((second.attempts, reconcile), (2, true));
    let late = wgate_queue::Outcome::Dead(boom());
    assert_eq!(q.store.finish_attempt(&d, &first, &late).await.unwrap(), wgate_queue::Written::Stale);
    assert_eq!(q.store.find(j.id).await.unwrap().unwrap().status, JobStatus::Running);
    let due = OffsetDateTime::now_utc() - Duration::from_millis(1);
    let retry = wgate_queue::Outcome::Retry { error: boom(), due, maybe_sent: true };
    assert_eq!(q.store.finish_attempt(&taken, &second, &retry).await.unwrap(), wgate_queue::Written::Ok);
    assert_eq!(q.store.queue_counts().await.unwrap().scheduled, 1);
    assert_eq!(q.store.promote_due(10).await.unwrap(), 1);
    let counts = q.store.queue_counts().await.unwrap();
    assert_eq!((counts.scheduled, counts.pending), (0, 1));
    let r = q.store.find(j.id).await.unwrap().unwrap();
    assert_eq!(
        (r.status, r.attempts, r.next_attempt_at.map(|t| t.unix_timestamp())),
        (JobStatus::Retrying, 2, Some(due.unix_timestamp()))
    );
}

#[tokio::test]
async fn a_job_that_succeeds_after_a_retry_keeps_no_error_due_time_or_maybe_sent_mark() {
    let q = TestQueue::start().await;
    let j = job("acme", json!({"name":"Shop"}));
    q.store.enqueue(&j, None, None).await.unwrap();
    let d = deliver(&q).await;
    let wgate_queue::Started::Run { record, .. } = q.store.start_attempt(&d).await.unwrap() else { panic!() };
    let due = OffsetDateTime::now_utc() - Duration::from_millis(1);
    let retry = wgate_queue::Outcome::Retry { error: boom(), due, maybe_sent: true };
    assert_eq!(q.store.finish_attempt(&d, &record, &retry).await.unwrap(), wgate_queue::Written::Ok);
    assert_eq!(q.store.promote_due(10).await.unwrap(), 1);
    let d2 = deliver(&q).await;
    let wgate_queue::Started::Run { record: second, reconcile } = q.store.start_attempt(&d2).await.unwrap() else {
        panic!("the retry did not start")
    };
    assert_eq!((second.attempts, reconcile, second.next_attempt_at), (2, true, None));
    let done = wgate_queue::Outcome::Succeeded { response: json!({"unique_id": "77"}), unique_id: "77".into() };
    assert_eq!(q.store.finish_attempt(&d2, &second, &done).await.unwrap(), wgate_queue::Written::Ok);
    let r = q.store.find(j.id).await.unwrap().unwrap();
    assert_eq!((r.status, r.error, r.next_attempt_at), (JobStatus::Succeeded, None, None));
    let mut c = q.conn().await;
    let marked: bool = c.hexists(q.key(&format!("job:{}", j.id)), "maybe_sent").await.unwrap();
    assert!(!marked, "a succeeded job keeps no maybe_sent mark");
}

#[tokio::test]
async fn a_job_whose_last_attempt_and_every_reconcile_pass_never_finished_is_dead_at_its_next_start() {
    let q = TestQueue::start().await;
    let mut j = job("acme", json!({"name":"Crash"}));
    j.max_attempts = 1;
    q.store.enqueue(&j, None, None).await.unwrap();
    let d = deliver(&q).await;
    assert!(matches!(q.store.start_attempt(&d).await.unwrap(), wgate_queue::Started::Run { .. }));
    let completions = Completions::start(&q.config);
    within("subscription", Duration::from_secs(5), completions.waiter(JobId::new())).await;
    let waiter = completions.waiter(j.id);
    let taken = wgate_queue::Delivery { taken_over: true, ..d };
    // Each reconcile-only pass is taken over in turn (its worker died too).
    for _ in 0..wgate_queue::MAX_RECONCILE_PASSES {
        assert!(matches!(q.store.start_attempt(&taken).await.unwrap(), wgate_queue::Started::Reconcile(_)));
    }
    let wgate_queue::Started::Dead(r) = q.store.start_attempt(&taken).await.unwrap() else { panic!("not dead") };
    assert_eq!((r.status, r.attempts), (JobStatus::Dead, 1));
    assert_eq!(r.error.map(|e| e.name), Some("Unreconciled".into()));
    within("the dead job is published", Duration::from_secs(2), waiter).await;
    let counts = q.store.queue_counts().await.unwrap();
    assert_eq!((counts.dead, counts.running, counts.pending), (1, 0, 0));
}

#[tokio::test]
async fn idle_consumers_with_nothing_pending_are_removed_and_busy_ones_kept() {
    let q = TestQueue::start().await;
    q.store.enqueue(&job("acme", json!({"name":"Shop"})), None, None).await.unwrap();
    deliver(&q).await; // consumer "tester" now holds one pending entry
    let mut c = q.conn().await;
    let _: redis::Value = redis::cmd("XGROUP")
        .arg("CREATECONSUMER")
        .arg(q.key("queue:session-create"))
        .arg(wgate_queue::GROUP)
        .arg("gone")
        .query_async(&mut c)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    q.store.vacuum(Duration::from_millis(1)).await.unwrap();
    let consumers: Vec<redis::Value> = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(q.key("queue:session-create"))
        .arg(wgate_queue::GROUP)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(consumers.len(), 1, "only the consumer with a pending entry is kept: {consumers:?}");
}

#[tokio::test]
async fn forgetting_a_deleted_session_frees_its_quota_slot_and_lets_its_hook_expire() {
    let q = TestQueue::start().await;
    let id = JobId::new();
    let mut c = q.conn().await;
    let _: () = c
        .hset_multiple(q.key("session:777"), &[("tenant", "acme"), ("job", &id.to_string()), ("hook_token", "tok")])
        .await
        .unwrap();
    let _: () = c.sadd(q.key("tenant:acme:sessions"), "777").await.unwrap();
    let _: () = c.hset(q.key("hook:tok"), "tenant", "acme").await.unwrap();
    assert_eq!(
        q.store.enqueue(&job("acme", json!({"name":"x"})), None, Some(1)).await.unwrap(),
        Enqueued::QuotaExceeded { limit: 1 }
    );
    let owner = q.store.forget_session(&tenant("acme"), "777").await.unwrap().unwrap();
    assert_eq!((owner.tenant.as_str(), owner.job_id, owner.hook_token.as_str()), ("acme", id, "tok"));
    assert_eq!(q.store.session_owner(&tenant("acme"), "777").await.unwrap(), None);
    let ttl: i64 = c.ttl(q.key("hook:tok")).await.unwrap();
    assert!(ttl > 0);
    assert_eq!(q.store.enqueue(&job("acme", json!({"name":"x"})), None, Some(1)).await.unwrap(), Enqueued::Created);
    assert_eq!(q.store.forget_session(&tenant("acme"), "777").await.unwrap(), None);
}

#[tokio::test]
async fn trimming_removes_acked_entries_only() {
    let q = TestQueue::start().await;
    for i in 0..3 {
        q.store.enqueue(&job("acme", json!({"name": format!("n{i}")})), None, None).await.unwrap();
    }
    let first = deliver(&q).await; // delivered, pending
    let second = deliver(&q).await;
    let wgate_queue::Started::Run { record, .. } = q.store.start_attempt(&second).await.unwrap() else { panic!() };
    let done = wgate_queue::Outcome::Succeeded { response: json!({"unique_id": "9"}), unique_id: "9".into() };
    q.store.finish_attempt(&second, &record, &done).await.unwrap();
    // The acked second entry sits behind the pending first one: nothing can go yet.
    assert_eq!(q.store.trim().await.unwrap(), 0);
    let counts = q.store.queue_counts().await.unwrap();
    assert_eq!((counts.pending, counts.running), (1, 1), "{counts:?}");
    let wgate_queue::Started::Run { record, .. } = q.store.start_attempt(&first).await.unwrap() else { panic!() };
    q.store.finish_attempt(&first, &record, &wgate_queue::Outcome::Failed(boom())).await.unwrap();
    assert_eq!(q.store.trim().await.unwrap(), 2, "both acked entries go; the undelivered third stays");
    let mut c = q.conn().await;
    let len: u64 = c.xlen(q.key("queue:session-create")).await.unwrap();
    assert_eq!(len, 1);
    let counts = q.store.queue_counts().await.unwrap();
    assert_eq!((counts.pending, counts.running), (1, 0), "{counts:?}");
}

#[tokio::test]
async fn the_subscription_stays_up_across_its_keepalive_pings() {
    let q = TestQueue::start().await;
    let completions = Completions::start(&q.config);
    within("subscription", Duration::from_secs(5), completions.waiter(JobId::new())).await;
    let id = JobId::new();
    let mut waiter = Box::pin(completions.waiter(id));
    // Past the 5 s keepalive: a failed ping would reconnect and wake every waiter.
    tokio::time::sleep(Duration::from_millis(5500)).await;
    assert!(futures::poll!(&mut waiter).is_pending(), "woken without a publish");
    let mut c = q.conn().await;
    let _: () = c.publish(q.key("done"), id.to_string()).await.unwrap();
    within("the waiter wakes", Duration::from_secs(2), waiter).await;
}
