//! The attempts the finish script starts as it reads their entries, giving them back unstarted, and starts whose
//! answer was lost.

use serde_json::json;
use time::OffsetDateTime;
use wgate_testkit::{RedisServer, unique_namespace};
use wgate_types::{JobId, JobRecord, JobStatus, NewJob, SessionCreate, TenantId};

use super::{Begun, Delivery, Outcome, Reading, Started, Written};
use crate::{JobStore, QueueConfig};

fn job(name: &str) -> JobRecord {
    let id = JobId::new();
    let new = NewJob {
        tenant: TenantId::parse("acme").expect("tenant"),
        request: SessionCreate::from_json(json!({ "name": name }).to_string().as_bytes()).expect("request"),
        max_attempts: 3,
        request_id: None,
        hook_token: format!("{id}{:_<22}", "hook"),
        qr_token: String::new(),
    };
    JobRecord::accepted(id, new, OffsetDateTime::now_utc())
}

/// Up to `count` new entries for `consumer`, as the fetcher reads them.
async fn read_new(store: &JobStore, redis: &RedisServer, consumer: &str, count: usize) -> Vec<Delivery> {
    let mut c = redis.connection().await;
    let reply: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(crate::GROUP)
        .arg(consumer)
        .arg("COUNT")
        .arg(count)
        .arg("STREAMS")
        .arg(store.stream_key())
        .arg(">")
        .query_async(&mut c)
        .await
        .expect("XREADGROUP");
    super::parse_read(&reply, 0).0
}

/// Three jobs queued; the first read and started as the fetcher and the handler would, then finished with a read
/// of the next two.
async fn finish_reading_two(store: &JobStore, redis: &RedisServer) -> (Vec<JobRecord>, Vec<(Delivery, Option<Begun>)>) {
    store.ensure_group().await.expect("group");
    let jobs = vec![job("a"), job("b"), job("c")];
    for j in &jobs {
        store.enqueue(j, None, None).await.expect("enqueue");
    }
    let first = read_new(store, redis, "fetcher", 1).await.into_iter().next().expect("one entry");
    let Started::Run { record, .. } = store.start_attempt(&first).await.expect("start") else {
        panic!("the first job did not start")
    };
    let outcome = Outcome::Succeeded { response: json!({"unique_id": "s1"}), unique_id: "s1".into() };
    let read = Reading { consumer: "fetcher", count: 2, at: super::unique_now(), recover: 0 };
    let (written, next, poison) =
        store.finish_attempts_reading(&[(&first, &record, &outcome)], &read).await.expect("finish");
    assert_eq!(written, vec![Written::Ok]);
    assert!(poison.is_empty());
    (jobs, next)
}

#[tokio::test]
async fn the_finish_script_starts_the_entries_it_reads_once() {
    let redis = RedisServer::start().await;
    let store = JobStore::new(QueueConfig::new(redis.url(), unique_namespace("begun"))).expect("store");
    let (jobs, next) = finish_reading_two(&store, &redis).await;
    assert_eq!(next.len(), 2, "the finish script read the two entries left");
    for ((d, begun), job) in next.iter().zip(&jobs[1..]) {
        assert_eq!(d.job_id, job.id);
        let begun = begun.as_ref().expect("started by the finish script");
        let Started::Run { record, reconcile } = &begun.started else { panic!("{:?} did not run", begun.started) };
        assert!(!reconcile);
        // What the handler gets is what Redis now holds: one attempt, running.
        let stored = store.get(&job.tenant, job.id).await.expect("get").expect("record");
        assert_eq!((stored.status, stored.attempts), (JobStatus::Running, 1));
        assert_eq!(**record, stored);
        assert_eq!(begun.prior, vec!["queued", "0", &job.updated_at.unix_timestamp_nanos().to_string(), "", ""]);
    }
    // Finishing a started entry is fenced by that start, as for any other.
    let (d, begun) = &next[0];
    let Some(Begun { started: Started::Run { record, .. }, .. }) = begun else { unreachable!() };
    let outcome = Outcome::Succeeded { response: json!({"unique_id": "s2"}), unique_id: "s2".into() };
    let written = store.finish_attempts(&[(d, record, &outcome)]).await.expect("finish");
    assert_eq!(written, vec![Written::Ok]);
    let done = store.get(&jobs[1].tenant, jobs[1].id).await.expect("get").expect("record");
    assert_eq!((done.status, done.attempts), (JobStatus::Succeeded, 1));
}

