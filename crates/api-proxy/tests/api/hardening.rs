//! Attacks and faults against the running API: bounded metric labels, capability URLs looked up before any body is
//! read and every body read under a deadline, ownership that survives a wrong upstream, sessions-get whose cost
//! follows the caller's own sessions, the JWKS rules, token lifetimes, and an enqueue whose reply was lost.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use actix_web::{HttpResponse, web};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wgate_api_proxy::{ApiSettings, Application};

use crate::{
    app_over_jwks, assert_invalid_token, create_with_token, ec_jwk,
    helpers::*,
    hook_token_of, jwks_server, run_binary,
    sessions::{Rig, SIM_KEY, app_over_stub, ids_of, upstream_list_calls},
};

// ---------------------------------------------------------------- metric labels

#[tokio::test]
async fn made_up_http_methods_create_no_new_metric_series() {
    let app = TestApp::spawn().await;
    for i in 0..20 {
        for path in ["/", "/api/v1/session-create", "/hooks/AAAAAAAAAAAAAAAAAAAAAAAA"] {
            let method = reqwest::Method::from_bytes(format!("M{i}X").as_bytes()).unwrap();
            let r = app.client.request(method, format!("{}{path}", app.base)).send().await.unwrap();
            assert!(r.status().is_client_error(), "{path}: {}", r.status());
        }
    }
    let metrics = app.metrics().await;
    let methods: std::collections::BTreeSet<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("wgate_http_request"))
        .filter_map(|l| l.split("method=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(methods.into_iter().collect::<Vec<_>>(), ["other"], "{metrics}");
    let routes: std::collections::BTreeSet<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("wgate_http_requests_total"))
        .filter_map(|l| l.split("route=\"").nth(1)?.split('"').next())
        .collect();
    assert!(routes.iter().all(|r| *r == "unmatched" || r.contains('{') || r.starts_with("/api/")), "{routes:?}");
}

// ---------------------------------------------------------------- bodies: capabilities first, read deadline

/// Sends `head` (a request line and headers, no body) on a raw connection and reads the answer's status line,
/// giving up after `within`.
async fn raw_status(base: &str, head: &str, within: Duration) -> Option<u16> {
    let addr = base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connecting to the API");
    conn.write_all(head.as_bytes()).await.expect("sending the head");
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(within, conn.read(&mut buf)).await.ok()?.ok()?;
    let text = String::from_utf8_lossy(&buf[..n]);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

fn post_head(path: &str, length: usize, extra: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: wgate\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n{extra}\r\n"
    )
}

