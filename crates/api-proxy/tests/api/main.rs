//! The tenant API against a real redis-server: every test starts the real `Application` on port 0.

// In a test a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod authentication;
mod configuration;
mod egress;
mod hardening;
mod helpers;
mod jobs;
mod messaging;
mod metrics_and_errors;
mod openapi;
mod qr;
mod rate_limits;
mod redis_outage;
mod redis_settings;
mod relay;
mod replay;
mod session_create;
mod sessions;
mod shared_limits;
mod validation;

// Helpers of one area that others use too; each module takes what it needs through `use super::*`.
#[allow(unused_imports)]
pub(crate) use authentication::{
    app_over_jwks, assert_invalid_token, create_with_token, ec_jwk, ed_jwk, jwks_server, pem_der, pem_keys,
};
#[allow(unused_imports)]
pub(crate) use configuration::{one_line_naming, run_binary};
#[allow(unused_imports)]
pub(crate) use redis_outage::unavailable_within_a_second;
#[allow(unused_imports)]
pub(crate) use relay::hook_token_of;
#[allow(unused_imports)]
pub(crate) use session_create::stored_jobs;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use actix_web::{HttpResponse, web};
use base64::Engine;
use helpers::*;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

pub(crate) fn body() -> Value {
    json!({"name": "My WhatsApp", "callback": "https://callback.example/hook"})
}
