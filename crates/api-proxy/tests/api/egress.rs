//! The egress guard around tenants' callbacks: refused at session-create and set-hook when they can only reach a
//! refused address. (The worker's delivery refuses them again when it connects, and never follows a redirect: see
//! the end-to-end webhook tests.)

use serde_json::json;

use crate::{helpers::*, sessions::Rig};

/// An application whose egress opens nothing, as in production.
async fn closed_app() -> TestApp {
    TestApp::spawn_with(|s| s.egress_allow_nets = String::new()).await
}

/// The one problem a 400 reports, on `field`.
async fn problem_on(r: reqwest::Response, field: &str) -> String {
    assert_eq!(r.status(), 400);
    let body = json_of(r).await;
    let details = body["details"].as_array().expect("details");
    assert_eq!(details.len(), 1, "{body}");
    assert_eq!(details[0]["field"], field, "{body}");
    details[0]["problem"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_callback_that_can_only_reach_a_refused_address_is_400_at_session_create_naming_the_rule() {
    let app = closed_app().await;
    for (callback, rule) in [
        ("http://127.0.0.1:9/hook", "loopback"),
        ("http://localhost/hook", "loopback"),
        ("http://2130706433/hook", "loopback"),
        ("http://0x7f.0.0.1/hook", "loopback"),
        ("http://[::1]:8080/hook", "loopback"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.1.2.3/hook", "private"),
        ("http://192.168.0.10/hook", "private"),
        ("https://[fd00::1]/hook", "private"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://100.64.0.1/hook", "carrier-grade NAT"),
        ("http://224.0.0.1/hook", "multicast"),
        ("http://0.0.0.0:8080/hook", "unspecified"),
    ] {
        let r = app.create_async("acme", &json!({"name": "Shop", "callback": callback})).await;
        let problem = problem_on(r, "callback").await;
        assert!(problem.contains(rule) && problem.contains("public address"), "{callback}: {problem}");
    }
    let mut conn = app.redis.connection().await;
    let queued: u64 = redis::cmd("XLEN")
        .arg(app.keys.stream(wgate_types::JobKind::SessionCreate))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(queued, 0, "nothing refused was queued");
    // A public address (a name that does not resolve here is checked again whenever it is called) is accepted.
    let r = app.create_async("acme", &json!({"name": "Shop", "callback": "https://callback.example/hook"})).await;
    assert_eq!(r.status(), 202);
}

#[tokio::test]
async fn set_hook_refuses_a_callback_at_a_refused_address_and_keeps_the_old_one() {
    let rig = Rig::start_with(|s| s.egress_allow_nets = String::new()).await;
    let owned = rig.own("acme", "Shop", Some("https://acme.example/old")).await;
    for callback in ["http://127.0.0.1:6379/", "http://localhost:9464/metrics", "http://169.254.169.254/"] {
        let r = rig.command("acme", "set-hook", &json!({"WhatsappID": owned.unique_id, "callback": callback})).await;
        let problem = problem_on(r, "callback").await;
        assert!(problem.contains("public address"), "{callback}: {problem}");
    }
    let hook = rig.app.store.hook_target(&owned.job.hook_token).await.unwrap().unwrap();
    assert_eq!(hook.callback.map(|c| c.as_str().to_owned()).as_deref(), Some("https://acme.example/old"));
}

#[tokio::test]
async fn the_gateways_own_listen_and_public_addresses_are_refused_even_with_loopback_opened() {
    let app = TestApp::spawn().await;
    let own = format!("{}/hooks/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", app.base);
    let r = app.create_async("acme", &json!({"name": "Loop", "callback": own})).await;
    let problem = problem_on(r, "callback").await;
    assert!(problem.contains("own listen address"), "{problem}");
    let metrics = format!("{}/metrics", app.admin);
    let r = app.create_async("acme", &json!({"name": "Loop", "callback": metrics})).await;
    assert!(problem_on(r, "callback").await.contains("own listen address"));
    // Its public URL too, by name (behind a load balancer its addresses are not its listen addresses).
    let public = format!("{}/hooks/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", crate::sessions::PUBLIC);
    let r = app.create_async("acme", &json!({"name": "Loop", "callback": public})).await;
    assert!(problem_on(r, "callback").await.contains("the gateway itself"));
}

#[tokio::test]
async fn upstream_transport_errors_never_show_whatsgates_address_to_the_tenant() {
    // Nothing listens on this port: every call is a connect error.
    let port = wgate_testkit::free_port();
    let app = TestApp::spawn_with(move |s| {
        s.upstream.url = format!("http://127.0.0.1:{port}/secret-base");
        s.upstream.api_key = Some(crate::sessions::SIM_KEY.to_owned().into());
        s.upstream.timeout_ms = 1_000;
    })
    .await;
    let r = app.create_async("acme", &json!({"name": "Shop"})).await;
    assert_eq!(r.status(), 202);
    app.work_one(|_| succeeded("Shop")).await;
    let r = app
        .client
        .post(format!("{}/api/v1/set-name", app.base))
        .bearer_auth(app.token("acme"))
        .json(&json!({"WhatsappID": "6345454545454", "name": "New"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let text = json_of(r).await.to_string();
    assert!(!text.contains(&port.to_string()) && !text.contains("secret-base"), "{text}");
}
