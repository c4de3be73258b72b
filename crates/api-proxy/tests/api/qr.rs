//! The QR window: tokens in the answers, `GET /qr/{token}` and its state endpoint, the per-session upstream
//! cache (against the simulator).

use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};
use wgate_api_proxy::qr_cache::{Lookup, SessionCache};
use wgate_queue::Outcome;
use wgate_upstream::{Upstream, UpstreamConfig};

use crate::helpers::{TestApp, acme, header, job_error, json_of, succeeded};

const SIM_KEY: &str = "qr-test-key";

/// A simulator whose sessions show their QR (or code) at once.
async fn simulator() -> String {
    let sim = wgate_upstream_sim::Application::build(wgate_upstream_sim::SimConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        api_keys: vec![SIM_KEY.into()],
        seed: Some(11),
        init_ms: 0,
        workers: Some(1),
        ..Default::default()
    })
    .await
    .expect("simulator starts");
    let url = sim.base_url();
    tokio::spawn(async move {
        let _ = sim.run_until_stopped().await;
    });
    url
}

/// A session made directly on the simulator: upstream's `data`.
async fn sim_session(app: &TestApp, sim: &str, body: Value) -> Value {
    let r = app
        .client
        .post(format!("{sim}/api/v1/session-create"))
        .header("X-Api-Key", SIM_KEY)
        .json(&body)
        .send()
        .await
        .expect("simulator answers");
    json_of(r).await["data"].clone()
}

/// The window's path (`/qr/<token>`) from a job answer's `qr_link`.
fn window_path(data: &Value) -> String {
    let link = data["qr_link"].as_str().expect("qr_link");
    format!("/qr/{}", link.rsplit_once("/qr/").expect("a gateway link").1)
}

/// Creates a job for `tenant` and finishes it with `outcome`; answers the job's `data` as the tenant sees it.
async fn finished_job(app: &TestApp, tenant: &str, outcome: Outcome) -> Value {
    let accepted = json_of(app.create_async(tenant, &json!({"name": "Shop"})).await).await;
    let id = accepted["data"]["id"].as_str().expect("job id").to_owned();
    app.work_one(|_| outcome).await;
    json_of(app.get_job(&app.token(tenant), &id).await).await["data"].clone()
}

async fn state(app: &TestApp, path: &str) -> (u16, Value) {
    let r = app.client.get(format!("{}{path}/state", app.base)).send().await.expect("state");
    let status = r.status().as_u16();
    assert_eq!(header(r.headers(), "cache-control"), Some("no-store"));
    (status, json_of(r).await)
}

