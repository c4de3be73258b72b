//! The bounded reconcile rule in the scripts: a job out of attempts whose calls may have reached WhatsGate gets
//! reconcile-only passes before it ends dead; a replay keeps `maybe_sent` and respects the session quota.

use std::time::Duration;

use redis::AsyncCommands;
use serde_json::json;
use time::OffsetDateTime;
use wgate_queue::{Delivery, MAX_RECONCILE_PASSES, Outcome, Replay, Started, Written};
use wgate_types::{ErrorClass, JobError, JobId, JobRecord, JobStatus};

use crate::{
    deliver,
    helpers::{TestQueue, job, tenant},
};

fn lost_answer() -> JobError {
    JobError { name: "ConnectionLost".into(), message: "the answer was lost".into(), class: ErrorClass::Unavailable }
}

/// Schedules the job's next pass as the worker does after an answer that may have reached WhatsGate, makes it due,
/// and delivers it.
async fn retry_maybe_sent(q: &TestQueue, d: &Delivery, record: &JobRecord) -> Delivery {
    let due = OffsetDateTime::now_utc() - Duration::from_millis(1);
    let retry = Outcome::Retry { error: lost_answer(), due, maybe_sent: true };
    assert_eq!(q.store.finish_attempt(d, record, &retry).await.unwrap(), Written::Ok);
    assert_eq!(q.store.promote_due(10).await.unwrap(), 1);
    deliver(q).await
}

/// A job with a single attempt, queued, delivered and started: its id, delivery and record as started.
async fn last_attempt_started(q: &TestQueue, name: &str) -> (JobId, Delivery, Box<JobRecord>) {
    let mut j = job("acme", json!({ "name": name }));
    j.max_attempts = 1;
    q.store.enqueue(&j, None, None).await.unwrap();
    let d = deliver(q).await;
    let Started::Run { record, .. } = q.store.start_attempt(&d).await.unwrap() else { panic!("not started") };
    (j.id, d, record)
}

#[tokio::test]
async fn a_job_out_of_attempts_that_may_have_created_its_session_is_reconciled_a_bounded_number_of_times_then_dead() {
    let q = TestQueue::start().await;
    let (id, d, record) = last_attempt_started(&q, "Maybe").await;
    let mut d = retry_maybe_sent(&q, &d, &record).await;

    for pass in 1..=MAX_RECONCILE_PASSES {
        let Started::Reconcile(record) = q.store.start_attempt(&d).await.unwrap() else {
            panic!("pass {pass}: not a reconcile-only pass")
        };
        assert_eq!((record.status, record.attempts), (JobStatus::Running, 1), "no attempt is counted");
        // WhatsGate could not be reached for the look-up.
        d = retry_maybe_sent(&q, &d, &record).await;
    }
    let Started::Dead(r) = q.store.start_attempt(&d).await.unwrap() else { panic!("not dead after the passes") };
    assert_eq!(r.error.map(|e| e.name), Some("Unreconciled".to_owned()));
    let mut c = q.conn().await;
    let maybe: Option<String> = c.hget(q.key(&format!("job:{}", id)), "maybe_sent").await.unwrap();
    assert_eq!(maybe.as_deref(), Some("1"), "the dead job still says an attempt may have created the session");

    // The replay's first attempt looks upstream before creating.
    assert!(matches!(q.store.replay(&tenant("acme"), id, None).await.unwrap(), Replay::Requeued(_)));
    let d = deliver(&q).await;
    let Started::Run { record, reconcile } = q.store.start_attempt(&d).await.unwrap() else { panic!("not started") };
    assert_eq!((record.attempts, reconcile), (1, true));
}

#[tokio::test]
async fn a_taken_over_last_attempt_is_reconciled_and_ends_dead_as_worker_lost_when_nothing_is_found() {
    let q = TestQueue::start().await;
    let (id, d, _) = last_attempt_started(&q, "Crash").await;
    let taken = Delivery { taken_over: true, ..d };
    let Started::Reconcile(record) = q.store.start_attempt(&taken).await.unwrap() else { panic!("not reconciled") };
    assert_eq!(record.error.as_ref().map(|e| e.name.as_str()), Some("WorkerLost"));
    // Nothing upstream: the worker ends it dead with the error it has.
    let dead = Outcome::Dead(record.error.clone().unwrap());
    assert_eq!(q.store.finish_attempt(&taken, &record, &dead).await.unwrap(), Written::Ok);
    let r = q.store.find(id).await.unwrap().unwrap();
    assert_eq!((r.status, r.attempts), (JobStatus::Dead, 1));
    let counts = q.store.queue_counts().await.unwrap();
    assert_eq!((counts.dead, counts.running, counts.pending), (1, 0, 0));
}

#[tokio::test]
async fn a_reconcile_only_pass_that_was_taken_over_writes_nothing() {
    let q = TestQueue::start().await;
    let (id, d, record) = last_attempt_started(&q, "Slow look-up").await;
    let d = retry_maybe_sent(&q, &d, &record).await;
    let Started::Reconcile(first) = q.store.start_attempt(&d).await.unwrap() else { panic!("not a pass") };
    // Its worker stops answering; another takes the entry over and runs the next pass, same attempt number.
    let taken = Delivery { taken_over: true, ..d };
    let Started::Reconcile(second) = q.store.start_attempt(&taken).await.unwrap() else { panic!("not a pass") };
    assert_eq!(first.attempts, second.attempts);
    let late = Outcome::Dead(lost_answer());
    assert_eq!(q.store.finish_attempt(&taken, &first, &late).await.unwrap(), Written::Stale);
    let adopted = Outcome::Succeeded { response: json!({"unique_id": "42"}), unique_id: "42".into() };
    assert_eq!(q.store.finish_attempt(&taken, &second, &adopted).await.unwrap(), Written::Ok);
    assert_eq!(q.store.find(id).await.unwrap().unwrap().status, JobStatus::Succeeded);
}

#[tokio::test]
async fn a_replay_is_refused_when_the_tenants_session_quota_is_reached() {
    let q = TestQueue::start().await;
    let (id, d, record) = last_attempt_started(&q, "Dead one").await;
    q.store.finish_attempt(&d, &record, &Outcome::Dead(lost_answer())).await.unwrap();
    // Another create of the tenant is under way: with a quota of 1 there is no room for the replay.
    q.store.enqueue(&job("acme", json!({"name":"Live one"})), None, None).await.unwrap();

    assert_eq!(q.store.replay(&tenant("acme"), id, Some(1)).await.unwrap(), Replay::QuotaExceeded { limit: 1 });
    assert_eq!(q.store.find(id).await.unwrap().unwrap().status, JobStatus::Dead, "the refused replay changed nothing");
    assert!(matches!(q.store.replay(&tenant("acme"), id, Some(2)).await.unwrap(), Replay::Requeued(_)));
}
