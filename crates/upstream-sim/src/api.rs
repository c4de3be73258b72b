//! `POST /api/v1/<command>` (and `/v1/<command>`, the base WhatsGate's SDKs use): WhatsGate's commands, its
//! `X-Api-Key` check and its error shape (HTTP 500 `{"name","message","code":0}` for every error), plus the
//! faults on session-create.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::events::{ACTIONS, EventQuery};
use crate::messaging::{self, SEND_BODY_LIMIT};
use crate::session::{AuthMode, parse_unique_id};
use crate::state::{Fault, ListQuery, NewSession, SessionError, SimState};

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// `page_cnt` when none is given.
pub const DEFAULT_PAGE_CNT: usize = 20;
/// Largest `page_cnt`.
pub const MAX_PAGE_CNT: usize = 100;

/// Every way a command fails, with WhatsGate's error `name`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Your request was made with invalid credentials.")]
    Unauthorized,
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Internal(&'static str),
    #[error("Unknown command: {0}")]
    UnknownCommand(String),
    #[error("Too many requests, try again later.")]
    TooManyRequests,
}

impl ApiError {
    pub fn name(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "Unauthorized",
            ApiError::Validation(_) => "ValidationError",
            ApiError::NotFound(_) => "NotFound",
            ApiError::Internal(_) => "InternalError",
            ApiError::UnknownCommand(_) => "UnknownCommand",
            ApiError::TooManyRequests => "TooManyRequests",
        }
    }

    pub(crate) fn validation(message: impl Into<String>) -> Self {
        ApiError::Validation(message.into())
    }
}

impl From<SessionError> for ApiError {
    fn from(error: SessionError) -> Self {
        match error {
            SessionError::NotFound => ApiError::NotFound("Session not found.".into()),
            SessionError::WrongState(state) => ApiError::Validation(format!("The session is {state}.")),
            SessionError::NotReady(status) => ApiError::Validation(format!(
                "The session is {status}, not READY: authorize it (scan its QR code) before using it."
            )),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = ErrorBody { name: self.name(), message: self.to_string(), code: 0 };
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::TooManyRequests) {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        response.json(body)
    }
}

/// WhatsGate's error body, in its key order.
#[derive(serde::Serialize)]
struct ErrorBody {
    name: &'static str,
    message: String,
    code: u8,
}

fn ok_json(body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok().content_type(mime_json()).body(body)
}

fn mime_json() -> HeaderValue {
    HeaderValue::from_static("application/json; charset=UTF-8")
}

/// Every command, session and messaging.
const COMMANDS: [&str; 12] = [
    "session-create",
    "sessions-get",
    "session-delete",
    "set-hook",
    "set-name",
    "send",
    "check",
    "get-chats",
    "seen",
    "typing",
    "get-media",
    "events-get",
];

/// The one handler behind `/api/v1/{command}` and `/v1/{command}`: latency, key, command, method, body, in
/// that order.
pub async fn command(
    req: HttpRequest,
    command: web::Path<String>,
    payload: web::Payload,
    state: web::Data<SimState>,
) -> Result<HttpResponse, ApiError> {
    let latency = state.latency_ms();
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let key = req.headers().get("x-api-key").map(HeaderValue::as_bytes).unwrap_or_default();
    if !state.key_is_valid(key) {
        return Err(ApiError::Unauthorized);
    }
    let command = command.into_inner();
    if !COMMANDS.contains(&command.as_str()) {
        return Err(ApiError::UnknownCommand(command));
    }
    if req.method() != actix_web::http::Method::POST {
        if command == "session-create" {
            state.count_create_call();
        }
        return Err(ApiError::validation(format!("{command} must be called with POST.")));
    }
    let limit = if command == "send" { SEND_BODY_LIMIT } else { BODY_LIMIT };
    let body = match payload.to_bytes_limited(limit).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => return Err(ApiError::validation("The request body could not be read.")),
        Err(_) => return Err(ApiError::validation(format!("The request body is over {limit} bytes."))),
    };
    match command.as_str() {
        "send" | "check" | "get-chats" | "seen" | "typing" | "get-media" | "events-get" => {
            messaging_command(&state, &command, &body)
        }
        "session-create" => session_create(&state, &body).await,
        "sessions-get" => sessions_get(&state, &body),
        "session-delete" => {
            let fields = object(&body)?;
            Ok(ok_json(state.delete(whatsapp_id(&fields)?)?))
        }
        "set-hook" => {
            let fields = object(&body)?;
            let unique_id = whatsapp_id(&fields)?;
            let callback = match fields.get("callback") {
                None => return Err(ApiError::validation("callback is required.")),
                Some(Value::Null) => None,
                Some(Value::String(s)) if s.is_empty() => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err(ApiError::validation("callback must be a string.")),
            };
            Ok(ok_json(state.set_hook(unique_id, callback)?))
        }
        _ => {
            let fields = object(&body)?;
            let unique_id = whatsapp_id(&fields)?;
            let name = match fields.get("name") {
                Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
                Some(Value::String(_)) | None | Some(Value::Null) => {
                    return Err(ApiError::validation("name is required and must not be empty."));
                }
                Some(_) => return Err(ApiError::validation("name must be a string.")),
            };
            Ok(ok_json(state.set_name(unique_id, name)?))
        }
    }
}

