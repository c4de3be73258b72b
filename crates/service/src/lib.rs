//! What every wgate process shares: configuration loading (environment + TOML file), tracing, the Prometheus
//! registry with build and process metrics, the admin listener (`/metrics`, `/healthz`, `/readyz`), the
//! shutdown signal and the tenants file.
#![warn(unreachable_pub)]

pub mod admin;
pub mod config;
pub mod metrics;
pub mod shutdown;
pub mod telemetry;
pub mod tenants;

pub use admin::{AdminServer, ReadyCheck};
pub use config::{ConfigError, load_config};
pub use telemetry::{LogFormat, LogSettings, init_test_tracing, init_tracing};

/// Installs the process-wide TLS crypto provider (ring) that reqwest needs. Call it first in every `main`, and
/// before building any HTTP client in tests; calling it again does nothing.
pub fn init_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
