//! The finish script fills the slots it frees with the stream's next entries, in the same round trip: the worker
//! never holds more entries than its concurrency, and each job runs once.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use wgate_types::JobStatus;

use crate::helpers::World;

/// Entries read and not yet acknowledged, for every consumer of the job stream.
async fn pending(c: &mut redis::aio::MultiplexedConnection, world: &World) -> u64 {
    let summary: redis::Value = redis::cmd("XPENDING")
        .arg(world.key("queue:session-create"))
        .arg("workers")
        .query_async(c)
        .await
        .expect("XPENDING");
    match summary {
        redis::Value::Array(parts) => match parts.first() {
            Some(redis::Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
            _ => 0,
        },
        _ => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_finish_script_refills_freed_slots_and_the_worker_never_holds_more_than_its_concurrency() {
    let world = World::start(json!({"latency_ms": 20})).await;
    let settings = world.settings();
    let concurrency = u64::try_from(settings.worker_concurrency).expect("concurrency");
    let jobs = futures::future::join_all((0..120).map(|i| world.enqueue_named(i))).await;
    // Every command Redis runs, those of scripts marked "lua": the first XREADGROUP a script runs is told.
    let monitor = world.redis.client().expect("client").get_async_monitor().await.expect("MONITOR");
    let (seen, read_by_a_script) = tokio::sync::oneshot::channel::<String>();
    tokio::spawn(async move {
        let mut commands = monitor.into_on_message::<String>();
        while let Some(line) = commands.next().await {
            if line.contains("lua]") && line.contains("\"XREADGROUP\"") {
                let _ = seen.send(line);
                return;
            }
        }
    });
    let worker = crate::helpers::TestWorker::start(settings).await;

    // The entries the worker holds, sampled as fast as Redis answers until every job is done.
    let mut c = world.redis.connection().await;
    let mut most = 0;
    let drained = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            most = most.max(pending(&mut c, &world).await);
            let counts = world.store.queue_counts().await.expect("counts");
            if counts.pending + counts.running + counts.scheduled == 0 {
                return;
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the jobs were not done within 30 s");
    assert!(most <= concurrency, "{most} entries held at once by a worker of concurrency {concurrency}");
    assert!(most > 0, "the jobs were never seen in flight");
    for (i, job) in jobs.iter().enumerate() {
        let done = world.finished(job.id, Duration::from_secs(10)).await;
        assert_eq!((done.status, done.attempts), (JobStatus::Succeeded, 1), "job {i}");
        assert_eq!(world.sim.created(&format!("job {i}")).await, 1, "job {i} created once upstream");
    }
    worker.stop().await;
    let line = tokio::time::timeout(Duration::from_secs(10), read_by_a_script).await;
    assert!(matches!(line, Ok(Ok(_))), "no finish script read the stream's next entries");
}
