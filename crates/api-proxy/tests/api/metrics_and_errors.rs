//! Metrics and errors.

#[allow(unused_imports)]
use super::*;

#[tokio::test]
async fn metrics_label_routes_by_pattern_and_count_enqueued_jobs() {
    let app = TestApp::spawn().await;
    app.create_async("acme", &body()).await;
    app.get_job(&app.token("acme"), "01ARZ3NDEKTSV4RRFFQ69G5FAV").await;
    app.client.get(format!("{}/no/such/path", app.base)).send().await.unwrap();
    let m = app.metrics().await;
    for needle in [
        "wgate_http_requests_total{method=\"POST\",route=\"/api/v1/session-create\",status=\"202\"} 1",
        "wgate_http_requests_total{method=\"GET\",route=\"/api/v1/jobs/{id}\",status=\"404\"} 1",
        "wgate_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1",
        "wgate_jobs_enqueued_total{tenant=\"acme\",type=\"session-create\"} 1",
        "wgate_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/session-create\",le=\"0.0005\"}",
        "# HELP wgate_sync_wait_seconds",
        "# HELP wgate_redis_errors_total",
        "wgate_build_info",
    ] {
        assert!(m.contains(needle), "{needle}\n{m}");
    }
    assert!(!m.contains("01ARZ3NDEKTSV4RRFFQ69G5FAV"), "never the raw path");
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_with_an_error_body() {
    let app = TestApp::spawn().await;
    let r = app.client.get(format!("{}/nowhere", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let b = json_of(r).await;
    assert_eq!(
        (b["result"].as_str(), b["code"].as_u64(), b["name"].as_str()),
        (Some("ERROR"), Some(404), Some("Not Found"))
    );
    let r = app.client.get(format!("{}/api/v1/session-create", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(header(r.headers(), "allow"), Some("POST"), "a 405 names the allowed method (RFC 9110)");
    let b = json_of(r).await;
    assert_eq!((b["code"].as_u64(), b["name"].as_str()), (Some(405), Some("Method Not Allowed")));
    let r = app.client.delete(format!("{}/api/v1/jobs/x", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(header(r.headers(), "allow"), Some("GET"));
    let r = app.client.post(format!("{}/qr/some-token/state", app.base)).send().await.unwrap();
    assert_eq!((r.status().as_u16(), header(r.headers(), "allow")), (405, Some("GET")));
}
