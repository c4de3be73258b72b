//! Test control under `/sim` (no API key): counters, fault settings changed at run time, and the events a
//! real phone would cause (scan, failed authorization, an incoming message or file, a logout), plus any
//! documented event a test wants to see.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::config::FaultSettings;
use crate::events::ACTIONS;
use crate::messaging::{ChatId, MAX_MEDIA_SIZE};
use crate::session::parse_unique_id;
use crate::state::{Incoming, SessionError, SimState};

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
        SessionError::NotReady(status) => problem(StatusCode::CONFLICT, format!("session is {status}, not READY")),
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

/// `POST /sim/sessions/<id>/incoming` (also `/message`): `{"from","body"?,"media"?:{"size","mimetype"?,"filename"?}}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncomingBody {
    from: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    media: Option<IncomingMedia>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncomingMedia {
    size: u64,
    #[serde(default)]
    mimetype: Option<String>,
    #[serde(default)]
    filename: Option<String>,
}

const INCOMING_SHAPE: &str = r#"{"from":"79990001122","body":"text"} or {"from":..,"body"?:"caption","media":{"size":N,"mimetype"?:"image/jpeg","filename"?:"photo.jpg"}}"#;

pub async fn incoming(state: web::Data<SimState>, path: web::Path<String>, body: web::Bytes) -> HttpResponse {
    let message: IncomingBody = match serde_json::from_slice(&body) {
        Ok(message) => message,
        Err(e) => return problem(StatusCode::BAD_REQUEST, format!("expected {INCOMING_SHAPE}: {e}")),
    };
    let from = match ChatId::contact(message.from.trim()) {
        Ok(from) => from,
        Err(e) => return problem(StatusCode::BAD_REQUEST, format!("from: {e}; give 5 to 15 digits")),
    };
    if message.media.is_none() && message.body.as_deref().is_none_or(str::is_empty) {
        return problem(StatusCode::BAD_REQUEST, format!("a message needs a body or media: {INCOMING_SHAPE}"));
    }
    let media = match message.media {
        None => None,
        Some(media) if media.size > MAX_MEDIA_SIZE => {
            return problem(StatusCode::BAD_REQUEST, format!("media.size is at most {MAX_MEDIA_SIZE} bytes"));
        }
        Some(media) => Some((
            media.mimetype.filter(|m| !m.trim().is_empty()).unwrap_or_else(|| "image/jpeg".to_owned()),
            media.filename.filter(|f| !f.trim().is_empty()).unwrap_or_else(|| "file.jpg".to_owned()),
            media.size,
        )),
    };
    let incoming = Incoming { from, body: message.body.unwrap_or_default(), media };
    match unique(&path).and_then(|id| state.incoming(id, incoming)) {
        Ok(result) => HttpResponse::Ok().json(result),
        Err(e) => session_problem(e),
    }
}

/// `POST /sim/sessions/<id>/disconnect`, body optional `{"reason":"LOGOUT"}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisconnectBody {
    #[serde(default)]
    reason: Option<String>,
}

pub async fn disconnect(state: web::Data<SimState>, path: web::Path<String>, body: web::Bytes) -> HttpResponse {
    let request: DisconnectBody = if body.iter().all(u8::is_ascii_whitespace) {
        DisconnectBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(e) => return problem(StatusCode::BAD_REQUEST, format!(r#"expected {{"reason"?:"LOGOUT"}}: {e}"#)),
        }
    };
    let reason = request.reason.filter(|r| !r.trim().is_empty()).unwrap_or_else(|| "LOGOUT".to_owned());
    unique(&path).and_then(|id| state.disconnect(id, reason)).map_or_else(session_problem, json_body)
}

/// `POST /sim/sessions/<id>/event`: `{"event_action":"<documented action>","event_data"?:{...}}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    event_action: String,
    #[serde(default)]
    event_data: serde_json::Value,
}

pub async fn event(state: web::Data<SimState>, path: web::Path<String>, body: web::Bytes) -> HttpResponse {
    let request: EventBody = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return problem(StatusCode::BAD_REQUEST, format!(r#"expected {{"event_action","event_data"?}}: {e}"#));
        }
    };
    let Some(action) = ACTIONS.iter().find(|a| **a == request.event_action) else {
        return problem(StatusCode::BAD_REQUEST, format!("event_action must be one of {}", ACTIONS.join(", ")));
    };
    match unique(&path).and_then(|id| state.inject(id, action, request.event_data)) {
        Ok((event_id, sent)) => {
            HttpResponse::Ok().json(serde_json::json!({ "result": "OK", "event_id": event_id, "sent": sent }))
        }
        Err(e) => session_problem(e),
    }
}

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}
