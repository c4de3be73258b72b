//! Webhooks to tenants, end to end: the simulator's events go through the real API (stored, acknowledged), the
//! queue and the real worker (signed, retried) to a tenant endpoint on this machine.

use std::{collections::HashSet, io::Write, time::Duration};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use wgate_testkit::{Behaviour, Received, Receiver};

use super::helpers::{Stack, StackOptions, acme, header, json_of};

/// A session of `tenant` whose callback is `callback`: its `unique_id` and job id.
pub(super) async fn session(stack: &Stack, tenant: &str, callback: &str) -> (String, String) {
    let r = stack.create(tenant, &json!({"name": format!("{tenant} shop"), "callback": callback}), &[]).await;
    assert_eq!(r.status(), 200, "session-create");
    let job = header(&r, "x-job-id").expect("X-Job-Id");
    let body = json_of(r).await;
    (body["data"]["unique_id"].as_str().expect("unique_id").to_owned(), job)
}

/// Makes the simulator send an event for the session; answers WhatsGate's event id.
pub(super) async fn event(stack: &Stack, unique_id: &str, action: &str, data: Value) -> u64 {
    let r = stack
        .http
        .post(format!("{}/sim/sessions/{unique_id}/event", stack.sim))
        .json(&json!({"event_action": action, "event_data": data}))
        .send()
        .await
        .expect("simulator");
    assert!(r.status().is_success(), "sim event: {}", r.text().await.unwrap_or_default());
    json_of(r).await["event_id"].as_u64().expect("event_id")
}

/// The requests that carried WhatsGate event `id`.
fn for_event(got: &[Received], id: u64) -> Vec<&Received> {
    got.iter().filter(|r| r.json()["id"].as_u64() == Some(id)).collect()
}

pub(super) fn delivered_ids(got: &[Received]) -> HashSet<u64> {
    got.iter().filter(|r| r.delivered()).filter_map(|r| r.json()["id"].as_u64()).collect()
}

async fn secrets(stack: &Stack, tenant: &str) -> Vec<String> {
    let r = stack
        .http
        .get(format!("{}/api/v1/webhooks/secret", stack.api))
        .bearer_auth(stack.token_with_scope(tenant, "admin"))
        .send()
        .await
        .expect("secret");
    assert_eq!(r.status(), 200);
    let body = json_of(r).await;
    assert_eq!(body["data"]["secret"], body["data"]["secrets"][0]);
    body["data"]["secrets"].as_array().expect("secrets").iter().map(|s| s.as_str().expect("text").to_owned()).collect()
}

async fn deliveries(stack: &Stack, tenant: &str, query: &str) -> Value {
    let r = stack
        .http
        .get(format!("{}/api/v1/webhooks/deliveries?{query}", stack.api))
        .bearer_auth(stack.token(tenant))
        .send()
        .await
        .expect("deliveries");
    assert_eq!(r.status(), 200, "deliveries?{query}");
    json_of(r).await
}

/// Checks every delivery's signature with each secret: with the official Standard Webhooks library for Python
/// when `WGATE_TEST_WEBHOOK_VERIFIER` names its interpreter (`scripts/check-webhooks` installs it), else by
/// computing the HMAC here, independently of the gateway's signing code.
fn verify_signatures(secrets: &[String], got: &[&Received]) {
    if let Ok(python) = std::env::var("WGATE_TEST_WEBHOOK_VERIFIER") {
        let doc = json!({
            "secrets": secrets,
            "deliveries": got.iter().map(|r| json!({"headers": r.headers, "body": r.body})).collect::<Vec<_>>(),
        });
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/webhooks/verify.py");
        let mut child = std::process::Command::new(python)
            .arg(script)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("the Standard Webhooks verifier starts");
        child.stdin.take().expect("stdin").write_all(doc.to_string().as_bytes()).expect("writing to the verifier");
        let out = child.wait_with_output().expect("the verifier's answer");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "the official Standard Webhooks library refused a signature: {said}");
        assert_eq!(said.trim(), format!("verified {}", secrets.len() * got.len()));
        return;
    }
    for (n, secret) in secrets.iter().enumerate() {
        let key = STANDARD.decode(secret.strip_prefix("whsec_").expect("whsec_ prefix")).expect("base64 key");
        for r in got {
            let (id, ts) = (r.header("webhook-id").expect("id"), r.header("webhook-timestamp").expect("timestamp"));
            let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("key");
            mac.update(format!("{id}.{ts}.{}", r.body).as_bytes());
            let want = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
            let sigs = r.header("webhook-signature").expect("signature");
            assert!(sigs.split(' ').any(|s| s == want), "no signature by secret #{n} in {sigs}");
        }
    }
}

