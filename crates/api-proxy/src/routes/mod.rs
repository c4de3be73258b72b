//! The HTTP handlers and what they share: authorising a tenant request (token, rate limit, scope) and the shapes
//! of job answers.

pub(crate) mod hooks;
pub(crate) mod jobs;
pub(crate) mod messages;
pub(crate) mod qr;
pub(crate) mod session_create;
pub(crate) mod sessions;
pub(crate) mod webhooks;

use actix_web::{HttpMessage, HttpRequest, HttpResponse, http::header, web};
use serde_json::{Value, json};
use wgate_types::{CallbackUrl, ErrorClass, JobId, JobRecord, JobStatus, JobView, Scope};

pub use hooks::relay_hook;
pub use jobs::{get_job, replay_job};
pub use session_create::session_create;
pub use sessions::{FETCH_CONCURRENCY, session_delete, sessions_get, set_hook, set_name};

use crate::{
    auth::{self, Principal},
    error::ApiError,
    fallback::method_not_allowed,
    limits::{Bucket, Decision},
    middleware::{JobHeader, RateHeaders},
    present::present_session,
    state::AppState,
};

/// Authenticates the token, draws from the tenant's bucket (recording the rate-limit headers for the answer),
/// then checks the scope.
pub async fn authorize(
    req: &HttpRequest,
    state: &AppState,
    scope: Scope,
    bucket: Bucket,
) -> Result<Principal, ApiError> {
    let principal = authenticate(req, state).await?;
    admit(req, state, &principal, bucket).await?;
    principal.require(scope)?;
    Ok(principal)
}

/// The tenant the request's token names.
pub async fn authenticate(req: &HttpRequest, state: &AppState) -> Result<Principal, ApiError> {
    let token = auth::token_of(req)?;
    let principal = state.verifier.verify(token).await?;
    tracing::Span::current().record("tenant", principal.tenant.as_str());
    Ok(principal)
}

/// Draws one request from the tenant's `bucket` on its own (a round trip of its own with the shared store).
pub async fn admit(req: &HttpRequest, state: &AppState, principal: &Principal, bucket: Bucket) -> Result<(), ApiError> {
    let decision = state.limits.decide(&principal.tenant, bucket).await.map_err(|e| {
        state.metrics.redis_errors.with_label_values(&["rate_limit"]).inc();
        ApiError::Unavailable { op: "rate_limit", cause: e.to_string() }
    })?;
    apply_decision(req, state, principal, bucket, decision)
}

/// Records a rate-limit decision's headers for the answer; 429 when it refused the request.
pub fn apply_decision(
    req: &HttpRequest,
    state: &AppState,
    principal: &Principal,
    bucket: Bucket,
    decision: Decision,
) -> Result<(), ApiError> {
    req.extensions_mut().insert(RateHeaders { policy: decision.policy, current: decision.current });
    if let Some(retry_after) = decision.retry_after {
        let label = state.metrics.tenant_label(principal.tenant.as_str());
        state.metrics.rate_limited.with_label_values(&[label.as_str()]).inc();
        return Err(ApiError::RateLimited { retry_after, bucket: bucket.name() });
    }
    Ok(())
}

/// A tenant's callback must be one the egress guard will call (see [`CallbackChecks::check`]).
pub async fn check_callback(state: &AppState, callback: &CallbackUrl) -> Result<(), ApiError> {
    state.callback_checks.check(state.hooks.policy(), callback).await
}

/// Marks the answer as concerning `job` (header `X-Job-Id`, log field `job_id`).
pub fn record_job(req: &HttpRequest, job: JobId) {
    req.extensions_mut().insert(JobHeader(job));
    tracing::Span::current().record("job_id", tracing::field::display(job));
}

/// Upstream's session data of a job as the tenant sees it (see [`present_session`]): its own callback, the
/// gateway's QR window.
pub fn tenant_response(state: &AppState, job: &JobRecord) -> Option<Value> {
    let data = job.response.clone()?;
    let own = job.request.callback().map(|c| c.as_str());
    Some(present_session(data, own, Some(job.qr_token.as_str()), &state.public_base))
}

/// The job resource as served to its tenant.
pub fn job_view(state: &AppState, job: &JobRecord) -> JobView {
    JobView { response: tenant_response(state, job), ..job.view() }
}

/// `202 {"result":"ACCEPTED","data":<job>}` with `Location` of the job resource.
pub fn accepted(state: &AppState, job: &JobRecord) -> HttpResponse {
    HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("{}/api/v1/jobs/{}", state.public_base, job.id)))
        .json(json!({"result": "ACCEPTED", "data": job_view(state, job)}))
}

/// The answer of a finished job: upstream's body on success, the mapped error otherwise.
pub fn finished(state: &AppState, job: &JobRecord) -> Result<HttpResponse, ApiError> {
    let (name, message, class) = match &job.error {
        Some(e) => (e.name.clone(), e.message.clone(), Some(e.class)),
        None => ("Unknown".to_owned(), "no error was recorded".to_owned(), None),
    };
    match job.status {
        JobStatus::Succeeded => {
            Ok(HttpResponse::Ok().json(json!({"result": "OK", "data": tenant_response(state, job)})))
        }
        JobStatus::Failed => Err(match class {
            Some(ErrorClass::Credentials) => ApiError::UpstreamCredentials { name, message },
            Some(ErrorClass::Rejected) => ApiError::UpstreamRejected { name, message },
            other => ApiError::UpstreamExhausted { name, message, timeout: other == Some(ErrorClass::Timeout) },
        }),
        JobStatus::Dead => {
            Err(ApiError::UpstreamExhausted { name, message, timeout: class == Some(ErrorClass::Timeout) })
        }
        // Not finished: callers only pass terminal jobs; answer as accepted would need the state, so say so.
        _ => Err(ApiError::Internal(anyhow::anyhow!("job {} is not finished", job.id))),
    }
}

/// Routes of the tenant API and of the QR window.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/v1/session-create")
            .route(web::post().to(session_create))
            .default_service(method_not_allowed("POST")),
    )
    .service(
        web::resource("/api/v1/jobs/{id}").route(web::get().to(get_job)).default_service(method_not_allowed("GET")),
    )
    .service(
        web::resource("/api/v1/jobs/{id}/replay")
            .route(web::post().to(replay_job))
            .default_service(method_not_allowed("POST")),
    )
    .service(
        web::resource("/api/v1/sessions-get")
            .route(web::post().to(sessions_get))
            .default_service(method_not_allowed("POST")),
    )
    .service(
        web::resource("/api/v1/session-delete")
            .route(web::post().to(session_delete))
            .default_service(method_not_allowed("POST")),
    )
    .service(
        web::resource("/api/v1/set-hook").route(web::post().to(set_hook)).default_service(method_not_allowed("POST")),
    )
    .service(
        web::resource("/api/v1/set-name").route(web::post().to(set_name)).default_service(method_not_allowed("POST")),
    )
    .configure(webhooks::configure)
    .service(
        web::resource("/hooks/{token}").route(web::post().to(relay_hook)).default_service(method_not_allowed("POST")),
    )
    .service(
        web::resource("/openapi.json")
            .route(web::get().to(crate::openapi::openapi_json))
            .default_service(method_not_allowed("GET")),
    );
    messages::configure(cfg);
    qr::configure(cfg);
}
