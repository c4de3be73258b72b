//! Faults on session-create: each kind with the stats proving whether a session was created, settings
//! changed at run time, latency, and the same seed giving the same outcomes.

use std::time::{Duration, Instant};

use serde_json::json;
use wgate_upstream_sim::SimConfig;

use crate::helpers::{KEY, TestSim, eventually, test_config};

async fn only(sim: &TestSim, fault: &str) {
    let answer = sim.set_faults(json!({ fault: 1.0 })).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}

#[tokio::test]
async fn the_error_fault_answers_500_and_creates_nothing() {
    let sim = TestSim::start().await;
    only(&sim, "error_rate").await;
    sim.create(json!({ "name": "n" })).await.assert_error("InternalError");
    let stats = sim.stats().await;
    assert_eq!((&stats["create_calls"], &stats["sessions_created"]), (&json!(1), &json!(0)));
    assert_eq!(sim.sessions_get(json!({})).await.json["elements"], 0);
}

#[tokio::test]
async fn the_throttle_fault_answers_429_with_retry_after_and_creates_nothing() {
    let sim = TestSim::start().await;
    only(&sim, "throttle_rate").await;
    let answer = sim.create(json!({ "name": "n" })).await;
    assert_eq!(answer.status, 429, "{}", answer.text);
    assert_eq!(answer.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    assert_eq!(answer.json["name"], "TooManyRequests");
    assert_eq!(answer.json["code"], 0);
    assert!(answer.json["message"].is_string());
    let stats = sim.stats().await;
    assert_eq!((&stats["create_calls"], &stats["sessions_created"]), (&json!(1), &json!(0)));
}

#[tokio::test]
async fn the_timeout_fault_never_answers_and_creates_nothing() {
    let sim = TestSim::start().await;
    only(&sim, "timeout_rate").await;
    let call = sim
        .client
        .post(sim.url("/api/v1/session-create"))
        .header("X-Api-Key", KEY)
        .json(&json!({ "name": "n" }))
        .timeout(Duration::from_millis(1000))
        .send();
    let call = tokio::spawn(call);
    eventually("the request to be held", || async { (sim.stats().await["requests_held"] == 1).then_some(()) }).await;
    // Other commands still answer meanwhile.
    assert_eq!(sim.sessions_get(json!({})).await.json["elements"], 0);

    let error = call.await.expect("the call ran").expect_err("no answer");
    assert!(error.is_timeout(), "{error:?}");
    let stats = sim.stats().await;
    assert_eq!((&stats["create_calls"], &stats["sessions_created"]), (&json!(1), &json!(0)));
    // The held request goes away with its connection, so held requests cannot pile up.
    eventually("the held request to be dropped", || async { (sim.stats().await["requests_held"] == 0).then_some(()) })
        .await;
}

#[tokio::test]
async fn the_ambiguous_fault_creates_the_session_then_loses_the_answer_both_ways() {
    let sim = TestSim::start().await;
    only(&sim, "ambiguous_rate").await;
    let (mut internal, mut dropped) = (0, 0);
    for _ in 0..12 {
        match sim.command_raw("session-create", Some(KEY), r#"{"name":"lost"}"#).await {
            Ok(answer) => {
                answer.assert_error("InternalError");
                internal += 1;
            }
            Err(error) => {
                assert!(!error.is_timeout(), "a dropped connection, not a timeout: {error:?}");
                dropped += 1;
            }
        }
    }
    assert!(internal > 0 && dropped > 0, "both kinds of lost answer: {internal} x 500, {dropped} x dropped");
    let stats = sim.stats().await;
    assert_eq!((&stats["create_calls"], &stats["sessions_created"]), (&json!(12), &json!(12)));
    assert_eq!(stats["by_name"], json!({ "lost": 12 }));
    assert_eq!(sim.sessions_get(json!({ "name": "lost" })).await.json["elements"], 12, "the sessions exist");
}

#[tokio::test]
async fn a_bad_key_is_unauthorized_even_when_every_call_would_fault() {
    let sim = TestSim::start().await;
    only(&sim, "error_rate").await;
    sim.command_raw("session-create", Some("bad"), r#"{"name":"n"}"#)
        .await
        .expect("answer")
        .assert_error("Unauthorized");
    assert_eq!(sim.stats().await["create_calls"], 0);
}

#[tokio::test]
async fn faults_apply_to_session_create_only() {
    let sim = TestSim::start().await;
    let id = sim.create_named("n").await;
    only(&sim, "error_rate").await;
    assert_eq!(sim.sessions_get(json!({})).await.status, 200);
    assert_eq!(sim.command("set-name", json!({ "WhatsappID": id, "name": "m" })).await.status, 200);
}

#[tokio::test]
async fn fault_settings_start_from_the_flags_and_change_at_run_time() {
    let sim = TestSim::start_with(SimConfig { error_rate: 0.25, latency_ms: 0, ..test_config() }).await;
    let initial = sim.get("/sim/faults").await;
    assert_eq!(
        initial.json,
        json!({ "error_rate": 0.25, "throttle_rate": 0.0, "timeout_rate": 0.0, "ambiguous_rate": 0.0, "latency_ms": 0 })
    );
    let changed = sim.set_faults(json!({ "throttle_rate": 0.5 })).await;
    assert_eq!(changed.json["error_rate"], 0.25, "unspecified settings keep their value");
    assert_eq!(changed.json["throttle_rate"], 0.5);
    assert_eq!(sim.get("/sim/faults").await.json, changed.json);

    for bad in [
        json!({ "error_rate": 1.5 }),
        json!({ "timeout_rate": -0.1 }),
        json!({ "ambiguous_rate": 0.5 }),
        json!({ "eror_rate": 0.1 }),
    ] {
        let refused = sim.set_faults(bad.clone()).await;
        assert_eq!(refused.status, 400, "{bad} -> {}", refused.text);
    }
    assert_eq!(sim.get("/sim/faults").await.json, changed.json, "refused settings change nothing");

    sim.set_faults(json!({ "error_rate": 0.0, "throttle_rate": 0.0 })).await;
    assert_eq!(sim.create(json!({ "name": "n" })).await.status, 200);
}

#[tokio::test]
async fn latency_delays_every_command_and_can_be_changed_at_run_time() {
    let sim = TestSim::start_with(SimConfig { latency_ms: 150, ..test_config() }).await;
    let started = Instant::now();
    sim.sessions_get(json!({})).await;
    assert!(started.elapsed() >= Duration::from_millis(150), "{:?}", started.elapsed());
    sim.set_faults(json!({ "latency_ms": 300 })).await;
    let started = Instant::now();
    sim.command_raw("session-create", Some("bad"), "{}").await.expect("answer").assert_error("Unauthorized");
    assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
}

#[tokio::test]
async fn invalid_fault_flags_stop_the_simulator_at_start() {
    let config = SimConfig { error_rate: 0.7, throttle_rate: 0.7, ..test_config() };
    assert!(wgate_upstream_sim::Application::build(config).await.is_err());
}

/// What one session-create call came to, as a client sees it.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Created(String),
    Internal,
    Throttled,
    Dropped,
}

async fn outcomes(seed: u64, calls: usize) -> Vec<Outcome> {
    let sim = TestSim::start_with(SimConfig {
        seed: Some(seed),
        error_rate: 0.2,
        throttle_rate: 0.2,
        ambiguous_rate: 0.3,
        ..test_config()
    })
    .await;
    let mut seen = Vec::new();
    for _ in 0..calls {
        let outcome = match sim.command_raw("session-create", Some(KEY), r#"{"name":"n"}"#).await {
            Ok(answer) if answer.status == 200 => Outcome::Created(answer.unique_id()),
            Ok(answer) if answer.status == 429 => Outcome::Throttled,
            Ok(answer) => {
                answer.assert_error("InternalError");
                Outcome::Internal
            }
            Err(_) => Outcome::Dropped,
        };
        seen.push(outcome);
    }
    seen
}

#[tokio::test]
async fn the_same_seed_gives_the_same_fault_outcomes_and_ids() {
    let first = outcomes(42, 40).await;
    let second = outcomes(42, 40).await;
    assert_eq!(first, second);
    for kind in [Outcome::Internal, Outcome::Throttled, Outcome::Dropped] {
        assert!(first.contains(&kind), "{kind:?} occurs in {first:?}");
    }
    assert!(first.iter().any(|o| matches!(o, Outcome::Created(_))));
    let other = outcomes(43, 40).await;
    assert_ne!(first, other, "another seed, another sequence");
}
