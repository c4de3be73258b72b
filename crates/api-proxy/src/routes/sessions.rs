//! The session commands, scoped to the caller's own sessions: `sessions-get`, `session-delete`, `set-hook` and
//! `set-name`, with WhatsGate's paths and bodies. One WhatsGate account serves every tenant; a tenant owns the
//! sessions its create jobs made (`{ns}:session:<unique_id>`, written by the worker), and a `WhatsappID` that is not
//! the caller's answers exactly as an unknown one. What the tenant sees of a session goes through
//! [`present_session`]: its own callback, the gateway's QR window.

use actix_web::{HttpRequest, HttpResponse, web};
use futures::{StreamExt, TryStreamExt, stream};
use serde_json::{Map, Value, json};
use wgate_queue::SessionOwner;
use wgate_types::{CallbackUrl, FieldProblem, Scope, SessionName, TenantId, ValidationErrors};
use wgate_upstream::{ErrorClass, SessionsQuery, UpstreamError};

use super::{
    authorize, check_callback,
    session_create::{MAX_BODY_BYTES, check_json_content_type, read_body},
};
use crate::{
    error::ApiError,
    limits::Bucket,
    present::present_session,
    state::AppState,
    upstream::{Repeat, SessionUpstream, api_error, deadline_error, is_not_found},
};

/// `page_cnt` when none is given (as WhatsGate's default).
pub const DEFAULT_PAGE_CNT: u32 = 20;
/// Largest `page_cnt`.
pub const MAX_PAGE_CNT: u32 = 100;
/// The caller's sessions are looked up one by one (`sessions-get {WhatsappID}` each), this many at a time: what a
/// listing costs upstream follows the caller's own sessions, never the size of the shared WhatsGate account (no
/// walk over other tenants' pages), and the whole listing runs under one deadline (`WGATE_UPSTREAM_TIMEOUT_MS`).
pub const FETCH_CONCURRENCY: usize = 8;
/// Sessions of one answer presented at once (each costs a few Redis reads).
const PRESENT_CONCURRENCY: usize = 16;

const UNKNOWN: ApiError = ApiError::UnknownSession;

/// `POST /api/v1/sessions-get` (scope `sessions:read`, read bucket): the caller's sessions, filtered by
/// upstream, sorted by upstream `id`, paged over the caller's own. A `WhatsappID` filter that is not the caller's
/// matches nothing, as an unknown one does upstream.
#[utoipa::path(
    post,
    path = "/api/v1/sessions-get",
    tag = "sessions",
    operation_id = "sessions_get",
    summary = "List the caller's sessions",
    description = "WhatsGate's sessions-get over the caller's own sessions only (those its session-creates made), filtered by WhatsGate, sorted by WhatsGate's `id` and paged over the caller's. A `WhatsappID` that is not the caller's matches nothing. Each `qr_link` is the gateway's QR window.",
    request_body(content = crate::openapi::SessionsGetRequest, content_type = "application/json",
        description = "Filters and paging; no body (or `{}`) lists every session of the caller"),
    responses(
        (status = 200, description = "One page of the caller's sessions", body = crate::openapi::SessionList),
        crate::openapi::UpstreamErrors,
    ),
    security(("bearer" = ["sessions:read"]), ("api_key" = ["sessions:read"])),
)]
pub async fn sessions_get(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let principal = authorize(&req, &state, Scope::SessionsRead, Bucket::Read).await?;
    let upstream = upstream_of(&state)?;
    let fields = body_object(&req, &state, payload).await?;
    let list = ListRequest::parse(&fields)?;

    let owned = state.store.tenant_sessions(&principal.tenant).await?;
    let owned: Vec<String> = match &list.whatsapp_id {
        Some(id) => owned.into_iter().filter(|o| o == id).collect(),
        None => owned,
    };
    let budget = upstream.budget();
    let mut sessions = tokio::time::timeout(budget, fetch_each(&state, upstream, &list, owned))
        .await
        .map_err(|_| deadline_error(budget))??;
    sessions.sort_by_cached_key(|s| (upstream_id(s), unique_id_of(s)));

    let page_cnt = list.page_cnt as usize;
    let elements = sessions.len();
    let pages = elements.div_ceil(page_cnt);
    let skip = (list.page as usize - 1).saturating_mul(page_cnt);
    let page: Vec<Value> = sessions.into_iter().skip(skip).take(page_cnt).collect();
    let data: Vec<Value> = stream::iter(page.into_iter().map(|s| present_listed(&state, &principal.tenant, s)))
        .buffered(PRESENT_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "result": "OK", "pages": pages, "elements": elements, "page": list.page, "data": data
    })))
}

