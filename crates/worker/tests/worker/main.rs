//! The worker against a real redis-server and the simulator: outcomes, retries, reconciliation, crashes,
//! shutdown, Redis restarts and gauges.
#![allow(clippy::unwrap_used)] // a panic is the failure report of a test

mod helpers;
mod partitions;
mod poison;
mod reconcile;
mod slots;
mod webhooks;

use std::time::Duration;

use futures::future::join_all;
use helpers::{PUBLIC_URL, World, acme};
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
    let owner = world.store.session_owner(&acme(), &unique_id).await.unwrap().unwrap();
    assert_eq!(
        (owner.tenant.as_str(), owner.job_id, owner.hook_token.as_str()),
        ("acme", job.id, job.hook_token.as_str())
    );

    let mut c = world.redis.connection().await;
    let sessions: Vec<String> = c.smembers(world.key("tenant:acme:sessions")).await.unwrap();
    assert_eq!(sessions, vec![unique_id]);
    let pending: Vec<String> = c.smembers(world.key("tenant:acme:pending")).await.unwrap();
    assert!(pending.is_empty());
    // The job's record is the session's relay target: it lives as long as the session, and no other key is kept.
    let ttl: i64 = c.ttl(world.key(&format!("job:{}", job.id))).await.unwrap();
    assert_eq!(ttl, -1, "the record of a live session's create job does not expire");
    let hook = world.store.hook_target(&job.hook_token).await.unwrap().expect("the relay");
    assert_eq!((hook.tenant.as_str(), hook.job_id), ("acme", job.id));
    let hook_key: bool = c.exists(world.key(&format!("hook:{}", job.hook_token))).await.unwrap();
    assert!(!hook_key, "no hook hash of its own");
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
    settings.upstream.api_key = Some("wrong-key".to_owned().into());
    let worker = helpers::TestWorker::start(settings).await;
    let job = world.enqueue("bad key", 6).await;
    let done = world.finished(job.id, SECS(10)).await;
    assert_eq!((done.status, done.attempts), (JobStatus::Failed, 1));
    let error = done.error.unwrap();
    assert_eq!((error.name.as_str(), error.class), ("Unauthorized", ErrorClass::Credentials));
    let mut c = world.redis.connection().await;
    let ttl: i64 = c.ttl(world.key(&format!("job:{}", job.id))).await.unwrap();
    assert!(ttl > 6 * 24 * 3600, "a failed job's record, its relay target, expires after the job TTL, got {ttl}");
    let counts = world.store.queue_counts().await.unwrap();
    assert_eq!((counts.pending, counts.running, counts.scheduled, counts.dead), (0, 0, 0, 0));
    let metrics = worker.metrics().await;
    let retried =
        metrics.lines().any(|l| l.starts_with("wgate_jobs_finished_total") && l.contains(r#"outcome="retried""#));
    assert!(!retried, "{metrics}");
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
    assert!(matches!(world.store.replay(&acme(), job.id, None).await.unwrap(), Replay::Requeued(_)));
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
    settings.upstream.timeout_ms = 300;
    settings.worker_concurrency = 16;
    let worker = helpers::TestWorker::start(settings).await;
    let mut jobs = Vec::new();
    for i in 0..40 {
        jobs.push(world.enqueue(&format!("chaos {i}"), 12).await);
    }
    let done = join_all(jobs.iter().map(|j| world.finished(j.id, SECS(60)))).await;
    let stats = world.sim.stats().await;
    // Every job succeeds with exactly one session. An attempt fails without progress with a chance of 0.3
    // (timeout, error or throttle); an ambiguous one creates the session that the next attempt adopts. So a job
    // misses all twelve attempts with a chance of 0.3^12 (5e-7): no share "most of them" to tune, and a job that
    // ends otherwise is a bug.
    for (job, rec) in jobs.iter().zip(&done) {
        let name = job.request.name().as_str();
        assert_eq!(rec.status, JobStatus::Succeeded, "{name}: {rec:?}");
        assert_eq!(stats["by_name"][name].as_u64(), Some(1), "{name}: one session upstream");
        let sessions = world.sim.sessions(name).await;
        assert_eq!(sessions[0]["unique_id"], rec.response.as_ref().unwrap()["unique_id"]);
    }
    assert_eq!(stats["sessions_created"], 40, "{stats}");
    // The faults were really injected: more calls than sessions, and some jobs needed several attempts.
    assert!(stats["create_calls"].as_u64().unwrap() > 40, "{stats}");
    assert!(done.iter().any(|r| r.attempts > 1), "no job was retried: {done:?}");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_of_a_killed_worker_are_finished_by_another_within_30_seconds_with_one_session_each() {
    let world = World::start(json!({"latency_ms": 1500})).await;
    let mut settings = world.settings();
    settings.visibility_timeout_ms = 5000;
    settings.upstream.timeout_ms = 5000;
    let mut first = world.process(&settings).await;
    let mut jobs = Vec::new();
    for i in 0..6 {
        jobs.push(world.enqueue(&format!("survivor {i}"), 6).await);
    }
    for j in &jobs {
        world.until(j.id, SECS(10), |r| r.status == JobStatus::Running && r.attempts == 1).await;
    }
    // Every job is in the first worker's hands (waiting on the slow upstream) when it dies.
    assert_eq!(first.busy().await.unwrap(), 6, "the worker to be killed holds all six jobs");
    let killed_at = std::time::Instant::now();
    first.kill();
    let mut second = world.process(&settings).await;
    let done = join_all(jobs.iter().map(|j| world.finished(j.id, SECS(30)))).await;
    assert!(killed_at.elapsed() < SECS(30));
    for (j, rec) in jobs.iter().zip(&done) {
        assert_eq!(rec.status, JobStatus::Succeeded, "{rec:?}");
        assert_eq!(rec.attempts, 2, "the killed worker's attempt counts, the second worker's finishes: {rec:?}");
        assert_eq!(world.sim.created(j.request.name().as_str()).await, 1, "{}", j.request.name().as_str());
    }
    assert_eq!(second.terminate(SECS(20)).await.unwrap().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_crashes_its_worker_every_time_ends_dead() {
    // Every create hangs; each worker is killed while it waits, as if the job crashed it.
    let world = World::start(json!({"timeout_rate": 1.0})).await;
    let mut settings = world.settings();
    settings.visibility_timeout_ms = 700;
    settings.upstream.timeout_ms = 60_000;
    let job = world.enqueue("crasher", 2).await;
    for attempt in 1..=2 {
        let mut w = world.process(&settings).await;
        world.until(job.id, SECS(15), |r| r.status == JobStatus::Running && r.attempts == attempt).await;
        w.kill();
    }
    let mut last = world.process(&settings).await;
    let done = world.finished(job.id, SECS(15)).await;
    assert_eq!((done.status, done.attempts), (JobStatus::Dead, 2));
    assert_eq!(done.error.map(|e| e.name), Some("WorkerLost".to_owned()));
    assert_eq!(world.store.queue_counts().await.unwrap().dead, 1);
    assert_eq!(last.terminate(SECS(20)).await.unwrap().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_jobs_finish_and_the_worker_exits_zero() {
    let world = World::start(json!({"latency_ms": 1000})).await;
    let settings = world.settings();
    let mut w = world.process(&settings).await;
    let mut jobs = Vec::new();
    for i in 0..4 {
        jobs.push(world.enqueue(&format!("graceful {i}"), 6).await);
    }
    for j in &jobs {
        world.until(j.id, SECS(10), |r| r.status == JobStatus::Running).await;
    }
    let status = w.terminate(SECS(20)).await.unwrap();
    assert_eq!(status.code(), Some(0));
    for j in &jobs {
        let r = world.store.find(j.id).await.unwrap().unwrap();
        assert_eq!((r.status, r.attempts), (JobStatus::Succeeded, 1), "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_still_running_at_the_shutdown_timeout_is_left_for_another_worker_and_the_worker_exits_zero() {
    let world = World::start(json!({"latency_ms": 60_000})).await;
    let mut settings = world.settings();
    settings.shutdown_timeout_ms = 700;
    settings.upstream.timeout_ms = 120_000;
    let mut w = world.process(&settings).await;
    let job = world.enqueue("outlives shutdown", 6).await;
    world.until(job.id, SECS(10), |r| r.status == JobStatus::Running).await;
    let asked = std::time::Instant::now();
    let status = w.terminate(SECS(10)).await.unwrap();
    let took = asked.elapsed();
    assert_eq!(status.code(), Some(0));
    // It waited for the job its bound, and not (much) longer: the upstream call would take a minute.
    assert!(took >= Duration::from_millis(700), "exited after {took:?}, before WGATE_SHUTDOWN_TIMEOUT_MS");
    assert!(took < SECS(5), "exited after {took:?}: WGATE_SHUTDOWN_TIMEOUT_MS is 700 ms");
    // The job was not finished or given up: it stays running, in the stream's pending list, for a takeover.
    let r = world.store.find(job.id).await.unwrap().unwrap();
    assert_eq!((r.status, r.attempts), (JobStatus::Running, 1), "{r:?}");
    assert_eq!(world.store.queue_counts().await.unwrap().running, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_makes_the_worker_unready_within_a_second_and_it_is_ready_again_as_soon_as_it_thaws() {
    let world = World::start(json!({})).await;
    let worker = world.worker().await;
    let first = world.enqueue("before the freeze", 6).await;
    assert_eq!(world.finished(first.id, SECS(10)).await.status, JobStatus::Succeeded);
    assert_eq!(worker.readyz().await, 200);
    // Frozen for six seconds: past the completion subscription's 5 s keepalive, and several fetcher rounds.
    let frozen = world.redis.freeze();
    for _ in 0..6 {
        let asked = std::time::Instant::now();
        assert_eq!(worker.readyz().await, 503);
        let took = asked.elapsed();
        assert!(took <= Duration::from_millis(1200), "/readyz answered after {took:?} while Redis hung");
    }
    frozen.thaw();
    let asked = std::time::Instant::now();
    assert_eq!(worker.readyz().await, 200, "ready at the first probe after the thaw");
    assert!(asked.elapsed() < Duration::from_millis(500), "ready after {:?}", asked.elapsed());
    let job = world.enqueue("after the freeze", 6).await;
    // Picked up at once: the fetcher's blocked read did not stay stuck on the connection that hung.
    assert_eq!(world.finished(job.id, SECS(2)).await.status, JobStatus::Succeeded);
    worker.stop().await;
}

#[test]
fn backoff_delays_spread_evenly_from_zero_to_a_cap_that_doubles_with_each_attempt() {
    use wgate_worker::job::RetryPolicy;
    let p = RetryPolicy { base: Duration::from_millis(100), max: Duration::from_millis(1000) };
    // Full jitter: uniform in [0, cap]. Of 2000 draws each tenth of the range gets about 200 (130..=270 is five
    // standard deviations either way: a chance below 1e-5 over the whole test for a correct policy); a delay
    // stuck at zero or at the cap, a floor, or a range that stops short of the cap fails it.
    for (attempt, cap) in [(1u32, 100u64), (2, 200), (3, 400), (4, 800), (5, 1000), (64, 1000)] {
        let draws: Vec<u64> = (0..2000).map(|_| u64::try_from(p.delay(attempt).as_millis()).unwrap()).collect();
        assert!(draws.iter().all(|d| *d <= cap), "attempt {attempt}: a delay above {cap} ms");
        let mut tenths = [0u32; 10];
        for d in &draws {
            tenths[usize::try_from(d * 10 / (cap + 1)).unwrap()] += 1;
        }
        assert!(tenths.iter().all(|n| (130..=270).contains(n)), "attempt {attempt} (cap {cap} ms): {tenths:?}");
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
    let job = world.enqueue_when_redis_answers("after restart", SECS(10)).await;
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
    let job = world.enqueue_when_redis_answers("after the loss", SECS(10)).await;
    assert_eq!(world.finished(job.id, SECS(15)).await.status, JobStatus::Succeeded);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_but_live_worker_keeps_its_job_past_the_visibility_timeout() {
    let world = World::start(json!({"latency_ms": 2000})).await;
    let mut settings = world.settings();
    settings.visibility_timeout_ms = 500;
    settings.upstream.timeout_ms = 5000;
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
    let job = world.enqueue_when_redis_answers("late redis", SECS(10)).await;
    assert_eq!(world.finished(job.id, SECS(15)).await.status, JobStatus::Succeeded);
    assert_eq!(worker.readyz().await, 200);
    worker.stop().await;
}