#[tokio::test]
async fn events_reach_the_tenant_unchanged_signed_per_standard_webhooks_once_each() {
    let receiver = Receiver::start(Behaviour::OK).await;
    let stack = Stack::start().await;
    let (uid, job) = session(&stack, "acme", &receiver.url).await;
    let mut ids = Vec::new();
    for (action, data) in [("message", json!({"body": "hi"})), ("ack", json!({"ack": 3})), ("disconnect", json!({}))] {
        ids.push(event(&stack, &uid, action, data).await);
    }
    let got = receiver
        .wait_until("the three events delivered", Duration::from_secs(10), |got| {
            ids.iter().all(|id| delivered_ids(got).contains(id))
        })
        .await;
    let mine: Vec<&Received> = ids.iter().flat_map(|id| for_event(&got, *id)).collect();
    assert_eq!(mine.len(), 3, "one request per event: {mine:?}");
    let webhook_ids: HashSet<&str> = mine.iter().map(|r| r.header("webhook-id").expect("webhook-id")).collect();
    assert_eq!(webhook_ids.len(), 3, "one webhook-id per event");
    for r in &mine {
        assert_eq!(r.header("x-job-id"), Some(job.as_str()));
        assert_eq!(r.header("content-type"), Some("application/json"));
        let ts: i64 = r.header("webhook-timestamp").expect("timestamp").parse().expect("Unix seconds");
        assert!((ts - time::OffsetDateTime::now_utc().unix_timestamp()).abs() < 60);
    }
    verify_signatures(&secrets(&stack, "acme").await, &mine);

    // The body is WhatsGate's, byte for byte: the same as events-get lists it.
    let r = stack
        .http
        .post(format!("{}/v1/events-get", stack.api))
        .header("x-api-key", stack.token("acme"))
        .json(&json!({"WhatsappID": uid, "page_cnt": 100}))
        .send()
        .await
        .expect("events-get");
    assert_eq!(r.status(), 200);
    let page = json_of(r).await;
    for r in &mine {
        let id = r.json()["id"].clone();
        let listed = page["data"].as_array().expect("data").iter().find(|e| e["id"] == id).expect("listed");
        assert_eq!(listed, &r.json());
        // Upstream's own events-get lists the same bytes its webhook carried.
        let sim = stack
            .http
            .post(format!("{}/api/v1/events-get", stack.sim))
            .header("X-Api-Key", super::helpers::SIM_KEY)
            .json(&json!({"WhatsappID": uid, "page_cnt": 100}))
            .send()
            .await
            .expect("sim events-get")
            .text()
            .await
            .expect("text");
        assert!(sim.contains(&r.body), "the body is upstream's, byte for byte: {} not in {sim}", r.body);
    }
    let listed = deliveries(&stack, "acme", &format!("session={uid}&status=delivered")).await;
    assert!(listed["elements"].as_u64().is_some_and(|n| n >= 3), "{listed}");
}

