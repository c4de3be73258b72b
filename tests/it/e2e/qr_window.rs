//! The QR window in a real headless Chromium. A parent page on another origin (a small server of this test)
//! embeds the gateway's windows in iframes and reports every `{module:"qr"}` message it receives back to the
//! test, in order; every request the browser makes goes through a logging proxy of this test, so the test sees
//! that the windows asked nothing of anyone but the gateway.
//!
//! `WGATE_QR_SCREENSHOT=docs/qr-window.png cargo test --test it e2e::qr_window` also writes the screenshot that
//! `docs/QR-WINDOW.md` shows (a window in QR mode against the simulator).

use std::{
    path::Path,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use actix_web::{App, HttpResponse, HttpServer, web};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    process::{Child, Command},
    sync::mpsc,
};

use super::helpers::{Stack, StackOptions, json_of};

/// One `{module:"qr", message}` the parent page received, with the iframe it came from.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
struct Report {
    frame: String,
    origin: String,
    message: String,
}

/// The parent page's server: serves the page (iframes given in the query) and takes its reports.
struct Parent {
    origin: String,
    reports: mpsc::UnboundedReceiver<Report>,
    _server: tokio::task::JoinHandle<()>,
}

const PARENT_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>A tenant's page</title></head>
<body>
<h1>Link your WhatsApp</h1>
<div id="frames"></div>
<script>
  var frames = {};
  new URLSearchParams(location.search).forEach(function (src, name) {
    var f = document.createElement("iframe");
    f.src = src; f.width = 310; f.height = 360; f.style.border = "none";
    frames[name] = f;
    document.getElementById("frames").append(f);
  });
  var chain = Promise.resolve();
  window.addEventListener("message", function (event) {
    if (typeof event.data !== "object" || !event.data || event.data.module !== "qr") return;
    var frame = "unknown";
    Object.keys(frames).forEach(function (name) { if (frames[name].contentWindow === event.source) frame = name; });
    var report = JSON.stringify({ frame: frame, origin: event.origin, message: String(event.data.message) });
    // One report at a time, so the test sees them in the order they arrived.
    chain = chain.then(function () {
      return fetch("/report", { method: "POST", headers: { "content-type": "application/json" }, body: report });
    }).catch(function () {});
  });
</script>
</body></html>"#;

impl Parent {
    async fn start() -> Self {
        let (tx, reports) = mpsc::unbounded_channel::<Report>();
        let tx = web::Data::new(tx);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(tx.clone())
                .route(
                    "/parent",
                    web::get().to(|| async { HttpResponse::Ok().content_type("text/html").body(PARENT_PAGE) }),
                )
                .route(
                    "/report",
                    web::post().to(|tx: web::Data<mpsc::UnboundedSender<Report>>, r: web::Json<Report>| async move {
                        let _ = tx.send(r.into_inner());
                        HttpResponse::NoContent().finish()
                    }),
                )
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .expect("parent server binds");
        let address = server.addrs()[0];
        let running = server.run();
        let _server = tokio::spawn(async move {
            let _ = running.await;
        });
        Self { origin: format!("http://{address}"), reports, _server }
    }

    /// The next report within `within`, if any.
    async fn try_next(&mut self, within: Duration) -> Option<Report> {
        match tokio::time::timeout(within, self.reports.recv()).await {
            Ok(Some(r)) => Some(r),
            Ok(None) => panic!("the parent server stopped"),
            Err(_) => None,
        }
    }

    /// Waits (20 s at most) until `message` came from `frame` for the `nth` time, collecting every report of every
    /// frame; panics naming what it awaited and what it saw.
    async fn expect(&mut self, seen: &mut Vec<Report>, frame: &str, message: &str, nth: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !self.has(seen, frame, message, nth) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.try_next(left).await {
                Some(r) => seen.push(r),
                None => panic!("no {message:?} #{nth} from the {frame} window within 20 s (seen: {seen:?})"),
            }
        }
    }

    fn has(&self, seen: &[Report], frame: &str, message: &str, nth: usize) -> bool {
        seen.iter().filter(|r| r.frame == frame && r.message == message).count() >= nth
    }
}

