//! The session commands, scoped to the caller's own sessions: `sessions-get`, `session-delete`, `set-hook` and
//! `set-name`, with WhatsGate's paths and bodies. One WhatsGate account serves every tenant; a tenant owns the
//! sessions its create jobs made (`{ns}:session:<unique_id>`, written by the worker), and a `WhatsappID` that is not
//! the caller's answers exactly as an unknown one. What the tenant sees of a session goes through
//! [`present_session`]: its own callback, the gateway's QR window.

use actix_web::{HttpRequest, HttpResponse, web};
use futures::{StreamExt, TryStreamExt, stream};
use serde_json::{Map, Value, json};
use wgate_queue::SessionOwner;
use wgate_types::{CallbackUrl, Scope, SessionDelete, SessionsList, SetHook, SetName, TenantId, ValidationErrors};
use wgate_upstream::UpstreamError;

use super::{authorize, check_callback};
use crate::{
    error::ApiError,
    limits::Bucket,
    present::present_session,
    state::AppState,
    upstream::{Repeat, SessionUpstream, api_error, deadline_error, is_not_found},
};

/// Sessions of one answer presented at once (each costs a few Redis reads).
const PRESENT_CONCURRENCY: usize = 16;

const UNKNOWN: ApiError = ApiError::UnknownSession;

mod listing;
pub(crate) mod request;

pub use listing::FETCH_CONCURRENCY;
use listing::{fetch_each, present_listed, unique_id_of, upstream_id};
use request::body_object;

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
    let list = SessionsList::parse(&fields)?;

    let owned = state.store.tenant_sessions(&principal.tenant).await?;
    let owned: Vec<String> = match &list.whatsapp_id {
        Some(id) => owned.into_iter().filter(|o| o == id).collect(),
        None => owned,
    };
    let budget = upstream.budget();
    let mut sessions = tokio::time::timeout(budget, fetch_each(&state, upstream, &list, &principal.tenant, owned))
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
    let (tenant, upstream, SessionDelete { whatsapp_id: id }) =
        begin_write(&req, &state, payload, SessionDelete::parse).await?;
    let owner = owned(&state, &tenant, &id).await?;
    let (callback, qr_token) = presentation(&state, &owner).await?;
    let answer = upstream
        .run(Repeat::IfNotSent, |u| {
            let id = id.clone();
            async move { u.session_delete(&id).await }
        })
        .await;
    let body = forget_if_gone(&state, &tenant, &id, answer).await?;
    state.store.forget_session(&tenant, &id).await?;
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
    let (tenant, upstream, SetHook { whatsapp_id: id, callback }) =
        begin_write(&req, &state, payload, SetHook::parse).await?;
    if let Some(callback) = &callback {
        check_callback(&state, callback).await?;
    }
    let owner = owned(&state, &tenant, &id).await?;
    let (_, qr_token) = presentation(&state, &owner).await?;
    let relay = wgate_types::relay_url(&state.public_base, &owner.hook_token);
    let answer = upstream
        .run(Repeat::Safe, |u| {
            let (id, relay) = (id.clone(), relay.clone());
            async move { u.set_hook(&id, &relay).await }
        })
        .await;
    let body = forget_if_gone(&state, &tenant, &id, answer).await?;
    if !state.store.set_hook_callback(&owner.tenant, &owner.hook_token, callback.as_ref()).await? {
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
    let (tenant, upstream, SetName { whatsapp_id: id, name }) =
        begin_write(&req, &state, payload, SetName::parse).await?;
    let owner = owned(&state, &tenant, &id).await?;
    let (callback, qr_token) = presentation(&state, &owner).await?;
    let answer = upstream
        .run(Repeat::Safe, |u| {
            let (id, name) = (id.clone(), name.clone());
            async move { u.set_name(&id, name.as_str()).await }
        })
        .await;
    let body = forget_if_gone(&state, &tenant, &id, answer).await?;
    Ok(HttpResponse::Ok().json(present_body(&state, body, callback.as_deref(), qr_token.as_deref())))
}

// --- shared ---

/// The start every command on one session shares: the caller authorized for `sessions:write` (write bucket),
/// WhatsGate configured, then the body parsed by the command's constructor.
async fn begin_write<'s, T>(
    req: &HttpRequest,
    state: &'s AppState,
    payload: web::Payload,
    parse: fn(&Map<String, Value>) -> Result<T, ValidationErrors>,
) -> Result<(TenantId, &'s SessionUpstream, T), ApiError> {
    let principal = authorize(req, state, Scope::SessionsWrite, Bucket::Write).await?;
    let upstream = upstream_of(state)?;
    let command = parse(&body_object(req, state, payload).await?)?;
    Ok((principal.tenant, upstream, command))
}

pub(crate) fn upstream_of(state: &AppState) -> Result<&SessionUpstream, ApiError> {
    state.upstream.as_ref().ok_or(ApiError::UpstreamNotConfigured)
}

/// The owner record of a session of `tenant`; any other id, foreign or unknown, is the same 404.
pub(crate) async fn owned(state: &AppState, tenant: &TenantId, id: &str) -> Result<SessionOwner, ApiError> {
    match state.store.session_owner(tenant, id).await? {
        Some(owner) if &owner.tenant == tenant => Ok(owner),
        _ => Err(UNKNOWN),
    }
}

/// The tenant's callback (the relay's current target; the create request's when the hook is gone) and the QR
/// window token of the job that made the session (none once the job record expired).
pub(super) async fn presentation(
    state: &AppState,
    owner: &SessionOwner,
) -> Result<(Option<String>, Option<String>), ApiError> {
    let (hook, job) =
        futures::try_join!(state.store.hook_target(&owner.hook_token), state.store.get(&owner.tenant, owner.job_id))?;
    let callback = match (&hook, &job) {
        (Some(hook), _) => hook.callback.as_ref().map(|c| c.as_str().to_owned()),
        (None, Some(job)) => job.request.callback().map(|c| c.as_str().to_owned()),
        (None, None) => None,
    };
    Ok((callback, job.map(|j| j.qr_token)))
}

/// Upstream's answer, or the error for the tenant. Upstream not knowing an owned session means it was deleted
/// outside the gateway: its ownership is forgotten (freeing the quota slot) and the answer is the unknown 404.
async fn forget_if_gone(
    state: &AppState,
    tenant: &TenantId,
    id: &str,
    answer: Result<Value, UpstreamError>,
) -> Result<Value, ApiError> {
    match answer {
        Ok(body) => Ok(body),
        Err(e) if is_not_found(&e) => {
            tracing::info!(session.unique_id = %id, "upstream no longer knows the session; forgetting it");
            state.store.forget_session(tenant, id).await?;
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
