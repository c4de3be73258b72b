//! Webhooks: the payload, the acknowledgement, and retries after a bad one.

use serde_json::json;
use wgate_upstream_sim::SimConfig;

use crate::helpers::{Receiver, Reply, TestSim, eventually, is_whatsgate_date, test_config};

#[tokio::test]
async fn a_scan_sends_a_ready_webhook_to_the_callback() {
    let sim = TestSim::start().await;
    let mut receiver = Receiver::start(vec![]).await;
    let id = sim.create(json!({ "name": "n", "callback": receiver.url })).await.unique_id();
    sim.scan(&id).await;

    let event = receiver.next().await;
    assert!(event["id"].as_u64().is_some_and(|n| n >= 1), "{event}");
    assert_eq!(event["whatsapp_id"], id.as_str());
    assert_eq!(event["event_action"], "ready");
    assert!(is_whatsgate_date(event["event_date"].as_str().expect("event_date")), "{event}");
    assert_eq!(event["status_code"], 200);
    assert_eq!(event["event_data"]["status"], "READY");
    assert!(event["event_data"]["wid"].as_str().is_some_and(|w| w.ends_with("@c.us")));

    let stats = eventually("the delivery to be counted", || async {
        let stats = sim.stats().await;
        (stats["webhooks_delivered"] == 1).then_some(stats)
    })
    .await;
    assert_eq!(stats["webhook_attempts"], 1);
}

#[tokio::test]
async fn a_simulated_message_is_delivered_as_a_message_webhook_with_increasing_ids() {
    let sim = TestSim::start().await;
    let mut receiver = Receiver::start(vec![]).await;
    let id = sim.create(json!({ "name": "n", "callback": receiver.url })).await.unique_id();
    sim.scan(&id).await;
    let ready = receiver.next().await;

    let sent = sim.post(&format!("/sim/sessions/{id}/message"), json!({ "body": "hi", "from": "79991112233" })).await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    let event = receiver.next().await;
    assert_eq!(event["event_action"], "message");
    assert_eq!(event["whatsapp_id"], id.as_str());
    assert_eq!(event["event_data"]["body"], "hi");
    assert_eq!(event["event_data"]["from"], "79991112233@c.us");
    assert_eq!(event["id"], sent.json["event_id"]);
    assert!(event["id"].as_u64() > ready["id"].as_u64(), "event ids increase");

    let unknown = sim.post("/sim/sessions/1234567890123/message", json!({ "body": "x", "from": "79990000000" })).await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn a_webhook_with_a_bad_acknowledgement_is_retried_until_acknowledged() {
    let sim = TestSim::start().await;
    let mut receiver = Receiver::start(vec![Reply::WrongAck, Reply::ServerError]).await;
    let id = sim.create(json!({ "name": "n", "callback": receiver.url })).await.unique_id();
    sim.scan(&id).await;

    let first = receiver.next().await;
    let second = receiver.next().await;
    let third = receiver.next().await;
    assert_eq!(first, second, "a retry resends the same event");
    assert_eq!(second, third);
    let stats = eventually("three attempts and one delivery", || async {
        let stats = sim.stats().await;
        (stats["webhooks_delivered"] == 1).then_some(stats)
    })
    .await;
    assert_eq!(stats["webhook_attempts"], 3);
    assert_eq!(stats["webhooks_failed"], 0);
}

#[tokio::test]
async fn a_webhook_never_acknowledged_is_given_up_after_three_retries() {
    let sim = TestSim::start().await;
    let mut receiver = Receiver::start(vec![Reply::ServerError; 10]).await;
    let id = sim.create(json!({ "name": "n", "callback": receiver.url })).await.unique_id();
    sim.scan(&id).await;
    for _ in 0..4 {
        receiver.next().await;
    }
    let stats = eventually("the delivery to be given up", || async {
        let stats = sim.stats().await;
        (stats["webhooks_failed"] == 1).then_some(stats)
    })
    .await;
    assert_eq!((&stats["webhook_attempts"], &stats["webhooks_delivered"]), (&json!(4), &json!(0)));
    assert!(receiver.events.try_recv().is_err(), "no fifth attempt");
}

#[tokio::test]
async fn an_unreachable_callback_counts_as_failed_attempts() {
    // A port that was just free: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let sim = TestSim::start_with(SimConfig { webhook_retry_ms: 10, ..test_config() }).await;
    let id = sim.create(json!({ "name": "n", "callback": format!("http://{closed}/hook") })).await.unique_id();
    sim.scan(&id).await;
    let stats = eventually("the delivery to be given up", || async {
        let stats = sim.stats().await;
        (stats["webhooks_failed"] == 1).then_some(stats)
    })
    .await;
    assert_eq!(stats["webhook_attempts"], 4);
}
