//! Body validation of session-create (`SessionCreate::from_json`: parse, then each field through its domain
//! type), for a minimal QR body, a CODE body with a callback, and a body refused on two fields.
//!
//! `cargo bench -p wgate-types --bench validation`

#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use wgate_types::SessionCreate;

fn validation(c: &mut Criterion) {
    let qr = br#"{"name":"My WhatsApp"}"#;
    let code = br#"{"name":"My WhatsApp","callback":"https://callback.example/hook","auth_type":"CODE","number":"79999999999"}"#;
    let bad = br#"{"name":"","callback":"ftp://x","auth_type":"CODE","number":"12"}"#;
    assert!(SessionCreate::from_json(bad).is_err());

    let mut group = c.benchmark_group("validation");
    group.bench_function("session_create_qr", |b| b.iter(|| SessionCreate::from_json(black_box(qr)).unwrap()));
    group.bench_function("session_create_code_with_callback", |b| {
        b.iter(|| SessionCreate::from_json(black_box(code)).unwrap())
    });
    group
        .bench_function("session_create_refused", |b| b.iter(|| SessionCreate::from_json(black_box(bad)).unwrap_err()));
    group.finish();
}

criterion_group!(benches, validation);
criterion_main!(benches);
