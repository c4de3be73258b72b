//! The finish script fills the slots it frees with the stream's next entries and starts their attempts, in the same
//! round trip: the worker never holds more entries than its concurrency, each job runs once, and most jobs need no
//! start script of their own. When the answer of such a run is lost, its retry gets those starts back.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use wgate_types::JobStatus;

use crate::helpers::{TestWorker, World};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_a_finish_run_started_before_its_answer_was_lost_run_once_without_waiting_for_a_takeover() {
    // The first finish run that writes a success (outcomes are its arguments).
    each_job_runs_once_though_an_answer_is_lost(|_| b"\r\nsucceeded\r\n".to_vec()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_whose_answer_was_lost_is_answered_again_and_counts_no_second_attempt() {
    // The first start run: its keys are the jobs' records (the finish script takes ids, not keys).
    each_job_runs_once_though_an_answer_is_lost(|world| world.key("job:").into_bytes()).await;
}

/// Forty jobs of one attempt each, run by a worker whose connection to Redis is cut right after the first command
/// holding `pattern` reaches Redis: each job still succeeds with one attempt and one session upstream, none marked
/// as maybe sent, long before the visibility timeout could have let another consumer take it over.
async fn each_job_runs_once_though_an_answer_is_lost(pattern: impl Fn(&World) -> Vec<u8>) {
    let world = World::start(json!({"latency_ms": 20})).await;
    let proxy = wgate_testkit::CutProxy::start(std::net::SocketAddr::from(([127, 0, 0, 1], world.redis.port()))).await;
    let mut settings = world.settings();
    settings.redis =
        wgate_queue::RedisSettings::new(format!("redis://{}", proxy.addr()), world.queue.namespace.clone());
    // Far beyond the test's patience: only the worker's own retry can run the jobs in time.
    settings.visibility_timeout_ms = 120_000;
    load_the_scripts(&world).await;
    // One attempt each: a job whose start counted twice would be dead, not succeeded.
    let names: Vec<String> = (0..40).map(|i| format!("lost answer {i}")).collect();
    let jobs = futures::future::join_all(names.iter().map(|n| world.enqueue(n, 1))).await;
    proxy.arm(&pattern(&world));
    let worker = TestWorker::start(settings).await;

    tokio::time::timeout(Duration::from_secs(20), proxy.cut(1)).await.expect("no answer was lost");
    let mut c = world.redis.connection().await;
    for (i, (job, name)) in jobs.iter().zip(&names).enumerate() {
        let done = world.finished(job.id, Duration::from_secs(20)).await;
        assert_eq!((done.status, done.attempts), (JobStatus::Succeeded, 1), "job {i}");
        assert_eq!(world.sim.created(name).await, 1, "job {i} created once upstream");
        let marked: bool = redis::cmd("HEXISTS")
            .arg(world.key(&format!("job:{}", job.id)))
            .arg("maybe_sent")
            .query_async(&mut c)
            .await
            .expect("HEXISTS");
        assert!(!marked, "job {i} is marked as maybe sent");
    }
    assert_eq!(proxy.cuts(), 1);
    worker.stop().await;
}

/// Runs one job through start and finish by hand, so Redis holds both scripts: a script's first call answers
/// NOSCRIPT and runs nothing.
async fn load_the_scripts(world: &World) {
    let job = world.enqueue("script loader", 1).await;
    world.store.ensure_group().await.expect("group");
    let mut c = world.redis.connection().await;
    let read: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(wgate_queue::GROUP)
        .arg("loader")
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg(world.key("queue:session-create"))
        .arg(">")
        .query_async(&mut c)
        .await
        .expect("XREADGROUP");
    let entry = read.keys.first().and_then(|k| k.ids.first()).expect("the loader's entry");
    let d = wgate_queue::Delivery { job_id: job.id, entry_id: entry.id.clone(), taken_over: false, partition: 0 };
    let wgate_queue::Started::Run { record, .. } = world.store.start_attempt(&d).await.expect("start") else {
        panic!("the loader job did not start")
    };
    let done = wgate_queue::Outcome::Succeeded { response: json!({"unique_id": "loader"}), unique_id: "loader".into() };
    assert_eq!(world.store.finish_attempt(&d, &record, &done).await.expect("finish"), wgate_queue::Written::Ok);
}
