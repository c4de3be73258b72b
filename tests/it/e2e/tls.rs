//! The whole pipeline over TLS: a Redis that speaks only TLS and requires client certificates.

use std::{sync::Arc, time::Duration};

use serde_json::json;
use wgate_testkit::{RedisTlsOptions, TestCertificates};
use wgate_types::{JobId, JobStatus};

use super::helpers::{Stack, StackOptions, header, json_of};

#[tokio::test]
async fn sessions_are_created_synchronously_and_asynchronously_over_mutual_tls() {
    let certs = Arc::new(TestCertificates::generate());
    let stack = Stack::start_with(StackOptions {
        redis_tls: Some(RedisTlsOptions { certs, require_client_cert: true }),
        ..StackOptions::default()
    })
    .await;

    // The synchronous answer needs all three connections: the API's enqueue, the worker's blocking read and
    // the API's completion subscription.
    let r = stack.create("acme", &json!({"name": "Over TLS"}), &[]).await;
    assert_eq!(r.status(), 200);
    let body = json_of(r).await;
    assert_eq!(body["data"]["name"], "Over TLS");

    let r = stack.create("acme", &json!({"name": "Later"}), &[("Prefer", "respond-async")]).await;
    assert_eq!(r.status(), 202);
    let id: JobId = header(&r, "x-job-id").expect("X-Job-Id").parse().expect("a job id");
    let job = stack.finished(id, Duration::from_secs(10)).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    stack.assert_queue_drained().await;
}
