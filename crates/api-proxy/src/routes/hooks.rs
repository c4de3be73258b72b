//! `POST /hooks/{token}`: WhatsGate's webhooks arrive here. WhatsGate calls the callback the worker gave it,
//! `{WGATE_PUBLIC_URL}/hooks/{hook_token}`; the event is stored (and its delivery to the tenant queued) in one
//! script, and only then is WhatsGate acknowledged. The worker delivers it, signed, with retries.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use wgate_queue::{NewEvent, Received};
use wgate_types::{ErrorBody, JobId};

use super::{record_job, session_create::read_body};
use crate::{error::ApiError, state::AppState};

/// Largest webhook body taken.
pub(crate) const MAX_HOOK_BYTES: usize = 1024 * 1024;

/// A JSON scalar as text: a string as is, a number as written; anything else is `None`.
fn scalar_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// WhatsGate's `event_date` (`YYYY-MM-DD HH:MM:SS`, UTC) in Unix seconds.
pub(crate) fn event_unix(date: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(date.trim(), &format).ok().map(|t| t.assume_utc().unix_timestamp())
}

/// WhatsGate's webhook: stored, then acknowledged.
///
/// The event is stored durably and its delivery to the tenant queued before WhatsGate gets
/// `{"result":"OK","id":<event id>}`; the worker then delivers it to the session's callback (or the tenant's
/// `webhook_url`), signed, retrying for days. WhatsGate sending the same event again (same token and event id)
/// is acknowledged without storing it twice. An unknown token is 404 before any of the body is read.
// The token is looked up before a byte of the body is read, so a client without a capability holds neither memory
// nor a connection; the body is then read under its bound and the read deadline.
#[utoipa::path(
    post,
    path = "/hooks/{token}",
    tag = "webhooks",
    operation_id = "relay_hook",
    params(("token" = String, Path, description = "The session's relay token (a capability; no JWT)")),
    request_body(content = Object, content_type = "application/json",
        description = "WhatsGate's event: `{id, whatsapp_id, event_action, event_date, status_code, event_data}`"),
    responses(
        (status = 200, description = "The event is stored (or was already)",
            body = crate::openapi::HookAck, headers(("X-Job-Id" = String, description = "The session's job"))),
        (status = 400, description = "The body is not a WhatsGate event (a JSON object with an `id`)", body = ErrorBody),
        (status = 404, description = "No such relay token", body = ErrorBody),
    ),
)]
pub async fn relay_hook(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let token = req.match_info().get("token").unwrap_or_default().to_owned();
    // A malformed token is refused by its shape, without a look in Redis.
    let Some(target) = state.store.hook_target(&token).await? else {
        return Err(ApiError::NotFound("hook"));
    };
    record_job(&req, target.job_id);
    tracing::Span::current().record("tenant", target.tenant.as_str());
    let body = read_body(&req, payload, MAX_HOOK_BYTES, state.body_read_timeout).await?;
    let not_event = |why: &str| ApiError::Http {
        status: actix_web::http::StatusCode::BAD_REQUEST,
        message: format!("The body is not a WhatsGate event: {why}."),
    };
    let text = std::str::from_utf8(&body).map_err(|_| not_event("it is not UTF-8"))?;
    let event: Value = serde_json::from_str(text).map_err(|_| not_event("it is not JSON"))?;
    let Value::Object(fields) = &event else { return Err(not_event("it is not a JSON object")) };
    let id_value = fields.get("id").cloned().unwrap_or(Value::Null);
    let event_id = scalar_text(Some(&id_value)).ok_or_else(|| not_event("it has no `id` (a number or a string)"))?;
    if event_id.is_empty() || event_id.len() > 256 {
        return Err(not_event("its `id` is empty or longer than 256 characters"));
    }
    let action = scalar_text(fields.get("event_action")).unwrap_or_default();
    let session = scalar_text(fields.get("whatsapp_id")).unwrap_or_default();
    let event_at = fields.get("event_date").and_then(Value::as_str).and_then(event_unix);

    let tenants = state.tenants.current();
    let settings = tenants.get(&target.tenant);
    let wanted = settings.is_none_or(|o| o.wants(&action));
    let has_endpoint = target.callback.is_some() || settings.and_then(|o| o.webhook_url.as_ref()).is_some();
    let deliver = wanted && has_endpoint;
    let stored = state
        .store
        .receive_event(&NewEvent {
            id: JobId::new(),
            tenant: &target.tenant,
            hook_token: &token,
            job: target.job_id,
            event_id: &event_id,
            event: &action,
            session: &session,
            event_at,
            body: text,
            deliver,
        })
        .await?;
    match stored {
        Received::Stored(id) => {
            let label = wgate_webhooks::event_label(&action);
            state.metrics.webhook_events_received.with_label_values(&[label]).inc();
            if !deliver {
                state.metrics.webhook_deliveries.with_label_values(&["filtered"]).inc();
            }
            tracing::debug!(delivery.id = %id, event.id = %event_id, deliver, "webhook event stored");
        }
        Received::Seen(id) => {
            tracing::debug!(delivery.id = %id, event.id = %event_id, "WhatsGate sent a stored event again");
        }
    }
    Ok(HttpResponse::Ok().json(json!({"result": "OK", "id": id_value})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whatsgate_event_dates_are_read_as_utc() {
        assert_eq!(event_unix("2022-10-11 19:30:14"), Some(1_665_516_614));
        assert_eq!(event_unix("yesterday"), None);
    }
}