#[derive(Deserialize)]
struct CreateBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    callback: Option<String>,
    #[serde(default)]
    auth_type: Option<String>,
    #[serde(default)]
    number: Option<NumberField>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberField {
    Text(String),
    Integer(u64),
}

fn parse_create(body: &[u8]) -> Result<NewSession, ApiError> {
    let body: CreateBody = if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::validation("name is required."));
    } else {
        serde_json::from_slice(body).map_err(|e| ApiError::validation(format!("Invalid request body: {e}")))?
    };
    let name = match body.name {
        Some(name) if !name.trim().is_empty() => name,
        Some(_) => return Err(ApiError::validation("name must not be empty.")),
        None => return Err(ApiError::validation("name is required.")),
    };
    let number = match body.number {
        None => None,
        Some(NumberField::Integer(n)) => Some(n.to_string()),
        Some(NumberField::Text(text)) if text.is_empty() => None,
        Some(NumberField::Text(text)) => {
            if !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ApiError::validation("number must contain digits only, e.g. 79999999999."));
            }
            Some(text)
        }
    };
    let auth = match body.auth_type.as_deref() {
        None | Some("") => AuthMode::Qr,
        Some(kind) if kind.eq_ignore_ascii_case("QR") => AuthMode::Qr,
        Some(kind) if kind.eq_ignore_ascii_case("CODE") => match number {
            Some(number) => AuthMode::Code(number),
            None => return Err(ApiError::validation("number is required when auth_type is CODE.")),
        },
        Some(_) => return Err(ApiError::validation("auth_type must be QR or CODE.")),
    };
    let callback = body.callback.filter(|c| !c.is_empty());
    Ok(NewSession { name, callback, auth })
}

async fn session_create(state: &SimState, body: &[u8]) -> Result<HttpResponse, ApiError> {
    let new = match parse_create(body) {
        Ok(new) => new,
        Err(error) => {
            state.count_create_call();
            return Err(error);
        }
    };
    match state.create(new) {
        (None, Some(body)) => Ok(ok_json(body)),
        (None, None) => Err(ApiError::Internal("The session could not be read back.")),
        (Some(Fault::Error), _) => Err(ApiError::Internal("Internal server error.")),
        (Some(Fault::Throttle), _) => Err(ApiError::TooManyRequests),
        (Some(Fault::Timeout), _) => {
            tracing::debug!("session-create held open (timeout fault)");
            let _held = state.hold();
            std::future::pending::<()>().await;
            Err(ApiError::Internal("Timed out."))
        }
        (Some(Fault::Ambiguous { drop_connection: false }), _) => Err(ApiError::Internal("Internal server error.")),
        (Some(Fault::Ambiguous { drop_connection: true }), _) => Ok(dropped_connection()),
    }
}

/// A response whose body fails before its first byte: actix then closes the connection without having
/// written the status line, so the client sees the connection drop with no answer at all.
fn dropped_connection() -> HttpResponse {
    let failing = futures::stream::once(async {
        Err::<bytes::Bytes, _>(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "simulated lost answer"))
    });
    HttpResponse::Ok().streaming(failing)
}

