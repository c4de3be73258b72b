//! The WhatsGate HTTP client, shared by the worker (session-create) and the API (session commands), and the
//! classification of upstream errors by how the caller must react.
//!
//! WhatsGate answers every error with HTTP 500 `{"name","message","code":0}`, so the class comes from `name`:
//! credentials-like names are [`ErrorClass::Credentials`], validation-like names [`ErrorClass::Rejected`] (both
//! permanent), anything else — other 500s, 502/503/504, 429, connect errors — [`ErrorClass::Unavailable`] and
//! timeouts [`ErrorClass::Timeout`] (both retried). [`UpstreamError::maybe_sent`] says whether the request may have
//! reached WhatsGate and created something, which decides whether the next attempt reconciles first.
#![warn(unreachable_pub)]

mod client;
mod error;
mod metrics;
mod settings;

pub use client::{SessionsPage, SessionsQuery, Upstream, UpstreamConfig};
pub use error::UpstreamError;
pub use metrics::UpstreamMetrics;
pub use settings::UpstreamSettings;
pub use wgate_types::ErrorClass;
