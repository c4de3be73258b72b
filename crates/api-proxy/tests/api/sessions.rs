//! The session commands (sessions-get, session-delete, set-hook, set-name) and session quotas, against a real
//! redis-server and the WhatsGate simulator. A session is owned the way the worker owns it: the job is accepted
//! through the API, the session is created on the simulator with the job's relay callback, and the job is finished
//! through the queue's worker API with that session.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use actix_web::{HttpResponse, web};
use reqwest::Response;
use serde_json::{Value, json};
use wgate_api_proxy::ApiSettings;
use wgate_queue::Outcome;
use wgate_types::{JobId, JobRecord};

use crate::helpers::*;

pub(crate) const SIM_KEY: &str = "api-test-upstream-key";
/// `ApiSettings::for_tests`'s public URL: the base of relay and QR links.
pub(crate) const PUBLIC: &str = "http://127.0.0.1:8080";

/// A `TestApp` whose upstream is the simulator.
pub(crate) struct Rig {
    pub(crate) app: TestApp,
    pub(crate) sim: String,
    http: reqwest::Client,
    sim_task: tokio::task::JoinHandle<()>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.sim_task.abort();
    }
}

/// A session owned through the gateway, as the tests need to know it.
pub(crate) struct Owned {
    pub(crate) unique_id: String,
    pub(crate) job: JobRecord,
}

impl Rig {
    pub(crate) async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub(crate) async fn start_with(configure: impl FnOnce(&mut ApiSettings)) -> Self {
        let sim = wgate_upstream_sim::Application::build(wgate_upstream_sim::SimConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            api_keys: vec![SIM_KEY.into()],
            seed: Some(11),
            workers: Some(1),
            ..Default::default()
        })
        .await
        .expect("the simulator starts");
        let sim_url = sim.base_url();
        let sim_task = tokio::spawn(async move {
            let _ = sim.run_until_stopped().await;
        });
        let upstream = sim_url.clone();
        let app = TestApp::spawn_with(move |s| {
            s.upstream.url = upstream;
            s.upstream.api_key = Some(SIM_KEY.to_owned().into());
            s.upstream.timeout_ms = 2_000;
            configure(s);
        })
        .await;
        Self { app, sim: sim_url, http: wgate_testkit::http_client(), sim_task }
    }

    /// Accepts a create job for `tenant`, creates its session on the simulator as the worker would (the relay URL
    /// as the callback) and finishes the job with it.
    pub(crate) async fn own(&self, tenant: &str, name: &str, callback: Option<&str>) -> Owned {
        let mut body = json!({"name": name});
        if let Some(c) = callback {
            body["callback"] = json!(c);
        }
        let r = self.app.create_async(tenant, &body).await;
        assert_eq!(r.status(), 202, "create accepted");
        self.complete(r).await
    }

    /// Plays the worker for the job a 202 answer accepted: its session is created on the simulator.
    pub(crate) async fn complete(&self, accepted: Response) -> Owned {
        let id: JobId = json_of(accepted).await["data"]["id"].as_str().unwrap().parse().unwrap();
        let job = self.app.store.find(id).await.unwrap().expect("the job record");
        let name = job.request.name().as_str();
        let data = self
            .upstream(
                "session-create",
                &json!({"name": name, "callback": format!("{PUBLIC}/hooks/{}", job.hook_token)}),
            )
            .await["data"]
            .clone();
        let unique_id = data["unique_id"].as_str().unwrap().to_owned();
        let uid = unique_id.clone();
        let worked = self.app.work_one(move |_| Outcome::Succeeded { response: data, unique_id: uid }).await;
        assert_eq!(worked, id);
        Owned { unique_id, job }
    }

    /// A WhatsGate command straight to the simulator, with the right key.
    pub(crate) async fn upstream(&self, command: &str, body: &Value) -> Value {
        let r = self
            .http
            .post(format!("{}/api/v1/{command}", self.sim))
            .header("X-Api-Key", SIM_KEY)
            .json(body)
            .send()
            .await
            .unwrap();
        json_of(r).await
    }

    /// The session as the simulator holds it (`None` once deleted).
    pub(crate) async fn upstream_session(&self, unique_id: &str) -> Option<Value> {
        let page = self.upstream("sessions-get", &json!({"WhatsappID": unique_id})).await;
        page["data"].as_array().and_then(|d| d.first()).cloned()
    }

    pub(crate) async fn command(&self, tenant: &str, command: &str, body: &Value) -> Response {
        command_as(&self.app, &self.app.token(tenant), command, body).await
    }
}

