//! Session-create.

#[allow(unused_imports)]
use super::*;

#[tokio::test]
async fn respond_async_answers_202_with_the_job_its_location_and_job_id() {
    let app = TestApp::spawn().await;
    let r = app.create_async("acme", &body()).await;
    assert_eq!(r.status(), 202);
    assert_eq!(header(r.headers(), "preference-applied"), Some("respond-async"));
    let id = header(r.headers(), "x-job-id").unwrap().to_owned();
    assert_eq!(header(r.headers(), "location").unwrap(), format!("http://127.0.0.1:8080/api/v1/jobs/{id}"));
    let b = json_of(r).await;
    assert_eq!(b["result"], "ACCEPTED");
    assert_eq!(b["data"]["id"], id.as_str());
    assert_eq!(b["data"]["type"], "session-create");
    assert_eq!(b["data"]["status"], "queued");
    assert_eq!(b["data"]["max_attempts"], 6);
    assert_eq!(id.len(), 26, "a ULID");
}

#[tokio::test]
async fn a_sync_create_answers_200_with_the_upstream_body_and_the_tenants_callback_once_the_worker_finishes() {
    let app = TestApp::spawn().await;
    let worker = app.work_one(|_| succeeded("My WhatsApp"));
    let start = Instant::now();
    let b = body();
    let (r, id) = tokio::join!(app.create_session("acme", &b, &[]), worker);
    assert_eq!(r.status(), 200);
    assert!(start.elapsed() < Duration::from_secs(5), "woken by the completion, not by the timeout");
    assert_eq!(header(r.headers(), "x-job-id"), Some(id.to_string().as_str()));
    let b = json_of(r).await;
    let qr_token = app.store.find(id).await.unwrap().unwrap().qr_token;
    let expected = tenant_data("My WhatsApp", "https://callback.example/hook", &qr_token);
    assert_eq!(b, json!({"result": "OK", "data": expected}), "upstream's body, with the tenant's own callback");
    let job = json_of(app.get_job(&app.token("acme"), &id.to_string()).await).await;
    assert_eq!(job["data"]["response"], expected);
    assert!(app.metrics().await.contains("wgate_sync_wait_seconds_count 1"));
}

#[tokio::test]
async fn failed_and_dead_jobs_answer_502_422_or_504_with_upstream_details() {
    let app = TestApp::spawn().await;
    use wgate_queue::Outcome;
    use wgate_types::ErrorClass::*;
    let cases = [
        (Outcome::Failed(job_error("Unauthorized", "bad key", Credentials)), 502),
        (Outcome::Failed(job_error("Unauthorized", "bad key", Rejected)), 422),
        (Outcome::Dead(job_error("Unauthorized", "bad key", Unavailable)), 502),
        (Outcome::Dead(job_error("Unauthorized", "bad key", Timeout)), 504),
    ];
    for (outcome, code) in cases {
        let label = format!("{outcome:?}");
        let worker = app.work_one(|_| outcome);
        let b = body();
        let (r, id) = tokio::join!(app.create_session("acme", &b, &[]), worker);
        assert_eq!(r.status().as_u16(), code, "{label}");
        assert_eq!(header(r.headers(), "x-job-id"), Some(id.to_string().as_str()));
        let b = json_of(r).await;
        assert_eq!(b["code"], code);
        assert_eq!(
            b["details"],
            json!([{"field": "upstream.name", "problem": "Unauthorized"}, {"field": "upstream.message", "problem": "bad key"}])
        );
    }
}

#[tokio::test]
async fn when_the_wait_runs_out_the_answer_is_202_and_the_preference_is_acknowledged() {
    let app = TestApp::spawn().await;
    let start = Instant::now();
    let r = app.create_session("acme", &body(), &[("prefer", "wait=1")]).await;
    let waited = start.elapsed();
    assert_eq!(r.status(), 202);
    assert!(waited >= Duration::from_secs(1) && waited < Duration::from_secs(3), "{waited:?}");
    assert_eq!(header(r.headers(), "preference-applied"), Some("wait=1"));
    assert!(header(r.headers(), "location").is_some());

    // A wait longer than the server's own is cut to it and not acknowledged.
    let app = TestApp::spawn_with(|s| s.sync_wait_ms = 200).await;
    let start = Instant::now();
    let r = app.create_session("acme", &body(), &[("prefer", "wait=100")]).await;
    assert_eq!(r.status(), 202);
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(header(r.headers(), "preference-applied"), None);
}

#[tokio::test]
async fn a_client_may_ask_for_a_shorter_wait_and_still_gets_the_finished_answer() {
    let app = TestApp::spawn().await;
    let worker = app.work_one(|_| succeeded("My WhatsApp"));
    let b = body();
    let (r, _) = tokio::join!(app.create_session("acme", &b, &[("prefer", "wait=5")]), worker);
    assert_eq!(r.status(), 200);
    assert_eq!(header(r.headers(), "preference-applied"), Some("wait=5"));
}

