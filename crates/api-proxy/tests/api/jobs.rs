//! Jobs.

#[allow(unused_imports)]
use super::*;

#[tokio::test]
async fn a_job_is_served_to_its_tenant_and_is_404_for_another_tenant_or_a_malformed_id() {
    let app = TestApp::spawn().await;
    let r = app.create_async("acme", &body()).await;
    let id = header(r.headers(), "x-job-id").unwrap().to_owned();
    let r = app.get_job(&app.token("acme"), &id).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(r.headers(), "x-job-id"), Some(id.as_str()));
    let b = json_of(r).await;
    assert_eq!(b["result"], "OK");
    for field in [
        "id",
        "type",
        "status",
        "attempts",
        "max_attempts",
        "created_at",
        "updated_at",
        "next_attempt_at",
        "error",
        "response",
    ] {
        assert!(b["data"].get(field).is_some(), "{field}");
    }
    let other = json_of(app.get_job(&app.token("globex"), &id).await).await;
    let missing = json_of(app.get_job(&app.token("acme"), &wgate_types::JobId::new().to_string()).await).await;
    let malformed = json_of(app.get_job(&app.token("acme"), "not-a-ulid").await).await;
    assert_eq!(other, missing);
    assert_eq!(other, malformed);
    assert_eq!(other["code"], 404);
    assert_eq!(app.get_job(&app.token_with_scope("acme", "sessions:write"), &id).await.status(), 403);
}

#[tokio::test]
async fn replay_requeues_a_dead_job_and_is_409_for_a_live_one() {
    let app = TestApp::spawn().await;
    let r = app.create_async("acme", &body()).await;
    let id = header(r.headers(), "x-job-id").unwrap().to_owned();
    let admin = app.token_with_scope("acme", "admin sessions:read");
    assert_eq!(app.replay_job(&app.token("acme"), &id).await.status(), 403);
    let r = app.replay_job(&admin, &id).await;
    assert_eq!(r.status(), 409);
    assert_eq!(json_of(r).await["code"], 409);
    let error = job_error("Timeout", "no answer", wgate_types::ErrorClass::Timeout);
    assert_eq!(app.work_one(|_| wgate_queue::Outcome::Dead(error)).await.to_string(), id);
    let r = app.replay_job(&admin, &id).await;
    assert_eq!(r.status(), 202);
    assert_eq!(header(r.headers(), "x-job-id"), Some(id.as_str()));
    assert_eq!(json_of(r).await["data"]["status"], "queued");
    assert_eq!(app.replay_job(&app.token_with_scope("globex", "admin"), &id).await.status(), 404);
}
