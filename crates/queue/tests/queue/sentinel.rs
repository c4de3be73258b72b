//! Sentinel mode against three real sentinels, a primary and a replica: the store and the completion
//! subscription follow a failover without being rebuilt.

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use serde_json::json;
use wgate_queue::{Completions, Enqueued, JobStore, QueueConfig, QueueError, RedisMode};
use wgate_testkit::{SentinelGroup, unique_namespace};
use wgate_types::{IdempotencyKey, JobId};

use crate::helpers::{job, within};

fn sentinel_config(group: &SentinelGroup) -> QueueConfig {
    QueueConfig {
        mode: RedisMode::Sentinel { service: group.service().to_owned() },
        ..QueueConfig::new(group.url(), unique_namespace("sentinel"))
    }
}

/// Waits until the subscription is up (an early waiter is woken by every (re)subscription), then until a
/// completion published on `conn` wakes a waiter.
async fn completion_reaches(completions: &Completions, conn: &mut redis::aio::MultiplexedConnection, done: &str) {
    within("a completion published on the primary wakes a waiter", Duration::from_secs(15), async {
        loop {
            let id = JobId::new();
            let waiter = completions.waiter(id);
            let _: () = conn.publish(done, id.to_string()).await.unwrap();
            if tokio::time::timeout(Duration::from_millis(200), waiter).await.is_ok() {
                return;
            }
        }
    })
    .await;
}

#[tokio::test]
async fn the_store_and_the_completion_subscription_follow_a_promoted_replica() {
    let mut group = SentinelGroup::start("queue-main").await;
    let config = sentinel_config(&group);
    let store = JobStore::new(config.clone()).unwrap();
    let completions = Completions::start(&config);
    let done = format!("{{{}}}:done", config.namespace);

    let before = job("acme", json!({"name":"Before"}));
    assert_eq!(store.enqueue(&before, None, None).await.unwrap(), Enqueued::Created);
    // The job reached the replica before the primary dies.
    let mut c = group.primary.connection().await;
    let acked: i64 = redis::cmd("WAIT").arg(1).arg(5000).query_async(&mut c).await.unwrap();
    assert_eq!(acked, 1);
    completion_reaches(&completions, &mut c, &done).await;

    let switched = group.switch_master().await;
    let killed = Instant::now();
    group.primary.kill();
    let (mut unavailable, mut other) = (0, Vec::new());
    // Calls keep coming during the switch, one every 10 ms.
    let mut pace = tokio::time::interval(Duration::from_millis(10));
    let new_port = within("the sentinels promote the replica", Duration::from_secs(30), async {
        let mut switched = Box::pin(switched);
        loop {
            tokio::select! {
                port = &mut switched => break port.unwrap(),
                r = async { pace.tick().await; store.ping().await } => match r {
                    Err(QueueError::Unavailable(_)) => unavailable += 1,
                    Err(e) => other.push(e),
                    Ok(()) => {}
                },
            }
        }
    })
    .await;
    let switch_time = killed.elapsed();
    assert_eq!(new_port, group.replica.port(), "the replica is the new primary");
    assert!(other.is_empty(), "during the switch only `unavailable` errors: {other:?}");
    assert!(unavailable > 0, "calls made while the primary was dead did fail");

    let recovered = within("the store works on the new primary", Duration::from_secs(10), async {
        loop {
            match store.ping().await {
                Ok(()) => break killed.elapsed(),
                Err(e) => assert!(e.is_unavailable(), "{e:?}"),
            }
        }
    })
    .await;
    eprintln!(
        "sentinel failover seen by the store: +switch-master {switch_time:?}, first answer {recovered:?} after the kill"
    );
    assert_eq!(store.find(before.id).await.unwrap().map(|j| j.id), Some(before.id), "the replicated job is there");
    let after = job("acme", json!({"name":"After"}));
    assert_eq!(store.enqueue(&after, None, None).await.unwrap(), Enqueued::Created);
    let mut c = group.replica.connection().await;
    completion_reaches(&completions, &mut c, &done).await;
}

