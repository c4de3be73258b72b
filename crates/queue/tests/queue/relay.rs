//! The relay's target (where `/hooks/<token>` sends a session's events): kept in its job's record, which lives as
//! long as the session the job made; a token of an earlier release (a hash of its own) is still honoured.

use redis::AsyncCommands;
use serde_json::json;
use wgate_queue::{Enqueued, Outcome, QrTarget, Started, Written};
use wgate_types::{CallbackUrl, JobId, JobRecord, TOKEN_SECRET_LEN};

use crate::helpers::{TestQueue, deliver_up_to, job, tenant};

/// A job of `acme` with a callback and a QR window, both tokens minted as the API mints them.
fn with_tokens(q: &TestQueue) -> JobRecord {
    let j = job("acme", json!({"name": "Shop", "callback": "https://tenant.example/hook"}));
    let layout = q.store.layout();
    JobRecord {
        hook_token: layout.mint_job_token(&j.tenant, j.id),
        qr_token: layout.mint_job_token(&j.tenant, j.id),
        ..j
    }
}

fn callback_of(target: &wgate_queue::HookTarget) -> Option<&str> {
    target.callback.as_ref().map(CallbackUrl::as_str)
}

/// Runs the job's one queued attempt to `succeeded`, upstream session `uid`.
async fn succeed(q: &TestQueue, uid: &str) {
    let d = deliver_up_to(q, 1).await.remove(0);
    let Started::Run { record, .. } = q.store.start_attempt(&d).await.unwrap() else { panic!("not started") };
    let done = Outcome::Succeeded { response: json!({ "unique_id": uid }), unique_id: uid.into() };
    assert_eq!(q.store.finish_attempt(&d, &record, &done).await.unwrap(), Written::Ok);
}

#[tokio::test]
async fn the_relay_target_is_the_jobs_record_and_lives_until_its_session_is_forgotten() {
    let q = TestQueue::start().await;
    let j = with_tokens(&q);
    assert_eq!(q.store.enqueue(&j, None, None).await.unwrap(), Enqueued::Created);
    let mut c = q.conn().await;
    let stray: Vec<String> = c.keys(q.key("hook:*")).await.unwrap();
    assert!(stray.is_empty(), "accepting a job writes no hook hash: {stray:?}");

    let target = q.store.hook_target(&j.hook_token).await.unwrap().expect("the relay of a queued job");
    assert_eq!((target.tenant.as_str(), target.job_id), ("acme", j.id));
    assert_eq!(callback_of(&target), Some("https://tenant.example/hook"));
    // The job's id with another random part, or the job's QR token, opens no relay.
    let forged = format!("{}{}", j.id, "A".repeat(TOKEN_SECRET_LEN));
    assert_eq!(q.store.hook_target(&forged).await.unwrap(), None);
    assert_eq!(q.store.hook_target(&j.qr_token).await.unwrap(), None);
    // Nor does the hook token open the job's QR window: the two capabilities stay apart.
    assert_eq!(q.store.qr_target(&j.hook_token).await.unwrap(), None);
    assert_eq!(q.store.hook_target(&format!("{}{}", JobId::new(), "A".repeat(TOKEN_SECRET_LEN))).await.unwrap(), None);

    // Succeeded: the record no longer expires, and still relays and opens the QR window.
    succeed(&q, "55").await;
    let job_key = q.key(&format!("job:{}", j.id));
    let ttl: i64 = c.ttl(&job_key).await.unwrap();
    assert_eq!(ttl, -1, "the record of a live session's create job does not expire");
    assert!(q.store.hook_target(&j.hook_token).await.unwrap().is_some());
    let window = q.store.qr_target(&j.qr_token).await.unwrap();
    assert_eq!(window, Some(QrTarget { tenant: tenant("acme"), job_id: j.id }));

    // set-hook moves the relay; no callback stops it, the record keeping the rest.
    let other = CallbackUrl::parse("https://other.example/events").unwrap();
    assert!(q.store.set_hook_callback(&tenant("acme"), &j.hook_token, Some(&other)).await.unwrap());
    let target = q.store.hook_target(&j.hook_token).await.unwrap().expect("the relay");
    assert_eq!(callback_of(&target), Some("https://other.example/events"));
    assert!(q.store.set_hook_callback(&tenant("acme"), &j.hook_token, None).await.unwrap());
    assert_eq!(q.store.hook_target(&j.hook_token).await.unwrap().expect("the relay").callback, None);
    assert_eq!(q.store.find(j.id).await.unwrap().unwrap().status, wgate_types::JobStatus::Succeeded);

    // The session is deleted: the record expires after the job TTL, and late events still find their way.
    let owner = q.store.forget_session(&tenant("acme"), "55").await.unwrap().expect("the session's owner");
    assert_eq!((owner.job_id, owner.hook_token.as_str()), (j.id, j.hook_token.as_str()));
    let ttl: i64 = c.ttl(&job_key).await.unwrap();
    assert!(ttl > 6 * 24 * 3600 && ttl <= 7 * 24 * 3600, "{ttl}");
    assert!(q.store.hook_target(&j.hook_token).await.unwrap().is_some());
    assert_eq!(q.store.qr_target(&j.qr_token).await.unwrap(), None, "the window closes with the session");
}

