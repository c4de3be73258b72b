//! `TestSim`: the simulator started in-process on port 0, with one method per endpoint; and `Receiver`,
//! a tiny webhook receiver whose answers a test scripts.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use wgate_upstream_sim::{Application, SimConfig};

pub const KEY: &str = "sim-key";

/// Test timings: short enough to keep the suite fast, long enough to observe each phase.
pub fn test_config() -> SimConfig {
    SimConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        seed: Some(1),
        init_ms: 100,
        qr_rotate_ms: 300,
        webhook_retry_ms: 50,
        workers: Some(1),
        ..SimConfig::default()
    }
}

pub struct TestSim {
    pub base: String,
    pub client: reqwest::Client,
}

/// An HTTP answer reduced to what the tests look at.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Answer {
    async fn from(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self { status, headers, text, json }
    }

    /// Asserts WhatsGate's error shape: HTTP 500 `{"name":<name>,"message":"...","code":0}`.
    pub fn assert_error(&self, name: &str) {
        assert_eq!(self.status, 500, "{}", self.text);
        assert_eq!(self.json["name"], name, "{}", self.text);
        assert_eq!(self.json["code"], 0, "{}", self.text);
        assert!(self.json["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", self.text);
        assert_eq!(self.json.as_object().map(|o| o.len()), Some(3), "{}", self.text);
    }

    pub fn data(&self) -> &Value {
        assert_eq!(self.status, 200, "{}", self.text);
        assert_eq!(self.json["result"], "OK", "{}", self.text);
        &self.json["data"]
    }

    pub fn unique_id(&self) -> String {
        self.data()["unique_id"].as_str().expect("unique_id").to_owned()
    }
}

impl TestSim {
    pub async fn start() -> Self {
        Self::start_with(test_config()).await
    }

