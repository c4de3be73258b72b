//! The attempts the finish script starts as it reads their entries, and giving them back unstarted.

use serde_json::json;
use time::OffsetDateTime;
use wgate_testkit::{RedisServer, unique_namespace};
use wgate_types::{JobId, JobRecord, JobStatus, NewJob, SessionCreate, TenantId};

use super::{Begun, Delivery, Outcome, Started, Written};
use crate::{JobStore, QueueConfig};

fn job(name: &str) -> JobRecord {
    let id = JobId::new();
    let new = NewJob {
        tenant: TenantId::parse("acme").expect("tenant"),
        request: SessionCreate::from_json(json!({ "name": name }).to_string().as_bytes()).expect("request"),
        max_attempts: 3,
        request_id: None,
        hook_token: format!("{:_<43}", format!("hook{id}")),
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
    let (written, next, poison) =
        store.finish_attempts_reading(&[(&first, &record, &outcome)], "fetcher", 2).await.expect("finish");
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

    store.release(&next).await.expect("release");

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
