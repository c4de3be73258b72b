//! The session commands end to end: sessions made by the real worker on the simulator, then listed, renamed,
//! re-hooked and deleted through the real API, each tenant inside its own; the session quota under concurrent
//! creates; sessions the worker adopted after a lost answer.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use reqwest::Response;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use wgate_types::{JobId, JobStatus};

use super::helpers::{SIM_KEY, Stack, StackOptions, json_of};

pub(super) async fn command(stack: &Stack, tenant: &str, command: &str, body: &Value) -> Response {
    stack
        .http
        .post(format!("{}/api/v1/{command}", stack.api))
        .bearer_auth(stack.token(tenant))
        .json(body)
        .send()
        .await
        .expect("the API answered")
}

/// A synchronous create through the API and the worker; answers the session as the tenant sees it.
async fn create(stack: &Stack, tenant: &str, body: &Value) -> Value {
    let r = stack.create(tenant, body, &[]).await;
    assert_eq!(r.status(), 200, "create");
    json_of(r).await["data"].clone()
}

/// The session as the simulator holds it, asked with the gateway's key (`None` once deleted).
async fn upstream_session(stack: &Stack, unique_id: &str) -> Option<Value> {
    let r = stack
        .http
        .post(format!("{}/api/v1/sessions-get", stack.sim))
        .header("X-Api-Key", SIM_KEY)
        .json(&json!({"WhatsappID": unique_id}))
        .send()
        .await
        .expect("simulator");
    json_of(r).await["data"].as_array().and_then(|d| d.first()).cloned()
}

fn ids_of(page: &Value) -> Vec<String> {
    page["data"].as_array().expect("data").iter().map(|s| s["unique_id"].as_str().expect("id").to_owned()).collect()
}

