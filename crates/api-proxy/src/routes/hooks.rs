//! `POST /hooks/{token}`: the webhook relay. WhatsGate calls the callback the worker gave it,
//! `{WGATE_PUBLIC_URL}/hooks/{hook_token}`; the gateway forwards the body to the tenant's own callback and
//! acknowledges WhatsGate only once the tenant did, so WhatsGate's retries cover a tenant that is down.

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use serde_json::{Value, json};
use wgate_egress::EgressError;
use wgate_types::ErrorBody;

use super::{record_job, session_create::read_body};
use crate::{error::ApiError, state::AppState};

/// Largest webhook body relayed.
pub(crate) const MAX_HOOK_BYTES: usize = 1024 * 1024;

/// WhatsGate's webhook, relayed to the session's callback.
///
/// WhatsGate calls the callback the gateway gave it; the body is forwarded unchanged to the tenant's callback
/// (with `X-Job-Id`), and WhatsGate is acknowledged only once the tenant answered 2xx, so WhatsGate's own retries
/// cover a tenant that is down. Without a tenant callback the webhook is acknowledged and dropped. An unknown token
/// is 404 before any of the body is read.
// The token is looked up before a byte of the body is read, so a client without a capability holds neither memory
// nor a connection; the body is then read under its bound and the read deadline, and relayed through the egress
// guard.
#[utoipa::path(
    post,
    path = "/hooks/{token}",
    tag = "webhooks",
    operation_id = "relay_hook",
    params(("token" = String, Path, description = "The session's relay token (a capability; no JWT)")),
    request_body(content = Object, content_type = "application/json",
        description = "WhatsGate's event: `{id, whatsapp_id, event_action, event_date, status_code, event_data}`"),
    responses(
        (status = 200, description = "The tenant took the webhook (or has no callback)",
            body = crate::openapi::HookAck, headers(("X-Job-Id" = String, description = "The session's job"))),
        (status = 404, description = "No such relay token", body = ErrorBody),
        (status = 502, description = "The tenant's callback did not answer 2xx; WhatsGate retries", body = ErrorBody,
            headers(("X-Job-Id" = String, description = "The session's job"))),
    ),
)]
pub async fn relay_hook(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let token = req.match_info().get("token").unwrap_or_default().to_owned();
    if !wgate_types::is_capability_token(&token) {
        return Err(ApiError::NotFound("hook"));
    }
    let Some(target) = state.store.hook(&token).await? else {
        return Err(ApiError::NotFound("hook"));
    };
    record_job(&req, target.job_id);
    tracing::Span::current().record("tenant", target.tenant.as_str());
    let body = read_body(&req, payload, MAX_HOOK_BYTES, state.body_read_timeout).await?;
    let event_id =
        serde_json::from_slice::<Value>(&body).ok().and_then(|v| v.get("id").cloned()).unwrap_or(Value::Null);
    let ack = HttpResponse::Ok().json(json!({"result": "OK", "id": event_id}));
    let Some(callback) = target.callback else {
        tracing::debug!("webhook for a job without a tenant callback dropped");
        return Ok(ack);
    };
    // The reasons below are logged; none names the callback URL (it may carry the tenant's secret).
    let request = state.hooks.post(callback.as_str()).map_err(|e| match e {
        EgressError::Refused(r) => ApiError::CallbackFailed(format!("the tenant's callback is refused: {}", r.rule)),
        EgressError::Gateway(_) => ApiError::CallbackFailed("the tenant's callback is the gateway itself".into()),
        EgressError::BadUrl => ApiError::CallbackFailed("the tenant's callback is not a usable URL".into()),
    })?;
    let sent = request
        .header(header::CONTENT_TYPE.as_str(), "application/json")
        .header("x-job-id", target.job_id.to_string())
        .body(body)
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => Ok(ack),
        Ok(r) => Err(ApiError::CallbackFailed(format!("the tenant's callback answered {}", r.status()))),
        Err(e) => Err(ApiError::CallbackFailed(match wgate_egress::refused_by_policy(&e) {
            Some(r) => format!("the tenant's callback is refused: {}", r.rule),
            None => format!("the tenant's callback could not be reached: {}", wgate_egress::describe(e)),
        })),
    }
}