async fn command_as(app: &TestApp, token: &str, command: &str, body: &Value) -> Response {
    app.client.post(format!("{}/api/v1/{command}", app.base)).bearer_auth(token).json(body).send().await.unwrap()
}

pub(crate) fn ids_of(page: &Value) -> Vec<String> {
    page["data"].as_array().unwrap().iter().map(|s| s["unique_id"].as_str().unwrap().to_owned()).collect()
}

// ---------------------------------------------------------------- sessions-get

#[tokio::test]
async fn a_tenant_lists_only_its_own_sessions_with_its_callback_and_the_gateways_qr_link() {
    let rig = Rig::start().await;
    let acme = rig.own("acme", "Shop", Some("https://acme.example/hook")).await;
    let globex = rig.own("globex", "Shop", Some("https://globex.example/hook")).await;
    let acme_other = rig.own("acme", "Other", None).await;

    let r = rig.command("acme", "sessions-get", &json!({})).await;
    assert_eq!(r.status(), 200);
    let page = json_of(r).await;
    assert_eq!(
        (page["result"].as_str(), page["elements"].as_u64(), page["pages"].as_u64()),
        (Some("OK"), Some(2), Some(1))
    );
    assert_eq!(page["page"], 1);
    assert_eq!(ids_of(&page), vec![acme.unique_id.clone(), acme_other.unique_id.clone()]);
    let shop = &page["data"][0];
    assert_eq!(shop["name"], "Shop");
    assert_eq!(shop["callback"], "https://acme.example/hook");
    assert_eq!(page["data"][1]["callback"], Value::Null);
    assert!(!acme.job.qr_token.is_empty(), "the create job carries a QR window token");
    assert_eq!(shop["qr_link"], format!("{PUBLIC}/qr/{}", acme.job.qr_token));
    assert_eq!(shop["upstream_qr_link"], format!("{}/qr/{}", rig.sim, acme.unique_id));
    assert!(!page.to_string().contains("/hooks/"), "the relay URL never reaches the tenant: {page}");

    // Same-named sessions: each tenant's name filter finds its own only.
    for (tenant, own) in [("acme", &acme), ("globex", &globex)] {
        let page = json_of(rig.command(tenant, "sessions-get", &json!({"name": "Shop"})).await).await;
        assert_eq!(ids_of(&page), vec![own.unique_id.clone()], "{tenant}");
    }
    // Another tenant's id as a filter matches nothing, as an unknown id does upstream.
    for id in [globex.unique_id.as_str(), "9999999999999"] {
        let page = json_of(rig.command("acme", "sessions-get", &json!({"WhatsappID": id})).await).await;
        assert_eq!((page["elements"].as_u64(), page["pages"].as_u64()), (Some(0), Some(0)), "{id}");
        assert_eq!(page["data"], json!([]));
    }
    let page = json_of(rig.command("acme", "sessions-get", &json!({"WhatsappID": acme.unique_id})).await).await;
    assert_eq!(ids_of(&page), vec![acme.unique_id.clone()]);
    let page = json_of(rig.command("acme", "sessions-get", &json!({"status": "READY"})).await).await;
    assert_eq!(page["elements"], 0, "no session is READY before a scan");
}

#[tokio::test]
async fn sessions_get_pages_over_the_callers_own_sessions_sorted_by_upstream_id() {
    let rig = Rig::start().await;
    let mut mine = Vec::new();
    for i in 0..3 {
        mine.push(rig.own("acme", &format!("A{i}"), None).await.unique_id);
        rig.own("globex", &format!("G{i}"), None).await;
    }
    let get = |page: u32| {
        let rig = &rig;
        async move { json_of(rig.command("acme", "sessions-get", &json!({"page_cnt": 2, "page": page})).await).await }
    };
    let first = get(1).await;
    assert_eq!(
        (first["elements"].as_u64(), first["pages"].as_u64(), first["page"].as_u64()),
        (Some(3), Some(2), Some(1))
    );
    assert_eq!(ids_of(&first), mine[..2].to_vec());
    let ids: Vec<u64> = first["data"].as_array().unwrap().iter().map(|s| s["id"].as_u64().unwrap()).collect();
    assert!(ids[0] < ids[1], "sorted by upstream id: {ids:?}");
    assert_eq!(ids_of(&get(2).await), mine[2..].to_vec());
    let past = get(3).await;
    assert_eq!((past["elements"].as_u64(), past["data"].clone()), (Some(3), json!([])));
}