#[tokio::test]
async fn whatsgate_sending_an_event_again_is_acknowledged_and_stored_once() {
    let receiver = Receiver::start(Behaviour::OK).await;
    let stack = Stack::start().await;
    let (uid, _) = session(&stack, "acme", &receiver.url).await;
    let owner = stack.store.session_owner(&acme(), &uid).await.expect("redis").expect("owner");
    let relay = format!("{}/hooks/{}", stack.api, owner.hook_token);
    let body = json!({"id": 987654, "whatsapp_id": uid, "event_action": "message",
        "event_date": "2026-01-02 03:04:05", "status_code": 200, "event_data": {"body": "again"}});
    for _ in 0..3 {
        let r = stack.http.post(&relay).json(&body).send().await.expect("relay");
        assert_eq!(r.status(), 200);
        assert_eq!(json_of(r).await, json!({"result": "OK", "id": 987654}), "WhatsGate's acknowledgement");
    }
    receiver
        .wait_until("the event delivered", Duration::from_secs(10), |got| delivered_ids(got).contains(&987654))
        .await;
    let listed = deliveries(&stack, "acme", "").await;
    let copies = listed["data"].as_array().expect("data").iter().filter(|d| d["event_id"] == "987654").count();
    assert_eq!(copies, 1, "stored once: {listed}");
    // Nothing else is on its way: a second copy would have been delivered by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(for_event(&receiver.got(), 987654).len(), 1, "delivered once");

    let r = stack.http.post(&relay).body("not json").header("content-type", "application/json").send().await;
    assert_eq!(r.expect("relay").status(), 400, "a body that is no event is refused, not stored");
}

#[tokio::test]
async fn an_endpoint_down_for_several_retries_gets_every_event_once_with_one_id_each_when_back() {
    let receiver = Receiver::start(Behaviour::status(503)).await;
    let stack = Stack::start_with(StackOptions {
        webhook_retry_schedule: "100ms,100ms,150ms,200ms,250ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms".into(),
        ..StackOptions::default()
    })
    .await;
    let (uid, _) = session(&stack, "acme", &receiver.url).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(event(&stack, &uid, "message", json!({"body": format!("m{i}")})).await);
    }
    receiver
        .wait_until("three failed attempts of each event", Duration::from_secs(15), |got| {
            ids.iter().all(|id| for_event(got, *id).len() >= 3)
        })
        .await;
    let waiting = deliveries(&stack, "acme", "status=retrying").await;
    assert!(waiting["data"][0]["last_error"].as_str().is_some_and(|e| e.contains("503")), "{waiting}");
    receiver.set(Behaviour::OK);
    let got = receiver
        .wait_until("every event delivered", Duration::from_secs(15), |got| {
            ids.iter().all(|id| delivered_ids(got).contains(id))
        })
        .await;
    for id in &ids {
        let requests = for_event(&got, *id);
        assert_eq!(requests.iter().filter(|r| r.delivered()).count(), 1, "event {id} delivered once");
        let webhook_ids: HashSet<&str> = requests.iter().filter_map(|r| r.header("webhook-id")).collect();
        assert_eq!(webhook_ids.len(), 1, "every attempt of event {id} carries the same webhook-id");
    }
    let metrics = stack.http.get(format!("{}/api/v1/webhooks/deliveries?status=dead", stack.api));
    assert_eq!(json_of(metrics.bearer_auth(stack.token("acme")).send().await.expect("list")).await["elements"], 0);
}

#[tokio::test]
async fn a_hanging_endpoint_does_not_delay_another_tenants_deliveries() {
    let hanging = Receiver::start(Behaviour::Hang).await;
    let fast = Receiver::start(Behaviour::OK).await;
    let stack = Stack::start_with(StackOptions {
        webhook_timeout_ms: 5_000,
        webhook_concurrency: 8,
        webhook_endpoint_concurrency: 2,
        ..StackOptions::default()
    })
    .await;
    let (slow_uid, _) = session(&stack, "slowco", &hanging.url).await;
    let (fast_uid, _) = session(&stack, "fastco", &fast.url).await;
    for i in 0..30 {
        event(&stack, &slow_uid, "message", json!({"body": format!("s{i}")})).await;
    }
    hanging.wait_until("the hanging endpoint busy", Duration::from_secs(5), |got| got.len() >= 2).await;
    let mut worst = Duration::ZERO;
    for i in 0..10 {
        let sent = tokio::time::Instant::now();
        let id = event(&stack, &fast_uid, "message", json!({"body": format!("f{i}")})).await;
        fast.wait_until("the other tenant's event delivered", Duration::from_secs(4), |got| {
            delivered_ids(got).contains(&id)
        })
        .await;
        worst = worst.max(sent.elapsed());
    }
    assert!(worst < Duration::from_millis(2500), "another tenant's delivery took {worst:?} while one endpoint hung");
    assert!(hanging.got().len() <= 4, "the hanging endpoint held at most its bound of slots: {}", hanging.got().len());
}