#[tokio::test]
async fn an_unknown_hook_token_is_404_before_any_body_is_read() {
    let app = TestApp::spawn_with(|s| s.body_read_timeout_ms = 60_000).await;
    let head = post_head("/hooks/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 1024 * 1024, "");
    let started = Instant::now();
    let status = raw_status(&app.base, &head, Duration::from_secs(5)).await;
    assert_eq!(status, Some(404), "answered at once, without waiting for the 1 MiB body");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The QR window's capability likewise.
    let head = "GET /qr/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA HTTP/1.1\r\nHost: wgate\r\nContent-Length: 1048576\r\n\r\n";
    assert_eq!(raw_status(&app.base, head, Duration::from_secs(5)).await, Some(404), "an unknown QR window");
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_408_once_the_read_deadline_passes() {
    let app = TestApp::spawn_with(|s| {
        s.body_read_timeout_ms = 300;
        // The session commands need an upstream to be served at all (none is called here).
        s.upstream.api_key = Some("k".to_owned().into());
    })
    .await;
    // A known hook: the token checks out, then the body never comes.
    let r = app.create_async("acme", &json!({"name": "Shop", "callback": "https://callback.example/hook"})).await;
    let token = hook_token_of(&app, header(r.headers(), "x-job-id").unwrap()).await;
    let started = Instant::now();
    let status =
        raw_status(&app.base, &post_head(&format!("/hooks/{token}"), 1024 * 1024, ""), Duration::from_secs(5)).await;
    assert_eq!(status, Some(408), "the relay's read deadline");
    assert!(started.elapsed() >= Duration::from_millis(300));

    // A tenant request: authorized, then a body of 100 bytes of which none arrive.
    let auth = format!("Authorization: Bearer {}\r\n", app.token("acme"));
    let status = raw_status(&app.base, &post_head("/api/v1/session-create", 100, &auth), Duration::from_secs(5)).await;
    assert_eq!(status, Some(408), "session-create's read deadline");
    let status = raw_status(&app.base, &post_head("/api/v1/sessions-get", 100, &auth), Duration::from_secs(5)).await;
    assert_eq!(status, Some(408), "the session commands' read deadline");
}

// ---------------------------------------------------------------- ownership survives a wrong upstream

/// A second API process on the rig's Redis and namespace, whose upstream is `upstream_url`.
async fn second_api(rig: &Rig, upstream_url: String) -> String {
    let namespace = rig.app.keys.prefix().trim_start_matches('{').trim_end_matches("}:").to_owned();
    let mut settings = ApiSettings::on_loopback(&rig.app.redis.url(), &namespace, SECRET);
    settings.upstream.url = upstream_url;
    settings.upstream.api_key = Some(SIM_KEY.to_owned().into());
    settings.upstream.timeout_ms = 1_000;
    let app = Application::build(settings).await.expect("the second API starts");
    let base = format!("http://{}", app.address());
    tokio::spawn(app.run_until_stopped());
    base
}

#[tokio::test]
async fn a_404_page_from_a_wrong_upstream_url_forgets_no_session() {
    let rig = Rig::start().await;
    let a = rig.own("acme", "Shop A", None).await;
    let b = rig.own("acme", "Shop B", None).await;
    let wrong = second_api(&rig, format!("{}/wrong/path", rig.sim)).await;
    let token = rig.app.token("acme");
    let call = |command: &str, body: Value| {
        rig.app.client.post(format!("{wrong}/api/v1/{command}")).bearer_auth(&token).json(&body).send()
    };
    let r = call("sessions-get", json!({})).await.unwrap();
    assert_eq!(r.status(), 502, "a 404 page is a failing upstream, not an answer about sessions");
    for (command, body) in [
        ("set-name", json!({"WhatsappID": a.unique_id, "name": "New"})),
        ("set-hook", json!({"WhatsappID": a.unique_id, "callback": "https://acme.example/x"})),
        ("session-delete", json!({"WhatsappID": b.unique_id})),
    ] {
        let r = call(command, body).await.unwrap();
        assert_eq!(r.status(), 502, "{command}");
    }
    let mut owned = rig.app.store.tenant_sessions(&acme()).await.unwrap();
    owned.sort();
    let mut want = vec![a.unique_id.clone(), b.unique_id.clone()];
    want.sort();
    assert_eq!(owned, want, "ownership is kept");
    // Through the right upstream, both are still the tenant's.
    let page = json_of(rig.command("acme", "sessions-get", &json!({})).await).await;
    assert_eq!(page["elements"], 2, "{page}");
    // WhatsGate's own well-formed "not found" does forget: delete b upstream, then ask.
    rig.upstream("session-delete", &json!({"WhatsappID": b.unique_id})).await;
    let r = rig.command("acme", "set-name", &json!({"WhatsappID": b.unique_id, "name": "Gone"})).await;
    assert_eq!(r.status(), 404);
    assert_eq!(rig.app.store.tenant_sessions(&acme()).await.unwrap(), vec![a.unique_id]);
}

#[tokio::test]
async fn only_whatsgates_own_not_found_answer_forgets_a_session() {
    let not_found = json!({"name": "NotFound", "message": "Session not found.", "code": 0});
    for (status, answer_body) in [
        (404, not_found.clone()),
        (502, not_found.clone()),
        (503, json!({"name": "SessionNotFoundPageOfACdn"})),
        (404, json!("<html>Not Found</html>")),
    ] {
        let (app, _) = app_over_stub(status, answer_body.clone()).await;
        for (command, body) in [
            ("sessions-get", json!({})),
            ("set-name", json!({"WhatsappID": "6345454545454", "name": "n"})),
            ("session-delete", json!({"WhatsappID": "6345454545454"})),
        ] {
            let r = app
                .client
                .post(format!("{}/api/v1/{command}", app.base))
                .bearer_auth(app.token("acme"))
                .json(&body)
                .send()
                .await
                .unwrap();
            // An upstream failure, never the "no such session" 404 nor a listing without the session.
            let answer = r.status();
            assert!(answer.is_server_error() || answer == 422, "{status} {answer_body}: {command}: {answer}");
        }
        assert!(
            app.store.session_owner(&acme(), "6345454545454").await.unwrap().is_some(),
            "{status} {answer_body}: still owned"
        );
    }
}

// ---------------------------------------------------------------- sessions-get follows the caller's sessions

#[tokio::test]
async fn sessions_get_costs_upstream_calls_by_the_callers_own_sessions_not_by_the_account() {
    let rig = Rig::start_with(|s| s.rate_burst = 200).await;
    let own = 22;
    let mut mine = Vec::new();
    for _ in 0..own {
        mine.push(rig.own("acme", "Shop", None).await.unique_id);
    }
    // One of them is renamed: a listing of "Shop" cannot stop before it has looked at all 22.
    rig.upstream("set-name", &json!({"WhatsappID": mine[0], "name": "Renamed"})).await;

    let mut calls = Vec::new();
    let mut foreign = 0;
    // Other tenants' sessions, named alike, fill the shared account: 100, then 1,200 (13 pages of 100).
    for add in [100, 1_100] {
        for _ in 0..add {
            foreign += 1;
            rig.upstream("session-create", &json!({"name": "Shop"})).await;
        }
        let before = upstream_list_calls(&rig.app).await;
        let r = rig.command("acme", "sessions-get", &json!({"name": "Shop", "page_cnt": 100})).await;
        assert_eq!(r.status(), 200);
        let page = json_of(r).await;
        assert_eq!(ids_of(&page), mine[1..].to_vec(), "{page}");
        calls.push(upstream_list_calls(&rig.app).await - before);
    }
    assert_eq!(foreign, 1_200);
    assert_eq!(calls, [own as u64, own as u64], "one lookup per own session, whatever the account holds");
}

#[tokio::test]
async fn sessions_get_runs_under_one_overall_deadline() {
    let rig = Rig::start_with(|s| {
        s.rate_burst = 200;
        s.upstream.timeout_ms = 400;
    })
    .await;
    for i in 0..20 {
        rig.own("acme", &format!("Acme {i}"), None).await;
    }
    // Each call now takes 150 ms: 20 lookups, 8 at a time, need 450 ms, past the 400 ms budget.
    let r = rig.app.client.post(format!("{}/sim/faults", rig.sim)).json(&json!({"latency_ms": 150})).send().await;
    assert!(r.unwrap().status().is_success());
    let started = Instant::now();
    let r = rig.command("acme", "sessions-get", &json!({})).await;
    let took = started.elapsed();
    assert_eq!(r.status(), 504);
    assert!(took < Duration::from_millis(900), "the listing stopped at its deadline, took {took:?}");
    let _ = rig.app.client.post(format!("{}/sim/faults", rig.sim)).json(&json!({"latency_ms": 0})).send().await;
}

// ---------------------------------------------------------------- JWT and JWKS rules

#[test]
fn a_plain_http_jwks_url_is_refused_at_start_unless_its_host_is_loopback() {
    let out = run_binary(&[("WGATE_JWT_JWKS_URL", "http://idp.example/jwks")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("WGATE_JWT_JWKS_URL") && stderr.contains("https"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

/// A JWKS server with `/redirect` (302 to `/jwks`) and `/big` (the same keys padded past 64 KiB).
async fn tricky_jwks_server(keys: Value) -> String {
    let addr = serve(move |cfg| {
        let (a, b) = (keys.clone(), keys.clone());
        cfg.route(
            "/jwks",
            web::get().to(move || {
                let k = a.clone();
                async move { HttpResponse::Ok().json(k) }
            }),
        )
        .route(
            "/redirect",
            web::get().to(|| async { HttpResponse::Found().insert_header(("location", "/jwks")).finish() }),
        )
        .route(
            "/big",
            web::get().to(move || {
                let mut k = b.clone();
                k["padding"] = json!("x".repeat(70 * 1024));
                async move { HttpResponse::Ok().json(k) }
            }),
        );
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn the_jwks_is_not_fetched_through_a_redirect_nor_read_past_64_kib() {
    let base = tricky_jwks_server(json!({"keys": [ec_jwk("k1")]})).await;
    let token = signed(Algorithm::ES256, Some("k1"), &claims("acme", json!({})));
    let plain = TestApp::spawn_with(|s| {
        s.jwt_secret = None;
        s.jwt_jwks_url = Some(format!("{base}/jwks"));
    })
    .await;
    assert_eq!(create_with_token(&plain, &token).await.status(), 202, "the key itself is fine");
    for path in ["/redirect", "/big"] {
        let app = TestApp::spawn_with(|s| {
            s.jwt_secret = None;
            s.jwt_jwks_url = Some(format!("{base}{path}"));
        })
        .await;
        assert_invalid_token(&app, &token).await;
    }
}

#[tokio::test]
async fn a_key_removed_from_the_jwks_stops_its_remembered_tokens_at_the_next_refresh() {
    let (app, keys, hits) = app_over_jwks(1).await;
    let token = signed(Algorithm::ES256, Some("k1"), &claims("acme", json!({})));
    assert_eq!(create_with_token(&app, &token).await.status(), 202, "verified and remembered");
    assert_eq!(create_with_token(&app, &token).await.status(), 202);

    // k1 leaves the JWKS (compromised); a token naming another kid makes the gateway refresh.
    *keys.lock().unwrap() = json!({"keys": [ec_jwk("k2")]});
    let before = hits.load(Ordering::SeqCst);
    let other = signed(Algorithm::ES256, Some("k2"), &claims("acme", json!({})));
    assert_eq!(create_with_token(&app, &other).await.status(), 202);
    assert_eq!(hits.load(Ordering::SeqCst), before + 1, "refreshed");
    assert_invalid_token(&app, &token).await;
}

#[tokio::test]
async fn a_public_key_token_without_kid_is_refused_when_several_keys_of_its_family_exist() {
    let keys = Arc::new(Mutex::new(json!({"keys": [ec_jwk("k1"), ec_jwk("k2")]})));
    let url = jwks_server(keys, Arc::new(AtomicUsize::new(0))).await;
    let app = TestApp::spawn_with(|s| {
        s.jwt_secret = None;
        s.jwt_jwks_url = Some(url);
    })
    .await;
    let no_kid = signed(Algorithm::ES256, None, &claims("acme", json!({})));
    let r = create_with_token(&app, &no_kid).await;
    assert_eq!(r.status(), 401);
    assert!(json_of(r).await["message"].as_str().unwrap().contains("kid"));
    let with_kid = signed(Algorithm::ES256, Some("k2"), &claims("acme", json!({})));
    assert_eq!(create_with_token(&app, &with_kid).await.status(), 202);
    assert!(app.metrics().await.contains("wgate_auth_failures_total{reason=\"kid_required\"} 1"));
}

#[tokio::test]
async fn a_token_living_longer_than_the_maximum_lifetime_is_refused() {
    let app = TestApp::spawn_with(|s| s.jwt_max_ttl_secs = Some(3600)).await;
    let long = hs256(SECRET, &claims("acme", json!({"exp": now() + 7 * 24 * 3600})));
    let r = create_with_token(&app, &long).await;
    assert_eq!(r.status(), 401);
    assert!(json_of(r).await["message"].as_str().unwrap().contains("3600"));
    let short = hs256(SECRET, &claims("acme", json!({"exp": now() + 600})));
    assert_eq!(create_with_token(&app, &short).await.status(), 202);
}

// ---------------------------------------------------------------- an enqueue whose reply was lost

#[tokio::test]
async fn an_enqueue_whose_reply_is_lost_is_503_saying_the_job_may_be_stored() {
    // In-process buckets: with shared ones, the paused writes would stop the rate check (a write too) before the
    // enqueue this test is about (that path has its own test: a frozen Redis is a 503 within a second).
    let app = TestApp::spawn_with(|s| s.rate_limit_store = "local".into()).await;
    // A first job loads the enqueue script into Redis.
    assert_eq!(app.create_async("acme", &json!({"name": "First"})).await.status(), 202);
    // Redis holds every write for 2 s: the enqueue script waits, the API gives up after 1 s, then Redis runs it.
    let mut conn = app.redis.connection().await;
    let _: () = redis::cmd("CLIENT").arg("PAUSE").arg(2_000).arg("WRITE").query_async(&mut conn).await.unwrap();
    let r = app.create_async("acme", &json!({"name": "Shop"})).await;
    assert_eq!(r.status(), 503);
    let job = header(r.headers(), "x-job-id").expect("the job id it may have").to_owned();
    let message = json_of(r).await["message"].as_str().unwrap().to_owned();
    assert!(message.contains("may have been stored") && message.contains("Idempotency-Key"), "{message}");

    // Once Redis runs the held script the job exists: "nothing was accepted" would have been false.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app.get_job(&app.token("acme"), &job).await;
        if r.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the held enqueue never stored job {job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
