//! Webhook relay.

#[allow(unused_imports)]
use super::*;

pub(crate) async fn hook_token_of(app: &TestApp, id: &str) -> String {
    let mut conn = app.redis.connection().await;
    redis::cmd("HGET").arg(app.keys.job(id.parse().unwrap())).arg("hook_token").query_async(&mut conn).await.unwrap()
}

#[tokio::test]
async fn a_webhook_is_stored_and_queued_before_whatsgate_is_acknowledged_and_a_repeat_is_not_stored_again() {
    let app = TestApp::spawn().await;
    let r = app.create_async("acme", &json!({"name": "Shop", "callback": "https://acme.example/hook"})).await;
    let id = header(r.headers(), "x-job-id").unwrap().to_owned();
    let token = hook_token_of(&app, &id).await;
    assert!(token.len() >= 22, "at least 128 bits");
    let body = r#"{"id":77,"whatsapp_id":"6345454545454","event_action":"ready","event_date":"2022-10-11 19:30:14","status_code":200,"event_data":{}}"#;
    let post = || {
        reqwest::Client::new()
            .post(format!("{}/hooks/{token}", app.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let mut conn = app.redis.connection().await;
    let queue = app.keys.queue_stream(wgate_queue::Queue::Webhook);
    for _ in 0..2 {
        let r = post().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(r.headers(), "x-job-id"), Some(id.as_str()));
        assert_eq!(json_of(r).await, json!({"result": "OK", "id": 77}));
        let queued: u64 = redis::cmd("XLEN").arg(&queue).query_async(&mut conn).await.unwrap();
        assert_eq!(queued, 1, "stored and queued once, before the answer");
    }
    let entries: Vec<(String, Vec<(String, String)>)> =
        redis::cmd("XRANGE").arg(&queue).arg("-").arg("+").query_async(&mut conn).await.unwrap();
    let delivery = entries[0].1[0].1.parse().unwrap();
    let stored = app.store.delivery(delivery).await.unwrap().expect("the delivery record");
    assert_eq!(stored.body, body, "the body is kept unchanged");
    assert_eq!((stored.status.as_str(), stored.event.as_str(), stored.event_id.as_str()), ("queued", "ready", "77"));
    assert_eq!(stored.event_at, Some(1_665_516_614));

    for bad in ["[1]", "{}", r#"{"id":{"x":1}}"#, "not json"] {
        let r = reqwest::Client::new()
            .post(format!("{}/hooks/{token}", app.base))
            .header("content-type", "application/json")
            .body(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
}

#[tokio::test]
async fn an_unknown_hook_is_404_and_an_event_without_an_endpoint_is_acknowledged_and_kept_undelivered() {
    let app = TestApp::spawn().await;
    let unknown = app.hook("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &json!({"id": 1})).await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(app.hook("short", &json!({"id": 1})).await.status(), 404);
    let r = app.create_async("acme", &json!({"name": "No callback"})).await;
    let id = header(r.headers(), "x-job-id").unwrap().to_owned();
    let token = hook_token_of(&app, &id).await;
    let r = app.hook(&token, &json!({"id": "e-1"})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r).await, json!({"result": "OK", "id": "e-1"}));
    let mut conn = app.redis.connection().await;
    let queued: u64 = redis::cmd("XLEN")
        .arg(app.keys.queue_stream(wgate_queue::Queue::Webhook))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(queued, 0, "no endpoint: kept for events-get, not queued");
}
