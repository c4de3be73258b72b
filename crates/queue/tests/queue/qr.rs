//! The QR window's tokens: kept in the job's record, gone with the job, closed with the session; a token of an
//! earlier release (a record of its own) still opens its window.

use redis::AsyncCommands;
use serde_json::json;
use wgate_queue::{Enqueued, QrTarget};
use wgate_types::{JobRecord, TOKEN_SECRET_LEN};

use crate::helpers::{TestQueue, job, tenant};

/// A token of an earlier release: 43 random characters, with a `qr:<token>` record of its own.
const LEGACY: &str = "qrTokenAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

fn secret(c: char) -> String {
    c.to_string().repeat(TOKEN_SECRET_LEN)
}

/// A job of `acme` holding a QR token of this release.
fn with_qr() -> JobRecord {
    let j = job("acme", json!({"name":"Shop"}));
    JobRecord { qr_token: format!("{}{}", j.id, secret('q')), ..j }
}

#[tokio::test]
async fn a_jobs_qr_token_is_kept_in_its_record_and_opens_only_with_its_random_part() {
    let q = TestQueue::start().await;
    let j = with_qr();
    assert_eq!(q.store.enqueue(&j, None, None).await.unwrap(), Enqueued::Created);
    let target = q.store.qr_target(&j.qr_token).await.unwrap();
    assert_eq!(target, Some(QrTarget { tenant: tenant("acme"), job_id: j.id }));
    assert_eq!(q.store.find(j.id).await.unwrap().unwrap().qr_token, j.qr_token);
    // The job's id with any other random part opens nothing.
    assert_eq!(q.store.qr_target(&format!("{}{}", j.id, secret('r'))).await.unwrap(), None);
    // Accepting the job wrote no key of the window's own.
    let mut c = q.conn().await;
    let stray: Vec<String> = c.keys(q.key("qr:*")).await.unwrap();
    assert!(stray.is_empty(), "{stray:?}");
}

#[tokio::test]
async fn an_unknown_or_malformed_qr_token_opens_nothing() {
    let q = TestQueue::start().await;
    let j = job("acme", json!({"name":"Old"}));
    q.store.enqueue(&j, None, None).await.unwrap();
    // A job without a window, named by a well-formed token.
    assert_eq!(q.store.qr_target(&format!("{}{}", j.id, secret('q'))).await.unwrap(), None);
    assert_eq!(q.store.qr_target(LEGACY).await.unwrap(), None);
    assert_eq!(q.store.qr_target("").await.unwrap(), None);
    assert_eq!(q.store.qr_target("../../job:x y").await.unwrap(), None);
}

/// The owner record of upstream session `uid`, as a succeeded job leaves it.
async fn own_session(q: &TestQueue, j: &JobRecord, uid: &str) {
    let mut c = q.conn().await;
    let _: () = c
        .hset_multiple(
            q.key(&format!("session:{uid}")),
            &[("tenant", "acme"), ("job", &j.id.to_string()), ("hook_token", "t")],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn deleting_the_session_closes_its_qr_window() {
    let q = TestQueue::start().await;
    let j = with_qr();
    q.store.enqueue(&j, None, None).await.unwrap();
    own_session(&q, &j, "777").await;
    assert!(q.store.forget_session(&tenant("acme"), "777").await.unwrap().is_some());
    assert_eq!(q.store.qr_target(&j.qr_token).await.unwrap(), None);
    assert_eq!(q.store.find(j.id).await.unwrap().unwrap().qr_token, "");
}

#[tokio::test]
async fn a_qr_token_of_an_earlier_release_still_opens_its_window_until_the_session_is_deleted() {
    let q = TestQueue::start().await;
    let j = JobRecord { qr_token: LEGACY.into(), ..job("acme", json!({"name":"Shop"})) };
    q.store.enqueue(&j, None, None).await.unwrap();
    let mut c = q.conn().await;
    let _: () = c
        .hset_multiple(q.key(&format!("qr:{LEGACY}")), &[("tenant", "acme"), ("job", &j.id.to_string())])
        .await
        .unwrap();
    assert_eq!(q.store.qr_target(LEGACY).await.unwrap(), Some(QrTarget { tenant: tenant("acme"), job_id: j.id }));
    own_session(&q, &j, "778").await;
    assert!(q.store.forget_session(&tenant("acme"), "778").await.unwrap().is_some());
    assert_eq!(q.store.qr_target(LEGACY).await.unwrap(), None);
    let left: bool = c.exists(q.key(&format!("qr:{LEGACY}"))).await.unwrap();
    assert!(!left);
}
