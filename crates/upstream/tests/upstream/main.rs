//! The WhatsGate client against the simulator: commands, and how each fault is classified.
#![allow(clippy::unwrap_used)] // a panic is the failure report of a test

use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};
use wgate_types::{ErrorClass, SessionCreate};
use wgate_upstream::{SessionsQuery, Upstream, UpstreamConfig, UpstreamMetrics};
use wgate_upstream_sim::SimConfig;

struct Sim {
    base: String,
    http: reqwest::Client,
}

impl Sim {
    async fn start() -> Self {
        Self::start_accepting("sim-key").await
    }

    /// A simulator that accepts only `key` as `X-Api-Key`.
    async fn start_accepting(key: &str) -> Self {
        wgate_service::init_crypto();
        let config = SimConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            api_keys: vec![key.to_owned()],
            seed: Some(7),
            workers: Some(1),
            ..SimConfig::default()
        };
        let (addr, _task) = wgate_upstream_sim::spawn(config).await.unwrap();
        Self { base: format!("http://{addr}"), http: reqwest::Client::new() }
    }

    fn client(&self, key: &str, timeout_ms: u64) -> Upstream {
        Upstream::new(UpstreamConfig::new(&self.base, SecretString::from(key), Duration::from_millis(timeout_ms)))
            .unwrap()
    }

    async fn faults(&self, faults: Value) {
        let r = self.http.post(format!("{}/sim/faults", self.base)).json(&faults).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }

    async fn stats(&self) -> Value {
        self.http.get(format!("{}/sim/stats", self.base)).send().await.unwrap().json().await.unwrap()
    }
}

fn create(body: Value) -> SessionCreate {
    SessionCreate::from_json(body.to_string().as_bytes()).unwrap()
}

#[tokio::test]
async fn a_session_is_created_found_by_name_renamed_rehooked_and_deleted() {
    let sim = Sim::start().await;
    let up = sim.client("sim-key", 2000);
    let data = up
        .session_create(&create(json!({"name":"  Shop 1 ","callback":"https://relay.example/hooks/t1"})))
        .await
        .unwrap();
    assert_eq!(data["name"], "  Shop 1 ");
    assert_eq!(data["callback"], "https://relay.example/hooks/t1");
    let id = match &data["unique_id"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let page = up.sessions_get(&SessionsQuery { name: Some("  Shop 1 ".into()), ..Default::default() }).await.unwrap();
    assert_eq!(page.elements, 1);
    assert_eq!(page.data[0]["callback"], "https://relay.example/hooks/t1");
    up.set_name(&id, "Shop 2").await.unwrap();
    up.set_hook(&id, "https://relay.example/hooks/t2").await.unwrap();
    let page = up.sessions_get(&SessionsQuery { whatsapp_id: Some(id.clone()), ..Default::default() }).await.unwrap();
    assert_eq!(
        (page.data[0]["name"].as_str(), page.data[0]["callback"].as_str()),
        (Some("Shop 2"), Some("https://relay.example/hooks/t2"))
    );
    let deleted = up.session_delete(&id).await.unwrap();
    assert_eq!(deleted["result"], "OK");
}

#[tokio::test]
async fn a_wrong_api_key_is_a_permanent_credentials_error() {
    let sim = Sim::start().await;
    let e = sim.client("wrong", 2000).session_create(&create(json!({"name":"x"}))).await.unwrap_err();
    assert_eq!(
        (e.class(), e.name(), e.maybe_sent(), e.is_retryable()),
        (ErrorClass::Credentials, "Unauthorized", false, false)
    );
}

#[tokio::test]
async fn a_request_upstream_refuses_is_a_permanent_rejection() {
    let sim = Sim::start().await;
    let up = sim.client("sim-key", 2000);
    let e = up.session_delete("999999999").await.unwrap_err();
    assert_eq!((e.class(), e.name()), (ErrorClass::Rejected, "NotFound"));
    let e =
        up.session_create(&create(json!({"name":"x","auth_type":"CODE","number":"+79999999999"}))).await.unwrap_err();
    assert_eq!((e.class(), e.name(), e.maybe_sent()), (ErrorClass::Rejected, "ValidationError", false));
}

#[tokio::test]
async fn each_fault_is_classified_by_whether_it_can_be_retried_and_may_have_created() {
    let sim = Sim::start().await;
    let up = sim.client("sim-key", 300);
    let req = create(json!({"name":"faulty"}));

    sim.faults(json!({"error_rate": 1.0})).await;
    let e = up.session_create(&req).await.unwrap_err();
    assert_eq!((e.class(), e.name(), e.maybe_sent()), (ErrorClass::Unavailable, "InternalError", true));

    sim.faults(json!({"error_rate": 0.0, "throttle_rate": 1.0})).await;
    let e = up.session_create(&req).await.unwrap_err();
    assert_eq!(
        (e.class(), e.maybe_sent(), e.retry_after()),
        (ErrorClass::Unavailable, false, Some(Duration::from_secs(1)))
    );

    sim.faults(json!({"throttle_rate": 0.0, "timeout_rate": 1.0})).await;
    let started = std::time::Instant::now();
    let e = up.session_create(&req).await.unwrap_err();
    assert_eq!((e.class(), e.maybe_sent()), (ErrorClass::Timeout, true));
    assert!(started.elapsed() < Duration::from_millis(1000), "{:?}", started.elapsed());

    sim.faults(json!({"timeout_rate": 0.0, "ambiguous_rate": 1.0})).await;
    for _ in 0..4 {
        let e = up.session_create(&req).await.unwrap_err();
        assert!(e.is_retryable() && e.maybe_sent(), "{e:?}");
    }
    assert_eq!(sim.stats().await["by_name"]["faulty"], 4, "ambiguous calls did create");
}

#[tokio::test]
async fn a_refused_connection_is_retryable_and_surely_not_sent() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let up = Upstream::new(UpstreamConfig::new(
        format!("http://127.0.0.1:{port}"),
        SecretString::from("k"),
        Duration::from_secs(1),
    ))
    .unwrap();
    let e = up.session_create(&create(json!({"name":"x"}))).await.unwrap_err();
    assert_eq!((e.class(), e.maybe_sent()), (ErrorClass::Unavailable, false), "{e:?}");
}

#[tokio::test]
async fn calls_are_counted_by_command_and_status_and_the_key_never_shows_in_debug_output() {
    // The key the client really sends (the simulator accepts no other), so the search below looks for the secret
    // that is in use.
    const KEY: &str = "upstream-key-7f3a9c1e";
    let sim = Sim::start_accepting(KEY).await;
    let registry = prometheus::Registry::new();
    let config = UpstreamConfig::new(&sim.base, SecretString::from(KEY), Duration::from_secs(2));
    let up = Upstream::new(config.clone()).unwrap().with_metrics(UpstreamMetrics::register(&registry).unwrap());
    up.session_create(&create(json!({"name":"m"}))).await.unwrap();
    let _ = sim.client("bad", 2000).with_metrics(UpstreamMetrics::register(&prometheus::Registry::new()).unwrap());
    up.session_delete("424242").await.unwrap_err();
    let mut text = Vec::new();
    prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &registry.gather(), &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains(r#"wgate_upstream_requests_total{command="session-create",status="200"} 1"#), "{text}");
    assert!(text.contains(r#"wgate_upstream_requests_total{command="session-delete",status="500"} 1"#), "{text}");
    let shown = format!("{config:?} {up:?}");
    assert!(!shown.contains(KEY), "the upstream key in Debug output: {shown}");
}