/// `POST /api/v1/session-delete` `{WhatsappID}` (scope `sessions:write`): upstream's delete, then the session's
/// ownership is forgotten (freeing the tenant's quota slot). Retried only when the failed call surely never
/// reached WhatsGate.
#[utoipa::path(
    post,
    path = "/api/v1/session-delete",
    tag = "sessions",
    operation_id = "session_delete",
    summary = "Delete a session",
    description = "WhatsGate's session-delete for one of the caller's sessions; its slot in the session quota is freed. A `WhatsappID` that is not the caller's is 404, exactly as an unknown one.",
    request_body(content = crate::openapi::SessionDeleteRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "WhatsGate's answer: the session, now `DESTROYING`",
            body = crate::openapi::SessionAnswer),
        crate::openapi::UnknownSession,
        crate::openapi::UpstreamErrors,
    ),
    security(("bearer" = ["sessions:write"]), ("api_key" = ["sessions:write"])),
)]
pub async fn session_delete(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let principal = authorize(&req, &state, Scope::SessionsWrite, Bucket::Write).await?;
    let upstream = upstream_of(&state)?;
    let fields = body_object(&req, &state, payload).await?;
    let id = required_id(&fields)?;
    let owner = owned(&state, &principal.tenant, &id).await?;
    let (callback, qr_token) = presentation(&state, &owner).await?;
    let answer = upstream
        .run(Repeat::IfNotSent, |u| {
            let id = id.clone();
            async move { u.session_delete(&id).await }
        })
        .await;
    let body = gone_or(&state, &id, answer).await?;
    state.store.forget_session(&id).await?;
    tracing::info!(session.unique_id = %id, "session deleted");
    Ok(HttpResponse::Ok().json(present_body(&state, body, callback.as_deref(), qr_token.as_deref())))
}

/// `POST /api/v1/set-hook` `{WhatsappID, callback}` (scope `sessions:write`). WhatsGate's callback stays the
/// gateway's relay URL (the relay, and the marker reconciliation looks for); the relay's target becomes the
/// tenant's new callback (`null` or `""`: webhooks are acknowledged and dropped). Upstream's `set-hook` is still
/// called, with the relay URL: it confirms the session and answers its data.
#[utoipa::path(
    post,
    path = "/api/v1/set-hook",
    tag = "sessions",
    operation_id = "set_hook",
    summary = "Change a session's callback",
    description = "Webhooks of this session go to the new callback from now on (`null` or `\"\"`: acknowledged and dropped). A `WhatsappID` that is not the caller's is 404.",
    request_body(content = crate::openapi::SetHookRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "WhatsGate's answer: the session, with the new callback",
            body = crate::openapi::SessionAnswer),
        crate::openapi::UnknownSession,
        crate::openapi::UpstreamErrors,
    ),
    security(("bearer" = ["sessions:write"]), ("api_key" = ["sessions:write"])),
)]
pub async fn set_hook(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let principal = authorize(&req, &state, Scope::SessionsWrite, Bucket::Write).await?;
    let upstream = upstream_of(&state)?;
    let fields = body_object(&req, &state, payload).await?;
    let mut problems = Vec::new();
    let id = whatsapp_id(&fields, true, &mut problems);
    let callback = match fields.get("callback") {
        None => {
            problems.push(FieldProblem::new("callback", "is required (null or \"\" removes it)"));
            None
        }
        Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => {
            CallbackUrl::parse(s).map_err(|p| problems.push(FieldProblem::new("callback", p))).ok()
        }
        Some(_) => {
            problems.push(FieldProblem::new("callback", "must be a string"));
            None
        }
    };
    let id = valid(id, problems)?;
    if let Some(callback) = &callback {
        check_callback(&state, callback).await?;
    }
    let owner = owned(&state, &principal.tenant, &id).await?;
    let (_, qr_token) = presentation(&state, &owner).await?;
    let relay = wgate_types::relay_url(&state.public_base, &owner.hook_token);
    let answer = upstream
        .run(Repeat::Safe, |u| {
            let (id, relay) = (id.clone(), relay.clone());
            async move { u.set_hook(&id, &relay).await }
        })
        .await;
    let body = gone_or(&state, &id, answer).await?;
    if !state.store.set_hook_callback(&owner.hook_token, callback.as_ref()).await? {
        return Err(UNKNOWN);
    }
    tracing::info!(session.unique_id = %id, "session callback changed");
    let own = callback.as_ref().map(CallbackUrl::as_str);
    Ok(HttpResponse::Ok().json(present_body(&state, body, own, qr_token.as_deref())))
}

