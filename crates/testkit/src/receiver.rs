//! A tenant's webhook endpoint for tests: records every request (headers and body) and answers as told (a status,
//! with or without `Retry-After`, or never), so tests see what a tenant would see.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, dev::ServerHandle, web};
use tokio::sync::Notify;

/// How the endpoint answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// This status, at once (`Retry-After` in seconds when given).
    Answer { status: u16, retry_after: Option<u64> },
    /// This status with `Retry-After` as an HTTP date this many seconds after the request.
    AnswerRetryAt { status: u16, after_secs: u64 },
    /// Never answers (the caller's timeout ends the request).
    Hang,
    /// 200 to every `ok_every`-th request, 503 to the others: an endpoint that fails most of the time.
    Flaky { ok_every: u32 },
}

impl Behaviour {
    pub const OK: Self = Self::Answer { status: 200, retry_after: None };

    pub fn status(status: u16) -> Self {
        Self::Answer { status, retry_after: None }
    }
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: String,
    /// What the endpoint answered; 0 when it hung.
    pub answered: u16,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn delivered(&self) -> bool {
        (200..300).contains(&self.answered)
    }

    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

struct Shared {
    behaviour: Mutex<Behaviour>,
    /// Requests so far, for `Flaky`.
    count: std::sync::atomic::AtomicU32,
    got: Mutex<Vec<Received>>,
    changed: Notify,
}

/// The endpoint, on 127.0.0.1; stopped when dropped.
pub struct Receiver {
    /// `http://127.0.0.1:<port>/hook`.
    pub url: String,
    shared: Arc<Shared>,
    handle: ServerHandle,
}

async fn take(req: HttpRequest, body: web::Bytes, shared: web::Data<Arc<Shared>>) -> HttpResponse {
    let behaviour = shared.behaviour.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let headers = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_owned())))
        .collect();
    let n = shared.count.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    let behaviour = match behaviour {
        Behaviour::Flaky { ok_every } if n.is_multiple_of(ok_every.max(1)) => Behaviour::OK,
        Behaviour::Flaky { .. } => Behaviour::status(503),
        other => other,
    };
    let answered = match &behaviour {
        Behaviour::Answer { status, .. } | Behaviour::AnswerRetryAt { status, .. } => *status,
        Behaviour::Hang | Behaviour::Flaky { .. } => 0,
    };
    let got = Received { headers, body: String::from_utf8_lossy(&body).into_owned(), answered, at: Instant::now() };
    shared.got.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(got);
    shared.changed.notify_waiters();
    match behaviour {
        Behaviour::Hang | Behaviour::Flaky { .. } => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            HttpResponse::Ok().finish()
        }
        Behaviour::Answer { status, retry_after } => {
            let code = actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::OK);
            let mut answer = HttpResponse::build(code);
            if let Some(secs) = retry_after {
                answer.insert_header(("retry-after", secs.to_string()));
            }
            answer.body("ok")
        }
        Behaviour::AnswerRetryAt { status, after_secs } => {
            let code = actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::OK);
            let at = std::time::SystemTime::now() + Duration::from_secs(after_secs);
            HttpResponse::build(code).insert_header(("retry-after", httpdate::fmt_http_date(at))).body("ok")
        }
    }
}

impl Receiver {
    pub async fn start(behaviour: Behaviour) -> Self {
        let shared = Arc::new(Shared {
            behaviour: Mutex::new(behaviour),
            count: std::sync::atomic::AtomicU32::new(0),
            got: Mutex::new(Vec::new()),
            changed: Notify::new(),
        });
        let data = web::Data::new(shared.clone());
        let server = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(take)))
            .workers(1)
            .bind(("127.0.0.1", 0))
            .expect("binding the webhook receiver");
        let addr = server.addrs()[0];
        let server = server.disable_signals().shutdown_timeout(0).run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { url: format!("http://{addr}/hook"), shared, handle }
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = behaviour;
    }

    /// Every request so far, in arrival order.
    pub fn got(&self) -> Vec<Received> {
        self.shared.got.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Waits until `ready` holds for the requests so far; panics naming `what` after `within`.
    pub async fn wait_until(&self, what: &str, within: Duration, ready: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let changed = self.shared.changed.notified();
            let got = self.got();
            if ready(&got) {
                return got;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                let got = self.got();
                if ready(&got) {
                    return got;
                }
                panic!("the webhook receiver did not see {what} within {within:?}; it got {} requests", got.len());
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            drop(rt.spawn(async move { handle.stop(false).await }));
        }
    }
}