#[tokio::test]
async fn the_same_idempotency_key_and_body_give_the_same_job_and_another_body_is_422() {
    let app = TestApp::spawn().await;
    let h = [("idempotency-key", "order-42"), ("prefer", "respond-async")];
    let first = app.create_session("acme", &body(), &h).await;
    assert_eq!(first.status(), 202);
    let id = header(first.headers(), "x-job-id").unwrap().to_owned();
    let again = app.create_session("acme", &body(), &h).await;
    assert_eq!(again.status(), 202);
    assert_eq!(header(again.headers(), "x-job-id"), Some(id.as_str()));
    // Another tenant's same key is its own.
    let other = app.create_session("globex", &body(), &h).await;
    assert_ne!(header(other.headers(), "x-job-id"), Some(id.as_str()));
    let before = stored_jobs(&app).await;
    let conflict = app.create_session("acme", &json!({"name": "Other"}), &h).await;
    assert_eq!(conflict.status(), 422);
    let b = json_of(conflict).await;
    assert_eq!(b["code"], 422);
    assert!(b["message"].as_str().unwrap().contains("Idempotency-Key"), "{b}");
    assert_eq!(stored_jobs(&app).await, before, "the refused request made no job and queued nothing");

    // Once finished, the same request gets the same answer.
    assert_eq!(app.work_one(|_| succeeded("My WhatsApp")).await.to_string(), id);
    let done = app.create_session("acme", &body(), &[("idempotency-key", "order-42")]).await;
    assert_eq!(done.status(), 200);
    assert_eq!(header(done.headers(), "x-job-id"), Some(id.as_str()));
    let qr_token = app.store.find(id.parse().unwrap()).await.unwrap().unwrap().qr_token;
    assert_eq!(json_of(done).await["data"], tenant_data("My WhatsApp", "https://callback.example/hook", &qr_token));
}

/// What Redis holds of accepted jobs: job records, queue entries, and each tenant's unfinished jobs.
pub(crate) async fn stored_jobs(app: &TestApp) -> (usize, u64, Vec<(String, u64)>) {
    let mut conn = app.redis.connection().await;
    let prefix = app.keys.prefix();
    let records: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}job:*")).query_async(&mut conn).await.unwrap();
    let entries: u64 = redis::cmd("XLEN")
        .arg(app.keys.stream(wgate_types::JobKind::SessionCreate))
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut pending = Vec::new();
    for tenant in ["acme", "globex"] {
        let n: u64 =
            redis::cmd("SCARD").arg(format!("{prefix}tenant:{tenant}:pending")).query_async(&mut conn).await.unwrap();
        pending.push((tenant.to_owned(), n));
    }
    (records.len(), entries, pending)
}

#[tokio::test]
async fn a_synchronous_repeat_of_an_unfinished_idempotent_request_waits_for_the_same_job() {
    let app = TestApp::spawn().await;
    let first = app.create_session("acme", &body(), &[("idempotency-key", "k-1"), ("prefer", "respond-async")]).await;
    let id = header(first.headers(), "x-job-id").unwrap().to_owned();
    let b = body();
    let (again, worked) = tokio::join!(
        app.create_session("acme", &b, &[("idempotency-key", "k-1")]),
        app.work_one(|_| succeeded("My WhatsApp"))
    );
    assert_eq!(worked.to_string(), id);
    assert_eq!(again.status(), 200);
    assert_eq!(header(again.headers(), "x-job-id"), Some(id.as_str()));
}

#[tokio::test]
async fn a_session_quota_is_403_naming_the_quota_and_a_tenant_override_wins() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tenants.toml");
    std::fs::write(&file, "[tenants.big]\nmax_sessions = 2\n").unwrap();
    let f = file.clone();
    let app = TestApp::spawn_with(move |s| {
        s.max_sessions = Some(1);
        s.tenants_file = Some(f);
    })
    .await;
    assert_eq!(app.create_async("small", &body()).await.status(), 202);
    let r = app.create_async("small", &body()).await;
    assert_eq!(r.status(), 403);
    let msg = json_of(r).await["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("quota") && msg.contains('1'), "{msg}");
    assert_eq!(app.create_async("big", &body()).await.status(), 202);
    assert_eq!(app.create_async("big", &body()).await.status(), 202);
    assert_eq!(app.create_async("big", &body()).await.status(), 403);
}

#[tokio::test]
async fn the_request_id_is_echoed_when_sane_replaced_otherwise_and_stored_in_the_job() {
    let app = TestApp::spawn().await;
    let r = app.create_session("acme", &body(), &[("prefer", "respond-async"), ("x-request-id", "req-1.a_b")]).await;
    assert_eq!(header(r.headers(), "x-request-id"), Some("req-1.a_b"));
    let id: wgate_types::JobId = header(r.headers(), "x-job-id").unwrap().parse().unwrap();
    let mut conn = app.redis.connection().await;
    let stored: Option<String> =
        redis::cmd("HGET").arg(app.keys.job(id)).arg("request_id").query_async(&mut conn).await.unwrap();
    assert_eq!(stored.as_deref(), Some("req-1.a_b"));
    let bad = "x".repeat(129);
    for sent in ["has space", bad.as_str()] {
        let r = app.create_session("acme", &body(), &[("prefer", "respond-async"), ("x-request-id", sent)]).await;
        let got = header(r.headers(), "x-request-id").unwrap();
        assert_ne!(got, sent);
        assert_eq!(got.len(), 26);
    }
    let r = app.client.get(format!("{}/nowhere", app.base)).send().await.unwrap();
    assert!(header(r.headers(), "x-request-id").is_some());
}