/// `POST /api/v1/set-name` `{WhatsappID, name}` (scope `sessions:write`): the name validated as in
/// session-create and passed to WhatsGate exactly as sent.
#[utoipa::path(
    post,
    path = "/api/v1/set-name",
    tag = "sessions",
    operation_id = "set_name",
    summary = "Rename a session",
    description = "The name is validated as in session-create and reaches WhatsGate exactly as sent. A `WhatsappID` that is not the caller's is 404.",
    request_body(content = crate::openapi::SetNameRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "WhatsGate's answer: the session, with the new name",
            body = crate::openapi::SessionAnswer),
        crate::openapi::UnknownSession,
        crate::openapi::UpstreamErrors,
    ),
    security(("bearer" = ["sessions:write"]), ("api_key" = ["sessions:write"])),
)]
pub async fn set_name(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let principal = authorize(&req, &state, Scope::SessionsWrite, Bucket::Write).await?;
    let upstream = upstream_of(&state)?;
    let fields = body_object(&req, &state, payload).await?;
    let mut problems = Vec::new();
    let id = whatsapp_id(&fields, true, &mut problems);
    let name = match fields.get("name") {
        None | Some(Value::Null) => {
            problems.push(FieldProblem::new("name", "is required"));
            None
        }
        Some(Value::String(s)) => SessionName::parse(s).map_err(|p| problems.push(FieldProblem::new("name", p))).ok(),
        Some(_) => {
            problems.push(FieldProblem::new("name", "must be a string"));
            None
        }
    };
    let id = valid(id, problems)?;
    let name = name.ok_or(ApiError::Internal(anyhow::anyhow!("a valid body without a name")))?;
    let owner = owned(&state, &principal.tenant, &id).await?;
    let (callback, qr_token) = presentation(&state, &owner).await?;
    let answer = upstream
        .run(Repeat::Safe, |u| {
            let (id, name) = (id.clone(), name.clone());
            async move { u.set_name(&id, name.as_str()).await }
        })
        .await;
    let body = gone_or(&state, &id, answer).await?;
    Ok(HttpResponse::Ok().json(present_body(&state, body, callback.as_deref(), qr_token.as_deref())))
}

// --- shared ---

fn upstream_of(state: &AppState) -> Result<&SessionUpstream, ApiError> {
    state.upstream.as_ref().ok_or(ApiError::UpstreamNotConfigured)
}