/// A tenant's webhook receiver: acknowledges like a WhatsGate client and hands each body to the test.
async fn receiver() -> (String, mpsc::UnboundedReceiver<Value>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let server = actix_web::HttpServer::new(move || {
        let tx = tx.clone();
        actix_web::App::new().route(
            "/hook",
            web::post().to(move |body: web::Json<Value>| {
                let tx = tx.clone();
                async move {
                    let id = body["id"].clone();
                    let _ = tx.send(body.into_inner());
                    HttpResponse::Ok().json(json!({"result": "OK", "id": id}))
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .expect("bind");
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    (format!("http://{addr}/hook"), rx)
}

#[tokio::test]
async fn two_tenants_with_same_named_sessions_each_list_rename_rehook_and_delete_only_their_own() {
    let stack = Stack::start().await;
    let acme = create(&stack, "acme", &json!({"name": "Shop", "callback": "https://acme.example/old"})).await;
    let globex = create(&stack, "globex", &json!({"name": "Shop", "callback": "https://globex.example/hook"})).await;
    let (acme_id, globex_id) = (acme["unique_id"].as_str().expect("id"), globex["unique_id"].as_str().expect("id"));
    assert_ne!(acme_id, globex_id);

    // Each lists its own only, with its own callback and the gateway's QR window.
    for (tenant, own, callback) in
        [("acme", acme_id, "https://acme.example/old"), ("globex", globex_id, "https://globex.example/hook")]
    {
        let page = json_of(command(&stack, tenant, "sessions-get", &json!({"name": "Shop"})).await).await;
        assert_eq!((page["result"].as_str(), page["elements"].as_u64()), (Some("OK"), Some(1)), "{tenant}: {page}");
        assert_eq!(ids_of(&page), vec![own.to_owned()]);
        assert_eq!(page["data"][0]["callback"], callback);
        let qr = page["data"][0]["qr_link"].as_str().expect("qr_link");
        assert!(qr.starts_with(&format!("{}/qr/", stack.api)), "{qr}");
        assert!(!page.to_string().contains("/hooks/"), "{page}");
    }

    // The other tenant's session is out of reach, exactly as an unknown one.
    let foreign = command(&stack, "acme", "set-name", &json!({"WhatsappID": globex_id, "name": "Mine now"})).await;
    let unknown = command(&stack, "acme", "set-name", &json!({"WhatsappID": "1000000000000", "name": "x"})).await;
    assert_eq!((foreign.status(), unknown.status()), (reqwest::StatusCode::NOT_FOUND, reqwest::StatusCode::NOT_FOUND));
    assert_eq!(json_of(foreign).await, json_of(unknown).await);
    assert_eq!(command(&stack, "acme", "session-delete", &json!({"WhatsappID": globex_id})).await.status(), 404);

    // Rename: upstream's name changes, the other tenant's same-named session does not.
    let r = command(&stack, "acme", "set-name", &json!({"WhatsappID": acme_id, "name": "Shop (main)"})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r).await["data"]["name"], "Shop (main)");
    assert_eq!(upstream_session(&stack, acme_id).await.expect("acme's")["name"], "Shop (main)");
    assert_eq!(upstream_session(&stack, globex_id).await.expect("globex's")["name"], "Shop");

    // Re-hook: webhooks now reach the new callback through the relay WhatsGate still calls.
    let (hook_url, mut received) = receiver().await;
    let r = command(&stack, "acme", "set-hook", &json!({"WhatsappID": acme_id, "callback": hook_url})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r).await["data"]["callback"], hook_url.as_str());
    let relay = upstream_session(&stack, acme_id).await.expect("acme's")["callback"].clone();
    assert!(relay.as_str().is_some_and(|c| c.starts_with(&format!("{}/hooks/", stack.api))), "{relay}");
    let r = stack
        .http
        .post(format!("{}/sim/sessions/{acme_id}/message", stack.sim))
        .json(&json!({"body": "hello", "from": "79990000000"}))
        .send()
        .await
        .expect("simulator");
    assert!(r.status().is_success());
    let event = tokio::time::timeout(Duration::from_secs(10), received.recv()).await.expect("webhook relayed in time");
    let event = event.expect("a webhook");
    assert_eq!(
        (event["event_action"].as_str(), event["event_data"]["body"].as_str()),
        (Some("message"), Some("hello"))
    );

    // Delete: gone upstream and from acme's list; globex keeps its session.
    let r = command(&stack, "acme", "session-delete", &json!({"WhatsappID": acme_id})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r).await["data"]["status"], "DESTROYING");
    assert_eq!(upstream_session(&stack, acme_id).await, None);
    assert_eq!(json_of(command(&stack, "acme", "sessions-get", &json!({})).await).await["elements"], 0);
    let page = json_of(command(&stack, "globex", "sessions-get", &json!({})).await).await;
    assert_eq!(ids_of(&page), vec![globex_id.to_owned()]);
    stack.assert_queue_drained().await;
}

#[tokio::test]
async fn concurrent_creates_at_quota_minus_one_admit_exactly_one_and_a_delete_frees_a_slot() {
    let stack = Stack::start_with(StackOptions { max_sessions: Some(2), ..Default::default() }).await;
    let first = create(&stack, "acme", &json!({"name": "First"})).await;

    let mut racing = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (http, url, token) =
            (stack.http.clone(), format!("{}/api/v1/session-create", stack.api), stack.token("acme"));
        racing.spawn(async move {
            let r = http.post(url).bearer_auth(token).json(&json!({"name": format!("Race {i}")})).send().await;
            r.expect("the API answered").status().as_u16()
        });
    }
    let statuses = racing.join_all().await;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 403).count(), 7, "{statuses:?}");
    assert_eq!(stack.sim_stats().await["sessions_created"], 2, "refused creates reach nobody");
    assert_eq!(stack.create("acme", &json!({"name": "Blocked"}), &[]).await.status(), 403);
    // Another tenant's quota is its own.
    create(&stack, "globex", &json!({"name": "Elsewhere"})).await;

    let r = command(&stack, "acme", "session-delete", &json!({"WhatsappID": first["unique_id"]})).await;
    assert_eq!(r.status(), 200);
    create(&stack, "acme", &json!({"name": "After delete"})).await;
    let page = json_of(command(&stack, "acme", "sessions-get", &json!({})).await).await;
    assert_eq!(page["elements"], 2);
    stack.assert_queue_drained().await;
}

#[tokio::test]
async fn a_session_the_worker_adopted_after_a_lost_answer_is_owned_and_listed_like_any_other() {
    // Every create reaches WhatsGate, which makes the session and loses the answer: the worker's next attempt
    // finds the session by its relay URL and adopts it.
    let stack = Stack::start_with(StackOptions { faults: json!({"ambiguous_rate": 1.0}), ..Default::default() }).await;
    let r = stack.create("acme", &json!({"name": "Adopted"}), &[("Prefer", "respond-async")]).await;
    assert_eq!(r.status(), 202);
    let id: JobId = json_of(r).await["data"]["id"].as_str().expect("id").parse().expect("job id");
    let record = stack.finished(id, Duration::from_secs(20)).await;
    assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
    assert!(record.attempts >= 2, "adopted on a later attempt: {record:?}");
    let unique_id = record.response.as_ref().and_then(|r| r["unique_id"].as_str()).expect("unique_id").to_owned();
    assert_eq!(stack.sim_stats().await["sessions_created"], 1);

    let page = json_of(command(&stack, "acme", "sessions-get", &json!({})).await).await;
    assert_eq!(ids_of(&page), vec![unique_id.clone()]);
    assert_eq!(json_of(command(&stack, "globex", "sessions-get", &json!({})).await).await["elements"], 0);
    let r = command(&stack, "acme", "set-name", &json!({"WhatsappID": unique_id, "name": "Adopted, renamed"})).await;
    assert_eq!(r.status(), 200);
    stack.assert_queue_drained().await;
}