    pub async fn start_with(config: SimConfig) -> Self {
        let app = Application::build(config).await.expect("the simulator starts");
        assert_eq!(app.port(), app.local_addr().port());
        let base = app.base_url();
        tokio::spawn(app.run_until_stopped());
        // No connection reuse: a fault that drops a connection must not spill over into the next request.
        let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client");
        Self { base, client }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn command_raw(&self, command: &str, key: Option<&str>, body: &str) -> Result<Answer, reqwest::Error> {
        let mut request = self
            .client
            .post(self.url(&format!("/api/v1/{command}")))
            .header("Content-Type", "application/json")
            .timeout(Duration::from_secs(10))
            .body(body.to_owned());
        if let Some(key) = key {
            request = request.header("X-Api-Key", key);
        }
        Ok(Answer::from(request.send().await?).await)
    }

    /// A command under another base path (`/v1` is the SDKs'), with the key in a header of the given spelling.
    pub async fn command_at(&self, base: &str, command: &str, key_header: &str, body: Value) -> Answer {
        let response = self
            .client
            .post(self.url(&format!("{base}/{command}")))
            .header(key_header, KEY)
            .timeout(Duration::from_secs(10))
            .json(&body)
            .send()
            .await
            .expect("an answer");
        Answer::from(response).await
    }

    pub async fn command(&self, command: &str, body: Value) -> Answer {
        self.command_raw(command, Some(KEY), &body.to_string()).await.expect("an answer")
    }

    pub async fn create(&self, body: Value) -> Answer {
        self.command("session-create", body).await
    }

    pub async fn create_named(&self, name: &str) -> String {
        self.create(json!({ "name": name })).await.unique_id()
    }

    pub async fn sessions_get(&self, body: Value) -> Answer {
        self.command("sessions-get", body).await
    }

    /// The one session with this id, as `sessions-get` reports it.
    pub async fn session(&self, unique_id: &str) -> Value {
        let answer = self.sessions_get(json!({ "WhatsappID": unique_id })).await;
        assert_eq!(answer.json["elements"], 1, "{}", answer.text);
        answer.json["data"][0].clone()
    }

    pub async fn get(&self, path: &str) -> Answer {
        Answer::from(self.client.get(self.url(path)).send().await.expect("an answer")).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        Answer::from(self.client.post(self.url(path)).json(&body).send().await.expect("an answer")).await
    }

    pub async fn stats(&self) -> Value {
        self.get("/sim/stats").await.json
    }

    pub async fn set_faults(&self, faults: Value) -> Answer {
        self.post("/sim/faults", faults).await
    }

    pub async fn scan(&self, unique_id: &str) -> Answer {
        self.post(&format!("/sim/sessions/{unique_id}/scan"), json!({})).await
    }

    pub async fn fail(&self, unique_id: &str) -> Answer {
        self.post(&format!("/sim/sessions/{unique_id}/fail"), json!({})).await
    }

    /// A READY session with this callback (if any); returns its id and `wid`.
    pub async fn ready_session(&self, callback: Option<&str>) -> (String, String) {
        let id = self.create(json!({ "name": "messaging", "callback": callback })).await.unique_id();
        let ready = self.scan(&id).await;
        let wid = ready.data()["wid"].as_str().expect("a wid once READY").to_owned();
        (id, wid)
    }

    /// A text message arriving on the session from this number.
    pub async fn incoming(&self, unique_id: &str, body: Value) -> Answer {
        self.post(&format!("/sim/sessions/{unique_id}/incoming"), body).await
    }

    pub async fn disconnect(&self, unique_id: &str) -> Answer {
        self.post(&format!("/sim/sessions/{unique_id}/disconnect"), json!({})).await
    }

    /// Polls `sessions-get` until `check` holds for the session (2 s at most); returns the session.
    pub async fn wait_for_session(&self, unique_id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        eventually(what, || async {
            let session = self.session(unique_id).await;
            check(&session).then_some(session)
        })
        .await
    }
}

/// Polls `probe` every 10 ms until it yields a value; fails the test after 3 s.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How the receiver answers a delivery.
#[derive(Clone, Copy, Debug)]
pub enum Reply {
    Ack,
    WrongAck,
    ServerError,
}

/// A webhook receiver on port 0: every body it gets arrives on `events`; it answers `script[n]` to the
/// n-th delivery and `Ack` after the script runs out.
pub struct Receiver {
    pub url: String,
    pub events: mpsc::UnboundedReceiver<Value>,
}

impl Receiver {
    pub async fn start(script: Vec<Reply>) -> Self {
        let (tx, events) = mpsc::unbounded_channel();
        let script = Arc::new(script);
        let seen = Arc::new(AtomicUsize::new(0));
        let server = HttpServer::new(move || {
            let (tx, script, seen) = (tx.clone(), Arc::clone(&script), Arc::clone(&seen));
            App::new().default_service(web::to(move |body: web::Bytes| {
                let (tx, script, seen) = (tx.clone(), Arc::clone(&script), Arc::clone(&seen));
                async move {
                    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let n = seen.fetch_add(1, Ordering::SeqCst);
                    let reply = script.get(n).copied().unwrap_or(Reply::Ack);
                    let id = event["id"].clone();
                    let _ = tx.send(event);
                    match reply {
                        Reply::Ack => HttpResponse::Ok().json(json!({ "result": "OK", "id": id })),
                        Reply::WrongAck => HttpResponse::Ok().json(json!({ "result": "ERROR" })),
                        Reply::ServerError => HttpResponse::InternalServerError().finish(),
                    }
                }
            }))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .expect("receiver binds");
        let addr = server.addrs()[0];
        tokio::spawn(server.run());
        Self { url: format!("http://{addr}/hook"), events }
    }

    /// The next delivery, or a failed test after 3 s.
    pub async fn next(&mut self) -> Value {
        tokio::time::timeout(Duration::from_secs(3), self.events.recv())
            .await
            .expect("a webhook within 3 s")
            .expect("the receiver is running")
    }
}

/// `YYYY-MM-DD HH:MM:SS`.
pub fn is_whatsgate_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}
