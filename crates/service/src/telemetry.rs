//! Tracing: JSON (default, for log shippers) or pretty (for people). Secrets never reach a log because they are
//! `secrecy` values whose `Debug` prints a placeholder.

use serde::Deserialize;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Json,
    Pretty,
}

/// What every process logs and how (`WGATE_LOG`, `WGATE_LOG_FORMAT`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LogSettings {
    /// An `EnvFilter` directive such as `info` or `wgate=debug,info`.
    pub log: String,
    pub log_format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { log: "info".into(), log_format: LogFormat::Json }
    }
}

impl LogSettings {
    /// Installs the global subscriber these settings describe.
    pub fn init(&self) -> anyhow::Result<()> {
        init_tracing(&self.log, self.log_format)
    }
}

/// Installs the global subscriber. `filter` is an `EnvFilter` directive such as `info` or `wgate=debug,info`.
pub fn init_tracing(filter: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(filter).map_err(|e| anyhow::anyhow!("WGATE_LOG: invalid filter: {e}"))?;
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Json => registry
            .with(fmt::layer().json().flatten_event(true).with_current_span(true).with_span_list(false))
            .try_init()?,
        LogFormat::Pretty => registry.with(fmt::layer().compact()).try_init()?,
    }
    Ok(())
}

/// For tests: prints only when `TEST_LOG` is set (e.g. `TEST_LOG=debug cargo test`); safe to call many times.
pub fn init_test_tracing() {
    if let Ok(filter) = std::env::var("TEST_LOG") {
        let _ = tracing_subscriber::registry()
            .with(EnvFilter::new(filter))
            .with(fmt::layer().compact().with_test_writer())
            .try_init();
    }
}
