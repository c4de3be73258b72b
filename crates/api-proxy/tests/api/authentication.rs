//! Authentication.

#[allow(unused_imports)]
use super::*;

pub(crate) async fn create_with_token(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/api/v1/session-create", app.base))
        .bearer_auth(token)
        .header("prefer", "respond-async")
        .json(&body())
        .send()
        .await
        .unwrap()
}

pub(crate) async fn assert_invalid_token(app: &TestApp, token: &str) {
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

pub(crate) fn pem_keys() -> String {
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
    let mut settings = wgate_api_proxy::ApiSettings::on_loopback("redis://127.0.0.1:1", "unused", SECRET);
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

/// Every public-key algorithm verifies with its own key, whether the key was parsed once (PEM files, EC and Ed25519
/// keys) or is held as an RSA JWK's modulus and exponent; a token whose claims or signature were changed is refused.
#[tokio::test]
async fn each_public_key_algorithm_verifies_its_tokens_and_refuses_changed_ones() {
    use wgate_api_proxy::auth::{AuthConfig, AuthError, Verifier};
    let mut rsa_jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&rsa_private_key(), Algorithm::RS256).unwrap();
    rsa_jwk.common.key_id = Some("rsa-jwk".into());
    let keys = Arc::new(Mutex::new(json!({"keys": [rsa_jwk]})));
    let url = jwks_server(keys, Arc::new(AtomicUsize::new(0))).await;
    let mut settings = wgate_api_proxy::ApiSettings::on_loopback("redis://127.0.0.1:1", "unused", SECRET);
    settings.jwt_public_keys = Some(pem_keys());
    settings.jwt_jwks_url = Some(url);
    let verifier = Verifier::new(&AuthConfig::from_settings(&settings)).unwrap();
    verifier.warm_up().await;

    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let cases = [
        (Algorithm::RS256, "rsa"),
        (Algorithm::RS512, "rsa"),
        (Algorithm::PS256, "rsa"),
        (Algorithm::ES256, "ec"),
        (Algorithm::EdDSA, "ed"),
        (Algorithm::RS256, "rsa-jwk"),
    ];
    for (alg, kid) in cases {
        let good = signed(alg, Some(kid), &claims("acme", json!({})));
        let verified = verifier.verify(&good).await.map(|p| p.tenant.to_string());
        assert_eq!(verified, Ok("acme".to_owned()), "{alg:?} under {kid}");
        let [header, payload, signature] = good.split('.').collect::<Vec<_>>()[..] else { panic!("{good}") };
        let other_claims = format!("{header}.{}.{signature}", b64(&claims("other", json!({}))));
        assert_eq!(verifier.verify(&other_claims).await, Err(AuthError::Signature), "{alg:?} under {kid}");
        let mut flipped = signature.to_owned().into_bytes();
        let middle = flipped.len() / 2;
        flipped[middle] = if flipped[middle] == b'A' { b'B' } else { b'A' };
        let other_signature = format!("{header}.{payload}.{}", String::from_utf8(flipped).unwrap());
        assert_eq!(verifier.verify(&other_signature).await, Err(AuthError::Signature), "{alg:?} under {kid}");
    }
    // A token under an algorithm its key does not take (ES384 on a P-256 key, RS256 on an EC key) is refused too.
    let es = signed(Algorithm::ES256, Some("ec"), &claims("acme", json!({})));
    let [_, payload, signature] = es.split('.').collect::<Vec<_>>()[..] else { panic!("{es}") };
    let es384 = format!("{}.{payload}.{signature}", b64(&json!({"alg": "ES384", "kid": "ec"})));
    assert_eq!(verifier.verify(&es384).await, Err(AuthError::Signature));
    let rs = format!("{}.{payload}.{signature}", b64(&json!({"alg": "RS256", "kid": "ec"})));
    assert!(verifier.verify(&rs).await.is_err());
}

/// A JWKS endpoint that counts its fetches and serves whatever `keys` holds.
pub(crate) async fn jwks_server(keys: Arc<Mutex<Value>>, hits: Arc<AtomicUsize>) -> String {
    let addr = serve(move |cfg| {
        let (keys, hits) = (keys.clone(), hits.clone());
        cfg.route(
            "/jwks",
            web::get().to(move || {
                let (keys, hits) = (keys.clone(), hits.clone());
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    let body = keys.lock().unwrap().clone();
                    HttpResponse::Ok().json(body)
                }
            }),
        );
    });
    format!("http://{addr}/jwks")
}

pub(crate) fn pem_der(file: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(keys_dir().join(file)).unwrap();
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
}

pub(crate) fn ec_jwk(kid: &str) -> Value {
    let der = pem_der("ec.pem");
    let point = &der[der.len() - 64..];
    let b = |x: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(x);
    json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "x": b(&point[..32]), "y": b(&point[32..])})
}

pub(crate) fn ed_jwk(kid: &str) -> Value {
    let der = pem_der("ed.pem");
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&der[der.len() - 32..]);
    json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": x})
}

/// An API that trusts only a JWKS endpoint serving `k1` (the keys it serves and its fetch count are returned).
pub(crate) async fn app_over_jwks(cooldown_ms: u64) -> (TestApp, Arc<Mutex<Value>>, Arc<AtomicUsize>) {
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
