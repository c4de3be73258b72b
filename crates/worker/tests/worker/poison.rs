//! Stream entries that cannot be run (no job id, a malformed one, a record that cannot be read) are acked, kept
//! in the dead-letter list with their raw fields, counted on /metrics, and never hold the queue back.

use std::time::Duration;

use serde_json::json;
use wgate_types::JobStatus;

use crate::helpers::{TestWorker, World};

const SECS: fn(u64) -> Duration = Duration::from_secs;

async fn xadd(world: &World, fields: &[(&str, &str)]) -> String {
    let mut c = world.redis.connection().await;
    let mut cmd = redis::cmd("XADD");
    cmd.arg(world.key("queue:session-create")).arg("*");
    for (k, v) in fields {
        cmd.arg(*k).arg(*v);
    }
    cmd.query_async(&mut c).await.unwrap()
}

async fn pending_entries(world: &World) -> u64 {
    let mut c = world.redis.connection().await;
    let summary: redis::Value =
        redis::cmd("XPENDING").arg(world.key("queue:session-create")).arg("workers").query_async(&mut c).await.unwrap();
    match summary {
        redis::Value::Array(parts) => match parts.first() {
            Some(redis::Value::Int(n)) => u64::try_from(*n).unwrap(),
            other => panic!("XPENDING summary {other:?}"),
        },
        other => panic!("XPENDING {other:?}"),
    }
}

/// Waits until the worker's /metrics shows `want`.
async fn metric(worker: &TestWorker, want: &str) {
    let wait = async {
        loop {
            if worker.metrics().await.contains(want) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if tokio::time::timeout(SECS(10), wait).await.is_err() {
        panic!("/metrics never showed {want:?}:\n{}", worker.metrics().await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_without_a_valid_job_id_are_dead_lettered_and_the_stream_is_still_trimmed() {
    let world = World::start(json!({})).await;
    world.store.ensure_group().await.unwrap();
    let bogus = xadd(&world, &[("job", "bogus")]).await;
    let no_job = xadd(&world, &[("other", "field"), ("more", "x")]).await;
    let worker = world.worker().await;
    let job = world.enqueue("after the poison", 6).await;
    assert_eq!(world.finished(job.id, SECS(10)).await.status, JobStatus::Succeeded);

    metric(&worker, "wgate_queue_dead_letters{queue=\"session-create\"} 2\n").await;
    assert_eq!(pending_entries(&world).await, 0, "a poison entry stays pending");
    let letters = world.store.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 2, "{letters:?}");
    let bogus_letter = letters.iter().find(|l| l["entry_id"] == bogus.as_str()).expect("the bogus entry");
    assert_eq!(bogus_letter["fields"], json!([["job", "bogus"]]));
    assert!(bogus_letter["reason"].as_str().unwrap().contains("not a job id"), "{bogus_letter}");
    let no_job_letter = letters.iter().find(|l| l["entry_id"] == no_job.as_str()).expect("the entry without job");
    assert_eq!(no_job_letter["fields"], json!([["other", "field"], ["more", "x"]]));
    let mut c = world.redis.connection().await;
    let ttl: i64 = redis::cmd("PTTL").arg(world.key("dead-letters:session-create")).query_async(&mut c).await.unwrap();
    assert!(ttl > 0, "the dead-letter list expires");

    // Nothing is left pending below the good job, so trimming reaches the end of the stream.
    let trimmed = async {
        loop {
            let len: u64 = redis::cmd("XLEN").arg(world.key("queue:session-create")).query_async(&mut c).await.unwrap();
            if len == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(SECS(10), trimmed).await.expect("the stream was never trimmed past the poison entries");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_record_that_cannot_be_read_is_dead_lettered_and_the_jobs_around_it_still_run() {
    let world = World::start(json!({})).await;
    let before = world.enqueue("before the broken one", 6).await;
    let broken = world.enqueue("broken", 6).await;
    let after = world.enqueue("after the broken one", 6).await;
    let mut c = world.redis.connection().await;
    let _: () = redis::cmd("HSET")
        .arg(world.key(&format!("job:{}", broken.id)))
        .arg("request")
        .arg("{not json")
        .query_async(&mut c)
        .await
        .unwrap();
    let worker = world.worker().await;
    for j in [&before, &after] {
        assert_eq!(world.finished(j.id, SECS(10)).await.status, JobStatus::Succeeded);
    }
    metric(&worker, "wgate_queue_dead_letters{queue=\"session-create\"} 1\n").await;
    let letters = world.store.dead_letters(10).await.unwrap();
    assert_eq!(letters[0]["fields"], json!([["job", broken.id.to_string()]]));
    assert!(letters[0]["reason"].as_str().unwrap().contains("cannot be read"), "{letters:?}");
    assert_eq!(pending_entries(&world).await, 0);
    assert_eq!(world.sim.created("broken").await, 0);
    worker.stop().await;
}
