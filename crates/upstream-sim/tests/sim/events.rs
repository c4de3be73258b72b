//! `events-get`: every event is kept, the same objects as the webhooks, filtered and paged; and events a
//! test injects.

use serde_json::{Value, json};

use crate::helpers::{Receiver, TestSim};

async fn events(sim: &TestSim, body: Value) -> Vec<Value> {
    let answer = sim.command("events-get", body).await;
    answer.data().as_array().expect("a list of events").clone()
}

#[tokio::test]
async fn events_get_lists_the_webhook_bodies_newest_first() {
    let sim = TestSim::start().await;
    let mut receiver = Receiver::start(vec![]).await;
    let (id, _) = sim.ready_session(Some(&receiver.url)).await;
    sim.command(
        "send",
        json!({ "WhatsappID": id, "recipient": { "number": "79990001122" }, "message": { "body": "x" } }),
    )
    .await;
    sim.incoming(&id, json!({ "from": "79993334455", "body": "hi" })).await;
    let mut delivered = Vec::new();
    for _ in 0..4 {
        delivered.push(receiver.next().await);
    }
    delivered.sort_by_key(|e| std::cmp::Reverse(e["id"].as_u64()));

    let answer = sim.command("events-get", json!({ "WhatsappID": id })).await;
    assert!(answer.text.starts_with(r#"{"result":"OK","pages":1,"elements":4,"page":1,"data":["#), "{}", answer.text);
    let listed = answer.data().as_array().expect("events").clone();
    assert_eq!(listed, delivered, "the same objects as the webhooks, newest first");
    let actions: Vec<&str> = listed.iter().filter_map(|e| e["event_action"].as_str()).collect();
    assert_eq!(actions, ["message", "ack", "sent", "ready"]);
}

#[tokio::test]
async fn events_get_filters_by_session_action_and_date_and_pages() {
    let sim = TestSim::start().await;
    let (first, _) = sim.ready_session(None).await;
    let (second, _) = sim.ready_session(None).await;
    for n in 0..3 {
        sim.incoming(&first, json!({ "from": "79993334455", "body": format!("m{n}") })).await;
    }

    assert_eq!(events(&sim, json!({})).await.len(), 5, "every session's events without a WhatsappID");
    assert_eq!(
        events(&sim, json!({ "WhatsappID": second })).await.len(),
        1,
        "a session without callback keeps its events too"
    );
    let messages = events(&sim, json!({ "WhatsappID": first, "action": "message" })).await;
    let bodies: Vec<&str> = messages.iter().filter_map(|e| e["event_data"]["body"].as_str()).collect();
    assert_eq!(bodies, ["m2", "m1", "m0"]);

    let page = sim.command("events-get", json!({ "action": "message", "page_cnt": 2, "page": 2 })).await;
    assert_eq!((&page.json["pages"], &page.json["elements"], &page.json["page"]), (&json!(2), &json!(3), &json!(2)));
    assert_eq!(page.json["data"][0]["event_data"]["body"], "m0");
    let default_page = sim.command("events-get", json!({})).await;
    assert_eq!(default_page.json["data"].as_array().map(Vec::len), Some(5));

    let today = events(
        &sim,
        json!({ "date": &events(&sim, json!({})).await[0]["event_date"].as_str().expect("a date")[..10] }),
    )
    .await;
    assert_eq!(today.len(), 5);
    assert!(events(&sim, json!({ "date": "2000-01-01" })).await.is_empty());
    assert_eq!(events(&sim, json!({ "date": "2000-01-01 00:00:00" })).await.len(), 5, "a moment means from then on");

    for bad in [
        json!({ "action": "unknown" }),
        json!({ "date": "yesterday" }),
        json!({ "page_cnt": 101 }),
        json!({ "page_cnt": 0 }),
        json!({ "page": "x" }),
    ] {
        sim.command("events-get", bad).await.assert_error("ValidationError");
    }
    sim.command("events-get", json!({ "WhatsappID": "1234567890123" })).await.assert_error("NotFound");
}

#[tokio::test]
async fn a_deleted_session_s_events_are_still_listed_until_a_reset() {
    let sim = TestSim::start().await;
    let (id, _) = sim.ready_session(None).await;
    sim.command("session-delete", json!({ "WhatsappID": id })).await;
    let listed = events(&sim, json!({ "WhatsappID": id })).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["event_action"], "ready");

    sim.post("/sim/reset", json!({})).await;
    assert!(events(&sim, json!({})).await.is_empty());
    sim.command("events-get", json!({ "WhatsappID": id })).await.assert_error("NotFound");
}

#[tokio::test]
async fn a_test_can_inject_any_documented_event() {
    let sim = TestSim::start().await;
    let mut receiver = Receiver::start(vec![]).await;
    let id = sim.create(json!({ "name": "n", "callback": receiver.url })).await.unique_id();
    let injected = sim
        .post(&format!("/sim/sessions/{id}/event"), json!({ "event_action": "create", "event_data": { "x": 1 } }))
        .await;
    assert_eq!(injected.status, 200, "{}", injected.text);
    let event = receiver.next().await;
    assert_eq!((&event["event_action"], &event["event_data"]), (&json!("create"), &json!({ "x": 1 })));
    assert_eq!(event["id"], injected.json["event_id"]);
    assert_eq!(events(&sim, json!({ "WhatsappID": id, "action": "create" })).await, vec![event]);

    let unknown = sim.post(&format!("/sim/sessions/{id}/event"), json!({ "event_action": "party" })).await;
    assert_eq!(unknown.status, 400);
    let missing = sim.post("/sim/sessions/1234567890123/event", json!({ "event_action": "error" })).await;
    assert_eq!(missing.status, 404);
}