#[tokio::test]
async fn a_tenant_with_many_sessions_is_listed_with_one_upstream_lookup_per_own_session() {
    let rig = Rig::start_with(|s| s.rate_burst = 200).await;
    let many = 22;
    let mut mine = Vec::new();
    for i in 0..many {
        mine.push(rig.own("acme", if i % 2 == 0 { "Even" } else { "Odd" }, None).await.unique_id);
        if i % 5 == 0 {
            rig.own("globex", "Even", None).await;
        }
    }
    let calls_before = upstream_list_calls(&rig.app).await;
    let page = json_of(rig.command("acme", "sessions-get", &json!({"page_cnt": 10, "page": 3})).await).await;
    assert_eq!((page["elements"].as_u64(), page["pages"].as_u64()), (Some(many as u64), Some(3)), "{page}");
    assert_eq!(ids_of(&page), mine[20..].to_vec());
    assert_eq!(upstream_list_calls(&rig.app).await - calls_before, many as u64, "one lookup per own session");
    let evens = json_of(rig.command("acme", "sessions-get", &json!({"name": "Even", "page_cnt": 100})).await).await;
    let want: Vec<String> = mine.iter().step_by(2).cloned().collect();
    assert_eq!(ids_of(&evens), want, "globex's same-named sessions are not listed");
}

