//! The worker against a real redis-server and the simulator: outcomes, retries, reconciliation, crashes,
//! shutdown, Redis restarts and gauges.
#![allow(clippy::unwrap_used)] // a panic is the failure report of a test

mod helpers;
mod poison;
mod reconcile;

use std::time::Duration;

use futures::future::join_all;
use helpers::{PUBLIC_URL, WorkerProcess, World};
use redis::AsyncCommands;
use serde_json::json;
use wgate_queue::Replay;
use wgate_testkit::RedisServerOptions;
use wgate_types::{ErrorClass, JobStatus};

const SECS: fn(u64) -> Duration = Duration::from_secs;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_job_creates_its_session_upstream_records_the_owner_and_publishes_the_completion() {
    let world = World::start(json!({})).await;
    let worker = world.worker().await;
    let job = world.enqueue("  Shop №1 ", 6).await;
    let done = world.finished(job.id, SECS(10)).await;

    assert_eq!((done.status, done.attempts, done.error.as_ref()), (JobStatus::Succeeded, 1, None));
    let data = done.response.clone().unwrap();
    let unique_id = data["unique_id"].as_str().map(str::to_owned).unwrap_or_else(|| data["unique_id"].to_string());
    // WhatsGate got the name exactly as sent and the gateway's relay as callback.
    let upstream = world.sim.sessions("  Shop №1 ").await;
    assert_eq!(upstream.len(), 1);
    assert_eq!(upstream[0]["callback"], format!("{PUBLIC_URL}/hooks/{}", job.hook_token));
    let owner = world.store.session_owner(&unique_id).await.unwrap().unwrap();
    assert_eq!(
        (owner.tenant.as_str(), owner.job_id, owner.hook_token.as_str()),
        ("acme", job.id, job.hook_token.as_str())
    );

    let mut c = world.redis.connection().await;
    let sessions: Vec<String> = c.smembers(world.key("tenant:acme:sessions")).await.unwrap();
    assert_eq!(sessions, vec![unique_id]);
    let pending: Vec<String> = c.smembers(world.key("tenant:acme:pending")).await.unwrap();
    assert!(pending.is_empty());
    let ttl: i64 = c.ttl(world.key(&format!("job:{}", job.id))).await.unwrap();
    assert!(ttl > 6 * 24 * 3600, "a finished record expires after the job TTL, got {ttl}");
    let hook_ttl: i64 = c.ttl(world.key(&format!("hook:{}", job.hook_token))).await.unwrap();
    assert_eq!(hook_ttl, -1, "a live session's relay does not expire");
    let counts = world.store.queue_counts().await.unwrap();
    assert_eq!((counts.pending, counts.running, counts.scheduled, counts.dead), (0, 0, 0, 0));

    let metrics = worker.metrics().await;
    assert!(metrics.contains(r#"wgate_jobs_finished_total{outcome="succeeded",type="session-create"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"wgate_upstream_requests_total{command="session-create",status="200"} 1"#), "{metrics}");
    assert!(metrics.contains("wgate_job_latency_seconds_count{type=\"session-create\"} 1"), "{metrics}");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_upstream_errors_are_retried_with_backoff_and_the_job_then_succeeds_once() {
    let world = World::start(json!({"error_rate": 1.0})).await;
    let worker = world.worker().await;
    let job = world.enqueue("retry me", 20).await;
    let r = world.until(job.id, SECS(10), |r| r.attempts >= 3).await;
    assert!(matches!(r.status, JobStatus::Retrying | JobStatus::Running), "{r:?}");
    world.sim.faults(json!({"error_rate": 0.0})).await;
    let done = world.finished(job.id, SECS(10)).await;
    assert_eq!((done.status, done.error), (JobStatus::Succeeded, None));
    assert!(done.attempts >= 3);
    assert_eq!(world.sim.created("retry me").await, 1);
    assert!(worker.metrics().await.contains(r#"wgate_jobs_finished_total{outcome="retried",type="session-create"}"#));
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_api_key_fails_the_job_after_one_attempt_without_retrying() {
    let world = World::start(json!({})).await;
    let mut settings = world.settings();
    settings.upstream_api_key = Some("wrong-key".to_owned().into());
    let worker = helpers::TestWorker::start(settings).await;
    let job = world.enqueue("bad key", 6).await;
    let done = world.finished(job.id, SECS(10)).await;
    assert_eq!((done.status, done.attempts), (JobStatus::Failed, 1));
    let error = done.error.unwrap();
    assert_eq!((error.name.as_str(), error.class), ("Unauthorized", ErrorClass::Credentials));
    let mut c = world.redis.connection().await;
    let ttl: i64 = c.ttl(world.key(&format!("hook:{}", job.hook_token))).await.unwrap();
    assert!(ttl > 0, "a failed job's relay expires");
    let counts = world.store.queue_counts().await.unwrap();
    assert_eq!((counts.pending, counts.running, counts.scheduled, counts.dead), (0, 0, 0, 0));
    let metrics = worker.metrics().await;
    assert!(!metrics.contains(r#"outcome="retried""#), "{metrics}");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_keeps_failing_is_dead_after_max_attempts_and_can_be_replayed() {
    let world = World::start(json!({"error_rate": 1.0})).await;
    let worker = world.worker().await;
    let job = world.enqueue("doomed", 3).await;
    let done = world.finished(job.id, SECS(10)).await;
    assert_eq!((done.status, done.attempts), (JobStatus::Dead, 3));
    assert_eq!(done.error.as_ref().map(|e| e.name.as_str()), Some("InternalError"));
    assert_eq!(world.store.queue_counts().await.unwrap().dead, 1);

    world.sim.faults(json!({"error_rate": 0.0})).await;
    let waiter = world.completions.waiter(job.id);
    assert!(matches!(world.store.replay(job.id, None).await.unwrap(), Replay::Requeued(_)));
    tokio::time::timeout(SECS(10), waiter).await.unwrap();
    let done = world.finished(job.id, SECS(10)).await;
    assert_eq!((done.status, done.attempts), (JobStatus::Succeeded, 1));
    assert_eq!(world.sim.created("doomed").await, 1);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_from_a_throttling_upstream_is_honoured_over_a_shorter_backoff() {
    let world = World::start(json!({"throttle_rate": 1.0})).await;
    let worker = world.worker().await;
    let job = world.enqueue("throttled", 6).await;
    let r = world.until(job.id, SECS(10), |r| r.status == JobStatus::Retrying).await;
    let wait = r.next_attempt_at.unwrap() - r.updated_at;
    assert!(wait >= time::Duration::milliseconds(990), "waited only {wait}");
    world.sim.faults(json!({"throttle_rate": 0.0})).await;
    let done = world.finished(job.id, SECS(10)).await;
    assert_eq!((done.status, done.attempts), (JobStatus::Succeeded, 2));
    assert!(done.updated_at >= r.next_attempt_at.unwrap());
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answers_and_timeouts_never_create_two_sessions_for_one_job() {
    let world =
        World::start(json!({"ambiguous_rate": 0.3, "timeout_rate": 0.15, "error_rate": 0.1, "throttle_rate": 0.05}))
            .await;
    let mut settings = world.settings();
    settings.upstream_timeout_ms = 300;
    settings.worker_concurrency = 16;
    let worker = helpers::TestWorker::start(settings).await;
    let mut jobs = Vec::new();
    for i in 0..40 {
        jobs.push(world.enqueue(&format!("chaos {i}"), 12).await);
    }
    let done = join_all(jobs.iter().map(|j| world.finished(j.id, SECS(60)))).await;
    let stats = world.sim.stats().await;
    for (job, rec) in jobs.iter().zip(&done) {
        let name = job.request.name().as_str();
        let created = stats["by_name"][name].as_u64().unwrap_or(0);
        assert!(created <= 1, "{name}: {created} sessions upstream");
        if rec.status == JobStatus::Succeeded {
            assert_eq!(created, 1, "{name}");
            let sessions = world.sim.sessions(name).await;
            assert_eq!(sessions[0]["unique_id"], rec.response.as_ref().unwrap()["unique_id"]);
        }
        assert!(rec.status.is_terminal());
    }
    assert!(done.iter().filter(|r| r.status == JobStatus::Succeeded).count() >= 35, "{done:?}");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_of_a_killed_worker_are_finished_by_another_within_30_seconds_with_one_session_each() {
    let world = World::start(json!({"latency_ms": 1500})).await;
    let mut settings = world.settings();
    settings.visibility_timeout_ms = 5000;
    settings.upstream_timeout_ms = 5000;
    let first = WorkerProcess::start(world.env(&settings)).await;
    let mut jobs = Vec::new();
    for i in 0..6 {
        jobs.push(world.enqueue(&format!("survivor {i}"), 6).await);
    }
    for j in &jobs {
        world.until(j.id, SECS(10), |r| r.status == JobStatus::Running).await;
    }
    let killed_at = std::time::Instant::now();
    first.kill();
    let second = WorkerProcess::start(world.env(&settings)).await;
    let done = join_all(jobs.iter().map(|j| world.finished(j.id, SECS(30)))).await;
    assert!(killed_at.elapsed() < SECS(30));
    for (j, rec) in jobs.iter().zip(&done) {
        assert_eq!(rec.status, JobStatus::Succeeded, "{rec:?}");
        assert_eq!(world.sim.created(j.request.name().as_str()).await, 1, "{}", j.request.name().as_str());
    }
    assert_eq!(second.terminate(SECS(20)).await.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_crashes_its_worker_every_time_ends_dead() {
    // Every create hangs; each worker is killed while it waits, as if the job crashed it.
    let world = World::start(json!({"timeout_rate": 1.0})).await;
    let mut settings = world.settings();
    settings.visibility_timeout_ms = 700;
    settings.upstream_timeout_ms = 60_000;
    let job = world.enqueue("crasher", 2).await;
    for attempt in 1..=2 {
        let w = WorkerProcess::start(world.env(&settings)).await;
        world.until(job.id, SECS(15), |r| r.status == JobStatus::Running && r.attempts == attempt).await;
        w.kill();
    }
    let last = WorkerProcess::start(world.env(&settings)).await;
    let done = world.finished(job.id, SECS(15)).await;
    assert_eq!((done.status, done.attempts), (JobStatus::Dead, 2));
    assert_eq!(done.error.map(|e| e.name), Some("WorkerLost".to_owned()));
    assert_eq!(world.store.queue_counts().await.unwrap().dead, 1);
    assert_eq!(last.terminate(SECS(20)).await.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_jobs_finish_and_the_worker_exits_zero() {
    let world = World::start(json!({"latency_ms": 1000})).await;
    let settings = world.settings();
    let w = WorkerProcess::start(world.env(&settings)).await;
    let mut jobs = Vec::new();
    for i in 0..4 {
        jobs.push(world.enqueue(&format!("graceful {i}"), 6).await);
    }
    for j in &jobs {
        world.until(j.id, SECS(10), |r| r.status == JobStatus::Running).await;
    }
    let status = w.terminate(SECS(20)).await;
    assert_eq!(status.code(), Some(0));
    for j in &jobs {
        let r = world.store.get(j.id).await.unwrap().unwrap();
        assert_eq!((r.status, r.attempts), (JobStatus::Succeeded, 1), "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_rides_out_a_redis_restart_and_reports_unready_meanwhile() {
    let mut world = World::start_with(json!({}), RedisServerOptions { appendonly: true }).await;
    let worker = world.worker().await;
    let first = world.enqueue("before restart", 6).await;
    assert_eq!(world.finished(first.id, SECS(10)).await.status, JobStatus::Succeeded);
    assert_eq!(worker.readyz().await, 200);
    world.redis.kill();
    assert_eq!(worker.readyz().await, 503);
    world.redis.start_again().await;
    // As a client would after a 503: the first call may meet the dead connection.
    let job = loop {
        if let Ok(job) = world.try_enqueue("after restart", 6).await {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let done = world.finished(job.id, SECS(15)).await;
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(worker.readyz().await, 200);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_gauges_match_what_redis_holds() {
    let world = World::start(json!({"error_rate": 1.0})).await;
    let mut settings = world.settings();
    settings.retry_base_ms = 600_000;
    settings.retry_max_ms = 600_000;
    let worker = helpers::TestWorker::start(settings).await;
    let waiting: Vec<_> = join_all((0..2).map(|i| world.enqueue_named(i))).await;
    let dead = world.enqueue("dies at once", 1).await;
    world.finished(dead.id, SECS(10)).await;
    for j in &waiting {
        world.until(j.id, SECS(10), |r| r.status == JobStatus::Retrying).await;
    }
    let counts = world.store.queue_counts().await.unwrap();
    assert_eq!((counts.pending, counts.scheduled, counts.running, counts.dead), (0, 2, 0, 1));
    let expected = [("pending", 0), ("scheduled", 2), ("running", 0), ("dead", 1)];
    let matched = async {
        loop {
            let m = worker.metrics().await;
            if expected
                .iter()
                .all(|(s, v)| m.contains(&format!("wgate_queue_jobs{{queue=\"session-create\",state=\"{s}\"}} {v}\n")))
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(SECS(5), matched).await.expect("gauges never matched Redis");
    worker.stop().await;
}

#[tokio::test]
async fn a_missing_upstream_key_stops_the_binary_with_one_line_naming_the_variable() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wgate-worker"))
        .env_remove("WGATE_UPSTREAM_API_KEY")
        .env_remove("WGATE_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("WGATE_UPSTREAM_API_KEY"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_keeps_working_after_redis_comes_back_empty() {
    let mut world = World::start(json!({})).await;
    let worker = world.worker().await;
    let first = world.enqueue("before the loss", 6).await;
    assert_eq!(world.finished(first.id, SECS(10)).await.status, JobStatus::Succeeded);
    // No persistence: the stream and its consumer group are gone when Redis comes back.
    world.redis.kill();
    world.redis.start_again().await;
    let job = loop {
        if let Ok(job) = world.try_enqueue("after the loss", 6).await {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(world.finished(job.id, SECS(15)).await.status, JobStatus::Succeeded);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_but_live_worker_keeps_its_job_past_the_visibility_timeout() {
    let world = World::start(json!({"latency_ms": 2000})).await;
    let mut settings = world.settings();
    settings.visibility_timeout_ms = 500;
    settings.upstream_timeout_ms = 5000;
    let one = helpers::TestWorker::start(settings.clone()).await;
    let two = helpers::TestWorker::start(settings).await;
    let job = world.enqueue("slow but alive", 6).await;
    let done = world.finished(job.id, SECS(15)).await;
    assert_eq!((done.status, done.attempts), (JobStatus::Succeeded, 1), "{done:?}");
    assert_eq!(world.sim.created("slow but alive").await, 1);
    one.stop().await;
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_started_while_redis_is_down_is_unready_then_works_once_redis_is_up() {
    let mut world = World::start(json!({})).await;
    world.redis.kill();
    let worker = world.worker().await;
    assert_eq!(worker.readyz().await, 503);
    world.redis.start_again().await;
    let job = loop {
        if let Ok(job) = world.try_enqueue("late redis", 6).await {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(world.finished(job.id, SECS(15)).await.status, JobStatus::Succeeded);
    assert_eq!(worker.readyz().await, 200);
    worker.stop().await;
}
