//! The tenant API against a real redis-server: every test starts the real `Application` on port 0.

// In a test a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod egress;
mod hardening;
mod helpers;
mod openapi;
mod qr;
mod replay;
mod sessions;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use actix_web::{HttpResponse, web};
use base64::Engine;
use helpers::*;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

fn body() -> Value {
    json!({"name": "My WhatsApp", "callback": "https://callback.example/hook"})
}

// ---------------------------------------------------------------- configuration

fn run_binary(env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wgate-api"));
    for (k, _) in std::env::vars() {
        if k.starts_with("WGATE_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("WGATE_API_LISTEN", "127.0.0.1:0").env("WGATE_API_ADMIN_LISTEN", "127.0.0.1:0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    // A configuration error stops the process at once; a correct one would serve forever.
    let start = Instant::now();
    let mut child = child;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the binary did not stop on a configuration error");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed when the test ends, whatever way it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn one_line_naming(out: &std::process::Output, variable: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(variable), "{stderr}");
}

#[test]
fn the_binary_stops_with_one_line_naming_the_variable_when_no_jwt_key_is_set() {
    one_line_naming(&run_binary(&[]), "WGATE_JWT_SECRET");
}

#[test]
fn the_binary_stops_with_one_line_naming_the_variable_when_a_pem_file_is_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n").unwrap();
    one_line_naming(&run_binary(&[("WGATE_JWT_PUBLIC_KEYS", bad.to_str().unwrap())]), "WGATE_JWT_PUBLIC_KEYS");
    one_line_naming(&run_binary(&[("WGATE_JWT_PUBLIC_KEYS", "/nonexistent.pem")]), "WGATE_JWT_PUBLIC_KEYS");
}

#[test]
fn the_binary_stops_with_one_line_naming_the_variable_when_a_value_is_malformed() {
    one_line_naming(&run_binary(&[("WGATE_JWT_SECRET", "s"), ("WGATE_RATE_BURST", "lots")]), "WGATE_RATE_BURST");
    one_line_naming(&run_binary(&[("WGATE_JWT_SECRET", "s"), ("WGATE_JWT_JWKS_URL", "nope")]), "WGATE_JWT_JWKS_URL");
    one_line_naming(&run_binary(&[("WGATE_JWT_SECRET", "s"), ("WGATE_REDIS_URL", "not a url")]), "WGATE_REDIS_URL");
    one_line_naming(&run_binary(&[("WGATE_JWT_SECRET", "s"), ("WGATE_API_LISTEN", "here")]), "WGATE_API_LISTEN");
    let dir = tempfile::tempdir().unwrap();
    let tenants = dir.path().join("tenants.toml");
    std::fs::write(&tenants, "[tenants.acme]\nburst = 0\n").unwrap();
    one_line_naming(
        &run_binary(&[("WGATE_JWT_SECRET", "s"), ("WGATE_TENANTS_FILE", tenants.to_str().unwrap())]),
        "WGATE_TENANTS_FILE",
    );
}

#[tokio::test]
async fn the_binary_serves_with_settings_from_a_config_file_logs_json_and_stops_cleanly_on_sigterm() {
    let redis = wgate_testkit::RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wgate.toml");
    std::fs::write(
        &file,
        format!(
            "redis_url = \"{}\"\napi_listen = \"127.0.0.1:0\"\napi_admin_listen = \"127.0.0.1:0\"\n\
             jwt_secret = \"{SECRET}\"\nlog_format = \"json\"\n",
            redis.url()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wgate-api"))
        .arg("--config")
        .arg(&file)
        .env_remove("WGATE_JWT_SECRET")
        .env_remove("WGATE_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = KillOnDrop(child);
    // Both listeners on port 0: the addresses come from this process's own log line.
    let (listening, log) = wgate_testkit::announced(stdout, "wgate-api listening", Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("wgate-api did not start: {e:#}"));
    let api = wgate_testkit::address_in(&listening, "address").unwrap().port();
    let admin = wgate_testkit::address_in(&listening, "admin_address").unwrap().port();
    let client = wgate_testkit::http_client();
    let token = hs256(SECRET, &claims("acme", json!({})));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = client.get(format!("http://127.0.0.1:{admin}/readyz")).send().await
            && r.status() == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "wgate-api did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = client
        .post(format!("http://127.0.0.1:{api}/api/v1/session-create"))
        .bearer_auth(&token)
        .header("prefer", "respond-async")
        .header("x-request-id", "log-check-1")
        .json(&body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let job_id = header(r.headers(), "x-job-id").unwrap().to_owned();
    // SIGTERM: a clean exit.
    let mut child = child;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.0.id() as i32), nix::sys::signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(35);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "wgate-api did not exit within 35 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}");
    // One JSON object per line (all of them read once the pipe closed); the acceptance carries the request id,
    // the tenant and the job id.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !log.closed() {
        assert!(Instant::now() < deadline, "the log pipe was not closed within 5 s of the exit");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stdout = log.lines().join("\n");
    let lines: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).expect("a JSON log line")).collect();
    let accepted = lines.iter().find(|l| l["message"] == "job accepted").expect("an acceptance log line");
    assert_eq!(accepted["span"]["request_id"], "log-check-1", "{accepted}");
    assert_eq!(accepted["span"]["tenant"], "acme", "{accepted}");
    assert_eq!(accepted["job_id"], job_id.as_str(), "{accepted}");
    assert!(!stdout.contains(SECRET) && !stdout.contains(&token), "no secret or token in the logs");
}

// ---------------------------------------------------------------- authentication

async fn create_with_token(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/api/v1/session-create", app.base))
        .bearer_auth(token)
        .header("prefer", "respond-async")
        .json(&body())
        .send()
        .await
        .unwrap()
}

async fn assert_invalid_token(app: &TestApp, token: &str) {
    let r = create_with_token(app, token).await;
    assert_eq!(r.status(), 401, "{token}");
    let www = header(r.headers(), "www-authenticate").unwrap().to_owned();
    assert!(www.starts_with("Bearer error=\"invalid_token\", error_description=\""), "{www}");
    let b = json_of(r).await;
    assert_eq!(
        (b["result"].as_str(), b["code"].as_u64(), b["name"].as_str()),
        (Some("ERROR"), Some(401), Some("Unauthorized"))
    );
}

#[tokio::test]
async fn a_request_without_a_token_is_401_with_www_authenticate() {
    let app = TestApp::spawn().await;
    let r = app
        .post_raw("/api/v1/session-create", body().to_string().into_bytes(), &[("content-type", "application/json")])
        .await;
    assert_eq!(r.status(), 401);
    assert!(header(r.headers(), "www-authenticate").unwrap().contains("invalid_token"));
    assert!(header(r.headers(), "x-request-id").is_some());
    assert_invalid_token(&app, "not-a-jwt").await;
}

#[tokio::test]
async fn bearer_and_x_api_key_tokens_are_both_accepted() {
    let app = TestApp::spawn().await;
    assert_eq!(create_with_token(&app, &app.token("acme")).await.status(), 202);
    let r = app
        .client
        .post(format!("{}/api/v1/session-create", app.base))
        .header("x-api-key", app.token("acme"))
        .header("prefer", "respond-async")
        .json(&body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
}

#[tokio::test]
async fn expired_tokens_are_refused_but_thirty_seconds_of_leeway_are_allowed() {
    let app = TestApp::spawn().await;
    let t = now();
    assert_invalid_token(&app, &hs256(SECRET, &claims("acme", json!({"exp": t - 120})))).await;
    assert_eq!(create_with_token(&app, &hs256(SECRET, &claims("acme", json!({"exp": t - 10})))).await.status(), 202);
    assert_invalid_token(&app, &hs256(SECRET, &claims("acme", json!({"exp": null})))).await;
}

#[tokio::test]
async fn tokens_not_yet_valid_by_nbf_or_iat_are_refused() {
    let app = TestApp::spawn().await;
    let t = now();
    assert_invalid_token(&app, &hs256(SECRET, &claims("acme", json!({"nbf": t + 300})))).await;
    assert_invalid_token(&app, &hs256(SECRET, &claims("acme", json!({"iat": t + 300})))).await;
    assert_eq!(create_with_token(&app, &hs256(SECRET, &claims("acme", json!({"nbf": t + 10})))).await.status(), 202);
}

#[tokio::test]
async fn the_audience_must_be_held_and_the_issuer_checked_when_configured() {
    let app = TestApp::spawn_with(|s| s.jwt_issuer = Some("https://issuer.example".into())).await;
    let iss = "https://issuer.example";
    assert_invalid_token(&app, &hs256(SECRET, &claims("acme", json!({"aud": "other", "iss": iss})))).await;
    assert_invalid_token(&app, &hs256(SECRET, &claims("acme", json!({"aud": null, "iss": iss})))).await;
    assert_invalid_token(&app, &hs256(SECRET, &claims("acme", json!({"iss": "https://evil.example"})))).await;
    assert_invalid_token(&app, &hs256(SECRET, &claims("acme", json!({})))).await;
    let ok = hs256(SECRET, &claims("acme", json!({"aud": ["x", "wgate"], "iss": iss})));
    assert_eq!(create_with_token(&app, &ok).await.status(), 202);
}

#[tokio::test]
async fn a_sub_that_is_not_a_tenant_id_or_a_wrong_signature_is_refused() {
    let app = TestApp::spawn().await;
    assert_invalid_token(&app, &hs256(SECRET, &claims("bad tenant!", json!({})))).await;
    assert_invalid_token(&app, &hs256("another-secret", &claims("acme", json!({})))).await;
}

#[tokio::test]
async fn rotated_secrets_all_verify() {
    let app = TestApp::spawn_with(|s| s.jwt_secret = Some(format!("new-secret,{SECRET}").into())).await;
    assert_eq!(create_with_token(&app, &hs256("new-secret", &claims("acme", json!({})))).await.status(), 202);
    assert_eq!(create_with_token(&app, &hs256(SECRET, &claims("acme", json!({})))).await.status(), 202);
}

fn pem_keys() -> String {
    let d = keys_dir();
    ["rsa.pem", "ec.pem", "ed.pem"].map(|f| d.join(f).display().to_string()).join(",")
}

#[tokio::test]
async fn rsa_ec_and_ed25519_tokens_verify_against_their_pem_keys() {
    let app = TestApp::spawn_with(|s| s.jwt_public_keys = Some(pem_keys())).await;
    let c = claims("acme", json!({}));
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        assert_eq!(create_with_token(&app, &signed(alg, None, &c)).await.status(), 202, "{alg:?}");
    }
    // A kid names the PEM file.
    assert_eq!(create_with_token(&app, &signed(Algorithm::ES256, Some("ec"), &c)).await.status(), 202);
    // A kid naming another family's key, or no key, is refused.
    assert_invalid_token(&app, &signed(Algorithm::ES256, Some("rsa"), &c)).await;
    assert_invalid_token(&app, &signed(Algorithm::RS256, Some("nobody"), &c)).await;
}

#[tokio::test]
async fn a_public_key_token_is_verified_once_and_its_claims_checked_on_every_use() {
    use wgate_api_proxy::auth::{AuthConfig, AuthError, Verifier};
    let mut settings = wgate_api_proxy::ApiSettings::for_tests("redis://127.0.0.1:1", "unused", SECRET);
    settings.jwt_public_keys = Some(pem_keys());
    let verifier = Verifier::new(&AuthConfig::from_settings(&settings)).unwrap();

    let good = signed(Algorithm::RS256, None, &claims("acme", json!({})));
    assert_eq!(verifier.verify(&good).await.map(|p| p.tenant.to_string()), Ok("acme".to_owned()));
    assert_eq!(verifier.verified_tokens(), 1, "the verified token is remembered");
    assert!(verifier.verify(&good).await.is_ok());
    assert_eq!(verifier.verified_tokens(), 1, "the second use is a hit, not a new entry");

    // Remembered once its signature verified, an expired token is still refused on every use.
    let expired = signed(Algorithm::ES256, None, &claims("acme", json!({"exp": now() - 120})));
    assert_eq!(verifier.verify(&expired).await, Err(AuthError::Expired));
    assert_eq!(verifier.verify(&expired).await, Err(AuthError::Expired));
    assert_eq!(verifier.verified_tokens(), 2);

    // Another signature on the same claims is another token: verified, and refused.
    let (message, _) = good.rsplit_once('.').unwrap();
    let forged = format!("{message}.{}", "A".repeat(342));
    assert_eq!(verifier.verify(&forged).await, Err(AuthError::Signature));

    // HS256 tokens are cheaper to verify than to remember.
    assert!(verifier.verify(&hs256(SECRET, &claims("acme", json!({})))).await.is_ok());
    assert_eq!(verifier.verified_tokens(), 2);
}

#[tokio::test]
async fn alg_none_and_hs256_signed_with_the_rsa_public_key_are_refused() {
    let app = TestApp::spawn_with(|s| s.jwt_public_keys = Some(pem_keys())).await;
    let c = claims("acme", json!({}));
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&c));
    assert_invalid_token(&app, &none).await;
    let none_sig = format!("{}.{}.c2ln", b64(&json!({"alg": "none"})), b64(&c));
    assert_invalid_token(&app, &none_sig).await;
    let rsa_pub = std::fs::read_to_string(keys_dir().join("rsa.pem")).unwrap();
    assert_invalid_token(&app, &hs256(&rsa_pub, &c)).await;
}