/// The messaging commands, on READY sessions only (`events-get` excepted).
fn messaging_command(state: &SimState, command: &str, body: &[u8]) -> Result<HttpResponse, ApiError> {
    let fields = object(body)?;
    if command == "events-get" {
        return events_get(state, &fields);
    }
    let unique_id = whatsapp_id(&fields)?;
    match command {
        "send" => Ok(ok_json(state.send(unique_id, messaging::parse_send(&fields)?)?)),
        "check" => {
            let registered = state.check(unique_id, &messaging::parse_number(&fields)?)?;
            Ok(ok_json(format!(r#"{{"result":"OK","data":{registered}}}"#).into_bytes()))
        }
        "get-chats" => Ok(ok_json(state.chats(unique_id)?)),
        "seen" | "typing" => {
            let chat = messaging::parse_recipient(&fields)?;
            state.chat_action(unique_id, &chat, command == "seen")?;
            Ok(ok_json(br#"{"result":"OK"}"#.to_vec()))
        }
        _ => {
            // `media_key` in WhatsGate's docs, `mediaKey` in its swagger SDKs.
            let key = match fields.get("media_key").filter(|v| !v.is_null()).or_else(|| fields.get("mediaKey")) {
                Some(Value::String(key)) if !key.trim().is_empty() => key.trim().to_owned(),
                None | Some(Value::Null) | Some(Value::String(_)) => {
                    return Err(ApiError::validation("media_key is required."));
                }
                Some(_) => return Err(ApiError::validation("media_key must be a string.")),
            };
            let file = state.media(unique_id, &key)?.ok_or_else(|| ApiError::NotFound("Media not found.".into()))?;
            Ok(HttpResponse::Ok().content_type(mime_json()).streaming(messaging::media_answer(&file)))
        }
    }
}

/// `page_cnt` of events-get when none is given (at most [`MAX_PAGE_CNT`], as for sessions-get).
pub const EVENTS_PAGE_CNT: usize = 10;

fn events_get(state: &SimState, fields: &Map<String, Value>) -> Result<HttpResponse, ApiError> {
    let unique_id = match optional_text(fields, "WhatsappID")? {
        None => None,
        Some(id) if id.trim().is_empty() => None,
        Some(id) => Some(parse_unique_id(id.trim()).ok_or_else(|| ApiError::NotFound("Session not found.".into()))?),
    };
    let action = match optional_text(fields, "action")? {
        None => None,
        Some(action) if action.is_empty() => None,
        Some(action) => Some(*ACTIONS.iter().find(|a| **a == action).ok_or_else(|| {
            ApiError::validation(format!("action must be one of {}, not {action}.", ACTIONS.join(", ")))
        })?),
    };
    let between = match optional_text(fields, "date")? {
        None => None,
        Some(date) if date.trim().is_empty() => None,
        Some(date) => Some(crate::clock::parse_day_or_moment(date.trim()).ok_or_else(|| {
            ApiError::validation(format!(
                "date must be YYYY-MM-DD (that day's events) or YYYY-MM-DD HH:MM:SS (events from then on), not {date}."
            ))
        })?),
    };
    let query = EventQuery {
        unique_id,
        action,
        between,
        page_cnt: positive(fields, "page_cnt", EVENTS_PAGE_CNT, MAX_PAGE_CNT)?,
        page: positive(fields, "page", 1, usize::MAX)?,
    };
    Ok(ok_json(state.events(&query)?))
}

fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(ApiError::validation("The request body must be a JSON object.")),
        Err(e) => Err(ApiError::validation(format!("Invalid JSON: {e}"))),
    }
}

/// A string, or a number written as one.
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn whatsapp_id(fields: &Map<String, Value>) -> Result<u64, ApiError> {
    let text = match fields.get("WhatsappID") {
        None | Some(Value::Null) => return Err(ApiError::validation("WhatsappID is required.")),
        Some(value) => text_of(value).ok_or_else(|| ApiError::validation("WhatsappID must be a string."))?,
    };
    parse_unique_id(text.trim()).ok_or_else(|| ApiError::NotFound("Session not found.".into()))
}

fn positive(fields: &Map<String, Value>, key: &str, default: usize, max: usize) -> Result<usize, ApiError> {
    let Some(value) = fields.get(key).filter(|v| !v.is_null()) else {
        return Ok(default);
    };
    let number = text_of(value).and_then(|t| t.trim().parse::<usize>().ok());
    match number {
        Some(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::validation(format!("{key} must be a whole number from 1 to {max}."))),
    }
}

fn optional_text(fields: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => text_of(value).map(Some).ok_or_else(|| ApiError::validation(format!("{key} must be a string."))),
    }
}

fn sessions_get(state: &SimState, body: &[u8]) -> Result<HttpResponse, ApiError> {
    let fields = object(body)?;
    let unique_id = optional_text(&fields, "WhatsappID")?.map(|id| parse_unique_id(id.trim()));
    let query = ListQuery {
        unique_id,
        name: optional_text(&fields, "name")?,
        status: optional_text(&fields, "status")?,
        page_cnt: positive(&fields, "page_cnt", DEFAULT_PAGE_CNT, MAX_PAGE_CNT)?,
        page: positive(&fields, "page", 1, usize::MAX)?,
    };
    Ok(ok_json(state.list(&query)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_session_needs_a_number_of_digits() {
        let err = parse_create(br#"{"name":"a","auth_type":"CODE"}"#).expect_err("no number");
        assert_eq!(err.name(), "ValidationError");
        let err = parse_create(br#"{"name":"a","auth_type":"CODE","number":"+7999"}"#).expect_err("plus");
        assert_eq!(err.name(), "ValidationError");
        let ok = parse_create(br#"{"name":"a","auth_type":"CODE","number":"79999999999"}"#).expect("valid");
        assert_eq!(ok.auth, AuthMode::Code("79999999999".into()));
    }

    #[test]
    fn a_name_must_be_a_non_empty_string() {
        for body in [&br#"{}"#[..], br#"{"name":""}"#, br#"{"name":"  "}"#, br#"{"name":5}"#, b"[]", b"nope", b""] {
            let err = parse_create(body).expect_err("invalid");
            assert_eq!(err.name(), "ValidationError", "{}", String::from_utf8_lossy(body));
        }
    }
}
