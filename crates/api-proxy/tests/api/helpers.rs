//! `TestApp`: the real `Application` on port 0 against its own redis-server, with one method per endpoint, token
//! minting, and the worker's role played through Redis where a test needs a job to finish.

use std::{path::PathBuf, time::Duration};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Response, header::HeaderMap};
use serde_json::{Value, json};
use wgate_api_proxy::{ApiSettings, Application};
use wgate_queue::{Delivery, GROUP, JobStore, Keys, Outcome, QueueConfig, Started, Written};
use wgate_testkit::RedisServer;
use wgate_types::{ErrorClass, JobError, JobId, JobKind, JobRecord, TenantId};

pub const SECRET: &str = "test-secret-0123456789";

pub fn keys_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/keys")
}

pub fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Standard claims for `tenant`, valid for an hour; `patch` adds or replaces claims (`null` removes one).
pub fn claims(tenant: &str, patch: Value) -> Value {
    let mut c = json!({"sub": tenant, "exp": now() + 3600, "iat": now(), "aud": "wgate"});
    if let (Some(c), Some(p)) = (c.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            if v.is_null() {
                c.remove(k);
            } else {
                c.insert(k.clone(), v.clone());
            }
        }
    }
    c
}

pub fn hs256(secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes()))
        .expect("signing")
}

/// The test RSA key pair's private key.
pub fn rsa_private_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(&std::fs::read(keys_dir().join("rsa_private.pem")).unwrap()).unwrap()
}

/// Signs with one of the test key pairs in `tests/api/keys` (`rsa`, `ec`, `ed`).
pub fn signed(alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let dir = keys_dir();
    let key = match alg {
        Algorithm::RS256 | Algorithm::RS512 | Algorithm::PS256 => rsa_private_key(),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&std::fs::read(dir.join("ec_private.pem")).unwrap()).unwrap(),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&std::fs::read(dir.join("ed_private.pem")).unwrap()).unwrap(),
        other => panic!("no test key for {other:?}"),
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key).expect("signing")
}

pub struct TestApp {
    pub base: String,
    pub admin: String,
    pub client: reqwest::Client,
    pub redis: RedisServer,
    pub keys: Keys,
    /// The job store as a worker sees it.
    pub store: JobStore,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(configure: impl FnOnce(&mut ApiSettings)) -> Self {
        wgate_service::init_crypto();
        wgate_service::init_test_tracing();
        let redis = RedisServer::start().await;
        let namespace = wgate_testkit::unique_namespace("api");
        let mut settings = ApiSettings::on_loopback(&redis.url(), &namespace, SECRET);
        configure(&mut settings);
        let app = Application::build(settings).await.expect("building the application");
        let base = format!("http://{}", app.address());
        let admin = format!("http://{}", app.admin_address());
        tokio::spawn(app.run_until_stopped());
        let store = JobStore::new(QueueConfig::new(redis.url(), namespace.clone())).expect("job store");
        Self { base, admin, client: wgate_testkit::http_client(), redis, keys: Keys::new(&namespace), store }
    }

    pub fn token(&self, tenant: &str) -> String {
        hs256(SECRET, &claims(tenant, json!({})))
    }

    pub fn token_with_scope(&self, tenant: &str, scope: &str) -> String {
        hs256(SECRET, &claims(tenant, json!({"scope": scope})))
    }

