//! The per-tenant rate limiter (`wgate_api_proxy::limits::Limits`, governor GCRA keyed by tenant) with 100,000
//! tenants in it: the cost of one check when every check is for another tenant (the keyed map at its full size,
//! cache-cold), beside one hot tenant, and the memory the 100k tenants' buckets take.
//!
//! `cargo bench -p wgate-api-proxy --bench limits` (env `BENCH_TENANTS`, default 100000). The memory line is printed before
//! criterion's output: resident set size (`VmRSS`) before and after one write and one read check per tenant.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use wgate_api_proxy::limits::{Bucket, Limits, Rate};
use wgate_types::TenantId;

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn tenants(n: usize) -> Vec<TenantId> {
    (0..n).map(|i| TenantId::parse(&format!("tenant-{i:06}")).unwrap()).collect()
}

fn limits(c: &mut Criterion) {
    let n = std::env::var("BENCH_TENANTS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000usize);
    let ids = tenants(n);
    // The default limit (10/s, burst 20): with n tenants cycled, each sees far less than its rate.
    let rate = Rate { per_second: 10.0, burst: 20 };

    let before = rss_bytes();
    let limits = Limits::new(rate);
    for t in &ids {
        assert!(limits.check(t, Bucket::Write).allowed);
        assert!(limits.check(t, Bucket::Read).allowed);
    }
    let after = rss_bytes();
    let delta = after.saturating_sub(before);
    println!(
        "limiter memory: {n} tenants, {} keys (write + read), RSS +{:.1} MiB = {:.0} bytes per tenant \
         (ids kept outside, not counted)",
        limits.tracked_keys(),
        delta as f64 / (1024.0 * 1024.0),
        delta as f64 / n as f64,
    );

    let mut group = c.benchmark_group("rate_limit");
    let mut i = 0usize;
    group.bench_function(format!("check_{n}_tenants_round_robin"), |b| {
        b.iter(|| {
            i = (i + 7919) % n; // a prime stride: no two neighbours in a row
            limits.check(black_box(&ids[i]), Bucket::Write)
        })
    });
    let hot_limits = Limits::new(Rate { per_second: 1e9, burst: u32::MAX / 16 });
    let hot = &ids[0];
    group.bench_function("check_one_tenant", |b| b.iter(|| hot_limits.check(black_box(hot), Bucket::Write)));
    group.finish();
}

criterion_group!(benches, limits);
criterion_main!(benches);