/// `wgate_upstream_requests_total{command="sessions-get",status="200"}` as the API's metrics show it.
pub(crate) async fn upstream_list_calls(app: &TestApp) -> u64 {
    let metrics = app.metrics().await;
    metrics
        .lines()
        .find(|l| l.starts_with(r#"wgate_upstream_requests_total{command="sessions-get",status="200"}"#))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_session_deleted_outside_the_gateway_drops_from_the_list_and_frees_its_quota_slot() {
    let rig = Rig::start_with(|s| s.max_sessions = Some(1)).await;
    let owned = rig.own("acme", "Gone", None).await;
    assert_eq!(rig.app.create_async("acme", &json!({"name": "Second"})).await.status(), 403);
    rig.upstream("session-delete", &json!({"WhatsappID": owned.unique_id})).await;

    let page = json_of(rig.command("acme", "sessions-get", &json!({})).await).await;
    assert_eq!((page["elements"].as_u64(), page["data"].clone()), (Some(0), json!([])));
    assert_eq!(rig.app.store.session_owner(&acme(), &owned.unique_id).await.unwrap(), None, "forgotten");
    let r = rig.command("acme", "set-name", &json!({"WhatsappID": owned.unique_id, "name": "x"})).await;
    assert_eq!(r.status(), 404);
    let second = rig.own("acme", "Second", None).await;
    assert_eq!(rig.upstream_session(&second.unique_id).await.unwrap()["name"], "Second");
}

// ---------------------------------------------------------------- commands

#[tokio::test]
async fn a_foreign_or_unknown_whatsapp_id_is_the_same_404_for_every_command() {
    let rig = Rig::start().await;
    rig.own("acme", "Mine", None).await;
    let theirs = rig.own("globex", "Theirs", Some("https://globex.example/hook")).await;
    for (command, extra) in [
        ("session-delete", json!({})),
        ("set-hook", json!({"callback": "https://acme.example/steal"})),
        ("set-name", json!({"name": "Stolen"})),
    ] {
        let mut bodies = Vec::new();
        for id in [theirs.unique_id.as_str(), "9999999999999", "not-an-id"] {
            let mut body = extra.clone();
            body["WhatsappID"] = json!(id);
            let r = rig.command("acme", command, &body).await;
            assert_eq!(r.status(), 404, "{command} {id}");
            bodies.push(json_of(r).await);
        }
        assert!(
            bodies.windows(2).all(|w| w[0] == w[1]),
            "{command}: the same body for foreign and unknown: {bodies:?}"
        );
        assert_eq!(bodies[0]["code"], 404);
    }
    let upstream = rig.upstream_session(&theirs.unique_id).await.expect("globex's session is untouched");
    assert_eq!(upstream["name"], "Theirs");
    assert_eq!(upstream["callback"], format!("{PUBLIC}/hooks/{}", theirs.job.hook_token));
    let hook = rig.app.store.hook_target(&theirs.job.hook_token).await.unwrap().unwrap();
    assert_eq!(hook.callback.unwrap().as_str(), "https://globex.example/hook");
}

#[tokio::test]
async fn set_name_renames_the_session_upstream_and_answers_it_as_the_tenant_sees_it() {
    let rig = Rig::start().await;
    let owned = rig.own("acme", "Old name", Some("https://acme.example/hook")).await;
    let r = rig.command("acme", "set-name", &json!({"WhatsappID": owned.unique_id, "name": "  New name "})).await;
    assert_eq!(r.status(), 200);
    let body = json_of(r).await;
    assert_eq!(body["result"], "OK");
    assert_eq!(body["data"]["name"], "  New name ", "passed through exactly as sent");
    assert_eq!(body["data"]["callback"], "https://acme.example/hook");
    assert_eq!(body["data"]["qr_link"], format!("{PUBLIC}/qr/{}", owned.job.qr_token));
    assert_eq!(rig.upstream_session(&owned.unique_id).await.unwrap()["name"], "  New name ");
}

#[tokio::test]
async fn set_hook_moves_the_relay_target_while_upstream_keeps_the_relay_url() {
    let rig = Rig::start().await;
    let owned = rig.own("acme", "Hooked", Some("https://acme.example/old")).await;
    let relay = format!("{PUBLIC}/hooks/{}", owned.job.hook_token);

    let r = rig
        .command("acme", "set-hook", &json!({"WhatsappID": owned.unique_id, "callback": "https://acme.example/new"}))
        .await;
    assert_eq!(r.status(), 200);
    let body = json_of(r).await;
    assert_eq!(body["data"]["callback"], "https://acme.example/new");
    assert_eq!(body["data"]["unique_id"], owned.unique_id.as_str());
    assert_eq!(rig.upstream_session(&owned.unique_id).await.unwrap()["callback"], relay, "WhatsGate keeps the relay");
    let hook = rig.app.store.hook_target(&owned.job.hook_token).await.unwrap().unwrap();
    assert_eq!(hook.callback.unwrap().as_str(), "https://acme.example/new");
    let page = json_of(rig.command("acme", "sessions-get", &json!({})).await).await;
    assert_eq!(page["data"][0]["callback"], "https://acme.example/new");

    let r = rig.command("acme", "set-hook", &json!({"WhatsappID": owned.unique_id, "callback": null})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r).await["data"]["callback"], Value::Null);
    assert_eq!(rig.app.store.hook_target(&owned.job.hook_token).await.unwrap().unwrap().callback, None);
    assert_eq!(rig.upstream_session(&owned.unique_id).await.unwrap()["callback"], relay);
}

#[tokio::test]
async fn session_delete_deletes_upstream_forgets_the_session_and_frees_its_quota_slot() {
    let rig = Rig::start_with(|s| s.max_sessions = Some(1)).await;
    let owned = rig.own("acme", "Doomed", Some("https://acme.example/hook")).await;
    let r = rig.app.create_async("acme", &json!({"name": "One too many"})).await;
    assert_eq!(r.status(), 403);

    let r = rig.command("acme", "session-delete", &json!({"WhatsappID": owned.unique_id})).await;
    assert_eq!(r.status(), 200);
    let body = json_of(r).await;
    assert_eq!((body["result"].as_str(), body["data"]["status"].as_str()), (Some("OK"), Some("DESTROYING")));
    assert_eq!(body["data"]["callback"], "https://acme.example/hook");
    assert_eq!(rig.upstream_session(&owned.unique_id).await, None, "deleted upstream");
    assert_eq!(rig.app.store.session_owner(&acme(), &owned.unique_id).await.unwrap(), None);
    let page = json_of(rig.command("acme", "sessions-get", &json!({})).await).await;
    assert_eq!(page["elements"], 0);
    let again = rig.command("acme", "session-delete", &json!({"WhatsappID": owned.unique_id})).await;
    assert_eq!(again.status(), 404);

    rig.own("acme", "Replacement", None).await;
}

#[tokio::test]
async fn concurrent_creates_at_quota_minus_one_admit_exactly_one() {
    let rig = Rig::start_with(|s| {
        s.max_sessions = Some(3);
        s.rate_burst = 100;
    })
    .await;
    let first = rig.own("acme", "S1", None).await;
    rig.own("acme", "S2", None).await;
    rig.own("globex", "Other tenant", None).await;

    let answers = futures::future::join_all((0..12).map(|i| {
        let app = &rig.app;
        async move { app.create_async("acme", &json!({"name": format!("Race {i}")})).await }
    }))
    .await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 403).count(), 11, "{statuses:?}");
    let (admitted, refused): (Vec<Response>, Vec<Response>) = answers.into_iter().partition(|r| r.status() == 202);
    let refused = refused.into_iter().next().unwrap();
    assert!(json_of(refused).await["message"].as_str().unwrap().contains("max_sessions"));
    for r in admitted {
        rig.complete(r).await;
    }

    // A deleted session frees its slot for the next create.
    assert_eq!(rig.app.create_async("acme", &json!({"name": "Blocked"})).await.status(), 403);
    let r = rig.command("acme", "session-delete", &json!({"WhatsappID": first.unique_id})).await;
    assert_eq!(r.status(), 200);
    rig.own("acme", "Admitted", None).await;
}

