//! The in-process cost of one session-create before it reaches Redis: verifying an HS256 JWT, drawing from the
//! tenant's rate-limit bucket, and validating the body. Target: at most 5 us per request (docs/BENCHMARKS.md).
//!
//! `cargo bench -p wgate-api-proxy --bench request_path`

// In a benchmark a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use wgate_api_proxy::{
    ApiSettings,
    auth::{AuthConfig, Verifier, token_of},
    limits::{Bucket, Limits, Rate},
};
use wgate_types::SessionCreate;

fn request_path(c: &mut Criterion) {
    let secret = "bench-secret-0123456789abcdef";
    let settings = ApiSettings::on_loopback("redis://127.0.0.1:1", "bench", secret);
    let verifier = Verifier::new(&AuthConfig::from_settings(&settings)).unwrap();
    // Enough for a burst of every iteration criterion runs, so every check is the "allowed" path.
    let limits = Limits::new(Rate { per_second: 1e9, burst: u32::MAX / 16 });
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({"sub": "acme", "exp": now + 3600, "iat": now, "aud": "wgate"});
    let token =
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()))
            .unwrap();
    let req = actix_web::test::TestRequest::default()
        .insert_header(("authorization", format!("Bearer {token}")))
        .to_http_request();
    let body = br#"{"name":"My WhatsApp","callback":"https://callback.example/hook","auth_type":"CODE","number":"79999999999"}"#;

    let mut group = c.benchmark_group("request_path");
    group.bench_function("jwt_hs256_verify", |b| {
        b.iter(|| futures::executor::block_on(verifier.verify(black_box(&token))).unwrap())
    });
    let tenant = wgate_types::TenantId::parse("acme").unwrap();
    group.bench_function("rate_limit_check", |b| b.iter(|| limits.check(black_box(&tenant), Bucket::Write)));
    group.bench_function("body_validation", |b| b.iter(|| SessionCreate::from_json(black_box(body)).unwrap()));
    group.bench_function("jwt_plus_limit_plus_validation", |b| {
        b.iter(|| {
            let token = token_of(black_box(&req)).unwrap();
            let principal = futures::executor::block_on(verifier.verify(token)).unwrap();
            let decision = limits.check(&principal.tenant, Bucket::Write);
            assert!(decision.allowed);
            SessionCreate::from_json(black_box(body)).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, request_path);
criterion_main!(benches);
