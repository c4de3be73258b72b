//! The messaging commands (send, check, get-chats, seen, typing, get-media) against a real redis-server and the
//! WhatsGate simulator: sessions owned as in the session commands' tests, then made READY on the simulator.

use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::Response;
use serde_json::{Value, json};
use wgate_api_proxy::{ApiSettings, Application};

use crate::{
    helpers::*,
    sessions::{Rig, SIM_KEY},
    shared_limits::start_api_with,
};

const COMMANDS: [&str; 6] = ["send", "check", "get-chats", "seen", "typing", "get-media"];
/// The headers WhatsGate's official Python SDK sends (swagger-codegen's `ApiClient`).
const SDK_USER_AGENT: &str = "Swagger-Codegen/1.0.0/python";

/// A rig whose sends are not paced (each test that is about pacing sets its own).
async fn rig() -> Rig {
    Rig::start_with(unpaced).await
}

fn unpaced(s: &mut ApiSettings) {
    s.send_min_interval_ms = 0;
    s.send_jitter_ms = 0;
    s.send_per_minute = 10_000;
}

/// A session of `tenant`, READY on the simulator.
async fn ready_session(rig: &Rig, tenant: &str) -> String {
    let owned = rig.own(tenant, &format!("{tenant} shop"), None).await;
    let r = wgate_testkit::http_client()
        .post(format!("{}/sim/sessions/{}/scan", rig.sim, owned.unique_id))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "the simulator scans the session");
    owned.unique_id
}

/// A valid body of `command` for session `id`.
fn body_of(command: &str, id: &str) -> Value {
    match command {
        "send" => json!({"WhatsappID": id, "async": false, "recipient": {"number": "79990001122"},
            "message": {"type": "text", "body": "Hello"}}),
        "check" => json!({"WhatsappID": id, "number": "79990001122"}),
        "get-chats" => json!({"WhatsappID": id}),
        "seen" | "typing" => json!({"WhatsappID": id, "recipient": {"id": "79990001122@c.us"}}),
        "get-media" => json!({"WhatsappID": id, "media_key": "no-such-key"}),
        other => panic!("no body for {other}"),
    }
}