/// The body as a JSON object; an empty body is `{}` (every field of sessions-get is optional).
async fn body_object(
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
fn whatsapp_id(fields: &Map<String, Value>, required: bool, problems: &mut Vec<FieldProblem>) -> Option<String> {
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

fn required_id(fields: &Map<String, Value>) -> Result<String, ApiError> {
    let mut problems = Vec::new();
    let id = whatsapp_id(fields, true, &mut problems);
    valid(id, problems)
}

/// The id when no field is at fault, else every problem at once.
fn valid(id: Option<String>, problems: Vec<FieldProblem>) -> Result<String, ApiError> {
    match id {
        Some(id) if problems.is_empty() => Ok(id),
        _ => Err(ApiError::Validation(ValidationErrors(problems))),
    }
}

/// The owner record of a session of `tenant`; any other id, foreign or unknown, is the same 404.
async fn owned(state: &AppState, tenant: &TenantId, id: &str) -> Result<SessionOwner, ApiError> {
    match state.store.session_owner(id).await? {
        Some(owner) if &owner.tenant == tenant => Ok(owner),
        _ => Err(UNKNOWN),
    }
}

/// The tenant's callback (the relay's current target; the create request's when the hook is gone) and the QR
/// window token of the job that made the session (none once the job record expired).
async fn presentation(state: &AppState, owner: &SessionOwner) -> Result<(Option<String>, Option<String>), ApiError> {
    let (hook, job) = futures::try_join!(state.store.hook(&owner.hook_token), state.store.get(owner.job_id))?;
    let callback = match (&hook, &job) {
        (Some(hook), _) => hook.callback.as_ref().map(|c| c.as_str().to_owned()),
        (None, Some(job)) => job.request.callback().map(|c| c.as_str().to_owned()),
        (None, None) => None,
    };
    Ok((callback, job.map(|j| j.qr_token)))
}

/// Upstream's answer, or the error for the tenant. Upstream not knowing an owned session means it was deleted
/// outside the gateway: its ownership is forgotten (freeing the quota slot) and the answer is the unknown 404.
async fn gone_or(state: &AppState, id: &str, answer: Result<Value, UpstreamError>) -> Result<Value, ApiError> {
    match answer {
        Ok(body) => Ok(body),
        Err(e) if is_not_found(&e) => {
            tracing::info!(session.unique_id = %id, "upstream no longer knows the session; forgetting it");
            state.store.forget_session(id).await?;
            Err(UNKNOWN)
        }
        Err(e) => Err(api_error(e)),
    }
}

/// Upstream's whole body with its `data` session presented to the tenant.
fn present_body(state: &AppState, mut body: Value, callback: Option<&str>, qr_token: Option<&str>) -> Value {
    if let Some(data) = body.get_mut("data").filter(|d| d.is_object()) {
        *data = present_session(data.take(), callback, qr_token, &state.public_base);
    }
    body
}

/// One listed session as its tenant sees it.
async fn present_listed(state: &AppState, tenant: &TenantId, session: Value) -> Result<Value, ApiError> {
    let owner = match unique_id_of(&session) {
        Some(id) => state.store.session_owner(&id).await?.filter(|o| &o.tenant == tenant),
        None => None,
    };
    let (callback, qr_token) = match &owner {
        Some(owner) => presentation(state, owner).await?,
        None => (None, None),
    };
    Ok(present_session(session, callback.as_deref(), qr_token.as_deref(), &state.public_base))
}

/// A validated sessions-get body.
struct ListRequest {
    whatsapp_id: Option<String>,
    name: Option<String>,
    status: Option<String>,
    page_cnt: u32,
    page: u32,
}

impl ListRequest {
    fn parse(fields: &Map<String, Value>) -> Result<Self, ApiError> {
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
    fn query(&self, whatsapp_id: String) -> SessionsQuery {
        SessionsQuery {
            whatsapp_id: Some(whatsapp_id),
            name: self.name.clone(),
            status: self.status.clone(),
            page_cnt: None,
            page: None,
        }
    }

    fn filtered(&self) -> bool {
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

/// One `sessions-get {WhatsappID, name?, status?}` per owned session, a few at a time. A session WhatsGate says,
/// well-formed, it no longer has (an OK answer whose `data` list lacks it, or its `NotFound` error) is dropped,
/// and, when no filter could explain its absence, forgotten. Any other failure fails the listing and forgets
/// nothing.
async fn fetch_each(
    state: &AppState,
    upstream: &SessionUpstream,
    list: &ListRequest,
    owned: Vec<String>,
) -> Result<Vec<Value>, ApiError> {
    let found: Vec<Option<Value>> = stream::iter(owned.into_iter().map(|id| async move {
        let query = list.query(id.clone());
        let answer = upstream
            .run(Repeat::Safe, |u| {
                let query = query.clone();
                async move { u.call("sessions-get", &query).await }
            })
            .await;
        let session = match answer {
            Ok(page) => match page.get("data") {
                Some(Value::Array(data)) => {
                    data.iter().find(|s| unique_id_of(s).as_deref() == Some(id.as_str())).cloned()
                }
                _ => {
                    return Err(api_error(UpstreamError::new(
                        ErrorClass::Unavailable,
                        "UnexpectedAnswer",
                        "sessions-get answered OK without a data list",
                        true,
                    )));
                }
            },
            Err(e) if is_not_found(&e) => None,
            Err(e) => return Err(api_error(e)),
        };
        if session.is_none() && !list.filtered() {
            tracing::info!(session.unique_id = %id, "upstream no longer knows the session; forgetting it");
            state.store.forget_session(&id).await?;
        }
        Ok(session)
    }))
    .buffer_unordered(FETCH_CONCURRENCY)
    .try_collect()
    .await?;
    Ok(found.into_iter().flatten().collect())
}

/// A session's `unique_id`, which WhatsGate writes as a string (a number is read too).
fn unique_id_of(session: &Value) -> Option<String> {
    match session.get("unique_id") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// Upstream's numeric `id` (the listing order); a session without one sorts last.
fn upstream_id(session: &Value) -> u64 {
    match session.get("id") {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(u64::MAX),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(u64::MAX),
        _ => u64::MAX,
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn sessions_sort_by_upstream_id_and_those_without_one_last() {
        assert!(upstream_id(&json!({"id": 2})) < upstream_id(&json!({"id": "10"})));
        assert_eq!(upstream_id(&json!({})), u64::MAX);
        assert_eq!(unique_id_of(&json!({"unique_id": 6345454545454u64})).as_deref(), Some("6345454545454"));
    }
}