#[tokio::test]
async fn entries_given_back_are_unstarted_unless_their_record_moved_on() {
    let redis = RedisServer::start().await;
    let store = JobStore::new(QueueConfig::new(redis.url(), unique_namespace("begun"))).expect("store");
    let (jobs, next) = finish_reading_two(&store, &redis).await;
    // The second job's record moved on meanwhile (as a takeover's start would have it): left as it is.
    let mut c = redis.connection().await;
    let moved = store.keys().job(jobs[2].id);
    let () = redis::cmd("HSET").arg(&moved).arg("attempts").arg("2").query_async(&mut c).await.expect("HSET");

    store.release("fetcher", &next).await.expect("release");

    let back = store.get(&jobs[1].tenant, jobs[1].id).await.expect("get").expect("record");
    assert_eq!(back, jobs[1], "the unstarted record is the one queued");
    let moved = store.get(&jobs[2].tenant, jobs[2].id).await.expect("get").expect("record");
    assert_eq!((moved.status, moved.attempts), (JobStatus::Running, 2));
    // Both entries are back on the stream, new, and the unstarted job's next start is its first attempt.
    let again = read_new(&store, &redis, "fetcher", 10).await;
    assert_eq!(again.iter().map(|d| d.job_id).collect::<Vec<_>>(), vec![jobs[1].id, jobs[2].id]);
    let Started::Run { record, .. } = store.start_attempt(&again[0]).await.expect("start") else {
        panic!("the unstarted job did not start")
    };
    assert_eq!(record.attempts, 1);
}

/// The entries pending for `consumer`, oldest first.
async fn pending_of(redis: &RedisServer, store: &JobStore, consumer: &str) -> Vec<String> {
    let mut c = redis.connection().await;
    let reply: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(store.stream_key())
        .arg(crate::GROUP)
        .arg("-")
        .arg("+")
        .arg(100)
        .arg(consumer)
        .query_async(&mut c)
        .await
        .expect("XPENDING");
    reply.into_iter().map(|(id, ..)| id).collect()
}