#[tokio::test]
async fn whole_numbers_written_with_a_zero_fraction_are_accepted_as_json_schema_integers_are() {
    let rig = Rig::start().await;
    let owned = rig.own("acme", "A0", None).await;
    rig.own("acme", "A1", None).await;
    let page = json_of(rig.command("acme", "sessions-get", &json!({"page_cnt": 1.0, "page": 2.0})).await).await;
    assert_eq!((page["elements"].as_u64(), page["page"].as_u64(), page["pages"].as_u64()), (Some(2), Some(2), Some(2)));
    let id: f64 = owned.unique_id.parse().unwrap();
    let one = json_of(rig.command("acme", "sessions-get", &json!({"WhatsappID": id})).await).await;
    assert_eq!(ids_of(&one), vec![owned.unique_id.clone()]);
}

// ---------------------------------------------------------------- validation, scopes, configuration

#[tokio::test]
async fn invalid_session_command_bodies_are_400_with_a_problem_per_field() {
    let rig = Rig::start().await;
    let owned = rig.own("acme", "Valid", None).await;
    let cases = [
        ("sessions-get", json!({"page_cnt": 101, "page": 0}), vec!["page_cnt", "page"]),
        ("sessions-get", json!({"page_cnt": 2.5, "page": -1.0}), vec!["page_cnt", "page"]),
        ("sessions-get", json!({"name": 7, "WhatsappID": false}), vec!["WhatsappID", "name"]),
        ("sessions-get", json!([1]), vec!["body"]),
        ("session-delete", json!({}), vec!["WhatsappID"]),
        ("set-hook", json!({"WhatsappID": owned.unique_id, "callback": "ftp://acme.example"}), vec!["callback"]),
        ("set-hook", json!({"WhatsappID": owned.unique_id}), vec!["callback"]),
        ("set-name", json!({"WhatsappID": owned.unique_id, "name": "  "}), vec!["name"]),
        ("set-name", json!({"name": "a\nb"}), vec!["WhatsappID", "name"]),
    ];
    for (command, body, fields) in cases {
        let r = rig.command("acme", command, &body).await;
        assert_eq!(r.status(), 400, "{command} {body}");
        let err = json_of(r).await;
        let got: Vec<&str> = err["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
        assert_eq!(got, fields, "{command} {body}: {err}");
    }
    let r = rig
        .app
        .post_raw(
            "/api/v1/set-name",
            b"name=x".to_vec(),
            &[("authorization", &format!("Bearer {}", rig.app.token("acme"))), ("content-type", "text/plain")],
        )
        .await;
    assert_eq!(r.status(), 415);
    // An empty body lists everything, as WhatsGate does.
    let r = rig
        .app
        .post_raw(
            "/api/v1/sessions-get",
            Vec::new(),
            &[("authorization", &format!("Bearer {}", rig.app.token("acme")))],
        )
        .await;
    assert_eq!(json_of(r).await["elements"], 1);
    assert_eq!(rig.upstream_session(&owned.unique_id).await.unwrap()["name"], "Valid", "nothing changed");
}

#[tokio::test]
async fn the_session_commands_need_their_scopes() {
    let rig = Rig::start().await;
    let owned = rig.own("acme", "Scoped", None).await;
    let read = rig.app.token_with_scope("acme", "sessions:read");
    let write = rig.app.token_with_scope("acme", "sessions:write");
    assert_eq!(command_as(&rig.app, &write, "sessions-get", &json!({})).await.status(), 403);
    assert_eq!(command_as(&rig.app, &read, "sessions-get", &json!({})).await.status(), 200);
    for (command, body) in [
        ("session-delete", json!({"WhatsappID": owned.unique_id})),
        ("set-hook", json!({"WhatsappID": owned.unique_id, "callback": null})),
        ("set-name", json!({"WhatsappID": owned.unique_id, "name": "n"})),
    ] {
        assert_eq!(command_as(&rig.app, &read, command, &body).await.status(), 403, "{command}");
    }
    assert!(rig.upstream_session(&owned.unique_id).await.is_some());
    assert_eq!(
        command_as(&rig.app, &write, "set-name", &json!({"WhatsappID": owned.unique_id, "name": "n"})).await.status(),
        200
    );
}

#[tokio::test]
async fn without_an_upstream_key_the_session_commands_answer_503_naming_the_variable() {
    let app = TestApp::spawn().await;
    for command in ["sessions-get", "session-delete", "set-hook", "set-name"] {
        let r = command_as(&app, &app.token("acme"), command, &json!({"WhatsappID": "6345454545454"})).await;
        assert_eq!(r.status(), 503, "{command}");
        let body = json_of(r).await;
        assert!(body["message"].as_str().unwrap().contains("WGATE_UPSTREAM_API_KEY"), "{body}");
    }
    // Everything else still works.
    assert_eq!(app.create_async("acme", &json!({"name": "Still fine"})).await.status(), 202);
    app.work_one(|_| succeeded("Still fine")).await;
}

// ---------------------------------------------------------------- upstream trouble

#[tokio::test]
async fn a_gateway_key_upstream_rejects_is_502_and_a_slow_upstream_is_504() {
    let rig = Rig::start_with(|s| s.upstream.api_key = Some("not-the-key".to_owned().into())).await;
    let owned = rig.own("acme", "Keyed", None).await;
    let r = rig.command("acme", "set-name", &json!({"WhatsappID": owned.unique_id, "name": "n"})).await;
    assert_eq!(r.status(), 502);
    let body = json_of(r).await;
    assert_eq!(body["details"][0], json!({"field": "upstream.name", "problem": "Unauthorized"}), "{body}");

    let rig = Rig::start_with(|s| s.upstream.timeout_ms = 300).await;
    let owned = rig.own("acme", "Slow", None).await;
    let r = rig.http.post(format!("{}/sim/faults", rig.sim)).json(&json!({"latency_ms": 2_000})).send().await.unwrap();
    assert!(r.status().is_success());
    let started = std::time::Instant::now();
    let r = rig.command("acme", "sessions-get", &json!({})).await;
    assert_eq!(r.status(), 504);
    assert!(
        started.elapsed() < std::time::Duration::from_millis(1_500),
        "bounded by the budget: {:?}",
        started.elapsed()
    );
    let r = rig.command("acme", "set-name", &json!({"WhatsappID": owned.unique_id, "name": "n"})).await;
    assert_eq!(r.status(), 504);
    assert_eq!(json_of(r).await["details"][0]["problem"], "Timeout");
}

/// A WhatsGate stand-in that answers every command with `status` and `body`, counting calls per command. Used
/// only for answers the simulator never gives to a request the gateway lets through: a 503 on the session commands
/// (its faults apply to session-create alone) and a `ValidationError` for a body the gateway already validated
/// the same way. Everything the simulator can answer is tested against the simulator.
async fn stub_upstream(status: u16, body: Value, calls: Arc<[AtomicUsize; 4]>) -> String {
    const COMMANDS: [&str; 4] = ["sessions-get", "session-delete", "set-hook", "set-name"];
    let addr = serve(move |cfg| {
        let (body, calls) = (body.clone(), calls.clone());
        cfg.route(
            "/api/v1/{command}",
            web::post().to(move |command: web::Path<String>| {
                let (body, calls) = (body.clone(), calls.clone());
                async move {
                    if let Some(i) = COMMANDS.iter().position(|c| *c == command.as_str()) {
                        calls[i].fetch_add(1, Ordering::SeqCst);
                    }
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).json(body)
                }
            }),
        );
    });
    format!("http://{addr}")
}

