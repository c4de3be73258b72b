//! `wgate hooks list|replay`, against deliveries stored as the API stores them.

use serde_json::Value;
use wgate_queue::{JobStore, NewEvent, QueueConfig, Received};
use wgate_types::{JobId, TenantId};

use super::wgate;

#[tokio::test]
async fn hooks_list_prints_a_tenants_deliveries_and_replay_queues_a_finished_one_again() {
    let redis = wgate_testkit::RedisServer::start().await;
    let store = JobStore::new(QueueConfig::new(redis.url(), "cli")).unwrap();
    let tenant = TenantId::parse("acme").unwrap();
    let mut ids = Vec::new();
    for (i, deliver) in [(1, true), (2, false)] {
        let id = JobId::new();
        let event = NewEvent {
            id,
            tenant: &tenant,
            hook_token: "tokentokentokentoken",
            job: JobId::new(),
            event_id: &i.to_string(),
            event: "message",
            session: "6345454545454",
            event_at: None,
            body: &format!(r#"{{"id":{i}}}"#),
            deliver,
        };
        assert_eq!(store.receive_event(&event).await.unwrap(), Received::Stored(id));
        ids.push(id.to_string());
    }
    let base = ["hooks", "--redis-url", &redis.url(), "--namespace", "cli"];
    let run = |rest: &[&str]| wgate(&[&base[..], rest].concat());

    let out = run(&["list", "--tenant", "acme"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!((lines[0]["id"].as_str(), lines[0]["status"].as_str()), (Some(ids[1].as_str()), Some("stored")));
    let out = run(&["list", "--tenant", "acme", "--status", "queued"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    assert!(!run(&["list", "--tenant", "acme", "--status", "lost"]).status.success());

    let out = run(&["replay", &ids[0]]);
    assert!(!out.status.success(), "a queued delivery is not replayed");
    assert!(String::from_utf8_lossy(&out.stderr).contains("is queued"));
    let out = run(&["replay", &ids[1]]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let replayed = store.delivery(ids[1].parse().unwrap()).await.unwrap().unwrap();
    assert_eq!((replayed.status.as_str(), replayed.attempts), ("queued", 0));
    assert!(!run(&["replay", "nope"]).status.success());
}