#[tokio::test]
async fn a_service_the_sentinels_do_not_know_is_unavailable_not_a_hang() {
    let group = SentinelGroup::start("known").await;
    let config = QueueConfig {
        mode: RedisMode::Sentinel { service: "unknown".into() },
        ..QueueConfig::new(group.url(), unique_namespace("sentinel"))
    };
    let store = JobStore::new(config).unwrap();
    let err = within("an answer", Duration::from_secs(5), store.ping()).await.unwrap_err();
    assert!(err.is_unavailable() && err.to_string().contains("unknown"), "{err:?}");
}

#[tokio::test]
async fn a_manual_failover_that_keeps_the_old_primary_up_as_a_replica_is_followed_and_loses_no_acknowledged_job() {
    let group = SentinelGroup::start("queue-manual").await;
    // Without the wait, a write that reaches the old primary between the switch and its demotion is acknowledged
    // and then wiped by its resync from the new primary (seen while writing this test).
    let config = QueueConfig { wait_replicas: 1, wait_timeout: Duration::from_millis(200), ..sentinel_config(&group) };
    let store = JobStore::new(config.clone()).unwrap();
    assert_eq!(store.enqueue(&job("acme", json!({"name":"Before"})), None, None).await.unwrap(), Enqueued::Created);

    let switched = group.switch_master().await;
    let mut sentinel = group.sentinel_connection(0).await.unwrap();
    let _: () = redis::cmd("SENTINEL").arg("FAILOVER").arg(group.service()).query_async(&mut sentinel).await.unwrap();
    let new_port = within("the manual failover", Duration::from_secs(30), switched).await.unwrap();
    assert_eq!(new_port, group.replica.port());

    // The old primary still answers, soon read-only: writes must move to the new primary by themselves. A client
    // retries with its idempotency key, as the 503 tells it to.
    let after = job("acme", json!({"name":"After"}));
    let key = IdempotencyKey::parse("after-the-switch").unwrap();
    let switched_at = Instant::now();
    // The new primary has no replica until the sentinels turn the old primary into one (they wait a few of
    // their 1-10 s INFO periods to do so): until then every waiting write is a 503, which is the point.
    within("an enqueue is acknowledged on the new primary", Duration::from_secs(45), async {
        loop {
            match store.enqueue(&after, Some(&key), None).await {
                Ok(Enqueued::Created) => break,
                Ok(Enqueued::Existing(j)) => break assert_eq!(j.id, after.id),
                Ok(other) => panic!("{other:?}"),
                Err(e) => assert!(e.is_unavailable(), "{e:?}"),
            }
        }
    })
    .await;
    eprintln!("manual failover: writes acknowledged again {:?} after +switch-master", switched_at.elapsed());
    let mut c = group.replica.connection().await;
    let on_new: bool = c.exists(format!("{{{}}}:job:{}", config.namespace, after.id)).await.unwrap();
    assert!(on_new, "the job was written on the new primary");
}

#[tokio::test]
async fn over_tls_the_sentinels_and_each_primary_are_reached_with_the_private_ca() {
    let certs = std::sync::Arc::new(wgate_testkit::TestCertificates::generate());
    let mut group = SentinelGroup::start_tls("queue-tls", certs.clone()).await;
    assert!(group.url().starts_with("rediss://"), "{}", group.url());
    let config = QueueConfig {
        tls: wgate_queue::RedisTls { ca_file: Some(certs.ca_cert()), ..Default::default() },
        ..sentinel_config(&group)
    };
    let store = JobStore::new(config).unwrap();
    let before = job("acme", json!({"name":"Before"}));
    assert_eq!(store.enqueue(&before, None, None).await.unwrap(), Enqueued::Created);

    let switched = group.switch_master().await;
    group.primary.kill();
    let new_port = within("the sentinels promote the replica", Duration::from_secs(30), switched).await.unwrap();
    assert_eq!(new_port, group.replica.port());
    within("the store works on the new primary over TLS", Duration::from_secs(10), async {
        while let Err(e) = store.ping().await {
            assert!(e.is_unavailable(), "{e:?}");
        }
    })
    .await;
    let after = job("acme", json!({"name":"After"}));
    assert_eq!(store.enqueue(&after, None, None).await.unwrap(), Enqueued::Created);
}
