//! The whole pipeline on a real Redis Cluster (three primaries, three replicas, started by the test): creates,
//! synchronous and asynchronous, and the session commands work; when the primary serving a tenant's partition dies, a
//! replica takes over, the API answers 503 meanwhile and then works without a restart, and no job a client was
//! told about is lost.

use std::time::{Duration, Instant};

use serde_json::json;
use wgate_queue::{RedisMode, RedisTls};
use wgate_testkit::RedisCluster;
use wgate_types::{JobId, JobStatus};

use super::helpers::{RedisTarget, Stack, StackOptions, header};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_sessions_are_created_and_a_primary_failover_loses_no_accepted_job() {
    let mut cluster = RedisCluster::start(3, 1).await;
    let target = RedisTarget { url: cluster.url(), tls: RedisTls::default(), mode: RedisMode::Cluster };
    let stack = Stack::start_on(StackOptions::default(), target).await;

    let r = stack.create("acme", &json!({"name": "Sync"}), &[]).await;
    assert_eq!(r.status(), 200, "a synchronous create on the cluster: {}", r.text().await.unwrap_or_default());
    let r = stack.create("acme", &json!({"name": "Async"}), &[("Prefer", "respond-async")]).await;
    assert_eq!(r.status(), 202);
    let id: JobId = header(&r, "x-job-id").expect("X-Job-Id").parse().expect("job id");
    assert_eq!(stack.finished(id, Duration::from_secs(10)).await.status, JobStatus::Succeeded);

    // Everything of the tenant (its jobs, its partition's queue and completion channel) lives on one primary.
    let acme = wgate_types::TenantId::parse("acme").expect("tenant");
    let tag = stack.store.layout().tenant(&acme).prefix().to_owned();
    let port = cluster.primary_of(&tag).await.expect("the primary of the tenant's partition");
    let killed = Instant::now();
    cluster.node(port).expect("that node").kill();

    let mut accepted: Vec<JobId> = Vec::new();
    let mut unavailable = 0;
    let recovered = tokio::time::timeout(Duration::from_secs(30), async {
        let mut pace = tokio::time::interval(Duration::from_millis(20));
        let mut n = 0;
        loop {
            pace.tick().await;
            n += 1;
            let r = stack.create("acme", &json!({"name": format!("During {n}")}), &[("Prefer", "respond-async")]).await;
            match r.status().as_u16() {
                503 => unavailable += 1,
                202 => {
                    accepted.push(header(&r, "x-job-id").expect("X-Job-Id").parse().expect("job id"));
                    if unavailable > 0 {
                        break killed.elapsed();
                    }
                }
                s => panic!("during the failover a create answered {s}: {}", r.text().await.unwrap_or_default()),
            }
        }
    })
    .await
    .expect("a replica takes over and creates are accepted again within 30 s");
    assert!(unavailable > 0, "creates sent while the slot had no primary answered 503");

    let r = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let r = stack.create("acme", &json!({"name": "After"}), &[]).await;
            if r.status() != 503 {
                break r;
            }
        }
    })
    .await
    .expect("a synchronous create answers within 20 s of the failover");
    assert_eq!(r.status(), 200, "the worker's reader and the API's subscription followed the failover");
    eprintln!(
        "cluster failover seen through the API: creates accepted again {recovered:?} after the kill ({unavailable} answers were 503)"
    );
    for id in accepted {
        let job = stack.finished(id, Duration::from_secs(15)).await;
        assert_eq!(job.status, JobStatus::Succeeded, "an accepted job is not lost: {job:?}");
    }
}