#[tokio::test]
async fn a_finished_job_links_the_gateways_window_and_keeps_upstreams_link_aside() {
    let app = TestApp::spawn().await;
    let job = finished_job(&app, "acme", succeeded("Shop")).await;
    let response = &job["response"];
    let link = response["qr_link"].as_str().expect("qr_link");
    let token = link.strip_prefix("http://127.0.0.1:8080/qr/").expect("the public URL's /qr/<token>");
    assert!(token.len() >= 22 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert!(!token.contains("6345454545454"));
    assert_eq!(response["upstream_qr_link"], "https://whatsgate.ru/qr/6345454545454");
    let target = app.store.qr_target(token).await.expect("redis").expect("the token is stored");
    assert_eq!(target.tenant.as_str(), "acme");
    let record = app.store.find(target.job_id).await.expect("redis").expect("the job");
    assert_ne!(record.qr_token, record.hook_token, "the window's token is not the relay's");
}

#[tokio::test]
async fn an_unknown_token_gets_a_framable_page_whose_state_is_broken() {
    let app = TestApp::spawn().await;
    for path in ["/qr/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "/qr/%3Cscript%3Ealert(1)%3C%2Fscript%3E"] {
        let r = app.client.get(format!("{}{path}", app.base)).send().await.expect("page");
        assert_eq!(r.status(), 404, "an unknown capability is 404, with the page that tells the parent `broken`");
        let h = r.headers().clone();
        assert_eq!(header(&h, "content-type"), Some("text/html; charset=utf-8"));
        assert!(h.get("x-frame-options").is_none());
        let csp = header(&h, "content-security-policy").expect("a CSP");
        assert!(
            csp.starts_with("default-src 'none'; script-src 'nonce-") && csp.ends_with("frame-ancestors *"),
            "{csp}"
        );
        let nonce = csp.split("'nonce-").nth(1).and_then(|s| s.split('\'').next()).expect("nonce");
        let body = r.text().await.expect("html");
        assert_eq!(body.matches(&format!("nonce=\"{nonce}\"")).count(), 2, "script and style carry the nonce");
        assert!(!body.contains("<script>alert"), "nothing of the path is reflected");
        assert_eq!(state(&app, path).await, (404, json!({"status": "broken"})));
    }
}

#[tokio::test]
async fn a_window_shows_loading_until_the_job_made_the_session_and_breaks_when_it_failed() {
    let app = TestApp::spawn().await;
    let accepted = json_of(app.create_async("acme", &json!({"name": "Slow"})).await).await;
    let id = accepted["data"]["id"].as_str().expect("job id").to_owned();
    let record = app.store.find(id.parse().expect("id")).await.expect("redis").expect("job");
    let path = format!("/qr/{}", record.qr_token);
    assert_eq!(state(&app, &path).await, (200, json!({"status": "loading"})));
    app.work_one(|_| Outcome::Failed(job_error("ValidationError", "bad", wgate_types::ErrorClass::Rejected))).await;
    assert_eq!(state(&app, &path).await, (404, json!({"status": "broken"})));
}

#[tokio::test]
async fn a_window_follows_upstreams_qr_as_svg_or_code_and_never_names_upstream() {
    let sim = simulator().await;
    let app = TestApp::spawn_with(|s| {
        s.upstream.url = sim.clone();
        s.upstream.api_key = Some(SIM_KEY.to_owned().into());
    })
    .await;
    let data = sim_session(&app, &sim, json!({"name": "QR"})).await;
    let unique_id = data["unique_id"].as_str().expect("unique_id").to_owned();
    let outcome = Outcome::Succeeded { response: data, unique_id: unique_id.clone() };
    let job = finished_job(&app, "acme", outcome).await;
    let path = window_path(&job["response"]);
    let (status, s) = state(&app, &path).await;
    assert_eq!((status, s["status"].as_str()), (200, Some("AUTH")), "{s}");
    assert!(s["qr_svg"].as_str().is_some_and(|v| v.starts_with("<svg") && v.contains("<path")), "{s}");
    let text = s.to_string();
    assert!(!text.contains(&unique_id) && !text.contains(&sim), "the state names neither session nor upstream");

    let data = sim_session(&app, &sim, json!({"name": "Code", "auth_type": "CODE", "number": "79991234567"})).await;
    let unique_id = data["unique_id"].as_str().expect("unique_id").to_owned();
    let job = finished_job(&app, "acme", Outcome::Succeeded { response: data, unique_id }).await;
    let (status, s) = state(&app, &window_path(&job["response"])).await;
    assert_eq!(status, 200);
    assert!(s["code"].as_str().is_some_and(|c| c.len() == 9) && s.get("qr_svg").is_none(), "{s}");
}

#[tokio::test]
async fn fifty_open_windows_on_one_session_cost_one_sessions_get() {
    let sim = simulator().await;
    let app = TestApp::spawn_with(|s| {
        s.upstream.url = sim.clone();
        s.upstream.api_key = Some(SIM_KEY.to_owned().into());
    })
    .await;
    let data = sim_session(&app, &sim, json!({"name": "Popular"})).await;
    let unique_id = data["unique_id"].as_str().expect("unique_id").to_owned();
    let job = finished_job(&app, "acme", Outcome::Succeeded { response: data, unique_id }).await;
    let path = window_path(&job["response"]);
    let polls = futures::future::join_all((0..50).map(|_| state(&app, &path))).await;
    assert!(polls.iter().all(|(status, s)| *status == 200 && s["status"] == "AUTH"), "{polls:?}");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("wgate_upstream_requests_total{command=\"sessions-get\",status=\"200\"} 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn deleting_the_session_or_losing_it_upstream_breaks_its_window() {
    let sim = simulator().await;
    let app = TestApp::spawn_with(|s| {
        s.upstream.url = sim.clone();
        s.upstream.api_key = Some(SIM_KEY.to_owned().into());
    })
    .await;
    // Forgotten by the gateway (session-delete through it): the token is revoked at once.
    let data = sim_session(&app, &sim, json!({"name": "Deleted"})).await;
    let unique_id = data["unique_id"].as_str().expect("unique_id").to_owned();
    let job = finished_job(&app, "acme", Outcome::Succeeded { response: data, unique_id: unique_id.clone() }).await;
    let path = window_path(&job["response"]);
    assert_eq!(state(&app, &path).await.0, 200);
    app.store.forget_session(&acme(), &unique_id).await.expect("redis");
    assert_eq!(state(&app, &path).await, (404, json!({"status": "broken"})));

    // A session upstream never had (or lost): broken too, from upstream's answer.
    let job = finished_job(&app, "acme", succeeded("Gone")).await;
    assert_eq!(state(&app, &window_path(&job["response"])).await, (404, json!({"status": "broken"})));
}

#[tokio::test]
async fn the_tenants_frame_ancestors_bound_who_may_frame_its_windows() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("tenants.toml");
    std::fs::write(&file, "[tenants.acme]\nframe_ancestors = \"https://app.acme.example 'self'\"\n").expect("write");
    let app = TestApp::spawn_with(|s| s.tenants_file = Some(file)).await;
    for (tenant, expected) in
        [("acme", "frame-ancestors https://app.acme.example 'self'"), ("globex", "frame-ancestors *")]
    {
        let job = finished_job(&app, tenant, succeeded("Shop")).await;
        let r = app.client.get(format!("{}{}", app.base, window_path(&job["response"]))).send().await.expect("page");
        let csp = header(r.headers(), "content-security-policy").expect("a CSP").to_owned();
        assert!(csp.ends_with(expected), "{tenant}: {csp}");
    }
}

#[tokio::test]
async fn many_windows_on_one_session_cost_one_upstream_call_per_second() {
    let sim = simulator().await;
    let app = TestApp::spawn().await;
    let (a, b) =
        (sim_session(&app, &sim, json!({"name": "A"})).await, sim_session(&app, &sim, json!({"name": "B"})).await);
    let (a, b) = (a["unique_id"].as_str().expect("id").to_owned(), b["unique_id"].as_str().expect("id").to_owned());
    let upstream =
        Upstream::new(UpstreamConfig::new(sim, SIM_KEY.to_owned().into(), Duration::from_secs(5))).expect("client");
    let cache = Arc::new(SessionCache::new(Some(upstream), Duration::from_secs(1), 100));

    let windows = (0..200).map(|i| {
        let (cache, id) = (cache.clone(), if i % 2 == 0 { a.clone() } else { b.clone() });
        tokio::spawn(async move { cache.get(&id).await })
    });
    for seen in futures::future::join_all(windows).await {
        assert!(matches!(seen.expect("task"), Lookup::Found(s) if s.status == "AUTH"));
    }
    assert_eq!(cache.upstream_calls(), 2, "one call per session for 100 windows each");

    // The time bound is what is under test: a second later, one more call per session.
    tokio::time::sleep(Duration::from_millis(1_050)).await;
    let again = futures::future::join_all((0..50).map(|_| cache.get(&a))).await;
    assert!(again.iter().all(|l| matches!(l, Lookup::Found(_))));
    assert_eq!(cache.upstream_calls(), 3);
    assert_eq!(cache.get("1000000000000").await, Lookup::Gone, "a session upstream does not have");
}