#[tokio::test]
async fn a_finish_retried_after_its_answer_was_lost_gets_back_the_entries_that_run_started() {
    let redis = RedisServer::start().await;
    let store = JobStore::new(QueueConfig::new(redis.url(), unique_namespace("lost"))).expect("store");
    store.ensure_group().await.expect("group");
    let jobs: Vec<JobRecord> = (0..5).map(|i| job(&format!("j{i}"))).collect();
    for j in &jobs {
        store.enqueue(j, None, None).await.expect("enqueue");
    }
    let first = read_new(&store, &redis, "w", 1).await.into_iter().next().expect("one entry");
    let Started::Run { record, .. } = store.start_attempt(&first).await.expect("start") else { panic!("no start") };
    let outcome = Outcome::Succeeded { response: json!({"unique_id": "s1"}), unique_id: "s1".into() };
    let items = [(&first, record.as_ref(), &outcome)];
    let mut read = Reading { consumer: "w", count: 2, at: super::unique_now(), recover: 0 };
    // The run happens; its answer never reaches the worker.
    let (_, lost, _) = store.finish_attempts_reading(&items, &read).await.expect("finish");
    let lost_entries: Vec<&str> = lost.iter().map(|(d, _)| d.entry_id.as_str()).collect();
    assert_eq!(lost_entries.len(), 2);

    read.recover = 100;
    let (written, again, poison) = store.finish_attempts_reading(&items, &read).await.expect("retry");
    assert_eq!(written, vec![Written::Stale], "the outcome was written by the lost run");
    assert!(poison.is_empty());
    let again_entries: Vec<&str> = again.iter().map(|(d, _)| d.entry_id.as_str()).collect();
    assert_eq!(again_entries, lost_entries, "the same entries come back, no new ones are read");
    for ((d, begun), job) in again.iter().zip(&jobs[1..3]) {
        assert_eq!(d.job_id, job.id);
        let Some(Begun { started: Started::Run { record, reconcile: false }, prior }) = begun else {
            panic!("{:?} not answered as started", d.entry_id)
        };
        let stored = store.get(&job.tenant, job.id).await.expect("get").expect("record");
        assert_eq!((stored.status, stored.attempts), (JobStatus::Running, 1), "the attempt is counted once");
        assert_eq!(**record, stored, "the start answered is the one the lost run made");
        assert!(prior.is_empty(), "a start made by the lost run is not undone on release");
    }
    assert_eq!(pending_of(&redis, &store, "w").await, lost_entries, "nothing else was read");

    // A retry that finds nothing of an earlier run (that try never ran) reads anew.
    let second = &again[0].0;
    let Some(Begun { started: Started::Run { record: second_record, .. }, .. }) = &again[0].1 else { unreachable!() };
    let items = [(second, second_record.as_ref(), &outcome)];
    let fresh = Reading { consumer: "w", count: 2, at: super::unique_now(), recover: 100 };
    let (written, next, _) = store.finish_attempts_reading(&items, &fresh).await.expect("finish");
    assert_eq!(written, vec![Written::Ok]);
    assert_eq!(next.iter().map(|(d, _)| d.job_id).collect::<Vec<_>>(), vec![jobs[3].id, jobs[4].id]);
}

#[tokio::test]
async fn a_start_asked_again_after_its_answer_was_lost_answers_the_same_start() {
    let redis = RedisServer::start().await;
    let store = JobStore::new(QueueConfig::new(redis.url(), unique_namespace("lost"))).expect("store");
    store.ensure_group().await.expect("group");
    let j = job("again");
    store.enqueue(&j, None, None).await.expect("enqueue");
    let d = read_new(&store, &redis, "w", 1).await.into_iter().next().expect("one entry");
    let Started::Run { record: lost, .. } = store.start_attempt(&d).await.expect("start") else { panic!("no start") };
    let Started::Run { record: again, reconcile } = store.start_attempt(&d).await.expect("start") else {
        panic!("no start")
    };
    assert_eq!((again.attempts, again.updated_at, reconcile), (1, lost.updated_at, false));
    // Taken over by another consumer, the running attempt counts as lost: the next one looks upstream first.
    let taken = Delivery { taken_over: true, ..d };
    let Started::Run { record, reconcile } = store.start_attempt(&taken).await.expect("start") else {
        panic!("no start")
    };
    assert_eq!((record.attempts, reconcile), (2, true));
}

#[tokio::test]
async fn an_entry_taken_over_before_any_start_runs_as_a_new_attempt() {
    let redis = RedisServer::start().await;
    let store = JobStore::new(QueueConfig::new(redis.url(), unique_namespace("lost"))).expect("store");
    store.ensure_group().await.expect("group");
    let mut j = job("unstarted");
    j.max_attempts = 1;
    store.enqueue(&j, None, None).await.expect("enqueue");
    // Its reader's answer was lost: pending, never started.
    read_new(&store, &redis, "gone", 1).await;
    let (taken, _) = store.take_over("w", std::time::Duration::ZERO, "0-0", 10).await.expect("take over");
    assert_eq!(taken.len(), 1);
    assert!(taken[0].taken_over);
    let Started::Run { record, reconcile } = store.start_attempt(&taken[0]).await.expect("start") else {
        panic!("its one attempt did not run")
    };
    assert_eq!((record.attempts, reconcile), (1, false));
    let mut c = redis.connection().await;
    let marked: bool =
        redis::cmd("HEXISTS").arg(store.keys().job(j.id)).arg("maybe_sent").query_async(&mut c).await.expect("HEXISTS");
    assert!(!marked, "nothing was sent before the takeover");
}