    /// `POST /api/v1/session-create` as JSON with the tenant's token and extra headers.
    pub async fn create_session(&self, tenant: &str, body: &Value, headers: &[(&str, &str)]) -> Response {
        let mut req =
            self.client.post(format!("{}/api/v1/session-create", self.base)).bearer_auth(self.token(tenant)).json(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("session-create")
    }

    /// `POST /api/v1/session-create` with `Prefer: respond-async`.
    pub async fn create_async(&self, tenant: &str, body: &Value) -> Response {
        self.create_session(tenant, body, &[("prefer", "respond-async")]).await
    }

    /// A raw POST: any path, body and headers, no token unless given.
    pub async fn post_raw(&self, path: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Response {
        let mut req = self.client.post(format!("{}{path}", self.base)).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("post")
    }

    pub async fn get_job(&self, token: &str, id: &str) -> Response {
        self.client.get(format!("{}/api/v1/jobs/{id}", self.base)).bearer_auth(token).send().await.expect("get job")
    }

    pub async fn replay_job(&self, token: &str, id: &str) -> Response {
        self.client
            .post(format!("{}/api/v1/jobs/{id}/replay", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("replay job")
    }

    pub async fn hook(&self, token: &str, body: &Value) -> Response {
        self.client.post(format!("{}/hooks/{token}", self.base)).json(body).send().await.expect("hook")
    }

    pub async fn metrics(&self) -> String {
        self.client.get(format!("{}/metrics", self.admin)).send().await.unwrap().text().await.unwrap()
    }

    pub async fn readyz(&self) -> u16 {
        self.client.get(format!("{}/readyz", self.admin)).send().await.unwrap().status().as_u16()
    }

    // --- the worker's role, played through the queue's public worker API (no wgate-worker dependency) ---

    /// Takes the next queued job as a worker would (XREADGROUP in the workers' group), starts its attempt and
    /// finishes it with the outcome `decide` picks; the queue publishes the completion.
    pub async fn work_one(&self, decide: impl FnOnce(&JobRecord) -> Outcome) -> JobId {
        self.store.ensure_group().await.expect("consumer group");
        let mut conn = self.redis.connection().await;
        let reply: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg("test-worker")
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(10_000)
            .arg("STREAMS")
            .arg(self.keys.stream(JobKind::SessionCreate))
            .arg(">")
            .query_async(&mut conn)
            .await
            .expect("XREADGROUP");
        let entry = reply.keys.first().and_then(|k| k.ids.first()).expect("a queued job within 10 s").clone();
        let id: String = entry.get("job").expect("job field");
        let delivery =
            Delivery { job_id: id.parse().expect("job id"), entry_id: entry.id, taken_over: false, partition: 0 };
        let Started::Run { record, .. } = self.store.start_attempt(&delivery).await.expect("start") else {
            panic!("the job could not be started");
        };
        let outcome = decide(&record);
        let written = self.store.finish_attempt(&delivery, &record, &outcome).await.expect("finish");
        assert_eq!(written, Written::Ok);
        delivery.job_id
    }
}

pub fn succeeded(name: &str) -> Outcome {
    Outcome::Succeeded { response: upstream_data(name), unique_id: "6345454545454".into() }
}

/// `upstream_data` as the tenant must see it: with the callback it sent, and the gateway's QR window as
/// `qr_link` (upstream's aside in `upstream_qr_link`).
pub fn tenant_data(name: &str, callback: &str, qr_token: &str) -> Value {
    let mut v = upstream_data(name);
    v["callback"] = json!(callback);
    v["upstream_qr_link"] = v["qr_link"].clone();
    v["qr_link"] = json!(format!("http://127.0.0.1:8080/qr/{qr_token}"));
    v
}

pub fn job_error(name: &str, message: &str, class: ErrorClass) -> JobError {
    JobError { name: name.into(), message: message.into(), class }
}

pub fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

pub async fn json_of(r: Response) -> Value {
    r.json().await.expect("a JSON body")
}

/// The upstream body a succeeded job carries: WhatsGate holds the gateway's relay URL as the callback.
pub fn upstream_data(name: &str) -> Value {
    json!({"id": 151, "name": name, "unique_id": "6345454545454", "status": "PENDING",
        "callback": "http://127.0.0.1:8080/hooks/relay-token-0123456789",
        "date_add": "2022-10-11 19:30:14", "qr": null, "status_name": "Initialization", "pushname": null,
        "wid": null, "qr_link": "https://whatsgate.ru/qr/6345454545454"})
}

/// Lets a spawned task run for `d` (used only where no event can be awaited: proving that nothing happens).
pub async fn pause(d: Duration) {
    tokio::time::sleep(d).await;
}

/// Serves the routes `configure` sets up on 127.0.0.1, port 0, one worker, until the test ends: a stand-in for a
/// tenant's receiver or an identity provider. Answers its address.
pub fn serve(configure: impl Fn(&mut actix_web::web::ServiceConfig) + Send + Clone + 'static) -> std::net::SocketAddr {
    let server = actix_web::HttpServer::new(move || actix_web::App::new().configure(configure.clone()))
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .expect("binding a stand-in server");
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    addr
}

/// The tenant most tests act as.
pub fn acme() -> TenantId {
    TenantId::parse("acme").expect("a tenant id")
}
