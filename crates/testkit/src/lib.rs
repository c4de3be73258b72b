//! Test helpers shared by every crate's integration tests: a private `redis-server` per test, ports that no other
//! socket can take, a child process's own announcement of its address, a webhook receiver, a proxy that loses one
//! Redis answer on demand, and a test-only tracing initialiser. No service depends on this crate; `wgate dev` uses
//! its `RedisServer` for a throwaway Redis.
#![warn(unreachable_pub)]

mod certs;
mod cluster;
mod cut_proxy;
mod ports;
mod process;
mod receiver;
mod redis_server;
mod sentinel;
mod worker_process;

pub use certs::TestCertificates;
pub use cluster::RedisCluster;
pub use cut_proxy::CutProxy;
pub use ports::{ClosedPort, free_port};
pub use process::{ChildLog, address_in, announced, announced_with};
pub use receiver::{Behaviour, Received, Receiver};
pub use redis_server::{Frozen, RedisServer, RedisServerOptions, RedisTlsOptions};
pub use sentinel::{DOWN_AFTER_MS, SentinelGroup};
pub use worker_process::WorkerProcess;

/// A namespace unique to this call, so tests that share one Redis never see each other's keys.
pub fn unique_namespace(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// An HTTP client for tests (installs the TLS provider first, which reqwest needs here).
pub fn http_client() -> reqwest::Client {
    wgate_service::init_crypto();
    reqwest::Client::builder().build().expect("building an HTTP client")
}
