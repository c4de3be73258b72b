//! `POST /api/v1/jobs/{id}/replay` respects the tenant's session quota, as session-create does.

use serde_json::json;

use crate::helpers::{TestApp, header, job_error, json_of};

#[tokio::test]
async fn a_replay_that_would_exceed_the_session_quota_is_403_naming_the_quota_and_changes_nothing() {
    let app = TestApp::spawn_with(|s| s.max_sessions = Some(1)).await;
    let admin = app.token_with_scope("acme", "admin sessions:read sessions:write");
    let r = app.create_async("acme", &json!({"name": "Dead one"})).await;
    let id = header(r.headers(), "x-job-id").unwrap().to_owned();
    let error = job_error("Timeout", "no answer", wgate_types::ErrorClass::Timeout);
    assert_eq!(app.work_one(|_| wgate_queue::Outcome::Dead(error)).await.to_string(), id);
    // The quota's one slot goes to another create of the tenant, still under way.
    assert_eq!(app.create_async("acme", &json!({"name": "Live one"})).await.status(), 202);

    let r = app.replay_job(&admin, &id).await;
    assert_eq!(r.status(), 403);
    assert_eq!(header(r.headers(), "x-job-id"), Some(id.as_str()));
    let body = json_of(r).await;
    let msg = body["message"].as_str().unwrap();
    assert!(msg.contains("quota") && msg.contains("at most 1") && msg.contains("max_sessions"), "{msg}");
    let job = json_of(app.get_job(&admin, &id).await).await;
    assert_eq!(job["data"]["status"], "dead", "the refused replay left the job dead");
}
