//! A job record's (de)serialisation: `JobRecord` to JSON and back (a finished record, with upstream's session
//! object as the response), and the public `JobView` the API serves for `GET /api/v1/jobs/{id}`.
//! (The Redis hash codec of `wgate-queue` is crate-private; its cost is inside the queue benchmark's scripts.)
//!
//! `cargo bench -p wgate-types --bench jobs`

#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use time::OffsetDateTime;
use wgate_types::{JobId, JobRecord, JobStatus, NewJob, SessionCreate, TenantId};

fn finished_record() -> JobRecord {
    let request = SessionCreate::from_json(
        br#"{"name":"My WhatsApp","callback":"https://callback.example/hook","auth_type":"CODE","number":"79999999999"}"#,
    )
    .unwrap();
    let id = JobId::new();
    let now = OffsetDateTime::now_utc();
    let new = NewJob {
        tenant: TenantId::parse("acme").unwrap(),
        request,
        max_attempts: 6,
        request_id: Some("req-0123456789abcdef".into()),
        hook_token: "hook-token-0123456789abcdefghijklmnop".into(),
        qr_token: "qr-token-0123456789abcdefghijklmnop".into(),
    };
    let mut job = JobRecord::accepted(id, new, now);
    job.status = JobStatus::Succeeded;
    job.attempts = 2;
    job.response = Some(json!({"id": 151, "name": "My WhatsApp", "unique_id": "6345454545454",
        "status": "PENDING", "callback": "http://gateway.test/hooks/hook-token", "date_add": "2022-10-11 19:30:14",
        "qr": null, "status_name": "Initialization", "pushname": null, "wid": null,
        "qr_link": "https://whatsgate.ru/qr/6345454545454", "code": "ABCD-EFGH"}));
    job
}

fn jobs(c: &mut Criterion) {
    let job = finished_record();
    let bytes = serde_json::to_vec(&job).unwrap();
    assert_eq!(serde_json::from_slice::<JobRecord>(&bytes).unwrap(), job);
    println!("JobRecord JSON: {} bytes", bytes.len());

    let mut group = c.benchmark_group("job_record");
    group.bench_function("to_json", |b| b.iter(|| serde_json::to_vec(black_box(&job)).unwrap()));
    group.bench_function("from_json", |b| b.iter(|| serde_json::from_slice::<JobRecord>(black_box(&bytes)).unwrap()));
    group.bench_function("json_round_trip", |b| {
        b.iter(|| {
            let v = serde_json::to_vec(black_box(&job)).unwrap();
            serde_json::from_slice::<JobRecord>(&v).unwrap()
        })
    });
    group.bench_function("view_to_json", |b| b.iter(|| serde_json::to_vec(&black_box(&job).view()).unwrap()));
    group.finish();
}

criterion_group!(benches, jobs);
criterion_main!(benches);