/// `POST {base}{prefix}/<command>` with the tenant's token in `X-API-Key`, as WhatsGate's SDKs send it.
async fn sdk_call(
    base: &str,
    prefix: &str,
    token: &str,
    command: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> Response {
    let mut req = wgate_testkit::http_client()
        .post(format!("{base}{prefix}/{command}"))
        .header("X-API-Key", token)
        .header("Accept", "application/json")
        .header("Content-Type", "application/json")
        .header("User-Agent", SDK_USER_AGENT)
        .body(serde_json::to_vec(body).unwrap());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

async fn call(rig: &Rig, tenant: &str, command: &str, body: &Value, headers: &[(&str, &str)]) -> Response {
    sdk_call(&rig.app.base, "/api/v1", &rig.app.token(tenant), command, body, headers).await
}

async fn sim_stats(rig: &Rig) -> Value {
    json_of(wgate_testkit::http_client().get(format!("{}/sim/stats", rig.sim)).send().await.unwrap()).await
}

async fn sends_of(rig: &Rig, id: &str) -> u64 {
    sim_stats(rig).await["sends_by_session"][id].as_u64().unwrap_or(0)
}

/// The gateway's count of upstream calls of `command` (any status).
async fn upstream_calls(app: &TestApp, command: &str) -> u64 {
    let text = app.metrics().await;
    text.lines()
        .filter(|l| l.starts_with("wgate_upstream_requests_total{") && l.contains(&format!("command=\"{command}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test]
async fn two_tenants_each_send_only_through_their_own_sessions() {
    let rig = rig().await;
    let (a, b) = (ready_session(&rig, "acme").await, ready_session(&rig, "globex").await);

    let r = call(&rig, "acme", "send", &body_of("send", &a), &[]).await;
    assert_eq!(r.status(), 200);
    let sent = json_of(r).await;
    assert_eq!(sent["result"]["body"], "Hello", "{sent}");
    assert_eq!(sent["result"]["to"], "79990001122@c.us", "{sent}");

    let r = call(&rig, "globex", "send", &body_of("send", &a), &[]).await;
    assert_eq!(r.status(), 404, "globex cannot send through acme's session");
    let r = call(&rig, "globex", "send", &body_of("send", &b), &[]).await;
    assert_eq!(r.status(), 200, "globex sends through its own");

    let stats = sim_stats(&rig).await;
    assert_eq!(stats["sends_by_session"][&a], 1, "{stats}");
    assert_eq!(stats["sends_by_session"][&b], 1, "{stats}");
    assert_eq!(stats["sends"], 2, "{stats}");
}

#[tokio::test]
async fn a_foreign_whatsapp_id_is_404_for_every_command_exactly_as_an_unknown_one() {
    let rig = rig().await;
    let theirs = ready_session(&rig, "acme").await;
    for prefix in ["/api/v1", "/v1"] {
        for command in COMMANDS {
            let token = rig.app.token("intruder");
            let foreign = sdk_call(&rig.app.base, prefix, &token, command, &body_of(command, &theirs), &[]).await;
            assert_eq!(foreign.status(), 404, "{prefix}/{command} with another tenant's session");
            let foreign = json_of(foreign).await;
            let unknown =
                sdk_call(&rig.app.base, prefix, &token, command, &body_of(command, "6000000000001"), &[]).await;
            assert_eq!(unknown.status(), 404, "{prefix}/{command} with an unknown session");
            assert_eq!(foreign, json_of(unknown).await, "{prefix}/{command}: foreign and unknown answer alike");
        }
    }
    assert_eq!(sends_of(&rig, &theirs).await, 0);
    for command in COMMANDS {
        assert_eq!(upstream_calls(&rig.app, command).await, 0, "{command} never reached WhatsGate");
    }
}

#[tokio::test]
async fn every_read_command_answers_as_whatsgate_on_both_base_paths() {
    let rig = rig().await;
    let id = ready_session(&rig, "acme").await;
    let incoming: Value = json_of(
        wgate_testkit::http_client()
            .post(format!("{}/sim/sessions/{id}/incoming", rig.sim))
            .json(&json!({"from": "79990001122", "body": "a photo", "media": {"size": 3_000_000, "mimetype": "image/jpeg"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let media_key = incoming["media_key"].as_str().expect("the incoming file's key").to_owned();
    let token = rig.app.token("acme");
    for prefix in ["/api/v1", "/v1"] {
        let check = sdk_call(&rig.app.base, prefix, &token, "check", &body_of("check", &id), &[]).await;
        assert_eq!(check.status(), 200);
        assert_eq!(json_of(check).await, json!({"result": "OK", "data": true}));
        let chats =
            json_of(sdk_call(&rig.app.base, prefix, &token, "get-chats", &body_of("get-chats", &id), &[]).await).await;
        assert_eq!(chats, rig.upstream("get-chats", &json!({"WhatsappID": id})).await, "chats as WhatsGate has them");
        for command in ["seen", "typing"] {
            let r = sdk_call(&rig.app.base, prefix, &token, command, &body_of(command, &id), &[]).await;
            assert_eq!(r.status(), 200, "{command}");
            assert_eq!(json_of(r).await, json!({"result": "OK"}));
        }
        let body = json!({"WhatsappID": id, "media_key": media_key});
        let r = sdk_call(&rig.app.base, prefix, &token, "get-media", &body, &[]).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(r.headers(), "content-type"), Some("application/json"));
        assert!(r.content_length().is_none(), "the file is streamed through, not collected first");
        let through = r.bytes().await.unwrap();
        let direct = wgate_testkit::http_client()
            .post(format!("{}/api/v1/get-media", rig.sim))
            .header("X-Api-Key", SIM_KEY)
            .json(&body)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(through.len() > 4_000_000, "the whole file came through ({} bytes)", through.len());
        assert!(through == direct, "get-media through the gateway is WhatsGate's answer byte for byte");
    }
    let r = call(&rig, "acme", "get-media", &json!({"WhatsappID": id, "media_key": "missing"}), &[]).await;
    assert_eq!(r.status(), 404, "an unknown media key is 404");
    let r = call(&rig, "acme", "check", &body_of("check", &id), &[]).await;
    assert_eq!(r.status(), 200, "the session is still owned after WhatsGate's not-found about a media key");
}

#[tokio::test]
async fn scopes_split_sending_from_reading() {
    let rig = rig().await;
    let id = ready_session(&rig, "acme").await;
    let reader = rig.app.token_with_scope("acme", "messages:read");
    let sender = rig.app.token_with_scope("acme", "messages:send");
    let sessions_only = rig.app.token_with_scope("acme", "sessions:write sessions:read");
    for command in COMMANDS {
        let reads = matches!(command, "check" | "get-chats" | "get-media");
        let (allowed, refused) = if reads { (&reader, &sender) } else { (&sender, &reader) };
        let r = sdk_call(&rig.app.base, "/v1", refused, command, &body_of(command, &id), &[]).await;
        assert_eq!(r.status(), 403, "{command} needs its scope");
        let r = sdk_call(&rig.app.base, "/v1", &sessions_only, command, &body_of(command, &id), &[]).await;
        assert_eq!(r.status(), 403, "{command} is not a session command");
        let r = sdk_call(&rig.app.base, "/v1", allowed, command, &body_of(command, &id), &[]).await;
        assert_ne!(r.status(), 403, "{command} with its scope");
    }
}

#[tokio::test]
async fn bad_bodies_are_400_naming_each_field_before_anything_is_sent() {
    let rig = rig().await;
    let id = ready_session(&rig, "acme").await;
    let body = json!({"WhatsappID": id, "async": "no", "recipient": {"number": "12ab"}, "message": {"type": "gif"}});
    let r = call(&rig, "acme", "send", &body, &[]).await;
    assert_eq!(r.status(), 400);
    let e = json_of(r).await;
    let fields: Vec<&str> = e["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["async", "recipient.number", "message.type"], "{e}");
    assert_eq!(upstream_calls(&rig.app, "send").await, 0);
}

#[tokio::test]
async fn the_same_idempotency_key_sends_once_and_another_body_with_it_is_422() {
    let rig = rig().await;
    let id = ready_session(&rig, "acme").await;
    let key = [("Idempotency-Key", "order-4711")];
    let first = call(&rig, "acme", "send", &body_of("send", &id), &key).await;
    assert_eq!(first.status(), 200);
    assert!(header(first.headers(), "idempotent-replayed").is_none());
    let first = json_of(first).await;
    // The same message, spelled otherwise: the same send.
    let same = json!({"message": {"body": "Hello", "type": "text"}, "recipient": {"type": "contact", "number": "+79990001122"},
        "async": false, "WhatsappID": id});
    let again = call(&rig, "acme", "send", &same, &key).await;
    assert_eq!(again.status(), 200);
    assert_eq!(header(again.headers(), "idempotent-replayed"), Some("true"));
    assert_eq!(json_of(again).await, first, "the first answer, again");
    assert_eq!(sends_of(&rig, &id).await, 1, "one message reached WhatsGate");

    let mut other = body_of("send", &id);
    other["message"]["body"] = json!("Another text");
    let r = call(&rig, "acme", "send", &other, &key).await;
    assert_eq!(r.status(), 422, "the key belongs to another body");
    let r = call(&rig, "globex", "send", &body_of("send", &id), &key).await;
    assert_eq!(r.status(), 404, "another tenant's key space is its own, and the session is not its");
    assert_eq!(sends_of(&rig, &id).await, 1);
}

#[tokio::test]
async fn a_send_in_flight_makes_its_idempotency_key_409_and_is_not_sent_twice() {
    let rig = rig().await;
    let id = ready_session(&rig, "acme").await;
    let http = wgate_testkit::http_client();
    http.post(format!("{}/sim/faults", rig.sim)).json(&json!({"latency_ms": 700})).send().await.unwrap();
    let key = [("Idempotency-Key", "slow-one")];
    let body = body_of("send", &id);
    let first = call(&rig, "acme", "send", &body, &key);
    let second = async {
        // The first claims the key at once; the second comes while WhatsGate is still answering it.
        tokio::time::sleep(Duration::from_millis(250)).await;
        call(&rig, "acme", "send", &body, &key).await
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first.status(), 200);
    assert_eq!(second.status(), 409, "{}", second.text().await.unwrap());
    assert_eq!(sends_of(&rig, &id).await, 1);
}

#[tokio::test]
async fn a_claim_older_than_any_send_is_409_saying_its_outcome_was_lost_and_never_sends_again() {
    let rig = rig().await;
    let id = ready_session(&rig, "acme").await;
    let http = wgate_testkit::http_client();
    http.post(format!("{}/sim/faults", rig.sim)).json(&json!({"latency_ms": 700})).send().await.unwrap();
    let key = [("Idempotency-Key", "lost-one")];
    let body = body_of("send", &id);
    let first = call(&rig, "acme", "send", &body, &key);
    let second = async {
        let record = rig.app.keys.send_idempotency(&wgate_types::TenantId::parse("acme").unwrap(), "lost-one");
        let mut conn = rig.app.redis.connection().await;
        let deadline = Instant::now() + Duration::from_secs(5);
        // The first send's claim, made an hour ago as far as the gateway can tell: as if its process had died.
        loop {
            let state: Option<String> =
                redis::cmd("HGET").arg(&record).arg("state").query_async(&mut conn).await.unwrap();
            if state.as_deref() == Some("pending") {
                break;
            }
            assert!(Instant::now() < deadline, "the first send never claimed its key");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let t: Vec<String> = redis::cmd("TIME").query_async(&mut conn).await.unwrap();
        let hour_ago = t[0].parse::<u64>().unwrap() * 1000 - 3_600_000;
        let _: () = redis::cmd("HSET").arg(&record).arg("at").arg(hour_ago).query_async(&mut conn).await.unwrap();
        call(&rig, "acme", "send", &body, &key).await
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first.status(), 200);
    assert_eq!(second.status(), 409);
    let said = json_of(second).await["message"].as_str().unwrap_or_default().to_owned();
    assert!(said.contains("outcome was lost") && said.contains("new Idempotency-Key"), "{said}");
    assert_eq!(sends_of(&rig, &id).await, 1, "the lost claim sent nothing");
}

#[tokio::test]
async fn a_send_whose_client_went_away_still_ends_and_its_key_answers_the_outcome() {
    let rig = rig().await;
    let id = ready_session(&rig, "acme").await;
    let http = wgate_testkit::http_client();
    http.post(format!("{}/sim/faults", rig.sim)).json(&json!({"latency_ms": 600})).send().await.unwrap();
    let key = [("Idempotency-Key", "impatient")];
    let gone = reqwest::Client::builder().timeout(Duration::from_millis(200)).build().unwrap();
    let r = gone
        .post(format!("{}/v1/send", rig.app.base))
        .header("X-API-Key", rig.app.token("acme"))
        .json(&body_of("send", &id))
        .header(key[0].0, key[0].1)
        .send()
        .await;
    assert!(r.is_err(), "the client gave up before WhatsGate answered");
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        let r = call(&rig, "acme", "send", &body_of("send", &id), &key).await;
        if r.status() != 409 {
            break r;
        }
        assert!(Instant::now() < deadline, "the abandoned send's key was still in flight after 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(answer.status(), 200);
    assert_eq!(header(answer.headers(), "idempotent-replayed"), Some("true"), "the first send's answer");
    assert_eq!(sends_of(&rig, &id).await, 1);
}

#[tokio::test]
async fn media_over_the_limit_is_413_naming_it_before_upstream_is_called() {
    let rig = Rig::start_with(|s| {
        unpaced(s);
        s.media_max_bytes = 64 * 1024;
    })
    .await;
    let id = ready_session(&rig, "acme").await;
    let file = |bytes: usize| {
        use base64::Engine;
        json!({"WhatsappID": id, "async": false, "recipient": {"number": "79990001122"},
            "message": {"type": "image", "body": "a photo", "media": {"mimetype": "image/png", "filename": "p.png",
            "data": base64::engine::general_purpose::STANDARD.encode(vec![7u8; bytes])}}})
    };
    let r = call(&rig, "acme", "send", &file(100 * 1024), &[]).await;
    assert_eq!(r.status(), 413);
    let e = json_of(r).await;
    assert!(e["message"].as_str().unwrap().contains("65536 bytes"), "{e}");
    assert_eq!(upstream_calls(&rig.app, "send").await, 0, "upstream was not called");
    assert_eq!(sim_stats(&rig).await["sends"], 0);

    let r = call(&rig, "acme", "send", &file(32 * 1024), &[]).await;
    assert_eq!(r.status(), 200, "a file under the limit goes");
    let sent = json_of(r).await;
    assert_eq!((sent["result"]["type"].as_str(), sent["result"]["has_media"].as_bool()), (Some("image"), Some(true)));
}

#[tokio::test]
async fn upstream_failures_map_as_for_the_session_commands() {
    let rig = rig().await;
    // A session that is not READY: WhatsGate rejects the send (422, its words in details).
    let pending = rig.own("acme", "not scanned", None).await.unique_id;
    let r = call(&rig, "acme", "send", &body_of("send", &pending), &[]).await;
    assert_eq!(r.status(), 422);
    let e = json_of(r).await;
    assert_eq!(e["details"][0]["field"], "upstream.name", "{e}");

    let id = ready_session(&rig, "acme").await;
    // WhatsGate unreachable (another API on the same Redis, its upstream a closed port): 502, and a send
    // whose call never left the gateway frees its key for a retry.
    let closed = format!("http://127.0.0.1:{}", wgate_testkit::free_port());
    let cut_off = second_api(&rig, |s| {
        unpaced(s);
        s.upstream.url = closed;
    })
    .await;
    let token = rig.app.token("acme");
    let key = [("Idempotency-Key", "while-down")];
    let r = sdk_call(&cut_off, "/api/v1", &token, "send", &body_of("send", &id), &key).await;
    assert_eq!(r.status(), 502);
    assert!(header(r.headers(), "idempotent-replayed").is_none());
    let e = json_of(r).await;
    assert!(!e.to_string().contains("127.0.0.1"), "the upstream's address is not shown: {e}");
    assert_eq!(e["details"][0]["problem"], "ConnectError", "{e}");
    let r = sdk_call(&cut_off, "/api/v1", &token, "check", &body_of("check", &id), &[]).await;
    assert_eq!(r.status(), 502);
    // Through the API that reaches WhatsGate, the same key sends: the first never left the gateway.
    let r = call(&rig, "acme", "send", &body_of("send", &id), &key).await;
    assert_eq!(r.status(), 200);
    assert!(header(r.headers(), "idempotent-replayed").is_none(), "not a replay of the first");
    assert_eq!(sends_of(&rig, &id).await, 1);
}

#[tokio::test]
async fn a_send_that_timed_out_is_not_sent_again_under_its_key() {
    let rig = Rig::start_with(|s| {
        unpaced(s);
        s.upstream.timeout_ms = 300;
    })
    .await;
    let id = ready_session(&rig, "acme").await;
    let http = wgate_testkit::http_client();
    http.post(format!("{}/sim/faults", rig.sim)).json(&json!({"latency_ms": 600})).send().await.unwrap();
    let key = [("Idempotency-Key", "maybe-sent")];
    let r = call(&rig, "acme", "send", &body_of("send", &id), &key).await;
    assert_eq!(r.status(), 504);
    http.post(format!("{}/sim/faults", rig.sim)).json(&json!({"latency_ms": 0})).send().await.unwrap();
    let r = call(&rig, "acme", "send", &body_of("send", &id), &key).await;
    assert_eq!(r.status(), 504, "the key answers what the first send got: it may have been sent");
    assert_eq!(header(r.headers(), "idempotent-replayed"), Some("true"));
    assert_eq!(upstream_calls(&rig.app, "send").await, 1, "one call upstream, never repeated");
}

/// Another API (the real `Application`, in this process) on the rig's Redis and namespace, set up by `configure`.
async fn second_api(rig: &Rig, configure: impl FnOnce(&mut ApiSettings)) -> String {
    let namespace = rig.app.keys.prefix().trim_start_matches('{').trim_end_matches("}:").to_owned();
    let mut settings = ApiSettings::on_loopback(&rig.app.redis.url(), &namespace, SECRET);
    settings.upstream.url = rig.sim.clone();
    settings.upstream.api_key = Some(SIM_KEY.to_owned().into());
    configure(&mut settings);
    let app = Application::build(settings).await.expect("the second API");
    let base = format!("http://{}", app.address());
    tokio::spawn(app.run_until_stopped());
    base
}

#[tokio::test]
async fn pacing_spreads_a_burst_of_20_sends_over_the_interval_across_two_api_processes() {
    const INTERVAL_MS: u64 = 150;
    let rig = rig().await;
    let namespace = rig.app.keys.prefix().trim_start_matches('{').trim_end_matches("}:").to_owned();
    let env = [
        ("WGATE_UPSTREAM_URL", rig.sim.as_str()),
        ("WGATE_UPSTREAM_API_KEY", SIM_KEY),
        // The tenant's own request rate is not what is measured here.
        ("WGATE_RATE_PER_SECOND", "10000"),
        ("WGATE_RATE_BURST", "10000"),
        ("WGATE_SEND_MIN_INTERVAL_MS", "150"),
        ("WGATE_SEND_JITTER_MS", "50"),
        ("WGATE_SEND_PER_MINUTE", "1000"),
    ];
    let apis = join_all((0..2).map(|_| start_api_with(&rig.app.redis, &namespace, &env))).await;
    let id = ready_session(&rig, "acme").await;
    let token = rig.app.token("acme");
    let started = Instant::now();
    let mut paced = 0usize;
    let sends = (0..20).map(|i| {
        let base = apis[i % 2].base.clone();
        let (token, body) = (token.clone(), body_of("send", &id));
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut refusals = Vec::new();
            loop {
                let r = sdk_call(&base, "/v1", &token, "send", &body, &[]).await;
                if r.status() == 200 {
                    return (Instant::now(), refusals);
                }
                assert_eq!(r.status(), 429, "a send is either sent or paced");
                let h = r.headers();
                let retry: u64 = header(h, "retry-after").expect("Retry-After").parse().unwrap();
                assert!(retry >= 1);
                refusals.push((
                    header(h, "ratelimit").unwrap().to_owned(),
                    header(h, "ratelimit-policy").unwrap().to_owned(),
                ));
                assert!(Instant::now() < deadline, "send {i} was not admitted within 30 s");
                // Sooner than Retry-After, to see the pace itself rather than the clients' waits.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    let mut admitted = Vec::new();
    for (at, refusals) in join_all(sends).await {
        admitted.push(at);
        for (current, policy) in &refusals {
            assert!(policy.contains("\"send\";q=1000;w=60"), "{policy}");
            assert!(current.contains("\"send\";r=0;t="), "{current}");
        }
        paced += refusals.len();
    }
    let last = admitted.iter().max().unwrap().duration_since(started);
    assert!(
        last >= Duration::from_millis(19 * INTERVAL_MS),
        "20 sends took {last:?}: the pace allows one every {INTERVAL_MS} ms at least"
    );
    assert!(paced > 0, "the burst was paced");
    assert_eq!(sends_of(&rig, &id).await, 20, "every send went, once");
}

#[tokio::test]
async fn a_session_sends_at_most_its_tenants_send_per_minute() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tenants.toml");
    std::fs::write(&file, "[tenants.acme]\nsend_per_minute = 3\n").unwrap();
    let rig = Rig::start_with(move |s| {
        unpaced(s);
        s.tenants_file = Some(file);
    })
    .await;
    let id = ready_session(&rig, "acme").await;
    for i in 0..3 {
        let r = call(&rig, "acme", "send", &body_of("send", &id), &[]).await;
        assert_eq!(r.status(), 200, "send {i}");
        assert!(header(r.headers(), "ratelimit-policy").unwrap().contains("\"send\";q=3;w=60"));
    }
    let r = call(&rig, "acme", "send", &body_of("send", &id), &[]).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = header(r.headers(), "retry-after").unwrap().parse().unwrap();
    assert!((50..=60).contains(&retry), "the minute's first send must age out first: {retry}");
    let e = json_of(r).await;
    assert!(e["message"].as_str().unwrap().contains("at most 3 messages a minute"), "{e}");
    assert_eq!(sends_of(&rig, &id).await, 3);
    let metrics = rig.app.metrics().await;
    assert!(metrics.contains("wgate_send_paced_total 1\n"), "the paced send is counted");
    assert!(metrics.contains("wgate_messages_total{command=\"send\",outcome=\"paced\"} 1\n"));
    assert!(metrics.contains("wgate_messages_total{command=\"send\",outcome=\"ok\"} 3\n"));
    assert!(metrics.contains("wgate_upstream_requests_total{command=\"send\",status=\"200\"} 3\n"));
}

#[tokio::test]
async fn the_v1_paths_take_the_official_sdks_wire_form_and_async_passes_through() {
    let rig = rig().await;
    let id = ready_session(&rig, "acme").await;
    let token = rig.app.token("acme");
    // Exactly what swagger_client.DefaultApi.send_message puts on the wire (attribute_map names).
    let body = json!({"WhatsappID": id, "async": true, "recipient": {"number": "79990001122", "type": "contact"},
        "message": {"type": "text", "body": "Hello from the SDK"}});
    let r = sdk_call(&rig.app.base, "/v1", &token, "send", &body, &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r).await, json!({"result": {}}), "queued at WhatsGate: async passed through");
    let mut sync = body.clone();
    sync["async"] = json!(false);
    let r = sdk_call(&rig.app.base, "/v1", &token, "send", &sync, &[]).await;
    let sent = json_of(r).await;
    for field in ["id", "ack", "has_media", "media_key", "body", "type", "timestamp", "from", "to", "is_forwarded"] {
        assert!(sent["result"].get(field).is_some(), "ResponseMessage.{field}: {sent}");
    }
    assert_eq!(sends_of(&rig, &id).await, 2);

    // swagger_client._Api.get_media_post names the key `mediaKey` on the wire.
    let incoming: Value = json_of(
        wgate_testkit::http_client()
            .post(format!("{}/sim/sessions/{id}/incoming", rig.sim))
            .json(&json!({"from": "79990001122", "media": {"size": 1000, "mimetype": "image/jpeg"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let body = json!({"WhatsappID": id, "mediaKey": incoming["media_key"]});
    let r = sdk_call(&rig.app.base, "/v1", &token, "get-media", &body, &[]).await;
    assert_eq!(r.status(), 200);
    let media = json_of(r).await;
    assert_eq!(media["media"]["mimetype"], "image/jpeg", "{media}");
}
