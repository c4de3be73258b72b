//! The bodies of the session commands, read as a JSON object; each command parses its fields with its
//! constructor in `wgate-types` (`SessionsList`, `SessionDelete`, `SetHook`, `SetName`).

use actix_web::{HttpRequest, web};
use serde_json::{Map, Value};
use wgate_types::{FieldProblem, ValidationErrors};

use crate::{
    error::ApiError,
    routes::session_create::{MAX_BODY_BYTES, check_json_content_type, read_body},
    state::AppState,
};

/// The body as a JSON object; an empty body is `{}` (every field of sessions-get is optional).
pub(crate) async fn body_object(
    req: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
) -> Result<Map<String, Value>, ApiError> {
    body_object_within(req, state, payload, MAX_BODY_BYTES).await
}

/// [`body_object`] for a body of up to `limit` bytes (413 above).
pub(crate) async fn body_object_within(
    req: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
    limit: usize,
) -> Result<Map<String, Value>, ApiError> {
    let body = read_body(req, payload, limit, state.body_read_timeout).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    check_json_content_type(req)?;
    let one = |problem: String| ApiError::Validation(ValidationErrors(vec![FieldProblem::new("body", problem)]));
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(one("must be a JSON object".into())),
        Err(e) => Err(one(format!("must be valid JSON ({e})"))),
    }
}
