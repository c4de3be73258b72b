//! The bodies of the session commands: read, parsed and checked field by field (every problem at once).

use actix_web::{HttpRequest, web};
use serde_json::{Map, Value};
use wgate_types::{FieldProblem, ValidationErrors};
use wgate_upstream::SessionsQuery;

use crate::{
    error::ApiError,
    routes::session_create::{MAX_BODY_BYTES, check_json_content_type, read_body},
    state::AppState,
};

/// `page_cnt` when none is given (as WhatsGate's default).
pub const DEFAULT_PAGE_CNT: u32 = 20;
/// Largest `page_cnt`.
pub const MAX_PAGE_CNT: u32 = 100;

/// The body as a JSON object; an empty body is `{}` (every field of sessions-get is optional).
pub(super) async fn body_object(
    req: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
) -> Result<Map<String, Value>, ApiError> {
    let body = read_body(req, payload, MAX_BODY_BYTES, state.body_read_timeout).await?;
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

/// `WhatsappID`: a string or a number (WhatsGate's ids are 13 digits, sent either way), trimmed.
pub(super) fn whatsapp_id(
    fields: &Map<String, Value>,
    required: bool,
    problems: &mut Vec<FieldProblem>,
) -> Option<String> {
    const FIELD: &str = "WhatsappID";
    let text = match fields.get(FIELD) {
        None | Some(Value::Null) => {
            if required {
                problems.push(FieldProblem::new(FIELD, "is required"));
            }
            return None;
        }
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) if let Some(n) = whole_number(n) => n.to_string(),
        Some(_) => {
            problems.push(FieldProblem::new(FIELD, "must be a string or a whole number"));
            return None;
        }
    };
    if text.is_empty() {
        problems.push(FieldProblem::new(FIELD, "must not be empty"));
        return None;
    }
    Some(text)
}

pub(super) fn required_id(fields: &Map<String, Value>) -> Result<String, ApiError> {
    let mut problems = Vec::new();
    let id = whatsapp_id(fields, true, &mut problems);
    valid(id, problems)
}

/// The id when no field is at fault, else every problem at once.
pub(super) fn valid(id: Option<String>, problems: Vec<FieldProblem>) -> Result<String, ApiError> {
    match id {
        Some(id) if problems.is_empty() => Ok(id),
        _ => Err(ApiError::Validation(ValidationErrors(problems))),
    }
}

/// A validated sessions-get body.
pub(super) struct ListRequest {
    pub(super) whatsapp_id: Option<String>,
    pub(super) name: Option<String>,
    pub(super) status: Option<String>,
    pub(super) page_cnt: u32,
    pub(super) page: u32,
}

impl ListRequest {
    pub(super) fn parse(fields: &Map<String, Value>) -> Result<Self, ApiError> {
        let mut problems = Vec::new();
        let whatsapp_id = whatsapp_id(fields, false, &mut problems);
        let mut text = |key: &str| match fields.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                problems.push(FieldProblem::new(key, "must be a string"));
                None
            }
        };
        let name = text("name");
        let status = text("status");
        let page_cnt = whole(fields, "page_cnt", DEFAULT_PAGE_CNT, MAX_PAGE_CNT, &mut problems);
        let page = whole(fields, "page", 1, u32::MAX, &mut problems);
        if !problems.is_empty() {
            return Err(ApiError::Validation(ValidationErrors(problems)));
        }
        Ok(Self { whatsapp_id, name, status, page_cnt, page })
    }

    /// The upstream query for one of the caller's sessions, with the caller's filters.
    pub(super) fn query(&self, whatsapp_id: String) -> SessionsQuery {
        SessionsQuery {
            whatsapp_id: Some(whatsapp_id),
            name: self.name.clone(),
            status: self.status.clone(),
            page_cnt: None,
            page: None,
        }
    }

    pub(super) fn filtered(&self) -> bool {
        self.name.is_some() || self.status.is_some()
    }
}

/// A JSON number that is a whole number at or above 0: `7`, and also `7.0` (JSON does not tell them apart, and
/// JSON Schema's `integer` accepts both).
fn whole_number(n: &serde_json::Number) -> Option<u64> {
    n.as_u64().or_else(|| {
        n.as_f64().filter(|f| f.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(f)).map(|f| f as u64)
    })
}

/// A whole number in `1..=max` (a JSON number or a string of digits, as WhatsGate takes it), or `default`.
fn whole(fields: &Map<String, Value>, key: &str, default: u32, max: u32, problems: &mut Vec<FieldProblem>) -> u32 {
    let parsed = match fields.get(key) {
        None | Some(Value::Null) => return default,
        Some(Value::Number(n)) => whole_number(n),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    match parsed.and_then(|n| u32::try_from(n).ok()) {
        Some(n) if (1..=max).contains(&n) => n,
        _ => {
            problems.push(FieldProblem::new(key, format!("must be a whole number from 1 to {max}")));
            default
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn problems_of(e: ApiError) -> Vec<String> {
        match e {
            ApiError::Validation(v) => v.0.into_iter().map(|p| p.field).collect(),
            other => vec![format!("not a validation error: {other}")],
        }
    }

    #[test]
    fn a_list_request_defaults_to_twenty_a_page_from_page_one() {
        let l = ListRequest::parse(&fields(json!({}))).unwrap();
        assert_eq!((l.page_cnt, l.page, l.whatsapp_id, l.name, l.status), (20, 1, None, None, None));
        let l =
            ListRequest::parse(&fields(json!({"WhatsappID": 6345454545454u64, "page_cnt": "100", "page": 3}))).unwrap();
        assert_eq!((l.whatsapp_id.as_deref(), l.page_cnt, l.page), (Some("6345454545454"), 100, 3));
    }

    #[test]
    fn paging_out_of_range_and_wrong_types_are_reported_per_field() {
        for (body, field) in [
            (json!({"page_cnt": 0}), "page_cnt"),
            (json!({"page_cnt": 101}), "page_cnt"),
            (json!({"page": 0}), "page"),
            (json!({"page": -1}), "page"),
            (json!({"page": 1.5}), "page"),
            (json!({"name": 5}), "name"),
            (json!({"status": []}), "status"),
            (json!({"WhatsappID": true}), "WhatsappID"),
            (json!({"WhatsappID": " "}), "WhatsappID"),
        ] {
            let e = ListRequest::parse(&fields(body.clone())).err().expect("invalid");
            assert_eq!(problems_of(e), vec![field.to_owned()], "{body}");
        }
    }

    #[test]
    fn a_command_needs_its_whatsapp_id() {
        assert_eq!(problems_of(required_id(&fields(json!({}))).unwrap_err()), vec!["WhatsappID"]);
        assert_eq!(required_id(&fields(json!({"WhatsappID": " 63 "}))).unwrap(), "63");
    }
}
