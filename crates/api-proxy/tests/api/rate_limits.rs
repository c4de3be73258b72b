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

/// `calls` of each command Redis has run since its statistics were last reset (`INFO commandstats`).
async fn command_calls(app: &TestApp) -> std::collections::HashMap<String, u64> {
    let mut conn = app.redis.connection().await;
    let stats: String = redis::cmd("INFO").arg("commandstats").query_async(&mut conn).await.unwrap();
    stats
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.strip_prefix("calls=")?.split(',').next()?.parse().ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

#[tokio::test]
async fn with_the_shared_store_an_async_create_draws_its_write_bucket_in_the_enqueue_round_trip() {
    let app = TestApp::spawn_with(|s| {
        s.rate_per_second = 0.5;
        s.rate_burst = 3;
    })
    .await;
    // The first create loads the scripts and opens the connections; count from the second on.
    assert_eq!(app.create_async("acme", &body()).await.status(), 202);
    let mut conn = app.redis.connection().await;
    redis::cmd("CONFIG").arg("RESETSTAT").query_async::<()>(&mut conn).await.unwrap();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(app.create_async("acme", &body()).await.status().as_u16());
    }
    assert_eq!(statuses, [202, 202, 429], "burst 3: two more fit, the third is refused");
    let calls = command_calls(&app).await;
    // One script per create, the refused one included; the draw ran inside it (Redis's clock, `TIME`).
    assert_eq!(calls.get("evalsha"), Some(&3), "{calls:?}");
    assert_eq!(calls.get("time"), Some(&3), "{calls:?}");
    assert_eq!(calls.get("eval"), None, "{calls:?}");
    let (records, entries, _) = stored_jobs(&app).await;
    assert_eq!((records, entries), (3, 3), "the refused create stored nothing");
}

#[tokio::test]
async fn a_tenant_over_its_write_limit_is_told_429_before_a_bad_body_or_a_missing_scope() {
    let app = TestApp::spawn_with(|s| {
        s.rate_per_second = 0.5;
        s.rate_burst = 1;
    })
    .await;
    let bad = app.create_async("acme", &json!({"name": ""})).await;
    assert_eq!(bad.status(), 400, "within the limit, the body's error");
    assert!(header(bad.headers(), "ratelimit").unwrap().starts_with("\"write\";r=0;t="), "the bad body drew");
    assert_eq!(app.create_async("acme", &json!({"name": ""})).await.status(), 429);
    assert_eq!(app.create_async("acme", &body()).await.status(), 429);
    let r = app
        .client
        .post(format!("{}/api/v1/session-create", app.base))
        .bearer_auth(app.token_with_scope("acme", "sessions:read"))
        .header("prefer", "respond-async")
        .json(&body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "over the limit, 429 comes before the scope's 403");
    let r = app
        .client
        .post(format!("{}/api/v1/session-create", app.base))
        .bearer_auth(app.token_with_scope("globex", "sessions:read"))
        .json(&body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "within the limit, the missing scope");
    assert_eq!(header(r.headers(), "ratelimit-policy"), Some("\"write\";q=1;w=2"));
}
