//! Test control under `/sim` (no API key): counters, fault settings changed at run time, and the events a
//! real phone would cause (scan, failed authorization, an incoming message).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::config::FaultSettings;
use crate::session::parse_unique_id;
use crate::state::{SessionError, SimState};

fn json_body(body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(body)
}

fn problem(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({ "error": message.into() }))
}

fn session_problem(error: SessionError) -> HttpResponse {
    match error {
        SessionError::NotFound => problem(StatusCode::NOT_FOUND, "session not found"),
        SessionError::WrongState(state) => problem(StatusCode::CONFLICT, format!("session is {state}")),
    }
}

pub async fn stats(state: web::Data<SimState>) -> HttpResponse {
    json_body(state.stats())
}

pub async fn get_faults(state: web::Data<SimState>) -> HttpResponse {
    HttpResponse::Ok().json(state.faults())
}

/// Every field optional; those left out keep their value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsPatch {
    error_rate: Option<f64>,
    throttle_rate: Option<f64>,
    timeout_rate: Option<f64>,
    ambiguous_rate: Option<f64>,
    latency_ms: Option<u64>,
}

pub async fn set_faults(state: web::Data<SimState>, body: web::Bytes) -> HttpResponse {
    let patch: FaultsPatch = match serde_json::from_slice(&body) {
        Ok(patch) => patch,
        Err(e) => return problem(StatusCode::BAD_REQUEST, format!("invalid fault settings: {e}")),
    };
    let current = state.faults();
    let next = FaultSettings {
        error_rate: patch.error_rate.unwrap_or(current.error_rate),
        throttle_rate: patch.throttle_rate.unwrap_or(current.throttle_rate),
        timeout_rate: patch.timeout_rate.unwrap_or(current.timeout_rate),
        ambiguous_rate: patch.ambiguous_rate.unwrap_or(current.ambiguous_rate),
        latency_ms: patch.latency_ms.unwrap_or(current.latency_ms),
    };
    if let Err(e) = next.validate() {
        return problem(StatusCode::BAD_REQUEST, e.to_string());
    }
    state.set_faults(next);
    tracing::info!(?next, "fault settings changed");
    HttpResponse::Ok().json(next)
}

pub async fn reset(state: web::Data<SimState>) -> HttpResponse {
    state.reset();
    HttpResponse::Ok().json(serde_json::json!({ "result": "OK" }))
}

fn unique(path: &str) -> Result<u64, SessionError> {
    parse_unique_id(path).ok_or(SessionError::NotFound)
}

pub async fn scan(state: web::Data<SimState>, path: web::Path<String>) -> HttpResponse {
    unique(&path).and_then(|id| state.scan(id)).map_or_else(session_problem, json_body)
}

pub async fn fail(state: web::Data<SimState>, path: web::Path<String>) -> HttpResponse {
    unique(&path).and_then(|id| state.fail(id)).map_or_else(session_problem, json_body)
}

#[derive(Debug, Deserialize)]
pub struct IncomingMessage {
    body: String,
    from: String,
}

pub async fn message(state: web::Data<SimState>, path: web::Path<String>, body: web::Bytes) -> HttpResponse {
    let message: IncomingMessage = match serde_json::from_slice(&body) {
        Ok(message) => message,
        Err(e) => return problem(StatusCode::BAD_REQUEST, format!("expected {{\"body\",\"from\"}}: {e}")),
    };
    match unique(&path).and_then(|id| state.message(id, message.body, message.from)) {
        Ok((event_id, sent)) => {
            HttpResponse::Ok().json(serde_json::json!({ "result": "OK", "event_id": event_id, "sent": sent }))
        }
        Err(e) => session_problem(e),
    }
}

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}