pub(crate) async fn app_over_stub(status: u16, body: Value) -> (TestApp, Arc<[AtomicUsize; 4]>) {
    let calls = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0)]);
    let url = stub_upstream(status, body, calls.clone()).await;
    let app = TestApp::spawn_with(|s| {
        s.upstream.url = url;
        s.upstream.api_key = Some("k".to_owned().into());
    })
    .await;
    assert_eq!(app.create_async("acme", &json!({"name": "Stubbed"})).await.status(), 202);
    app.work_one(|_| succeeded("Stubbed")).await;
    (app, calls)
}

#[tokio::test]
async fn a_request_upstream_rejects_is_422_with_upstreams_name_and_message_and_is_not_retried() {
    let (app, calls) =
        app_over_stub(500, json!({"name": "ValidationError", "message": "name is too odd", "code": 0})).await;
    let r =
        command_as(&app, &app.token("acme"), "set-name", &json!({"WhatsappID": "6345454545454", "name": "n"})).await;
    assert_eq!(r.status(), 422);
    let body = json_of(r).await;
    assert_eq!(
        body["details"],
        json!([{"field": "upstream.name", "problem": "ValidationError"}, {"field": "upstream.message", "problem": "name is too odd"}])
    );
    assert_eq!(calls[3].load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_unavailable_upstream_is_retried_twice_where_safe_then_502_and_a_delete_that_may_have_landed_is_not_repeated()
 {
    let (app, calls) = app_over_stub(503, json!({})).await;
    let token = app.token("acme");
    let r = command_as(&app, &token, "sessions-get", &json!({})).await;
    assert_eq!(r.status(), 502);
    assert_eq!(json_of(r).await["details"][0]["problem"], "Http503");
    assert_eq!(calls[0].load(Ordering::SeqCst), 3, "one call and two retries");
    let r = command_as(&app, &token, "session-delete", &json!({"WhatsappID": "6345454545454"})).await;
    assert_eq!(r.status(), 502);
    assert_eq!(calls[1].load(Ordering::SeqCst), 1, "a 503 may have been processed: no second delete");
    assert!(app.store.session_owner(&acme(), "6345454545454").await.unwrap().is_some(), "still owned");

    let metrics = app.metrics().await;
    assert!(metrics.contains(r#"wgate_upstream_requests_total{command="sessions-get",status="503"} 3"#), "{metrics}");
    assert!(
        metrics.contains(r#"wgate_upstream_request_duration_seconds_count{command="session-delete"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_unreachable_upstream_is_502_and_changes_nothing() {
    // A port that refuses connections for the whole test (bound, never listening), so nothing else can answer.
    let closed = wgate_testkit::ClosedPort::new();
    let app = TestApp::spawn_with(|s| {
        s.upstream.url = closed.http_url();
        s.upstream.api_key = Some("k".to_owned().into());
    })
    .await;
    assert_eq!(app.create_async("acme", &json!({"name": "Nowhere"})).await.status(), 202);
    app.work_one(|_| succeeded("Nowhere")).await;
    let r =
        command_as(&app, &app.token("acme"), "set-name", &json!({"WhatsappID": "6345454545454", "name": "n"})).await;
    assert_eq!(r.status(), 502);
    assert_eq!(json_of(r).await["details"][0]["problem"], "ConnectError");
    assert!(
        app.store.session_owner(&acme(), "6345454545454").await.unwrap().is_some(),
        "a transport error forgets nothing"
    );
}

#[tokio::test]
async fn a_command_on_an_owned_session_upstream_no_longer_has_is_404_and_the_session_is_forgotten() {
    let rig = Rig::start().await;
    let owned = rig.own("acme", "Deleted elsewhere", None).await;
    // Deleted on WhatsGate directly (its own dashboard, say): the simulator now answers NotFound for it.
    let gone = rig.upstream("session-delete", &json!({"WhatsappID": owned.unique_id})).await;
    assert_eq!(gone["data"]["status"], "DESTROYING", "{gone}");
    let r = rig.command("acme", "set-name", &json!({"WhatsappID": owned.unique_id, "name": "n"})).await;
    assert_eq!(r.status(), 404);
    assert_eq!(rig.app.store.session_owner(&acme(), &owned.unique_id).await.unwrap(), None, "gone upstream: forgotten");
    let again = rig.command("acme", "set-hook", &json!({"WhatsappID": owned.unique_id, "callback": null})).await;
    assert_eq!(again.status(), 404, "and stays unknown");
}
