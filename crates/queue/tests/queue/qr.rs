//! The QR window's tokens: written with the job, bounded by the job TTL, closed with the session.

use redis::AsyncCommands;
use serde_json::json;
use wgate_queue::{Enqueued, QrTarget};
use wgate_types::JobRecord;

use crate::helpers::{TestQueue, job, tenant};

const TOKEN: &str = "qrTokenAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

#[tokio::test]
async fn a_jobs_qr_token_is_stored_with_it_and_expires_with_the_job_ttl() {
    let q = TestQueue::start().await;
    let j = JobRecord { qr_token: TOKEN.into(), ..job("acme", json!({"name":"Shop"})) };
    assert_eq!(q.store.enqueue(&j, None, None).await.unwrap(), Enqueued::Created);
    let target = q.store.qr_target(TOKEN).await.unwrap();
    assert_eq!(target, Some(QrTarget { tenant: tenant("acme"), job_id: j.id }));
    assert_eq!(q.store.find(j.id).await.unwrap().unwrap().qr_token, TOKEN);
    let mut c = q.conn().await;
    let ttl: i64 = c.pttl(q.key(&format!("qr:{TOKEN}"))).await.unwrap();
    let job_ttl = i64::try_from(q.config.job_ttl.as_millis()).unwrap();
    assert!(ttl > job_ttl - 60_000 && ttl <= job_ttl, "ttl {ttl}");
}

#[tokio::test]
async fn an_unknown_or_malformed_qr_token_opens_nothing_and_a_job_without_one_writes_none() {
    let q = TestQueue::start().await;
    let j = job("acme", json!({"name":"Old"}));
    q.store.enqueue(&j, None, None).await.unwrap();
    assert_eq!(q.store.qr_target(TOKEN).await.unwrap(), None);
    assert_eq!(q.store.qr_target("").await.unwrap(), None);
    assert_eq!(q.store.qr_target("../../job:x y").await.unwrap(), None);
    let mut c = q.conn().await;
    let stray: Vec<String> = c.keys(q.key("qr:*")).await.unwrap();
    assert!(stray.is_empty(), "{stray:?}");
}

#[tokio::test]
async fn deleting_the_session_closes_its_qr_window() {
    let q = TestQueue::start().await;
    let j = JobRecord { qr_token: TOKEN.into(), ..job("acme", json!({"name":"Shop"})) };
    q.store.enqueue(&j, None, None).await.unwrap();
    let mut c = q.conn().await;
    let _: () = c
        .hset_multiple(q.key("session:777"), &[("tenant", "acme"), ("job", &j.id.to_string()), ("hook_token", "t")])
        .await
        .unwrap();
    assert!(q.store.forget_session(&tenant("acme"), "777").await.unwrap().is_some());
    assert_eq!(q.store.qr_target(TOKEN).await.unwrap(), None);
}
