//! The whole pipeline on a Sentinel deployment (three real sentinels, a primary and a replica): when the primary
//! dies, the API answers 503 during the switch and then works on the promoted replica without a restart, the
//! worker's blocking read and the API's completion subscription included.

use std::time::{Duration, Instant};

use serde_json::json;
use wgate_queue::{RedisMode, RedisTls};
use wgate_testkit::SentinelGroup;
use wgate_types::{JobId, JobStatus};

use super::helpers::{RedisTarget, Stack, StackOptions, header};

#[tokio::test]
async fn after_the_primary_dies_the_api_answers_503_then_creates_sessions_on_the_promoted_replica() {
    let mut group = SentinelGroup::start("e2e-main").await;
    let target = RedisTarget {
        url: group.url(),
        tls: RedisTls::default(),
        mode: RedisMode::Sentinel { service: group.service().to_owned() },
    };
    let stack = Stack::start_on(StackOptions::default(), target).await;
    let r = stack.create("acme", &json!({"name": "Before"}), &[]).await;
    assert_eq!(r.status(), 200, "a synchronous create works through the sentinels' primary");

    let switched = group.switch_master().await;
    let killed = Instant::now();
    group.primary.kill();

    // Tenants keep sending (one asynchronous create every 20 ms) while the sentinels elect a new primary.
    let mut accepted: Vec<JobId> = Vec::new();
    let (mut unavailable, mut first_503) = (0, None);
    let mut pace = tokio::time::interval(Duration::from_millis(20));
    let stack = &stack;
    let mut n = 0;
    let new_port = tokio::time::timeout(Duration::from_secs(30), async {
        let mut switched = Box::pin(switched);
        loop {
            tokio::select! {
                port = &mut switched => break port.expect("a +switch-master announcement"),
                r = async {
                    pace.tick().await;
                    n += 1;
                    stack.create("acme", &json!({"name": format!("During {n}")}), &[("Prefer", "respond-async")]).await
                } => match r.status().as_u16() {
                    503 => {
                        unavailable += 1;
                        first_503.get_or_insert(killed.elapsed());
                    }
                    202 => accepted.push(header(&r, "x-job-id").expect("X-Job-Id").parse().expect("job id")),
                    s => panic!("during the switch a create answered {s}: {}", r.text().await.unwrap_or_default()),
                },
            }
        }
    })
    .await
    .expect("the sentinels promote the replica within 30 s");
    let switch = killed.elapsed();
    assert_eq!(new_port, group.replica.port(), "the replica is the new primary");
    assert!(unavailable > 0, "creates sent while no primary was reachable answered 503");

    // A synchronous create needs the enqueue, the worker's blocking read and the API's subscription: all must
    // have moved to the new primary.
    let recovered = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let r = stack.create("acme", &json!({"name": "After"}), &[]).await;
            match r.status().as_u16() {
                200 => break killed.elapsed(),
                503 => pace.tick().await,
                s => panic!("after the switch a create answered {s}: {}", r.text().await.unwrap_or_default()),
            };
        }
    })
    .await
    .expect("a synchronous create answers 200 within 20 s of the switch");
    eprintln!(
        "sentinel failover seen through the API: first 503 at {first_503:?}, +switch-master at {switch:?}, first \
         synchronous 200 at {recovered:?} after the primary was killed ({unavailable} answers were 503)"
    );
    for id in accepted {
        let job = stack.finished(id, Duration::from_secs(10)).await;
        assert_eq!(job.status, JobStatus::Succeeded, "an accepted job is not lost: {job:?}");
    }
    stack.assert_queue_drained().await;
}
