//! JWT verification through the API's real `Verifier` (header, signature, `exp`/`nbf`/`iat`/`aud`/`sub`,
//! scopes), one algorithm family at a time: HS256 (shared secret), RS256 (RSA 2048), ES256 (P-256), EdDSA
//! (Ed25519). The keys are the API tests' own (`crates/api-proxy/tests/api/keys/`). Public-key tokens are measured
//! on first use (a token the long-lived verifier has not seen: signature checked, then remembered) and on repeated
//! use (signature remembered, claims checked), beside the backend's signature check alone on the same token: the
//! floor a first use cannot go under on this machine.
//!
//! `cargo bench -p wgate-api-proxy --bench auth`

// In a benchmark a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::{hint::black_box, path::PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::json;
use wgate_api_proxy::{
    ApiSettings,
    auth::{AuthConfig, Verifier},
};

const SECRET: &str = "bench-secret-0123456789abcdef";

fn keys() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/keys")
}

fn token(alg: Algorithm) -> String {
    token_numbered(alg, 0)
}

/// A token of `alg` told apart from the others by its `jti`: a first use each time.
fn token_numbered(alg: Algorithm, n: u64) -> String {
    let dir = keys();
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let key = match alg {
        Algorithm::HS256 => EncodingKey::from_secret(SECRET.as_bytes()),
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&read("rsa_private.pem")).unwrap(),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&read("ec_private.pem")).unwrap(),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&read("ed_private.pem")).unwrap(),
        other => panic!("no key for {other:?}"),
    };
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({"sub": "acme", "exp": now + 3600, "iat": now, "aud": "wgate",
        "scope": "sessions:write sessions:read", "jti": n.to_string()});
    jsonwebtoken::encode(&Header::new(alg), &claims, &key).unwrap()
}

fn public_key(alg: Algorithm) -> DecodingKey {
    let read = |f: &str| std::fs::read(keys().join(f)).unwrap();
    match alg {
        Algorithm::RS256 => DecodingKey::from_rsa_pem(&read("rsa.pem")).unwrap(),
        Algorithm::ES256 => DecodingKey::from_ec_pem(&read("ec.pem")).unwrap(),
        Algorithm::EdDSA => DecodingKey::from_ed_pem(&read("ed.pem")).unwrap(),
        other => panic!("no key for {other:?}"),
    }
}

fn jwt_verify(c: &mut Criterion) {
    let mut settings = ApiSettings::on_loopback("redis://127.0.0.1:1", "bench", SECRET);
    let dir = keys();
    let pems: Vec<String> = ["rsa.pem", "ec.pem", "ed.pem"].iter().map(|f| dir.join(f).display().to_string()).collect();
    settings.jwt_public_keys = Some(pems.join(","));
    let verifier = Verifier::new(&AuthConfig::from_settings(&settings)).unwrap();

    let mut group = c.benchmark_group("jwt_verify");
    for (name, alg) in [
        ("hs256", Algorithm::HS256),
        ("rs256", Algorithm::RS256),
        ("es256", Algorithm::ES256),
        ("eddsa", Algorithm::EdDSA),
    ] {
        let t = token(alg);
        // A token that would not verify is a broken benchmark, not a fast one.
        let p = futures::executor::block_on(verifier.verify(&t)).unwrap();
        assert_eq!(p.tenant.as_str(), "acme");
        // Repeated use of one token: a tenant's steady state (public-key tokens come from the verified cache).
        group.bench_function(name, |b| b.iter(|| futures::executor::block_on(verifier.verify(black_box(&t))).unwrap()));
        if alg != Algorithm::HS256 {
            // The floor under a first use, in the same run: the backend's signature check alone (what
            // `jsonwebtoken::decode` spends in AWS-LC), with no header, claims or cache around it.
            let (message, signature) = t.rsplit_once('.').unwrap();
            let public = public_key(alg);
            assert!(jsonwebtoken::crypto::verify(signature, message.as_bytes(), &public, alg).unwrap());
            group.bench_function(format!("{name}_signature_only"), |b| {
                b.iter(|| jsonwebtoken::crypto::verify(black_box(signature), message.as_bytes(), &public, alg).unwrap())
            });
            // First use of a token: the signature is checked. As in the API, on the one long-lived verifier, which
            // remembers each token among the others it holds: each run takes a token it has not seen (signed
            // outside the timing). A fresh verifier per run measured 2 - 4 us less: its cache is empty.
            let mut n = 0;
            group.bench_function(format!("{name}_first_use"), |b| {
                b.iter_batched(
                    || {
                        n += 1;
                        token_numbered(alg, n)
                    },
                    |t| futures::executor::block_on(verifier.verify(black_box(&t))).unwrap(),
                    criterion::BatchSize::SmallInput,
                )
            });
        }
    }
    // The refusal path: a valid HS256 token signed with another secret.
    let now = jsonwebtoken::get_current_timestamp();
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "acme", "exp": now + 3600, "aud": "wgate"}),
        &EncodingKey::from_secret(b"not-the-secret"),
    )
    .unwrap();
    group.bench_function("hs256_bad_signature", |b| {
        b.iter(|| futures::executor::block_on(verifier.verify(black_box(&forged))).unwrap_err())
    });
    group.finish();
}

criterion_group!(benches, jwt_verify);
criterion_main!(benches);
