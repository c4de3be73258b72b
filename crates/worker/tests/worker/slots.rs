//! The finish script fills the slots it frees with the stream's next entries and starts their attempts, in the same
//! round trip: the worker never holds more entries than its concurrency, each job runs once, and most jobs need no
//! start script of their own.

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
async fn the_finish_script_refills_and_starts_freed_slots_and_the_worker_never_holds_more_than_its_concurrency() {
    let world = World::start(json!({"latency_ms": 20})).await;
    let settings = world.settings();
    let concurrency = u64::try_from(settings.worker_concurrency).expect("concurrency");
    let jobs = futures::future::join_all((0..120).map(|i| world.enqueue_named(i))).await;
    // Every command Redis runs, those of scripts marked "lua": whether a script read the stream, and the jobs a
    // start script (called with its jobs' keys, where the finish script takes ids) started.
    let monitor = world.redis.client().expect("client").get_async_monitor().await.expect("MONITOR");
    let (stop_watching, stopped) = tokio::sync::oneshot::channel::<()>();
    let job_key = world.key("job:");
    let watcher = tokio::spawn(async move {
        let mut commands = monitor.into_on_message::<String>();
        let (mut read_by_a_script, mut by_start_script) = (false, std::collections::HashSet::new());
        let watch = async {
            while let Some(line) = commands.next().await {
                if line.contains("lua]") {
                    read_by_a_script |= line.contains("\"XREADGROUP\"");
                } else if line.contains("\"EVALSHA\"") {
                    by_start_script.extend(
                        line.match_indices(&job_key)
                            .map(|(at, _)| line[at..].split('"').next().unwrap_or("").to_owned()),
                    );
                }
            }
        };
        tokio::select! {
            () = watch => {}
            _ = stopped => {}
        }
        (read_by_a_script, by_start_script.len())
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
    let _ = stop_watching.send(());
    let (read_by_a_script, by_start_script) = watcher.await.expect("watcher");
    assert!(read_by_a_script, "no finish script read the stream's next entries");
    // A worker of concurrency 8 reads the first 8 and, later, a quarter of the freed slots itself.
    assert!(by_start_script < jobs.len() / 2, "{by_start_script} of {} jobs started by a start script", jobs.len());
}
