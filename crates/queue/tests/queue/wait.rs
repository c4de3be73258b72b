//! `wait_replicas`: an enqueue or a replay is acknowledged only once a replica has it, against a real primary and
//! replica (a replica that stalls is frozen with SIGSTOP).

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use serde_json::json;
use wgate_queue::{Enqueued, JobStore, QueueConfig, QueueError, Replay};
use wgate_testkit::{RedisServer, unique_namespace};
use wgate_types::{IdempotencyKey, JobId, JobStatus};

use crate::helpers::{job, tenant, within};

fn waiting(server: &RedisServer, replicas: u32, wait_ms: u64) -> QueueConfig {
    QueueConfig {
        wait_replicas: replicas,
        wait_timeout: Duration::from_millis(wait_ms),
        ..QueueConfig::new(server.url(), unique_namespace("wait"))
    }
}

/// A primary with one replica online, and a store on the primary whose writes wait for it (generously: on a loaded
/// machine a replica can take a while to acknowledge).
async fn replicated() -> (RedisServer, RedisServer, QueueConfig, JobStore) {
    let primary = RedisServer::start().await;
    let replica = RedisServer::start_replica_of(&primary).await;
    primary.await_replicas_online(1).await;
    let config = waiting(&primary, 1, 2000);
    let store = JobStore::new(config.clone()).unwrap();
    (primary, replica, config, store)
}

fn job_key(config: &QueueConfig, id: impl std::fmt::Display) -> String {
    format!("{{{}}}:job:{id}", config.namespace)
}

#[tokio::test]
async fn an_acknowledged_enqueue_is_already_on_the_replica_and_a_stalled_replica_makes_it_unavailable() {
    let (_primary, replica, config, store) = replicated().await;
    let mut on_replica = replica.connection().await;

    let j = job("acme", json!({"name":"Safe"}));
    assert_eq!(store.enqueue(&j, None, None).await.unwrap(), Enqueued::Created);
    assert!(on_replica.exists::<_, bool>(job_key(&config, j.id)).await.unwrap(), "acknowledged means replicated");

    replica.pause();
    let key = IdempotencyKey::parse("stalled-1").unwrap();
    let stalled = job("acme", json!({"name":"Stalled"}));
    let started = Instant::now();
    let err = within("the wait to give up", Duration::from_secs(10), store.enqueue(&stalled, Some(&key), None))
        .await
        .unwrap_err();
    let took = started.elapsed();
    replica.resume();
    assert!(matches!(&err, QueueError::Unavailable(m) if m.contains("0 of 1 replicas")), "{err:?}");
    assert!(took >= Duration::from_millis(2000), "it waited the whole wait timeout ({took:?})");

    // The write happened on the primary: the client's retry with its key gets that job, acknowledged once the
    // replica caught up.
    let again = within(
        "the retry",
        Duration::from_secs(5),
        store.enqueue(&job("acme", json!({"name":"Stalled"})), Some(&key), None),
    )
    .await
    .unwrap();
    assert!(matches!(&again, Enqueued::Existing(existing) if existing.id == stalled.id), "{again:?}");
    assert!(on_replica.exists::<_, bool>(job_key(&config, stalled.id)).await.unwrap());
}

#[tokio::test]
async fn every_job_of_a_batch_is_acknowledged_by_the_replica_or_told_unavailable() {
    let (_primary, replica, config, store) = replicated().await;
    let mut on_replica = replica.connection().await;

    // Concurrent enqueues share script runs: each job of a batch is on the replica once it is acknowledged.
    let jobs: Vec<_> = (0..12).map(|i| job("acme", json!({"name": format!("batch {i}")}))).collect();
    let results = within(
        "the acknowledged batch",
        Duration::from_secs(10),
        futures::future::join_all(jobs.iter().map(|j| store.enqueue(j, None, None))),
    )
    .await;
    for (j, r) in jobs.iter().zip(&results) {
        assert!(matches!(r, Ok(Enqueued::Created)), "{r:?}");
        assert!(on_replica.exists::<_, bool>(job_key(&config, j.id)).await.unwrap(), "job {} is replicated", j.id);
    }

    // With the replica stalled, no job of the batch is told it was accepted.
    replica.pause();
    let stalled: Vec<_> = (0..12).map(|i| job("acme", json!({"name": format!("stalled {i}")}))).collect();
    let results = within(
        "the waits to give up",
        Duration::from_secs(15),
        futures::future::join_all(stalled.iter().map(|j| store.enqueue(j, None, None))),
    )
    .await;
    replica.resume();
    for r in &results {
        assert!(matches!(r, Err(QueueError::Unavailable(m)) if m.contains("0 of 1 replicas")), "{r:?}");
    }
}

#[tokio::test]
async fn without_any_replica_a_waiting_write_is_unavailable_and_without_waiting_it_is_accepted() {
    let server = RedisServer::start().await;
    let store = JobStore::new(waiting(&server, 1, 100)).unwrap();
    let err = store.enqueue(&job("acme", json!({"name":"Alone"})), None, None).await.unwrap_err();
    assert!(err.is_unavailable() && err.to_string().contains("0 of 1 replicas"), "{err:?}");
    // Reads never wait.
    store.ping().await.unwrap();

    let mut dead = job("acme", json!({"name":"Dead"}));
    dead.status = JobStatus::Dead;
    let plain = JobStore::new(waiting(&server, 0, 100)).unwrap();
    let plain =
        JobStore::new(QueueConfig { namespace: store.config().namespace.clone(), ..plain.config().clone() }).unwrap();
    assert_eq!(plain.enqueue(&dead, None, None).await.unwrap(), Enqueued::Created);
    let mut c = server.connection().await;
    let _: () = c.zadd(format!("{{{}}}:dead", store.config().namespace), dead.id.to_string(), 1).await.unwrap();
    let err = store.replay(&tenant("acme"), dead.id, None).await.unwrap_err();
    assert!(err.is_unavailable(), "a replay waits too: {err:?}");
    assert!(matches!(plain.replay(&tenant("acme"), JobId::new(), None).await.unwrap(), Replay::NotFound));
}