/// An HTTP forward proxy that logs every request the browser makes (absolute URL, or `CONNECT host:port`) and
/// forwards plain-HTTP ones with `Connection: close`, so each request is seen on a connection of its own.
struct LoggingProxy {
    address: String,
    log: Arc<Mutex<Vec<String>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl LoggingProxy {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let address = listener.local_addr().expect("proxy address").to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let task_log = log.clone();
        let _task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(proxy_one(client, task_log.clone()));
            }
        });
        Self { address, log, _task }
    }

    fn requests(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

async fn proxy_one(mut client: TcpStream, log: Arc<Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let (method, target, version) =
        (request_line.next().unwrap_or_default(), request_line.next().unwrap_or_default(), request_line.next());
    if method == "CONNECT" {
        if let Ok(mut l) = log.lock() {
            l.push(format!("CONNECT {target}"));
        }
        let _ = client.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n").await;
        return;
    }
    if let Ok(mut l) = log.lock() {
        l.push(target.to_owned());
    }
    let Ok(url) = reqwest::Url::parse(target) else { return };
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else { return };
    let Ok(mut server) = TcpStream::connect((host, port)).await else { return };
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let mut out = format!("{method} {path} {}\r\n", version.unwrap_or("HTTP/1.1"));
    for line in lines.filter(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or_default().trim().to_ascii_lowercase();
        if !matches!(name.as_str(), "connection" | "proxy-connection" | "keep-alive") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("connection: close\r\n\r\n");
    if server.write_all(out.as_bytes()).await.is_err() || server.write_all(&buf[head_end..]).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

/// Headless Chromium on `url`, all its traffic through `proxy`; killed when dropped.
struct Browser {
    _child: Child,
    _profile: tempfile::TempDir,
}

fn chromium_flags(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-domain-reliability",
        "--disable-client-side-phishing-detection",
        "--metrics-recording-only",
        "--mute-audio",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

fn chromium() -> String {
    std::env::var("WGATE_CHROMIUM").unwrap_or_else(|_| "chromium".to_owned())
}

impl Browser {
    fn open(url: &str, proxy: &LoggingProxy) -> Self {
        let profile = tempfile::tempdir().expect("a profile directory");
        let child = Command::new(chromium())
            .args(chromium_flags(profile.path()))
            .arg(format!("--proxy-server=http://{}", proxy.address))
            // Loopback is not proxied by default; the test wants to see every request.
            .arg("--proxy-bypass-list=<-loopback>")
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} (install it: apt-get install chromium): {e}", chromium()));
        Self { _child: child, _profile: profile }
    }
}

/// Requests Chromium makes for itself whatever page it shows (component updates, network time, account
/// checks), to Google's service hosts; none of them can come from the window, whose page names no URL and whose
/// CSP allows only the gateway.
fn browsers_own(request: &str) -> bool {
    let host = match request.strip_prefix("CONNECT ") {
        Some(authority) => authority.rsplit_once(':').map_or(authority, |(h, _)| h).to_owned(),
        None => reqwest::Url::parse(request).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default(),
    };
    ["google.com", "googleapis.com", "gvt1.com", "gstatic.com"]
        .iter()
        .any(|d| host == *d || host.ends_with(&format!(".{d}")))
}

/// `/qr/<token>` of a `qr_link`, on the stack's API address.
fn window_url(stack: &Stack, qr_link: &str) -> (String, String) {
    let token = qr_link.rsplit_once("/qr/").map(|(_, t)| t.to_owned()).expect("a gateway qr_link");
    (format!("{}/qr/{token}", stack.api), token)
}

async fn sim_post(stack: &Stack, path: &str) {
    let r = stack.http.post(format!("{}{path}", stack.sim)).send().await.expect("simulator control");
    assert!(r.status().is_success(), "{path}: {}", r.status());
}

#[tokio::test]
async fn a_parent_on_another_origin_hears_loading_qr_error_and_success_and_a_bogus_token_breaks() {
    // The QR never rotates during the test, so every "qr" is a new authorization attempt; a failed attempt is
    // held in PENDING (below) until the window has reported it, so the sequence of messages is exact whatever the
    // timing of the window's polls and the gateway's cache.
    let stack =
        Stack::start_with(StackOptions { sim_init_ms: 1_500, sim_qr_rotate_ms: 3_600_000, ..Default::default() }).await;
    let created = json_of(stack.create("acme", &json!({"name": "Shop QR"}), &[]).await).await;
    let data = &created["data"];
    let qr_link = data["qr_link"].as_str().expect("qr_link").to_owned();
    assert!(data["upstream_qr_link"].as_str().is_some_and(|l| l.starts_with(&stack.sim)), "{data}");
    let unique_id = data["unique_id"].as_str().expect("unique_id").to_owned();
    assert!(!qr_link.contains(&unique_id), "the gateway's link does not carry the session id: {qr_link}");
    let (real, token) = window_url(&stack, &qr_link);
    let coded = json_of(
        stack.create("acme", &json!({"name": "Shop code", "auth_type": "CODE", "number": "79991234567"}), &[]).await,
    )
    .await;
    let (code, _) = window_url(&stack, coded["data"]["qr_link"].as_str().expect("qr_link"));
    let bogus = format!("{}/qr/{}", stack.api, "B".repeat(token.len()));

    let mut parent = Parent::start().await;
    let proxy = LoggingProxy::start().await;
    let mut page = reqwest::Url::parse(&format!("{}/parent", parent.origin)).expect("url");
    page.query_pairs_mut().append_pair("real", &real).append_pair("code", &code).append_pair("bogus", &bogus);
    let _browser = Browser::open(page.as_str(), &proxy);

    let mut seen = Vec::new();
    parent.expect(&mut seen, "real", "qr", 1).await;
    parent.expect(&mut seen, "bogus", "broken", 1).await;
    parent.expect(&mut seen, "code", "qr", 1).await;
    // A window notices a failed authorization by seeing the session PENDING again. Failing it again every 300 ms
    // (each failure restarts the simulator's 1.5 s PENDING) keeps it PENDING until the window has reported it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !parent.has(&seen, "real", "error", 1) {
        assert!(tokio::time::Instant::now() < deadline, "no \"error\" from the real window within 20 s: {seen:?}");
        sim_post(&stack, &format!("/sim/sessions/{unique_id}/fail")).await;
        if let Some(r) = parent.try_next(Duration::from_millis(300)).await {
            seen.push(r);
        }
    }
    parent.expect(&mut seen, "real", "qr", 2).await;
    sim_post(&stack, &format!("/sim/sessions/{unique_id}/scan")).await;
    parent.expect(&mut seen, "real", "success", 1).await;

    let of = |frame: &str| -> Vec<&str> {
        seen.iter().filter(|r| r.frame == frame).map(|r| r.message.as_str()).collect::<Vec<_>>()
    };
    assert_eq!(of("real"), ["loading", "qr", "error", "qr", "success"], "{seen:?}");
    assert_eq!(of("bogus"), ["loading", "broken"], "{seen:?}");
    assert_eq!(of("code").first(), Some(&"loading"), "{seen:?}");
    assert!(seen.iter().all(|r| r.origin == stack.api), "every message comes from the gateway's origin: {seen:?}");

    // Nothing but the parent's own page and reports, and the gateway's windows and their state (the browser's
    // own calls home, which no page can make or prevent, aside).
    let requests = proxy.requests();
    let outside: Vec<&String> = requests
        .iter()
        .filter(|u| {
            let parent_own = u.starts_with(&format!("{}/", parent.origin));
            let gateway_window = u.starts_with(&format!("{}/qr/", stack.api));
            !(parent_own || gateway_window || browsers_own(u))
        })
        .collect();
    assert!(outside.is_empty(), "requests outside the gateway and the parent page: {outside:?}");
    assert!(requests.iter().any(|u| u.ends_with(&format!("/qr/{token}/state"))), "{requests:?}");
}

#[tokio::test]
async fn the_window_is_served_with_a_strict_policy_and_the_tenants_frame_ancestors() {
    let stack = Stack::start().await;
    let created = json_of(stack.create("acme", &json!({"name": "Headers"}), &[]).await).await;
    let (real, _) = window_url(&stack, created["data"]["qr_link"].as_str().expect("qr_link"));
    let r = stack.http.get(&real).send().await.expect("page");
    assert_eq!(r.status(), 200);
    let csp = r.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
    for directive in ["default-src 'none'", "connect-src 'self'", "img-src 'self' data:", "frame-ancestors *"] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(r.headers().get("x-frame-options").is_none());
    let body = r.text().await.expect("html");
    assert!(!body.contains(&stack.sim) && !body.contains("whatsgate.ru"), "the page never names upstream");

    if let Ok(path) = std::env::var("WGATE_QR_SCREENSHOT") {
        screenshot(&stack, &real, Path::new(&path)).await;
    }
}

/// Writes a screenshot of a window showing its QR (the session is in AUTH once the create answer is back and
/// the simulator's PENDING time has passed).
async fn screenshot(stack: &Stack, url: &str, out: &Path) {
    let state = format!("{url}/state");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s: Value = stack.http.get(&state).send().await.expect("state").json().await.expect("json");
        if s["qr_svg"].is_string() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the window showed no QR within 10 s: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let profile = tempfile::tempdir().expect("a profile directory");
    let out = std::path::absolute(out).expect("an absolute path");
    let status = Command::new(chromium())
        .args(chromium_flags(profile.path()))
        .arg("--hide-scrollbars")
        .arg("--window-size=360,420")
        .arg("--virtual-time-budget=3000")
        .arg(format!("--screenshot={}", out.display()))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .expect("chromium runs");
    assert!(status.success(), "screenshot failed: {status}");
}
