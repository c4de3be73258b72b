//! Enqueues of concurrent requests share script runs, and each job keeps the outcome it would have had alone, in
//! arrival order: quota, idempotency and the tenant's bucket all see the earlier jobs of the same batch.

use std::time::Duration;

use futures::future::join_all;
use redis::AsyncCommands;
use serde_json::json;
use wgate_queue::{Enqueued, QueueError, RateDraw};
use wgate_types::IdempotencyKey;

use crate::helpers::{TestQueue, job};

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::parse(k).unwrap()
}

/// `calls` of one command in `INFO commandstats`.
async fn calls_of(q: &TestQueue, command: &str) -> u64 {
    let mut c = q.conn().await;
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(&mut c).await.unwrap();
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn forty_concurrent_creates_take_far_fewer_than_forty_script_calls_and_all_are_stored() {
    let q = TestQueue::start().await;
    // The script is loaded, and the stream made, before counting.
    assert_eq!(q.store.enqueue(&job("acme", json!({"name":"warm"})), None, None).await.unwrap(), Enqueued::Created);
    let before = calls_of(&q, "evalsha").await;
    let jobs: Vec<_> =
        (0..40).map(|i| job(if i % 2 == 0 { "acme" } else { "globex" }, json!({"name": format!("n{i}")}))).collect();
    let results = join_all(jobs.iter().map(|j| q.store.enqueue(j, None, Some(100)))).await;
    let calls = calls_of(&q, "evalsha").await - before;
    assert!(results.iter().all(|r| matches!(r, Ok(Enqueued::Created))), "{results:?}");
    assert!(calls <= 10, "40 concurrent creates took {calls} EVALSHA calls");
    for j in &jobs {
        assert_eq!(q.store.get(&j.tenant, j.id).await.unwrap().as_ref(), Some(j), "job {} is stored as accepted", j.id);
        assert!(q.store.hook_target(&j.hook_token).await.unwrap().is_some(), "job {} has its hook", j.id);
    }
    let counts = q.store.queue_counts().await.unwrap();
    assert_eq!(counts.pending, 41);
}

#[tokio::test]
async fn the_quota_counts_the_earlier_jobs_of_the_same_batch_in_arrival_order() {
    let q = TestQueue::start().await;
    let mut c = q.conn().await;
    let _: () = c.sadd(q.key("tenant:acme:sessions"), "s1").await.unwrap();
    let jobs: Vec<_> = (0..6).map(|i| job("acme", json!({"name": format!("n{i}")}))).collect();
    let other = job("globex", json!({"name":"other"}));
    let mut calls: Vec<_> = jobs.iter().map(|j| q.store.enqueue(j, None, Some(3))).collect();
    calls.insert(3, q.store.enqueue(&other, None, Some(1)));
    let mut results = join_all(calls).await;
    assert!(matches!(results.remove(3), Ok(Enqueued::Created)), "another tenant's quota is its own");
    // One live session + the first two jobs reach the quota of 3.
    let outcomes: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    let expected = [Enqueued::Created, Enqueued::Created]
        .into_iter()
        .chain(std::iter::repeat_n(Enqueued::QuotaExceeded { limit: 3 }, 4))
        .collect::<Vec<_>>();
    assert_eq!(outcomes, expected);
    let pending: Vec<String> = c.smembers(q.key("tenant:acme:pending")).await.unwrap();
    assert_eq!(pending.len(), 2);
    for j in &jobs[2..] {
        assert_eq!(q.store.get(&j.tenant, j.id).await.unwrap(), None, "a refused job is not stored");
    }
}

#[tokio::test]
async fn one_idempotency_key_inside_one_batch_creates_once_answers_the_repeat_and_refuses_another_body() {
    let q = TestQueue::start().await;
    let first = job("acme", json!({"name":"Shop"}));
    let repeat = job("acme", json!({"name":"Shop"}));
    let other_body = job("acme", json!({"name":"Other"}));
    let other_key = job("acme", json!({"name":"Other"}));
    let (k, k2) = (key("k"), key("k2"));
    let results = join_all([
        q.store.enqueue(&first, Some(&k), None),
        q.store.enqueue(&repeat, Some(&k), None),
        q.store.enqueue(&other_body, Some(&k), None),
        q.store.enqueue(&other_key, Some(&k2), None),
    ])
    .await;
    let outcomes: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        outcomes,
        [Enqueued::Created, Enqueued::Existing(first.clone()), Enqueued::IdempotencyConflict, Enqueued::Created]
    );
    assert_eq!(q.store.get(&repeat.tenant, repeat.id).await.unwrap(), None);
    assert_eq!(q.store.get(&other_body.tenant, other_body.id).await.unwrap(), None);
    assert_eq!(q.store.queue_counts().await.unwrap().pending, 2);
}