/// A JWKS endpoint that counts its fetches and serves whatever `keys` holds.
async fn jwks_server(keys: Arc<Mutex<Value>>, hits: Arc<AtomicUsize>) -> String {
    let server = actix_web::HttpServer::new(move || {
        let (keys, hits) = (keys.clone(), hits.clone());
        actix_web::App::new().route(
            "/jwks",
            web::get().to(move || {
                let (keys, hits) = (keys.clone(), hits.clone());
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    let body = keys.lock().unwrap().clone();
                    HttpResponse::Ok().json(body)
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    format!("http://{addr}/jwks")
}

fn pem_der(file: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(keys_dir().join(file)).unwrap();
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
}

fn ec_jwk(kid: &str) -> Value {
    let der = pem_der("ec.pem");
    let point = &der[der.len() - 64..];
    let b = |x: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(x);
    json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "x": b(&point[..32]), "y": b(&point[32..])})
}

fn ed_jwk(kid: &str) -> Value {
    let der = pem_der("ed.pem");
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&der[der.len() - 32..]);
    json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": x})
}

/// An API that trusts only a JWKS endpoint serving `k1` (the keys it serves and its fetch count are returned).
async fn app_over_jwks(cooldown_ms: u64) -> (TestApp, Arc<Mutex<Value>>, Arc<AtomicUsize>) {
    let keys = Arc::new(Mutex::new(json!({"keys": [ec_jwk("k1")]})));
    let hits = Arc::new(AtomicUsize::new(0));
    let url = jwks_server(keys.clone(), hits.clone()).await;
    let app = TestApp::spawn_with(|s| {
        s.jwt_secret = None;
        s.jwt_jwks_url = Some(url);
        s.jwt_jwks_cooldown_ms = cooldown_ms;
    })
    .await;
    (app, keys, hits)
}

#[tokio::test]
async fn jwks_keys_are_cached_and_an_unknown_kid_refetches_once_per_cooldown() {
    let (app, keys, hits) = app_over_jwks(60_000).await;
    assert_eq!(hits.load(Ordering::SeqCst), 1, "fetched once at start");
    let c = claims("acme", json!({}));
    for _ in 0..3 {
        assert_eq!(create_with_token(&app, &signed(Algorithm::ES256, Some("k1"), &c)).await.status(), 202);
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1, "served from the cache");

    // A new key appears: the first token naming it refetches (once, even with concurrent requests).
    keys.lock().unwrap()["keys"].as_array_mut().unwrap().push(ed_jwk("k2"));
    let token = signed(Algorithm::EdDSA, Some("k2"), &c);
    let results = futures::future::join_all((0..5).map(|_| create_with_token(&app, &token))).await;
    let statuses: Vec<u16> = results.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses, [202; 5]);
    assert_eq!(hits.load(Ordering::SeqCst), 2);

    // An unknown kid inside the cooldown does not refetch, and is 401.
    assert_invalid_token(&app, &signed(Algorithm::EdDSA, Some("k3"), &c)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // The JWK's own alg pins the algorithm: an EdDSA token under the ES256 key k1 is refused.
    assert_invalid_token(&app, &signed(Algorithm::EdDSA, Some("k1"), &c)).await;
}

#[tokio::test]
async fn an_unknown_kid_refetches_again_once_the_cooldown_has_passed_and_not_before() {
    const COOLDOWN: Duration = Duration::from_millis(1500);
    let (app, keys, hits) = app_over_jwks(1500).await;
    assert_eq!(hits.load(Ordering::SeqCst), 1, "fetched once at start");
    let c = claims("acme", json!({}));
    let k2 = signed(Algorithm::EdDSA, Some("k2"), &c);

    // k2 is not published yet: the first token naming it refetches, in vain.
    let first_refetch = Instant::now();
    assert_invalid_token(&app, &k2).await;
    assert_eq!(hits.load(Ordering::SeqCst), 2, "an unknown kid refetches");
    keys.lock().unwrap()["keys"].as_array_mut().unwrap().push(ed_jwk("k2"));

    // Inside the cooldown every k2 token is refused without a fetch; the first one after it refetches once.
    let deadline = first_refetch + COOLDOWN + Duration::from_secs(10);
    loop {
        let status = create_with_token(&app, &k2).await.status();
        let fetched = hits.load(Ordering::SeqCst);
        if status == 202 {
            assert_eq!(fetched, 3, "exactly one refetch once the cooldown passed");
            assert!(first_refetch.elapsed() >= COOLDOWN, "refetched {:?} after the last one", first_refetch.elapsed());
            break;
        }
        assert_eq!((status.as_u16(), fetched), (401, 2), "no refetch inside the cooldown");
        assert!(Instant::now() < deadline, "k2 was not refetched within 10 s after the cooldown");
        pause(Duration::from_millis(100)).await;
    }
    // That refetch started a new cooldown: another unknown kid now is refused without a fetch.
    assert_invalid_token(&app, &signed(Algorithm::EdDSA, Some("k3"), &c)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_missing_scope_is_403_and_auth_failures_are_counted_by_reason() {
    let app = TestApp::spawn().await;
    let read_only = app.token_with_scope("acme", "sessions:read");
    let r = create_with_token(&app, &read_only).await;
    assert_eq!(r.status(), 403);
    assert!(json_of(r).await["message"].as_str().unwrap().contains("sessions:write"));
    assert_invalid_token(&app, &hs256(SECRET, &claims("acme", json!({"exp": now() - 3600})))).await;
    let m = app.metrics().await;
    assert!(m.contains("wgate_auth_failures_total{reason=\"scope\"} 1"), "{m}");
    assert!(m.contains("wgate_auth_failures_total{reason=\"expired\"} 1"), "{m}");
}

// ---------------------------------------------------------------- validation

#[tokio::test]
async fn an_invalid_body_is_400_with_details_per_field() {
    let app = TestApp::spawn().await;
    let r = app.create_async("acme", &json!({"name": "", "callback": "ftp://x", "auth_type": "CODE"})).await;
    assert_eq!(r.status(), 400);
    let b = json_of(r).await;
    assert_eq!(b["name"], "Bad Request");
    assert_eq!(b["code"], 400);
    let fields: Vec<&str> = b["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["name", "callback", "number"]);
    let r = app
        .post_raw(
            "/api/v1/session-create",
            b"{not json".to_vec(),
            &[("content-type", "application/json"), ("authorization", &format!("Bearer {}", app.token("acme")))],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(json_of(r).await["details"][0]["field"], "body");
}

#[tokio::test]
async fn a_body_over_16_kib_is_413_and_a_non_json_content_type_is_415() {
    let app = TestApp::spawn().await;
    let auth = format!("Bearer {}", app.token("acme"));
    let big = json!({"name": "x".repeat(17 * 1024)}).to_string().into_bytes();
    let r = app
        .post_raw("/api/v1/session-create", big, &[("content-type", "application/json"), ("authorization", &auth)])
        .await;
    assert_eq!(r.status(), 413);
    assert_eq!(json_of(r).await["code"], 413);
    let b = body().to_string().into_bytes();
    for ct in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        let mut h = vec![("authorization", auth.as_str())];
        if let Some(ct) = ct {
            h.push(("content-type", ct));
        }
        let r = app.post_raw("/api/v1/session-create", b.clone(), &h).await;
        assert_eq!(r.status(), 415, "{ct:?}");
        assert_eq!(json_of(r).await["code"], 415);
    }
    let r = app
        .post_raw(
            "/api/v1/session-create",
            b,
            &[
                ("content-type", "application/merge-patch+json; charset=utf-8"),
                ("authorization", &auth),
                ("prefer", "respond-async"),
            ],
        )
        .await;
    assert_eq!(r.status(), 202);
}

#[tokio::test]
async fn a_bad_idempotency_key_is_400_naming_the_header() {
    let app = TestApp::spawn().await;
    let long = "k".repeat(256);
    for key in ["", long.as_str()] {
        let r = app.create_session("acme", &body(), &[("idempotency-key", key), ("prefer", "respond-async")]).await;
        assert_eq!(r.status(), 400, "{key:?}");
        assert_eq!(json_of(r).await["details"][0]["field"], "Idempotency-Key");
    }
}

#[test]
fn random_bodies_and_headers_never_get_a_5xx() {
    use proptest::prelude::*;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let app = rt.block_on(TestApp::spawn_with(|s| {
        s.sync_wait_ms = 20;
        s.rate_per_second = 1e6;
        s.rate_burst = 1_000_000;
    }));
    let token = app.token("fuzz");
    let paths = prop_oneof![
        Just("/api/v1/session-create".to_owned()),
        "[ -~]{0,30}".prop_map(|s| format!("/api/v1/jobs/{}", s.replace(['/', '?', '#', ' ', '%'], ""))),
        "[ -~]{0,30}".prop_map(|s| format!("/hooks/{}", s.replace(['/', '?', '#', ' ', '%'], ""))),
        "[a-z/]{0,20}".prop_map(|s| format!("/{s}")),
    ];
    let bodies = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        (any::<Option<String>>(), any::<Option<String>>(), "QR|CODE|[a-z]{0,3}", "\\+?[0-9]{0,16}").prop_map(
            |(n, c, a, num)| json!({"name": n, "callback": c, "auth_type": a, "number": num}).to_string().into_bytes()
        ),
    ];
    let text = "[ -~]{0,40}";
    let strategy = (
        paths,
        prop_oneof![Just("POST"), Just("GET"), Just("PUT"), Just("DELETE")],
        bodies,
        prop_oneof![Just("application/json".to_owned()), text.prop_map(|s| s)],
        prop_oneof![Just(format!("Bearer {token}")), text.prop_map(|s| s)],
        proptest::option::of(text),
        proptest::option::of(text),
        proptest::option::of(text),
    );
    let mut runner =
        proptest::test_runner::TestRunner::new(proptest::test_runner::Config { cases: 96, ..Default::default() });
    runner
        .run(&strategy, |(path, method, body, ct, auth, idem, prefer, rid)| {
            let status = rt.block_on(async {
                let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
                let mut req = app.client.request(method, format!("{}{path}", app.base)).body(body);
                for (name, value) in [
                    ("content-type", Some(ct)),
                    ("authorization", Some(auth)),
                    ("idempotency-key", idem),
                    ("prefer", prefer),
                    ("x-request-id", rid),
                ] {
                    if let Some(v) = value
                        && let Ok(v) = reqwest::header::HeaderValue::from_str(&v)
                    {
                        req = req.header(name, v);
                    }
                }
                req.send().await.map(|r| r.status().as_u16())
            });
            let status = status.map_err(|e| TestCaseError::fail(format!("request failed: {e}")))?;
            prop_assert!(status < 500, "status {}", status);
            Ok(())
        })
        .unwrap();
}

// ---------------------------------------------------------------- session-create

#[tokio::test]
async fn respond_async_answers_202_with_the_job_its_location_and_job_id() {
    let app = TestApp::spawn().await;
    let r = app.create_async("acme", &body()).await;
    assert_eq!(r.status(), 202);
    assert_eq!(header(r.headers(), "preference-applied"), Some("respond-async"));
    let id = header(r.headers(), "x-job-id").unwrap().to_owned();
    assert_eq!(header(r.headers(), "location").unwrap(), format!("http://127.0.0.1:8080/api/v1/jobs/{id}"));
    let b = json_of(r).await;
    assert_eq!(b["result"], "ACCEPTED");
    assert_eq!(b["data"]["id"], id.as_str());
    assert_eq!(b["data"]["type"], "session-create");
    assert_eq!(b["data"]["status"], "queued");
    assert_eq!(b["data"]["max_attempts"], 6);
    assert_eq!(id.len(), 26, "a ULID");
}

#[tokio::test]
async fn a_sync_create_answers_200_with_the_upstream_body_and_the_tenants_callback_once_the_worker_finishes() {
    let app = TestApp::spawn().await;
    let worker = app.work_one(|_| succeeded("My WhatsApp"));
    let start = Instant::now();
    let b = body();
    let (r, id) = tokio::join!(app.create_session("acme", &b, &[]), worker);
    assert_eq!(r.status(), 200);
    assert!(start.elapsed() < Duration::from_secs(5), "woken by the completion, not by the timeout");
    assert_eq!(header(r.headers(), "x-job-id"), Some(id.to_string().as_str()));
    let b = json_of(r).await;
    let qr_token = app.store.get(id).await.unwrap().unwrap().qr_token;
    let expected = tenant_data("My WhatsApp", "https://callback.example/hook", &qr_token);
    assert_eq!(b, json!({"result": "OK", "data": expected}), "upstream's body, with the tenant's own callback");
    let job = json_of(app.get_job(&app.token("acme"), &id.to_string()).await).await;
    assert_eq!(job["data"]["response"], expected);
    assert!(app.metrics().await.contains("wgate_sync_wait_seconds_count 1"));
}

#[tokio::test]
async fn failed_and_dead_jobs_answer_502_422_or_504_with_upstream_details() {
    let app = TestApp::spawn().await;
    use wgate_queue::Outcome;
    use wgate_types::ErrorClass::*;
    let cases = [
        (Outcome::Failed(job_error("Unauthorized", "bad key", Credentials)), 502),
        (Outcome::Failed(job_error("Unauthorized", "bad key", Rejected)), 422),
        (Outcome::Dead(job_error("Unauthorized", "bad key", Unavailable)), 502),
        (Outcome::Dead(job_error("Unauthorized", "bad key", Timeout)), 504),
    ];
    for (outcome, code) in cases {
        let label = format!("{outcome:?}");
        let worker = app.work_one(|_| outcome);
        let b = body();
        let (r, id) = tokio::join!(app.create_session("acme", &b, &[]), worker);
        assert_eq!(r.status().as_u16(), code, "{label}");
        assert_eq!(header(r.headers(), "x-job-id"), Some(id.to_string().as_str()));
        let b = json_of(r).await;
        assert_eq!(b["code"], code);
        assert_eq!(
            b["details"],
            json!([{"field": "upstream.name", "problem": "Unauthorized"}, {"field": "upstream.message", "problem": "bad key"}])
        );
    }
}

#[tokio::test]
async fn when_the_wait_runs_out_the_answer_is_202_and_the_preference_is_acknowledged() {
    let app = TestApp::spawn().await;
    let start = Instant::now();
    let r = app.create_session("acme", &body(), &[("prefer", "wait=1")]).await;
    let waited = start.elapsed();
    assert_eq!(r.status(), 202);
    assert!(waited >= Duration::from_secs(1) && waited < Duration::from_secs(3), "{waited:?}");
    assert_eq!(header(r.headers(), "preference-applied"), Some("wait=1"));
    assert!(header(r.headers(), "location").is_some());

    // A wait longer than the server's own is cut to it and not acknowledged.
    let app = TestApp::spawn_with(|s| s.sync_wait_ms = 200).await;
    let start = Instant::now();
    let r = app.create_session("acme", &body(), &[("prefer", "wait=100")]).await;
    assert_eq!(r.status(), 202);
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(header(r.headers(), "preference-applied"), None);
}

#[tokio::test]
async fn a_client_may_ask_for_a_shorter_wait_and_still_gets_the_finished_answer() {
    let app = TestApp::spawn().await;
    let worker = app.work_one(|_| succeeded("My WhatsApp"));
    let b = body();
    let (r, _) = tokio::join!(app.create_session("acme", &b, &[("prefer", "wait=5")]), worker);
    assert_eq!(r.status(), 200);
    assert_eq!(header(r.headers(), "preference-applied"), Some("wait=5"));
}

#[tokio::test]
async fn the_same_idempotency_key_and_body_give_the_same_job_and_another_body_is_422() {
    let app = TestApp::spawn().await;
    let h = [("idempotency-key", "order-42"), ("prefer", "respond-async")];
    let first = app.create_session("acme", &body(), &h).await;
    assert_eq!(first.status(), 202);
    let id = header(first.headers(), "x-job-id").unwrap().to_owned();
    let again = app.create_session("acme", &body(), &h).await;
    assert_eq!(again.status(), 202);
    assert_eq!(header(again.headers(), "x-job-id"), Some(id.as_str()));
    // Another tenant's same key is its own.
    let other = app.create_session("globex", &body(), &h).await;
    assert_ne!(header(other.headers(), "x-job-id"), Some(id.as_str()));
    let before = stored_jobs(&app).await;
    let conflict = app.create_session("acme", &json!({"name": "Other"}), &h).await;
    assert_eq!(conflict.status(), 422);
    let b = json_of(conflict).await;
    assert_eq!(b["code"], 422);
    assert!(b["message"].as_str().unwrap().contains("Idempotency-Key"), "{b}");
    assert_eq!(stored_jobs(&app).await, before, "the refused request made no job and queued nothing");

    // Once finished, the same request gets the same answer.
    assert_eq!(app.work_one(|_| succeeded("My WhatsApp")).await.to_string(), id);
    let done = app.create_session("acme", &body(), &[("idempotency-key", "order-42")]).await;
    assert_eq!(done.status(), 200);
    assert_eq!(header(done.headers(), "x-job-id"), Some(id.as_str()));
    let qr_token = app.store.get(id.parse().unwrap()).await.unwrap().unwrap().qr_token;
    assert_eq!(json_of(done).await["data"], tenant_data("My WhatsApp", "https://callback.example/hook", &qr_token));
}

/// What Redis holds of accepted jobs: job records, queue entries, and each tenant's unfinished jobs.
async fn stored_jobs(app: &TestApp) -> (usize, u64, Vec<(String, u64)>) {
    let mut conn = app.redis.connection().await;
    let prefix = app.keys.prefix();
    let records: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}job:*")).query_async(&mut conn).await.unwrap();
    let entries: u64 = redis::cmd("XLEN")
        .arg(app.keys.stream(wgate_types::JobKind::SessionCreate))
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut pending = Vec::new();
    for tenant in ["acme", "globex"] {
        let n: u64 =
            redis::cmd("SCARD").arg(format!("{prefix}tenant:{tenant}:pending")).query_async(&mut conn).await.unwrap();
        pending.push((tenant.to_owned(), n));
    }
    (records.len(), entries, pending)
}

#[tokio::test]
async fn a_synchronous_repeat_of_an_unfinished_idempotent_request_waits_for_the_same_job() {
    let app = TestApp::spawn().await;
    let first = app.create_session("acme", &body(), &[("idempotency-key", "k-1"), ("prefer", "respond-async")]).await;
    let id = header(first.headers(), "x-job-id").unwrap().to_owned();
    let b = body();
    let (again, worked) = tokio::join!(
        app.create_session("acme", &b, &[("idempotency-key", "k-1")]),
        app.work_one(|_| succeeded("My WhatsApp"))
    );
    assert_eq!(worked.to_string(), id);
    assert_eq!(again.status(), 200);
    assert_eq!(header(again.headers(), "x-job-id"), Some(id.as_str()));
}

#[tokio::test]
async fn a_session_quota_is_403_naming_the_quota_and_a_tenant_override_wins() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tenants.toml");
    std::fs::write(&file, "[tenants.big]\nmax_sessions = 2\n").unwrap();
    let f = file.clone();
    let app = TestApp::spawn_with(move |s| {
        s.max_sessions = Some(1);
        s.tenants_file = Some(f);
    })
    .await;
    assert_eq!(app.create_async("small", &body()).await.status(), 202);
    let r = app.create_async("small", &body()).await;
    assert_eq!(r.status(), 403);
    let msg = json_of(r).await["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("quota") && msg.contains('1'), "{msg}");
    assert_eq!(app.create_async("big", &body()).await.status(), 202);
    assert_eq!(app.create_async("big", &body()).await.status(), 202);
    assert_eq!(app.create_async("big", &body()).await.status(), 403);
}

#[tokio::test]
async fn the_request_id_is_echoed_when_sane_replaced_otherwise_and_stored_in_the_job() {
    let app = TestApp::spawn().await;
    let r = app.create_session("acme", &body(), &[("prefer", "respond-async"), ("x-request-id", "req-1.a_b")]).await;
    assert_eq!(header(r.headers(), "x-request-id"), Some("req-1.a_b"));
    let id: wgate_types::JobId = header(r.headers(), "x-job-id").unwrap().parse().unwrap();
    let mut conn = app.redis.connection().await;
    let stored: Option<String> =
        redis::cmd("HGET").arg(app.keys.job(id)).arg("request_id").query_async(&mut conn).await.unwrap();
    assert_eq!(stored.as_deref(), Some("req-1.a_b"));
    let bad = "x".repeat(129);
    for sent in ["has space", bad.as_str()] {
        let r = app.create_session("acme", &body(), &[("prefer", "respond-async"), ("x-request-id", sent)]).await;
        let got = header(r.headers(), "x-request-id").unwrap();
        assert_ne!(got, sent);
        assert_eq!(got.len(), 26);
    }
    let r = app.client.get(format!("{}/nowhere", app.base)).send().await.unwrap();
    assert!(header(r.headers(), "x-request-id").is_some());
}

// ---------------------------------------------------------------- jobs

#[tokio::test]
async fn a_job_is_served_to_its_tenant_and_is_404_for_another_tenant_or_a_malformed_id() {
    let app = TestApp::spawn().await;
    let r = app.create_async("acme", &body()).await;
    let id = header(r.headers(), "x-job-id").unwrap().to_owned();
    let r = app.get_job(&app.token("acme"), &id).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(r.headers(), "x-job-id"), Some(id.as_str()));
    let b = json_of(r).await;
    assert_eq!(b["result"], "OK");
    for field in [
        "id",
        "type",
        "status",
        "attempts",
        "max_attempts",
        "created_at",
        "updated_at",
        "next_attempt_at",
        "error",
        "response",
    ] {
        assert!(b["data"].get(field).is_some(), "{field}");
    }
    let other = json_of(app.get_job(&app.token("globex"), &id).await).await;
    let missing = json_of(app.get_job(&app.token("acme"), &wgate_types::JobId::new().to_string()).await).await;
    let malformed = json_of(app.get_job(&app.token("acme"), "not-a-ulid").await).await;
    assert_eq!(other, missing);
    assert_eq!(other, malformed);
    assert_eq!(other["code"], 404);
    assert_eq!(app.get_job(&app.token_with_scope("acme", "sessions:write"), &id).await.status(), 403);
}

#[tokio::test]
async fn replay_requeues_a_dead_job_and_is_409_for_a_live_one() {
    let app = TestApp::spawn().await;
    let r = app.create_async("acme", &body()).await;
    let id = header(r.headers(), "x-job-id").unwrap().to_owned();
    let admin = app.token_with_scope("acme", "admin sessions:read");
    assert_eq!(app.replay_job(&app.token("acme"), &id).await.status(), 403);
    let r = app.replay_job(&admin, &id).await;
    assert_eq!(r.status(), 409);
    assert_eq!(json_of(r).await["code"], 409);
    let error = job_error("Timeout", "no answer", wgate_types::ErrorClass::Timeout);
    assert_eq!(app.work_one(|_| wgate_queue::Outcome::Dead(error)).await.to_string(), id);
    let r = app.replay_job(&admin, &id).await;
    assert_eq!(r.status(), 202);
    assert_eq!(header(r.headers(), "x-job-id"), Some(id.as_str()));
    assert_eq!(json_of(r).await["data"]["status"], "queued");
    assert_eq!(app.replay_job(&app.token_with_scope("globex", "admin"), &id).await.status(), 404);
}

// ---------------------------------------------------------------- webhook relay

/// A tenant callback that records what it receives and answers `status`.
async fn callback_server(status: Arc<Mutex<u16>>, seen: Arc<Mutex<Vec<Value>>>) -> String {
    let server = actix_web::HttpServer::new(move || {
        let (status, seen) = (status.clone(), seen.clone());
        actix_web::App::new().route(
            "/hook",
            web::post().to(move |body: web::Json<Value>| {
                let (status, seen) = (status.clone(), seen.clone());
                async move {
                    seen.lock().unwrap().push(body.into_inner());
                    let code = *status.lock().unwrap();
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap()).finish()
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    format!("http://{addr}/hook")
}

async fn hook_token_of(app: &TestApp, id: &str) -> String {
    let mut conn = app.redis.connection().await;
    redis::cmd("HGET").arg(app.keys.job(id.parse().unwrap())).arg("hook_token").query_async(&mut conn).await.unwrap()
}

#[tokio::test]
async fn a_webhook_is_relayed_and_acknowledged_only_when_the_tenant_acknowledges() {
    let app = TestApp::spawn().await;
    let status = Arc::new(Mutex::new(200));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let callback = callback_server(status.clone(), seen.clone()).await;
    let r = app.create_async("acme", &json!({"name": "Shop", "callback": callback})).await;
    let id = header(r.headers(), "x-job-id").unwrap().to_owned();
    let token = hook_token_of(&app, &id).await;
    assert!(token.len() >= 22, "at least 128 bits");
    let event = json!({"id": 77, "whatsapp_id": "6345454545454", "event_action": "ready", "event_date": "2022-10-11 19:30:14", "status_code": 200, "event_data": {}});
    let r = app.hook(&token, &event).await;
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r).await, json!({"result": "OK", "id": 77}));
    assert_eq!(seen.lock().unwrap().as_slice(), std::slice::from_ref(&event));

    *status.lock().unwrap() = 500;
    let r = app.hook(&token, &event).await;
    assert_eq!(r.status(), 502, "WhatsGate must retry");
    assert_eq!(json_of(r).await["code"], 502);
}

#[tokio::test]
async fn a_tenant_callback_slower_than_the_hook_timeout_is_given_up_on_and_whatsgate_told_to_retry() {
    // The callback takes 30 s to answer; the relay waits WGATE_HOOK_TIMEOUT_MS (400 ms) for it.
    let server = actix_web::HttpServer::new(|| {
        actix_web::App::new().route(
            "/hook",
            web::post().to(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                HttpResponse::Ok().finish()
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(0)
    .bind("127.0.0.1:0")
    .unwrap();
    let callback = format!("http://{}/hook", server.addrs()[0]);
    let server = server.run();
    let stop = server.handle();
    tokio::spawn(server);
    let app = TestApp::spawn_with(|s| s.hook_timeout_ms = 400).await;
    let r = app.create_async("acme", &json!({"name": "Slow", "callback": callback})).await;
    let id = header(r.headers(), "x-job-id").unwrap().to_owned();
    let token = hook_token_of(&app, &id).await;
    let start = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(10), app.hook(&token, &json!({"id": 5})))
        .await
        .expect("the relay answered WhatsGate within 10 s");
    let took = start.elapsed();
    assert_eq!(r.status(), 502, "WhatsGate must retry");
    assert!(took >= Duration::from_millis(400), "gave up after {took:?}, before the hook timeout");
    assert!(took < Duration::from_millis(2_000), "waited {took:?} for a 400 ms hook timeout");
    stop.stop(false).await;
}

#[tokio::test]
async fn an_unknown_hook_is_404_and_a_job_without_callback_is_acknowledged_and_dropped() {
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
}

// ---------------------------------------------------------------- rate limits

#[tokio::test]
async fn a_tenant_over_its_write_burst_gets_429_with_retry_after_and_others_are_not_limited() {
    let app = TestApp::spawn_with(|s| {
        s.rate_per_second = 0.5;
        s.rate_burst = 3;
    })
    .await;
    for remaining in [2, 1, 0] {
        let r = app.create_async("acme", &body()).await;
        assert_eq!(r.status(), 202);
        assert_eq!(header(r.headers(), "ratelimit-policy"), Some("\"write\";q=3;w=6"));
        let current = header(r.headers(), "ratelimit").unwrap();
        assert!(current.starts_with(&format!("\"write\";r={remaining};t=")), "{current}");
    }
    let r = app.create_async("acme", &body()).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = header(r.headers(), "retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert!(header(r.headers(), "ratelimit").unwrap().starts_with("\"write\";r=0;t="));
    assert_eq!(json_of(r).await["code"], 429);
    assert_eq!(app.create_async("globex", &body()).await.status(), 202, "another tenant is not limited");
    let r = app.get_job(&app.token("acme"), &wgate_types::JobId::new().to_string()).await;
    assert_eq!(r.status(), 404, "reads have their own bucket");
    assert_eq!(header(r.headers(), "ratelimit-policy"), Some("\"read\";q=30;w=6"));
    assert!(app.metrics().await.contains("wgate_rate_limited_total{tenant=\"acme\"} 1"));
}

#[tokio::test]
async fn tenant_rate_overrides_apply_and_reload_when_the_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tenants.toml");
    std::fs::write(&file, "[tenants.acme]\nburst = 1\nrate_per_second = 0.1\n").unwrap();
    let f = file.clone();
    let app = TestApp::spawn_with(move |s| {
        s.tenants_file = Some(f);
        s.tenants_poll_ms = 20;
    })
    .await;
    assert_eq!(app.create_async("acme", &body()).await.status(), 202);
    assert_eq!(app.create_async("acme", &body()).await.status(), 429);
    std::fs::write(&file, "[tenants.acme]\nburst = 50\nrate_per_second = 100\n# changed\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = app.create_async("acme", &body()).await;
        if r.status() == 202 {
            assert_eq!(header(r.headers(), "ratelimit-policy"), Some("\"write\";q=50;w=1"));
            break;
        }
        assert!(Instant::now() < deadline, "the changed file was not reloaded");
        pause(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_tenants_file_is_reloaded_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tenants.toml");
    std::fs::write(&file, "[tenants.hup]\nburst = 1\nrate_per_second = 0.1\n").unwrap();
    let f = file.clone();
    let app = TestApp::spawn_with(move |s| {
        s.tenants_file = Some(f);
        s.tenants_poll_ms = 3_600_000;
    })
    .await;
    assert_eq!(app.create_async("hup", &body()).await.status(), 202);
    assert_eq!(app.create_async("hup", &body()).await.status(), 429);
    std::fs::write(&file, "[tenants.hup]\nburst = 40\nrate_per_second = 100\n").unwrap();
    nix::sys::signal::raise(nix::sys::signal::SIGHUP).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.create_async("hup", &body()).await.status() != 202 {
        assert!(Instant::now() < deadline, "SIGHUP did not reload the file");
        pause(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------- Redis outage

#[tokio::test]
async fn a_dead_redis_is_503_within_a_second_and_unready_then_everything_recovers() {
    let mut app = TestApp::spawn().await;
    assert_eq!(app.create_async("acme", &body()).await.status(), 202);
    assert_eq!(app.readyz().await, 200);
    app.redis.kill();
    for _ in 0..3 {
        unavailable_within_a_second("a create", app.create_async("acme", &body())).await;
    }
    let missing = wgate_types::JobId::new().to_string();
    unavailable_within_a_second("a job read", app.get_job(&app.token("acme"), &missing)).await;
    let start = Instant::now();
    assert_eq!(app.readyz().await, 503);
    assert!(start.elapsed() <= REDIS_DOWN_BOUND, "/readyz answered after {:?}", start.elapsed());
    assert!(app.metrics().await.contains("wgate_redis_errors_total{op=\"enqueue\"}"));

    app.redis.start_again().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.readyz().await != 200 {
        assert!(Instant::now() < deadline, "not ready again after Redis came back");
        pause(Duration::from_millis(50)).await;
    }
    let r = app.create_async("acme", &body()).await;
    assert_eq!(r.status(), 202);
    let id = header(r.headers(), "x-job-id").unwrap().to_owned();
    assert_eq!(app.get_job(&app.token("acme"), &id).await.status(), 200, "what was acknowledged is stored");
}

/// The bound on an answer while Redis hangs or is down: the 1 s Redis timeout, plus scheduling slack on a busy
/// machine.
const REDIS_DOWN_BOUND: Duration = Duration::from_millis(1200);

/// Asserts that `answer` is the 503 of an unreachable Redis, given within a second.
async fn unavailable_within_a_second(what: &str, answer: impl std::future::Future<Output = reqwest::Response>) {
    let start = Instant::now();
    let Ok(r) = tokio::time::timeout(Duration::from_secs(5), answer).await else {
        panic!("{what} got no answer within 5 s while Redis was unreachable");
    };
    let took = start.elapsed();
    assert_eq!(r.status(), 503, "{what}");
    assert!(took <= REDIS_DOWN_BOUND, "{what} answered after {took:?}");
    assert_eq!(header(r.headers(), "retry-after"), Some("1"), "{what}");
    assert_eq!(json_of(r).await["code"], 503, "{what}");
}

#[tokio::test]
async fn a_frozen_redis_is_503_within_a_second_and_the_first_request_after_it_thaws_is_served() {
    let app = TestApp::spawn().await;
    let r = app.create_async("acme", &body()).await;
    assert_eq!(r.status(), 202);
    let id = header(r.headers(), "x-job-id").unwrap().to_owned();
    let token = app.token("acme");
    assert_eq!(app.readyz().await, 200);

    // Frozen for over six seconds: past the completion subscription's keepalive (5 s), which then fails too.
    let frozen = app.redis.freeze();
    for _ in 0..3 {
        unavailable_within_a_second("a create", app.create_async("acme", &body())).await;
        unavailable_within_a_second("a job read", app.get_job(&token, &id)).await;
        let start = Instant::now();
        assert_eq!(app.readyz().await, 503);
        assert!(start.elapsed() <= REDIS_DOWN_BOUND, "/readyz answered after {:?}", start.elapsed());
    }
    frozen.thaw();

    // Nothing left from the freeze delays the next requests: each is served at once.
    let start = Instant::now();
    assert_eq!(app.readyz().await, 200, "ready at the first probe after the thaw");
    assert_eq!(app.get_job(&token, &id).await.status(), 200, "the first read after the thaw");
    let r = app.create_async("acme", &body()).await;
    assert_eq!(r.status(), 202, "the first create after the thaw");
    let created = header(r.headers(), "x-job-id").unwrap().to_owned();
    assert_eq!(app.get_job(&token, &created).await.status(), 200, "what was acknowledged is stored");
    assert!(start.elapsed() < Duration::from_millis(500), "service came back after {:?}", start.elapsed());
    // A synchronous create is answered by the job's completion: the subscription is back as well.
    // Work off what is queued: the jobs acknowledged, and those whose create was answered 503 while its script
    // sat unread in the hung server's socket, which Redis ran when it woke (a client retries those with its
    // Idempotency-Key to get the same job).
    let queued = app.store.queue_counts().await.unwrap().pending;
    assert!((2..=5).contains(&queued), "{queued} jobs queued");
    let mut worked = Vec::new();
    for _ in 0..queued {
        worked.push(app.work_one(|_| succeeded("My WhatsApp")).await.to_string());
    }
    assert!(worked.contains(&id) && worked.contains(&created), "{worked:?}");
    let start = Instant::now();
    let b = body();
    let (r, _) = tokio::join!(app.create_session("acme", &b, &[]), app.work_one(|_| succeeded("My WhatsApp")));
    assert_eq!(r.status(), 200, "a synchronous create right after the thaw");
    assert!(start.elapsed() < Duration::from_secs(2), "answered after {:?}", start.elapsed());
}

// ---------------------------------------------------------------- metrics and errors

#[tokio::test]
async fn metrics_label_routes_by_pattern_and_count_enqueued_jobs() {
    let app = TestApp::spawn().await;
    app.create_async("acme", &body()).await;
    app.get_job(&app.token("acme"), "01ARZ3NDEKTSV4RRFFQ69G5FAV").await;
    app.client.get(format!("{}/no/such/path", app.base)).send().await.unwrap();
    let m = app.metrics().await;
    for needle in [
        "wgate_http_requests_total{method=\"POST\",route=\"/api/v1/session-create\",status=\"202\"} 1",
        "wgate_http_requests_total{method=\"GET\",route=\"/api/v1/jobs/{id}\",status=\"404\"} 1",
        "wgate_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1",
        "wgate_jobs_enqueued_total{tenant=\"acme\",type=\"session-create\"} 1",
        "wgate_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/session-create\",le=\"0.0005\"}",
        "# HELP wgate_sync_wait_seconds",
        "# HELP wgate_redis_errors_total",
        "wgate_build_info",
    ] {
        assert!(m.contains(needle), "{needle}\n{m}");
    }
    assert!(!m.contains("01ARZ3NDEKTSV4RRFFQ69G5FAV"), "never the raw path");
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_with_an_error_body() {
    let app = TestApp::spawn().await;
    let r = app.client.get(format!("{}/nowhere", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let b = json_of(r).await;
    assert_eq!(
        (b["result"].as_str(), b["code"].as_u64(), b["name"].as_str()),
        (Some("ERROR"), Some(404), Some("Not Found"))
    );
    let r = app.client.get(format!("{}/api/v1/session-create", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(header(r.headers(), "allow"), Some("POST"), "a 405 names the allowed method (RFC 9110)");
    let b = json_of(r).await;
    assert_eq!((b["code"].as_u64(), b["name"].as_str()), (Some(405), Some("Method Not Allowed")));
    let r = app.client.delete(format!("{}/api/v1/jobs/x", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(header(r.headers(), "allow"), Some("GET"));
    let r = app.client.post(format!("{}/qr/some-token/state", app.base)).send().await.unwrap();
    assert_eq!((r.status().as_u16(), header(r.headers(), "allow")), (405, Some("GET")));
}
