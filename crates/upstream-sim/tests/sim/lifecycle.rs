//! PENDING -> AUTH (rotating qr or code) -> READY, and a failed authorization back to PENDING.

use serde_json::{Value, json};

use wgate_upstream_sim::SimConfig;

use crate::helpers::{TestSim, test_config};

fn qr(session: &Value) -> Option<String> {
    session["qr"].as_str().map(str::to_owned)
}

#[tokio::test]
async fn a_new_session_is_pending_then_in_auth_with_a_qr_that_rotates() {
    let sim = TestSim::start().await;
    let created = sim.create(json!({ "name": "n" })).await;
    assert_eq!(created.data()["status"], "PENDING");
    let id = created.unique_id();

    let auth = sim.wait_for_session(&id, "AUTH", |s| s["status"] == "AUTH").await;
    assert_eq!(auth["status_name"], "Авторизация");
    let first = qr(&auth).expect("a qr in AUTH");
    assert!(first.starts_with("2@"), "{first}");
    assert!(auth.get("code").is_none());

    let rotated = sim.wait_for_session(&id, "a new qr", |s| qr(s).is_some_and(|q| q != first)).await;
    assert_eq!(rotated["status"], "AUTH");
}

#[tokio::test]
async fn a_scan_makes_the_session_ready() {
    let sim = TestSim::start().await;
    let id = sim.create_named("n").await;
    sim.wait_for_session(&id, "AUTH", |s| s["status"] == "AUTH").await;
    let scanned = sim.scan(&id).await;
    assert_eq!(scanned.status, 200, "{}", scanned.text);
    let session = sim.session(&id).await;
    assert_eq!((&session["status"], &session["status_name"]), (&json!("READY"), &json!("Работает")));
    assert!(session["qr"].is_null());
    assert_eq!(session["pushname"], "Sim User");
    let wid = session["wid"].as_str().expect("a wid");
    assert!(wid.ends_with("@c.us") && wid[..wid.len() - 5].bytes().all(|b| b.is_ascii_digit()), "{wid}");
}

#[tokio::test]
async fn a_failed_authorization_goes_back_to_pending_then_shows_a_fresh_qr() {
    let sim = TestSim::start().await;
    let id = sim.create_named("n").await;
    let auth = sim.wait_for_session(&id, "AUTH", |s| s["status"] == "AUTH").await;
    let before = qr(&auth).expect("qr");

    let failed = sim.fail(&id).await;
    assert_eq!(failed.status, 200, "{}", failed.text);
    assert_eq!(failed.data()["status"], "PENDING", "AUTH -> PENDING is how a client sees the failure");
    assert!(failed.data()["qr"].is_null());

    let again = sim.wait_for_session(&id, "AUTH again", |s| s["status"] == "AUTH").await;
    let after = qr(&again).expect("qr");
    assert_ne!(after, before, "a fresh qr after the failure");
}

#[tokio::test]
async fn a_code_session_shows_a_rotating_code_and_becomes_ready_as_its_number() {
    // A slower rotation, so the first code seen in AUTH is surely the first one shown.
    let sim = TestSim::start_with(SimConfig { qr_rotate_ms: 1000, ..test_config() }).await;
    let created = sim.create(json!({ "name": "n", "auth_type": "CODE", "number": "79990001122" })).await;
    let id = created.unique_id();
    let first = created.data()["code"].as_str().expect("code").to_owned();

    let auth = sim.wait_for_session(&id, "AUTH", |s| s["status"] == "AUTH").await;
    assert_eq!(auth["code"], first.as_str(), "the code handed out at creation is the one shown first");
    assert!(auth["qr"].is_null(), "no qr in CODE mode");
    sim.wait_for_session(&id, "a new code", |s| s["code"].as_str().is_some_and(|c| c != first)).await;

    sim.scan(&id).await;
    let ready = sim.session(&id).await;
    assert_eq!(ready["status"], "READY");
    assert_eq!(ready["wid"], "79990001122@c.us");
    assert!(ready["code"].is_null());
}

#[tokio::test]
async fn control_endpoints_refuse_unknown_sessions_and_impossible_transitions() {
    let sim = TestSim::start().await;
    assert_eq!(sim.scan("1234567890123").await.status, 404);
    assert_eq!(sim.fail("nope").await.status, 404);
    let id = sim.create_named("n").await;
    assert_eq!(sim.scan(&id).await.status, 200);
    assert_eq!(sim.scan(&id).await.status, 409, "already READY");
    assert_eq!(sim.fail(&id).await.status, 409, "a READY device cannot fail authorization");
}
