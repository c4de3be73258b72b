//! End to end: a tenant's request through the real API, queue, worker and the WhatsGate simulator.

mod cluster;
mod cluster_paths;
mod cluster_spread;
mod code_number;
mod helpers;
mod qr_window;
mod sentinel;
mod sessions;
mod tls;
mod upgrade;
mod webhooks;

use std::{collections::HashMap, time::Duration};

use helpers::{Stack, StackOptions, header, json_of};
use serde_json::json;
use wgate_types::{JobId, JobStatus};

#[tokio::test]
async fn a_synchronous_create_answers_200_with_the_session_and_makes_exactly_one_upstream() {
    let stack = Stack::start().await;
    let r = stack.create("acme", &json!({"name": "Shop 1", "callback": "https://acme.example/hook"}), &[]).await;
    assert_eq!(r.status(), 200);
    let job_id = header(&r, "x-job-id").expect("X-Job-Id");
    let body = json_of(r).await;
    assert_eq!(body["result"], "OK");
    assert_eq!(body["data"]["name"], "Shop 1");
    assert_eq!(body["data"]["status"], "PENDING");
    assert!(body["data"]["unique_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(body["data"]["callback"], "https://acme.example/hook", "the tenant sees its own callback");

    let stats = stack.sim_stats().await;
    assert_eq!(stats["create_calls"], 1);
    assert_eq!(stats["by_name"]["Shop 1"], 1);

    let job = json_of(stack.get_job("acme", &job_id).await).await;
    assert_eq!(job["data"]["status"], "succeeded");
    assert_eq!(job["data"]["attempts"], 1);
    assert_eq!(job["data"]["response"]["unique_id"], body["data"]["unique_id"]);
    stack.assert_queue_drained().await;
}

#[tokio::test]
async fn an_async_create_answers_202_and_its_job_reaches_succeeded() {
    let stack = Stack::start().await;
    let r = stack.create("acme", &json!({"name": "Async"}), &[("Prefer", "respond-async")]).await;
    assert_eq!(r.status(), 202);
    let location = header(&r, "location").expect("Location");
    let body = json_of(r).await;
    assert_eq!(body["result"], "ACCEPTED");
    let id: JobId = body["data"]["id"].as_str().expect("id").parse().expect("job id");
    assert!(location.ends_with(&format!("/api/v1/jobs/{id}")), "{location}");

    let record = stack.finished(id, Duration::from_secs(10)).await;
    assert_eq!(record.status, JobStatus::Succeeded);
    let job = json_of(stack.get_job("acme", &id.to_string()).await).await;
    assert_eq!(job["data"]["response"]["name"], "Async");
    assert_eq!(json_of(stack.get_job("other", &id.to_string()).await).await["code"], 404);
}

#[tokio::test]
async fn code_pairing_reaches_upstream_with_name_and_number_exactly_as_sent() {
    let stack = Stack::start().await;
    let body = json!({"name": "  Spaced name ", "auth_type": "CODE", "number": "79991234567"});
    let r = stack.create("acme", &body, &[]).await;
    assert_eq!(r.status(), 200);
    let data = json_of(r).await["data"].clone();
    assert_eq!(data["name"], "  Spaced name ");
    assert!(data["code"].as_str().is_some_and(|c| !c.is_empty()), "CODE mode answers a pairing code: {data}");
    assert_eq!(stack.sim_stats().await["by_name"]["  Spaced name "], 1);
}

#[tokio::test]
async fn a_repeated_idempotency_key_gets_the_same_job_and_answer_without_a_second_session() {
    let stack = Stack::start().await;
    let body = json!({"name": "Idem"});
    let first = stack.create("acme", &body, &[("Idempotency-Key", "order-17")]).await;
    assert_eq!(first.status(), 200);
    let first_job = header(&first, "x-job-id");
    let first_body = json_of(first).await;

    let second = stack.create("acme", &body, &[("Idempotency-Key", "order-17")]).await;
    assert_eq!(second.status(), 200);
    assert_eq!(header(&second, "x-job-id"), first_job);
    assert_eq!(json_of(second).await, first_body);

    let other = stack.create("acme", &json!({"name": "Other"}), &[("Idempotency-Key", "order-17")]).await;
    assert_eq!(other.status(), 422);
    let third_tenant = stack.create("globex", &body, &[("Idempotency-Key", "order-17")]).await;
    assert_eq!(third_tenant.status(), 200, "keys of different tenants never collide");
    assert_ne!(header(&third_tenant, "x-job-id"), first_job);

    // Nothing ran for the refused body: no job is left in the queue, and none reached WhatsGate.
    stack.assert_queue_drained().await;
    let stats = stack.sim_stats().await;
    assert_eq!(stats["by_name"]["Idem"], 2, "one session per tenant");
    assert_eq!(stats["by_name"].get("Other"), None, "no session for the refused body: {stats}");
    assert_eq!(stats["create_calls"], 2, "{stats}");
}

#[tokio::test]
async fn a_gateway_key_upstream_rejects_fails_the_job_at_once_with_502() {
    let stack = Stack::start_with(StackOptions { worker_upstream_key: "wrong-key".into(), ..Default::default() }).await;
    let r = stack.create("acme", &json!({"name": "Denied"}), &[]).await;
    assert_eq!(r.status(), 502);
    let job_id = header(&r, "x-job-id").expect("X-Job-Id on a failed job's answer");
    let body = json_of(r).await;
    assert_eq!(body["result"], "ERROR");
    let details = body["details"].to_string();
    assert!(details.contains("Unauthorized"), "upstream's name is in details: {body}");

    let job = json_of(stack.get_job("acme", &job_id).await).await;
    assert_eq!(job["data"]["status"], "failed");
    assert_eq!(job["data"]["attempts"], 1, "a credentials error is never retried");
    assert_eq!(stack.sim_stats().await["sessions_created"], 0);
}

#[tokio::test]
async fn under_every_upstream_fault_each_job_ends_terminal_with_at_most_one_session() {
    let stack = Stack::start_with(StackOptions {
        faults: json!({"error_rate": 0.15, "throttle_rate": 0.1, "timeout_rate": 0.1, "ambiguous_rate": 0.2}),
        upstream_timeout_ms: 300,
        max_attempts: 16,
        workers: 2,
        ..Default::default()
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..40 {
        let r = stack.create("acme", &json!({"name": format!("chaos-{i}")}), &[("Prefer", "respond-async")]).await;
        assert_eq!(r.status(), 202);
        let id: JobId = json_of(r).await["data"]["id"].as_str().expect("id").parse().expect("job id");
        ids.push((i, id));
    }
    let mut outcomes: HashMap<JobStatus, usize> = HashMap::new();
    let stats_before_check = {
        for (i, id) in &ids {
            let record = stack.finished(*id, Duration::from_secs(60)).await;
            *outcomes.entry(record.status).or_default() += 1;
            if record.status == JobStatus::Succeeded {
                let unique_id = record.response.as_ref().and_then(|r| r.get("unique_id")).cloned();
                assert!(unique_id.is_some(), "job {i} succeeded with a session");
            }
        }
        stack.sim_stats().await
    };
    for (i, _) in &ids {
        let n = stats_before_check["by_name"][format!("chaos-{i}")].as_u64().unwrap_or(0);
        assert!(n <= 1, "job chaos-{i} made {n} upstream sessions");
    }
    let succeeded = outcomes.get(&JobStatus::Succeeded).copied().unwrap_or(0);
    let created = stats_before_check["sessions_created"].as_u64().unwrap_or(0) as usize;
    assert_eq!(created, succeeded, "every session belongs to a succeeded job: {outcomes:?} {stats_before_check}");
    // An attempt fails without progress with a chance of 0.35 (error, throttle or timeout); an ambiguous one
    // creates the session the next attempt adopts. A job misses all sixteen attempts with a chance of 0.35^16
    // (5e-8), so every job succeeds: anything else is a bug, not bad luck.
    assert_eq!(succeeded, 40, "every job gets through sixteen attempts: {outcomes:?}");
    assert!(
        stats_before_check["create_calls"].as_u64().unwrap_or(0) > 40,
        "faults were injected: {stats_before_check}"
    );
    stack.assert_queue_drained().await;
}
