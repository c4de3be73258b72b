//! The HTTP handlers and what they share: authorising a tenant request (token, rate limit, scope) and the shapes
//! of job answers.

pub(crate) mod hooks;
pub(crate) mod jobs;
pub(crate) mod session_create;
pub(crate) mod sessions;

use std::time::{Duration, Instant};

use actix_web::{HttpMessage, HttpRequest, HttpResponse, http::header, web};
use serde_json::{Value, json};
use wgate_egress::EgressError;
use wgate_types::{
    CallbackUrl, ErrorClass, FieldProblem, JobId, JobRecord, JobStatus, JobView, Scope, ValidationErrors,
};

pub use hooks::relay_hook;
pub use jobs::{get_job, replay_job};
pub use session_create::session_create;
pub use sessions::{FETCH_CONCURRENCY, session_delete, sessions_get, set_hook, set_name};

use crate::{
    auth::{self, Principal},
    error::ApiError,
    limits::Bucket,
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
    let token = auth::token_of(req)?;
    let principal = state.verifier.verify(token).await?;
    tracing::Span::current().record("tenant", principal.tenant.as_str());
    let decision = state.limits.decide(&principal.tenant, bucket).await.map_err(|e| {
        state.metrics.redis_errors.with_label_values(&["rate_limit"]).inc();
        ApiError::Unavailable { op: "rate_limit", cause: e.to_string() }
    })?;
    req.extensions_mut().insert(RateHeaders { policy: decision.policy, current: decision.current });
    if let Some(retry_after) = decision.retry_after {
        let label = state.metrics.tenant_label(principal.tenant.as_str());
        state.metrics.rate_limited.with_label_values(&[label.as_str()]).inc();
        return Err(ApiError::RateLimited { retry_after, bucket: bucket.name() });
    }
    principal.require(scope)?;
    Ok(principal)
}

/// How long the check of a tenant's callback waits for its host name to resolve.
const CALLBACK_RESOLVE_WITHIN: Duration = Duration::from_secs(2);
/// How long the verdict on a callback's host and port is remembered (tenants reuse one callback host).
pub const CALLBACK_CHECK_TTL: Duration = Duration::from_secs(60);

/// Remembered verdicts on callback hosts: `(host, port)` -> when checked, and the problem if refused.
pub type CallbackChecks = quick_cache::sync::Cache<(String, u16), (Instant, Option<String>)>;

/// A tenant's callback must be one the egress guard will call: an IP literal in a refused range, or a host name
/// whose every address is refused, is a 400 naming the rule. (The guard checks again at every call, so a name that
/// changes its addresses later gains nothing.) A host name's verdict is remembered for [`CALLBACK_CHECK_TTL`], so
/// a tenant's creates do not each wait on DNS.
pub async fn check_callback(state: &AppState, callback: &CallbackUrl) -> Result<(), ApiError> {
    let refuse = |problem: String| ApiError::Validation(ValidationErrors(vec![FieldProblem::new("callback", problem)]));
    let url =
        url::Url::parse(callback.as_str()).map_err(|e| refuse(format!("must be an absolute http(s) URL ({e})")))?;
    let key = (url.host_str().unwrap_or_default().to_owned(), url.port_or_known_default().unwrap_or(0));
    if let Some((at, verdict)) = state.callback_checks.get(&key)
        && at.elapsed() < CALLBACK_CHECK_TTL
    {
        return verdict.map_or(Ok(()), |p| Err(refuse(p)));
    }
    let verdict = match state.hooks.policy().check_url(&url, CALLBACK_RESOLVE_WITHIN).await {
        Ok(()) => None,
        Err(EgressError::Refused(r)) if matches!(url.host(), Some(url::Host::Domain(_))) => Some(format!(
            "must reach a public address: {} resolves only to refused addresses ({} is {})",
            r.host, r.ip, r.rule
        )),
        Err(EgressError::Refused(r)) => Some(format!("must reach a public address: {} is {}", r.host, r.rule)),
        Err(EgressError::Gateway(host)) => Some(format!("must not point at the gateway itself ({host})")),
        Err(EgressError::BadUrl) => Some("must be an absolute http(s) URL with a host".to_owned()),
    };
    state.callback_checks.insert(key, (Instant::now(), verdict.clone()));
    verdict.map_or(Ok(()), |p| Err(refuse(p)))
}

/// Marks the answer as concerning `job` (header `X-Job-Id`, log field `job_id`).
pub fn concerns_job(req: &HttpRequest, job: JobId) {
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

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("resource"))
}

/// The answer of a resource to any method but `allow`: 405 with `Allow` (RFC 9110).
pub fn method_not_allowed(allow: &'static str) -> actix_web::Route {
    web::to(move || async move { Err::<HttpResponse, ApiError>(ApiError::MethodNotAllowed { allow }) })
}

/// Routes of the tenant API.
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
    .service(
        web::resource("/hooks/{token}").route(web::post().to(relay_hook)).default_service(method_not_allowed("POST")),
    )
    .service(
        web::resource("/openapi.json")
            .route(web::get().to(crate::openapi::openapi_json))
            .default_service(method_not_allowed("GET")),
    );
}
