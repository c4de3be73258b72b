//! Test helpers shared by every crate's integration tests: a private `redis-server` per test, free ports, and a
//! test-only tracing initialiser. No service depends on this crate; `wgate dev` uses its `RedisServer` for a throwaway Redis.

mod certs;
mod redis_server;
mod sentinel;

pub use certs::TestCertificates;
pub use redis_server::{RedisServer, RedisServerOptions, RedisTlsOptions};
pub use sentinel::{DOWN_AFTER_MS, SentinelGroup};

/// A free TCP port on 127.0.0.1 at the time of the call (the OS may hand it out again later, so bind soon).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// A namespace unique to this call, so tests that share one Redis never see each other's keys.
pub fn unique_namespace(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// An HTTP client for tests (installs the TLS provider first, which reqwest needs here).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().expect("building an HTTP client")
}
