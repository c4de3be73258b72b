//! The simulator's settings: one clap struct, every flag also an environment variable `WGATE_SIM_<NAME>`.

use std::net::SocketAddr;

use clap::Parser;
use serde::{Deserialize, Serialize};

/// The API key accepted when none is configured.
pub const DEFAULT_API_KEY: &str = "sim-key";

/// Everything `wgate-sim` can be told at start.
///
/// Tests build it with struct update syntax over [`SimConfig::default`], e.g.
/// `SimConfig { listen: "127.0.0.1:0".parse()?, init_ms: 20, ..SimConfig::default() }`.
#[derive(Parser, Clone, Debug)]
#[command(name = "wgate-sim", version, about = "A WhatsGate-compatible simulator for tests, benchmarks and demos",
    long_about = None)]
pub struct SimConfig {
    /// Address to listen on (port 0 picks a free port; the bound address is printed on stdout).
    #[arg(long, env = "WGATE_SIM_LISTEN", value_name = "ADDR", default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,

    /// An accepted `X-Api-Key` value; repeat the flag (or separate by commas) for more. Default `sim-key`.
    #[arg(long = "api-key", env = "WGATE_SIM_API_KEY", value_name = "KEY", value_delimiter = ',')]
    pub api_keys: Vec<String>,

    /// Delay, in milliseconds, before every command (`/api/v1` or `/v1`) is answered.
    #[arg(long, env = "WGATE_SIM_LATENCY_MS", value_name = "N", default_value_t = 0)]
    pub latency_ms: u64,

    /// Share of session-create calls answered 500 InternalError without creating.
    #[arg(long, env = "WGATE_SIM_ERROR_RATE", value_name = "F", default_value_t = 0.0)]
    pub error_rate: f64,

    /// Share of session-create calls answered 429 with `Retry-After: 1` without creating.
    #[arg(long, env = "WGATE_SIM_THROTTLE_RATE", value_name = "F", default_value_t = 0.0)]
    pub throttle_rate: f64,

    /// Share of session-create calls never answered (nothing is created).
    #[arg(long, env = "WGATE_SIM_TIMEOUT_RATE", value_name = "F", default_value_t = 0.0)]
    pub timeout_rate: f64,

    /// Share of session-create calls that create the session and then lose the answer.
    #[arg(long, env = "WGATE_SIM_AMBIGUOUS_RATE", value_name = "F", default_value_t = 0.0)]
    pub ambiguous_rate: f64,

    /// Seed of the random generator (faults, ids, QR values); random when absent.
    #[arg(long, env = "WGATE_SIM_SEED", value_name = "N")]
    pub seed: Option<u64>,

    /// Base of the `qr_link` handed out; default `http://<bound address>`.
    #[arg(long, env = "WGATE_SIM_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// How long a new (or failed) session stays PENDING before it shows a QR/code (AUTH), in milliseconds.
    #[arg(long, env = "WGATE_SIM_INIT_MS", value_name = "N", default_value_t = 300)]
    pub init_ms: u64,

    /// How often the QR (or pairing code) of a session in AUTH changes, in milliseconds.
    #[arg(long, env = "WGATE_SIM_QR_ROTATE_MS", value_name = "N", default_value_t = 20_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub qr_rotate_ms: u64,

    /// Pause between webhook delivery attempts, in milliseconds.
    #[arg(long, env = "WGATE_SIM_WEBHOOK_RETRY_MS", value_name = "N", default_value_t = 20_000)]
    pub webhook_retry_ms: u64,

    /// HTTP worker threads; default the number of cores.
    #[arg(long, env = "WGATE_SIM_WORKERS", value_name = "N")]
    pub workers: Option<usize>,
}

impl Default for SimConfig {
    /// The same values as the command line without flags (and without environment).
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
            api_keys: Vec::new(),
            latency_ms: 0,
            error_rate: 0.0,
            throttle_rate: 0.0,
            timeout_rate: 0.0,
            ambiguous_rate: 0.0,
            seed: None,
            public_url: None,
            init_ms: 300,
            qr_rotate_ms: 20_000,
            webhook_retry_ms: 20_000,
            workers: None,
        }
    }
}

impl SimConfig {
    /// The accepted API keys: the configured ones, or [`DEFAULT_API_KEY`] when none is.
    pub fn effective_api_keys(&self) -> Vec<String> {
        let keys: Vec<String> = self.api_keys.iter().filter(|k| !k.is_empty()).cloned().collect();
        if keys.is_empty() { vec![DEFAULT_API_KEY.to_owned()] } else { keys }
    }

    /// The fault settings the simulator starts with.
    pub fn faults(&self) -> FaultSettings {
        FaultSettings {
            error_rate: self.error_rate,
            throttle_rate: self.throttle_rate,
            timeout_rate: self.timeout_rate,
            ambiguous_rate: self.ambiguous_rate,
            latency_ms: self.latency_ms,
        }
    }
}

/// Fault rates on session-create and the latency of every command; changed at run time by `POST /sim/faults`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultSettings {
    pub error_rate: f64,
    pub throttle_rate: f64,
    pub timeout_rate: f64,
    pub ambiguous_rate: f64,
    pub latency_ms: u64,
}

/// Fault settings that cannot be honoured.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InvalidFaults {
    #[error("{0} must be between 0 and 1, got {1}")]
    RateOutOfRange(&'static str, f64),
    #[error("the fault rates add up to {0}, more than 1")]
    SumOverOne(f64),
}

impl FaultSettings {
    /// Checks that every rate is in `0..=1` and that they add up to at most 1.
    pub fn validate(&self) -> Result<(), InvalidFaults> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("throttle_rate", self.throttle_rate),
            ("timeout_rate", self.timeout_rate),
            ("ambiguous_rate", self.ambiguous_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(InvalidFaults::RateOutOfRange(name, rate));
            }
        }
        let sum = self.error_rate + self.throttle_rate + self.timeout_rate + self.ambiguous_rate;
        // A little slack so that e.g. 0.1 + 0.2 + 0.7 is not refused for rounding.
        if sum > 1.0 + 1e-9 {
            return Err(InvalidFaults::SumOverOne(sum));
        }
        Ok(())
    }
}