#[tokio::test]
async fn an_entry_taken_over_before_it_was_given_back_stays_with_the_consumer_that_took_it() {
    let redis = RedisServer::start().await;
    let store = JobStore::new(QueueConfig::new(redis.url(), unique_namespace("begun"))).expect("store");
    let (jobs, next) = finish_reading_two(&store, &redis).await;
    // The consumer stalled past the visibility timeout: another took the second entry over and runs it.
    let taken = &next[1].0;
    let mut c = redis.connection().await;
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg(store.stream_key())
        .arg(crate::GROUP)
        .arg("other")
        .arg(0)
        .arg(&taken.entry_id)
        .arg("JUSTID")
        .query_async(&mut c)
        .await
        .expect("XCLAIM");

    store.release("fetcher", &next).await.expect("release");

    assert_eq!(pending_of(&redis, &store, "other").await, vec![taken.entry_id.clone()], "still the taker's");
    let running = store.get(&jobs[2].tenant, jobs[2].id).await.expect("get").expect("record");
    assert_eq!((running.status, running.attempts), (JobStatus::Running, 1), "its start is not undone");
    // Only the entry still ours is back on the stream: the taken one is not added a second time.
    let again = read_new(&store, &redis, "fetcher", 10).await;
    assert_eq!(again.iter().map(|d| d.job_id).collect::<Vec<_>>(), vec![jobs[1].id]);
}

#[tokio::test]
async fn a_started_record_comes_back_exact_whatever_its_text_holds() {
    let redis = RedisServer::start().await;
    let store = JobStore::new(QueueConfig::new(redis.url(), unique_namespace("begun"))).expect("store");
    store.ensure_group().await.expect("group");
    // Quotes, slashes and backslashes, which the record's JSON answer escapes; Cyrillic, CJK and an emoji.
    let j = job(r#"Магазин "№1" / 店 \ 🛒"#);
    store.enqueue(&j, None, None).await.expect("enqueue");
    let d = read_new(&store, &redis, "w", 1).await.into_iter().next().expect("one entry");
    let Started::Run { record, .. } = store.start_attempt(&d).await.expect("start") else { panic!("no start") };
    let stored = store.get(&j.tenant, j.id).await.expect("get").expect("record");
    assert_eq!(*record, stored);
    assert_eq!(record.request, j.request);
}

#[tokio::test]
async fn an_entry_the_finish_script_reads_without_a_job_id_comes_back_to_be_set_aside() {
    let redis = RedisServer::start().await;
    let store = JobStore::new(QueueConfig::new(redis.url(), unique_namespace("begun"))).expect("store");
    store.ensure_group().await.expect("group");
    let (first, second) = (job("first"), job("second"));
    store.enqueue(&first, None, None).await.expect("enqueue");
    let mut c = redis.connection().await;
    let bad: String = redis::cmd("XADD")
        .arg(store.stream_key())
        .arg("*")
        .arg("job")
        .arg("not-a-job-id")
        .query_async(&mut c)
        .await
        .expect("XADD");
    store.enqueue(&second, None, None).await.expect("enqueue");
    let d = read_new(&store, &redis, "w", 1).await.into_iter().next().expect("one entry");
    let Started::Run { record, .. } = store.start_attempt(&d).await.expect("start") else { panic!("no start") };
    let outcome = Outcome::Succeeded { response: json!({"unique_id": "s1"}), unique_id: "s1".into() };
    let read = Reading { consumer: "w", count: 3, at: super::unique_now(), recover: 0 };
    let (_, got, poison) =
        store.finish_attempts_reading(&[(&d, record.as_ref(), &outcome)], &read).await.expect("finish");
    assert_eq!(poison.iter().map(|p| p.entry_id.as_str()).collect::<Vec<_>>(), vec![bad.as_str()]);
    assert_eq!(got.len(), 1, "{got:?}");
    let (d, begun) = &got[0];
    assert_eq!(d.job_id, second.id);
    assert!(matches!(begun, Some(Begun { started: Started::Run { .. }, .. })), "{begun:?}");
}