#[tokio::test]
async fn a_410_stops_deliveries_to_that_url_until_a_callback_is_set_again_and_replay_sends_it_again() {
    let receiver = Receiver::start(Behaviour::status(410)).await;
    let stack = Stack::start().await;
    let (uid, _) = session(&stack, "acme", &receiver.url).await;
    let first = event(&stack, &uid, "message", json!({"body": "1"})).await;
    receiver.wait_until("the first event refused with 410", Duration::from_secs(10), |got| got.len() == 1).await;
    let stack_ref = &stack;
    let dead = |n: u64| async move {
        loop {
            let listed = deliveries(stack_ref, "acme", "status=dead").await;
            if listed["elements"] == n {
                return listed;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    // A delivery already on its way when the 410 came would still go out; the next one, once the 410 is recorded,
    // does not.
    tokio::time::timeout(Duration::from_secs(10), dead(1)).await.expect("the first delivery dead in time");
    let second = event(&stack, &uid, "message", json!({"body": "2"})).await;
    let dead = tokio::time::timeout(Duration::from_secs(10), dead(2)).await.expect("both deliveries dead in time");
    assert_eq!(receiver.got().len(), 1, "nothing more went to a URL that answered 410");
    assert!(dead["data"].as_array().expect("data").iter().all(|d| d["last_status"] == 410), "{dead}");

    receiver.set(Behaviour::OK);
    let r = stack
        .http
        .post(format!("{}/api/v1/set-hook", stack.api))
        .bearer_auth(stack.token("acme"))
        .json(&json!({"WhatsappID": uid, "callback": receiver.url}))
        .send()
        .await
        .expect("set-hook");
    assert_eq!(r.status(), 200);
    for d in dead["data"].as_array().expect("data") {
        let id = d["id"].as_str().expect("id");
        let url = format!("{}/api/v1/webhooks/deliveries/{id}/replay", stack.api);
        let no_admin = stack.http.post(&url).bearer_auth(stack.token("acme")).send().await.expect("replay");
        assert_eq!(no_admin.status(), 403, "replay needs the admin scope");
        let other = stack.http.post(&url).bearer_auth(stack.token_with_scope("globex", "admin")).send().await;
        assert_eq!(other.expect("replay").status(), 404, "another tenant's delivery is unknown");
        let r = stack.http.post(&url).bearer_auth(stack.token_with_scope("acme", "admin")).send().await;
        assert_eq!(r.expect("replay").status(), 202);
    }
    let got = receiver
        .wait_until("both events delivered after the replay", Duration::from_secs(10), |got| {
            [first, second].iter().all(|id| delivered_ids(got).contains(id))
        })
        .await;
    let ids: HashSet<&str> = for_event(&got, first).iter().filter_map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), 1, "a replay keeps the webhook-id");
}

#[tokio::test]
async fn the_worker_refuses_a_loopback_endpoint_unless_its_range_is_allowed() {
    let receiver = Receiver::start(Behaviour::OK).await;
    let stack =
        Stack::start_with(StackOptions { worker_egress_allow_nets: String::new(), ..StackOptions::default() }).await;
    let (uid, _) = session(&stack, "acme", &receiver.url).await;
    event(&stack, &uid, "message", json!({"body": "to loopback"})).await;
    let dead = async {
        loop {
            let listed = deliveries(&stack, "acme", "status=dead").await;
            if listed["elements"].as_u64() >= Some(1) {
                return listed;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let dead = tokio::time::timeout(Duration::from_secs(10), dead).await.expect("the delivery refused in time");
    let error = dead["data"][0]["last_error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("refused") && error.contains("loopback"), "{error}");
    assert!(receiver.got().is_empty(), "nothing reached the loopback endpoint");
}

#[tokio::test]
async fn events_get_pages_only_the_callers_events_and_the_tenants_filter_keeps_others_undelivered() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tenants = dir.path().join("tenants.toml");
    std::fs::write(&tenants, "[tenants.acme]\nwebhook_events = [\"message\"]\n").expect("tenants file");
    let receiver = Receiver::start(Behaviour::OK).await;
    let stack = Stack::start_with(StackOptions { tenants_file: Some(tenants), ..StackOptions::default() }).await;
    let (acme, _) = session(&stack, "acme", &receiver.url).await;
    let (globex, _) = session(&stack, "globex", &receiver.url).await;
    let message = event(&stack, &acme, "message", json!({"body": "m"})).await;
    let ack = event(&stack, &acme, "ack", json!({"ack": 2})).await;
    event(&stack, &globex, "message", json!({"body": "g"})).await;
    receiver
        .wait_until("acme's message delivered", Duration::from_secs(10), |got| delivered_ids(got).contains(&message))
        .await;

    let events_get = |tenant: &'static str, body: Value| {
        let req = stack.http.post(format!("{}/api/v1/events-get", stack.api)).bearer_auth(stack.token(tenant));
        async move { req.json(&body).send().await.expect("events-get") }
    };
    let page = json_of(events_get("acme", json!({"WhatsappID": acme, "page_cnt": 1})).await).await;
    assert_eq!(
        (page["result"].as_str(), page["pages"].as_u64(), page["page"].as_u64()),
        (Some("OK"), Some(2), Some(1))
    );
    assert_eq!(page["data"].as_array().map(Vec::len), Some(1));
    let acks = json_of(events_get("acme", json!({"action": "ack"})).await).await;
    assert_eq!(acks["elements"], 1);
    assert_eq!(acks["data"][0]["id"], ack);
    assert_eq!(events_get("acme", json!({"WhatsappID": globex})).await.status(), 404, "another tenant's session");
    let all = json_of(events_get("acme", json!({})).await).await;
    assert!(all["data"].as_array().expect("data").iter().all(|e| e["whatsapp_id"].to_string().contains(&acme)));
    assert_eq!(events_get("acme", json!({"page_cnt": 101})).await.status(), 400);

    // The ack was stored, not delivered: acme's filter lists only messages.
    let stored = deliveries(&stack, "acme", "status=stored").await;
    assert_eq!(stored["data"][0]["event_id"], ack.to_string(), "{stored}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(for_event(&receiver.got(), ack).is_empty(), "a filtered event is not delivered");
}

#[tokio::test]
async fn a_secret_rotated_in_the_tenants_file_signs_the_next_deliveries_without_a_restart() {
    const OLD: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const NEW: &str = "whsec_c2Vjb25kIHNlY3JldCBmb3Igcm90YXRpb24=";
    let dir = tempfile::tempdir().expect("temp dir");
    let tenants = dir.path().join("tenants.toml");
    std::fs::write(&tenants, format!("[tenants.acme]\nwebhook_secret = \"{OLD}\"\n")).expect("tenants file");
    let receiver = Receiver::start(Behaviour::OK).await;
    let stack =
        Stack::start_with(StackOptions { tenants_file: Some(tenants.clone()), ..StackOptions::default() }).await;
    let (uid, _) = session(&stack, "acme", &receiver.url).await;
    let first = event(&stack, &uid, "message", json!({"body": "before"})).await;
    let got = receiver
        .wait_until("the first event delivered", Duration::from_secs(10), |got| delivered_ids(got).contains(&first))
        .await;
    verify_signatures(&[OLD.to_owned()], &for_event(&got, first));

    // Rotation: the new secret first, the old one kept while receivers switch. The worker follows the file.
    std::fs::write(&tenants, format!("[tenants.acme]\nwebhook_secret = [\"{NEW}\", \"{OLD}\"]\n")).expect("rewrite");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let rotated = loop {
        let id = event(&stack, &uid, "message", json!({"body": "after"})).await;
        let got = receiver
            .wait_until("an event delivered", Duration::from_secs(10), |got| delivered_ids(got).contains(&id))
            .await;
        let delivery = for_event(&got, id).into_iter().find(|r| r.delivered()).cloned().expect("the delivery");
        if delivery.header("webhook-signature").is_some_and(|s| s.split(' ').count() == 2) {
            break delivery;
        }
        assert!(tokio::time::Instant::now() < deadline, "the worker never signed with the rotated secrets");
    };
    verify_signatures(&[NEW.to_owned(), OLD.to_owned()], &[&rotated]);
    assert_eq!(secrets(&stack, "acme").await, [NEW, OLD], "the API reads the same file the same way");
}