#[tokio::test]
async fn draws_inside_one_batch_come_from_the_bucket_in_arrival_order_and_a_refused_one_stores_nothing() {
    let q = TestQueue::start().await;
    // Two requests' worth, refilled once an hour: the third and fourth are refused.
    let draw = RateDraw { bucket: "write", interval: Duration::from_secs(3600), burst: 2 };
    let jobs: Vec<_> = (0..4).map(|i| job("acme", json!({"name": format!("n{i}")}))).collect();
    let other = job("globex", json!({"name":"other"}));
    let mut calls: Vec<_> = jobs.iter().map(|j| q.store.enqueue_drawing(j, None, None, draw)).collect();
    calls.push(q.store.enqueue_drawing(&other, None, None, draw));
    let results: Vec<_> = join_all(calls).await.into_iter().map(Result::unwrap).collect();
    let summary: Vec<_> = results.iter().map(|(a, o)| (a.allowed, a.remaining, o.clone())).collect();
    assert_eq!(
        summary,
        [
            (true, 1, Some(Enqueued::Created)),
            (true, 0, Some(Enqueued::Created)),
            (false, 0, None),
            (false, 0, None),
            (true, 1, Some(Enqueued::Created)),
        ]
    );
    let wait = results[2].0.retry_after;
    assert!(wait > Duration::from_secs(3500) && wait <= Duration::from_secs(3600), "retry after {wait:?}");
    for j in &jobs[2..] {
        assert_eq!(q.store.get(&j.tenant, j.id).await.unwrap(), None, "a limited job is not stored");
    }
    // The bucket kept the batch's draws: the next request alone is refused too.
    let (answer, outcome) =
        q.store.enqueue_drawing(&job("acme", json!({"name":"later"})), None, None, draw).await.unwrap();
    assert!(!answer.allowed && outcome.is_none(), "{answer:?} {outcome:?}");
    let ttl: i64 = q.conn().await.pttl(q.key("rate:write:acme")).await.unwrap();
    assert!(ttl > 7_000_000, "the bucket lasts until it is full again, not {ttl} ms");
}

#[tokio::test]
async fn a_job_whose_write_redis_refuses_fails_alone_and_the_rest_of_its_batch_is_stored() {
    let q = TestQueue::start().await;
    let jobs: Vec<_> = (0..3).map(|i| job("acme", json!({"name": format!("n{i}")}))).collect();
    // The middle job's Idempotency-Key names a key holding a hash: its commands are refused.
    let key = IdempotencyKey::parse("order-1").unwrap();
    let mut c = q.conn().await;
    let idem = q.store.layout().tenant(&jobs[1].tenant).idempotency(&jobs[1].tenant, key.as_str());
    let _: () = c.hset(idem, "not", "a string").await.unwrap();
    let results =
        join_all(jobs.iter().enumerate().map(|(i, j)| q.store.enqueue(j, (i == 1).then_some(&key), None))).await;
    assert!(matches!(results[0], Ok(Enqueued::Created)), "{:?}", results[0]);
    assert!(matches!(&results[1], Err(QueueError::Redis(m)) if m.contains("WRONGTYPE")), "{:?}", results[1]);
    assert!(matches!(results[2], Ok(Enqueued::Created)), "{:?}", results[2]);
    assert!(q.store.get(&jobs[2].tenant, jobs[2].id).await.unwrap().is_some());
}
