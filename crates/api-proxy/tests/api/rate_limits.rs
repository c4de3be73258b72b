//! Rate limits.

#[allow(unused_imports)]
use super::*;

#[tokio::test]
async fn a_tenant_over_its_write_burst_gets_429_with_retry_after_and_others_are_not_limited() {
    let app = TestApp::spawn_with(|s| {
        s.rate_per_second = 0.5;
        s.rate_burst = 3;
    })
    .await;
    for remaining in [2, 1, 0] {
        let r = app.create_async("acme", &body()).await;
        assert_eq!(r.status(), 202);
        assert_eq!(header(r.headers(), "ratelimit-policy"), Some("\"write\";q=3;w=6"));
        let current = header(r.headers(), "ratelimit").unwrap();
        assert!(current.starts_with(&format!("\"write\";r={remaining};t=")), "{current}");
    }
    let r = app.create_async("acme", &body()).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = header(r.headers(), "retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert!(header(r.headers(), "ratelimit").unwrap().starts_with("\"write\";r=0;t="));
    assert_eq!(json_of(r).await["code"], 429);
    assert_eq!(app.create_async("globex", &body()).await.status(), 202, "another tenant is not limited");
    let r = app.get_job(&app.token("acme"), &wgate_types::JobId::new().to_string()).await;
    assert_eq!(r.status(), 404, "reads have their own bucket");
    assert_eq!(header(r.headers(), "ratelimit-policy"), Some("\"read\";q=30;w=6"));
    assert!(app.metrics().await.contains("wgate_rate_limited_total{tenant=\"acme\"} 1"));
}

#[tokio::test]
async fn tenant_rate_overrides_apply_and_reload_when_the_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tenants.toml");
    std::fs::write(&file, "[tenants.acme]\nburst = 1\nrate_per_second = 0.1\n").unwrap();
    let f = file.clone();
    let app = TestApp::spawn_with(move |s| {
        s.tenants_file = Some(f);
        s.tenants_poll_ms = 20;
    })
    .await;
    assert_eq!(app.create_async("acme", &body()).await.status(), 202);
    assert_eq!(app.create_async("acme", &body()).await.status(), 429);
    std::fs::write(&file, "[tenants.acme]\nburst = 50\nrate_per_second = 100\n# changed\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = app.create_async("acme", &body()).await;
        if r.status() == 202 {
            assert_eq!(header(r.headers(), "ratelimit-policy"), Some("\"write\";q=50;w=1"));
            break;
        }
        assert!(Instant::now() < deadline, "the changed file was not reloaded");
        pause(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_tenants_file_is_reloaded_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tenants.toml");
    std::fs::write(&file, "[tenants.hup]\nburst = 1\nrate_per_second = 0.1\n").unwrap();
    let f = file.clone();
    let app = TestApp::spawn_with(move |s| {
        s.tenants_file = Some(f);
        s.tenants_poll_ms = 3_600_000;
    })
    .await;
    assert_eq!(app.create_async("hup", &body()).await.status(), 202);
    assert_eq!(app.create_async("hup", &body()).await.status(), 429);
    std::fs::write(&file, "[tenants.hup]\nburst = 40\nrate_per_second = 100\n").unwrap();
    nix::sys::signal::raise(nix::sys::signal::SIGHUP).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.create_async("hup", &body()).await.status() != 202 {
        assert!(Instant::now() < deadline, "SIGHUP did not reload the file");
        pause(Duration::from_millis(20)).await;
    }
}
