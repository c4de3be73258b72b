//! `send`: the one messaging command that must never happen twice. Its order: the body parsed and the session
//! owned; with an `Idempotency-Key`, the key claimed in Redis (or its stored answer replayed, 409 while the first
//! send is in flight, 422 for another body); the session's pace drawn (429 over it); then one call upstream,
//! repeated only when it surely never reached WhatsGate; the answer stored under the key for 24 h.

use std::{sync::Arc, time::Duration};

use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError, http::header, web};
use rand::Rng;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use wgate_queue::{Pace, PaceAnswer, SendClaim};
use wgate_types::{SendMessage, TenantId};
use wgate_upstream::UpstreamError;

use super::{owned, upstream_error, upstream_of};
use crate::{
    error::ApiError, middleware::RateHeaders, routes::session_create::idempotency_key, state::AppState,
    upstream::Repeat,
};

/// Marks an answer replayed from an `Idempotency-Key` record (no second send happened).
pub(super) const REPLAYED: &str = "idempotent-replayed";

/// Whether a failed send may have left the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Left {
    /// Surely not: the key may send again.
    Never,
    /// Maybe: the answer is stored, so the key never sends again.
    Maybe,
}

pub(super) async fn send(
    req: &HttpRequest,
    data: &web::Data<AppState>,
    tenant: &TenantId,
    fields: &Map<String, Value>,
) -> Result<HttpResponse, ApiError> {
    let state: &AppState = data;
    let key = idempotency_key(req)?;
    let message = SendMessage::parse(fields)?;
    owned(state, tenant, &message.whatsapp_id).await?;
    let message = Arc::new(message);
    let fingerprint = match &key {
        Some(key) => {
            let fingerprint = fingerprint(&message)?;
            match state.store.send_claim(tenant, key, &fingerprint).await? {
                SendClaim::Claimed => Some((key.clone(), fingerprint)),
                SendClaim::Conflict => return Err(ApiError::IdempotencyConflict),
                SendClaim::InFlight { age } => return Err(in_flight(state, age)),
                SendClaim::Done { status, body } => return Ok(replay(status, body)),
            }
        }
        None => None,
    };
    // From here the send runs to its end, answer stored, even when the client goes away meanwhile: its retry with
    // the same key then finds the answer instead of a claim nobody will finish.
    let (req, data, tenant) = (req.clone(), data.clone(), tenant.clone());
    let task = actix_web::rt::spawn(async move {
        let answer = paced_send(&req, &data, &tenant, message).await;
        if let Some((key, fingerprint)) = fingerprint {
            let stored = match &answer {
                Ok(value) => Some((200, value.to_string())),
                Err((_, Left::Never)) => None,
                Err((e, Left::Maybe)) => Some((e.status_code().as_u16(), e.body_json())),
            };
            let stored = stored.as_ref().map(|(s, b)| (*s, b.as_str()));
            if let Err(e) = data.store.send_finish(&tenant, &key, &fingerprint, stored).await {
                // The send's own answer still reaches the client; a retry with this key meets the claim (409).
                tracing::warn!(error = %e, "the answer of a send could not be stored under its Idempotency-Key");
            }
        }
        answer
    });
    match task.await {
        Ok(answer) => answer.map(ok).map_err(|(e, _)| e),
        Err(e) => Err(ApiError::Internal(anyhow::anyhow!("the send task failed: {e}"))),
    }
}

/// A claim older than any send can last (the upstream budget, the pace and finish calls, and a margin) belongs to a
/// send whose process stopped before storing its outcome: it may have reached WhatsApp, so the key never sends
/// again, and the client is told to look instead of waiting.
fn in_flight(state: &AppState, age: Option<Duration>) -> ApiError {
    let budget = state.upstream.as_ref().map_or(Duration::ZERO, |u| u.budget());
    let longest = budget + 2 * state.store.write_bound() + OUTCOME_LOST_MARGIN;
    match age {
        Some(age) if age > longest => ApiError::SendOutcomeLost { age_secs: age.as_secs() },
        _ => ApiError::SendInFlight,
    }
}

/// Added to the longest a send can last before its claim is called lost.
const OUTCOME_LOST_MARGIN: Duration = Duration::from_secs(30);

fn ok(value: Value) -> HttpResponse {
    HttpResponse::Ok().json(value)
}

/// The stored answer of the first send with this key.
fn replay(status: u16, body: String) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::OK);
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((REPLAYED, "true"))
        .body(body)
}

/// The send as WhatsGate gets it, hashed: the same message however its JSON was spelled.
/// Hashed as it is written: a file of many megabytes is not serialized into memory once more.
fn fingerprint(message: &SendMessage) -> Result<String, ApiError> {
    struct Hasher(Sha256);
    impl std::io::Write for Hasher {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut hasher = Hasher(Sha256::new());
    serde_json::to_writer(&mut hasher, message).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(format!("{:x}", hasher.0.finalize()))
}

/// Draws the session's pace, then sends once (repeated only while the call surely never reached WhatsGate).
async fn paced_send(
    req: &HttpRequest,
    state: &AppState,
    tenant: &TenantId,
    message: Arc<SendMessage>,
) -> Result<Value, (ApiError, Left)> {
    let settings = state.messaging;
    let per_minute = state.send_per_minute(tenant);
    let jitter_ms = u64::try_from(settings.jitter.as_millis()).unwrap_or(u64::MAX);
    let jitter = Duration::from_millis(if jitter_ms == 0 { 0 } else { rand::rng().random_range(0..=jitter_ms) });
    let pace = Pace { per_minute, min_interval: settings.min_interval, jitter };
    let answer = state.store.pace_send(tenant, &message.whatsapp_id, pace).await.map_err(|e| (e, Left::Never))?;
    session_headers(req, per_minute, &answer);
    if !answer.allowed {
        state.metrics.send_paced.inc();
        return Err((ApiError::SendPaced { retry_after: whole_seconds(answer.wait), per_minute }, Left::Never));
    }
    let upstream = upstream_of(state).map_err(|e| (e, Left::Never))?;
    upstream
        .run(Repeat::IfNotSent, |u| {
            let message = message.clone();
            async move { u.call("send", &*message).await }
        })
        .await
        .map_err(|e| {
            let left = if surely_not_sent(&e) { Left::Never } else { Left::Maybe };
            (upstream_error(e), left)
        })
}

/// No answer came and the call never reached WhatsGate (no connection), or WhatsGate refused it before doing
/// anything (429).
fn surely_not_sent(e: &UpstreamError) -> bool {
    (e.status().is_none() && !e.maybe_sent()) || e.status() == Some(429)
}

fn whole_seconds(d: Duration) -> u64 {
    (d.as_secs_f64().ceil() as u64).max(1)
}

/// The session's pace, added to the tenant's rate-limit headers: `"send";q=<per minute>;w=60`.
fn session_headers(req: &HttpRequest, per_minute: u32, answer: &PaceAnswer) {
    let policy = format!("\"send\";q={per_minute};w=60");
    let current = if answer.allowed {
        format!("\"send\";r={};t={}", answer.remaining, answer.wait.as_secs_f64().ceil() as u64)
    } else {
        format!("\"send\";r=0;t={}", whole_seconds(answer.wait))
    };
    let mut ext = req.extensions_mut();
    match ext.get_mut::<RateHeaders>() {
        Some(h) => {
            h.policy = format!("{}, {policy}", h.policy);
            h.current = format!("{}, {current}", h.current);
        }
        None => {
            ext.insert(RateHeaders { policy, current });
        }
    }
}