#[tokio::test]
async fn a_succeeded_jobs_qr_window_closes_a_job_ttl_after_it_finished() {
    let q = TestQueue::start().await;
    let j = with_tokens(&q);
    q.store.enqueue(&j, None, None).await.unwrap();
    succeed(&q, "56").await;
    assert!(q.store.qr_target(&j.qr_token).await.unwrap().is_some());
    // Finished a job TTL and a second ago (the record's `updated_at` is when it finished).
    let ttl = i128::try_from(q.config.job_ttl.as_nanos()).unwrap();
    let then = time::OffsetDateTime::now_utc().unix_timestamp_nanos() - ttl - 1_000_000_000;
    let mut c = q.conn().await;
    let _: () = c.hset(q.key(&format!("job:{}", j.id)), "updated_at", then.to_string()).await.unwrap();
    assert_eq!(q.store.qr_target(&j.qr_token).await.unwrap(), None);
    // The relay stays: the session is still live.
    assert!(q.store.hook_target(&j.hook_token).await.unwrap().is_some());
}

#[tokio::test]
async fn a_hook_token_of_an_earlier_release_still_relays_through_its_own_hash() {
    let q = TestQueue::start().await;
    let token = "hookTokenAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let id = JobId::new();
    let mut c = q.conn().await;
    let hook = q.key(&format!("hook:{token}"));
    let _: () = c
        .hset_multiple(&hook, &[("tenant", "acme"), ("job", &id.to_string()), ("callback", "https://old.example/h")])
        .await
        .unwrap();
    let target = q.store.hook_target(token).await.unwrap().expect("the relay");
    assert_eq!(
        (target.tenant.as_str(), target.job_id, callback_of(&target)),
        ("acme", id, Some("https://old.example/h"))
    );
    let other = CallbackUrl::parse("https://new.example/h").unwrap();
    assert!(q.store.set_hook_callback(&tenant("acme"), token, Some(&other)).await.unwrap());
    let target = q.store.hook_target(token).await.unwrap().expect("the relay");
    assert_eq!(callback_of(&target), Some("https://new.example/h"));
    // Its session is deleted: its own hash expires after the job TTL.
    let _: () = c
        .hset_multiple(q.key("session:57"), &[("tenant", "acme"), ("job", &id.to_string()), ("hook_token", token)])
        .await
        .unwrap();
    assert!(q.store.forget_session(&tenant("acme"), "57").await.unwrap().is_some());
    let ttl: i64 = c.ttl(&hook).await.unwrap();
    assert!(ttl > 6 * 24 * 3600, "{ttl}");
}

#[tokio::test]
async fn a_job_whose_hook_token_does_not_name_it_is_refused() {
    let q = TestQueue::start().await;
    let j = job("acme", json!({"name": "Shop"}));
    let stray = JobRecord { hook_token: "hookTokenAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(), ..j.clone() };
    assert!(q.store.enqueue(&stray, None, None).await.is_err());
    let other = JobRecord { hook_token: q.store.layout().mint_job_token(&j.tenant, JobId::new()), ..j };
    assert!(q.store.enqueue(&other, None, None).await.is_err());
    assert_eq!(q.store.queue_counts().await.unwrap().pending, 0);
}
