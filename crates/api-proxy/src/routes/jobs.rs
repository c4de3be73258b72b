//! `GET /api/v1/jobs/{id}` and `POST /api/v1/jobs/{id}/replay`. Another tenant's job and a malformed id answer
//! exactly as a missing job does, so ids reveal nothing.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;
use wgate_queue::Replay;
use wgate_types::{ErrorBody, JobId, JobRecord, Scope, TenantId};

use super::{accepted, authorize, job_view, record_job};
use crate::{error::ApiError, limits::Bucket, state::AppState};

const NOT_FOUND: ApiError = ApiError::NotFound("job");

/// The `{id}` of the path, when it is a job id (a webhook delivery's id is one too).
pub(super) fn job_id(req: &HttpRequest) -> Option<JobId> {
    req.match_info().get("id").and_then(|s| s.parse().ok())
}

async fn own_job(state: &AppState, tenant: &TenantId, id: Option<JobId>) -> Result<JobRecord, ApiError> {
    let Some(id) = id else { return Err(NOT_FOUND) };
    match state.store.get(tenant, id).await? {
        Some(job) if &job.tenant == tenant => Ok(job),
        _ => Err(NOT_FOUND),
    }
}

/// A job: its status, attempts, last error and, once it succeeded, the session.
#[utoipa::path(
    get,
    path = "/api/v1/jobs/{id}",
    tag = "jobs",
    operation_id = "get_job",
    params(("id" = String, Path, description = "The job id (`X-Job-Id`, or the end of `Location`)")),
    responses(
        (status = 200, description = "The job", body = crate::openapi::JobAnswer,
            headers(("X-Job-Id" = String, description = "The job's id"))),
        (status = 404, description = "No such job of this tenant (another tenant's job is the same 404)",
            body = ErrorBody),
    ),
    security(("bearer" = ["sessions:read"]), ("api_key" = ["sessions:read"])),
)]
pub async fn get_job(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let principal = authorize(&req, &state, Scope::SessionsRead, Bucket::Read).await?;
    let job = own_job(&state, &principal.tenant, job_id(&req)).await?;
    record_job(&req, job.id);
    Ok(HttpResponse::Ok().json(json!({"result": "OK", "data": job_view(&state, &job)})))
}

/// Replay a dead job.
///
/// Runs one of the caller's own dead jobs again, with a fresh set of attempts. Only a `dead` job can be replayed.
/// A replay may create a session, as a session-create does, so it counts against the tenant's session quota; a
/// job whose last attempt may have reached WhatsGate first looks for the session it may have created.
#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/replay",
    tag = "jobs",
    operation_id = "replay_job",
    params(("id" = String, Path, description = "The job id")),
    responses(
        (status = 202, description = "The job is queued again; poll `Location`", body = crate::openapi::Accepted,
            headers(
                ("Location" = String, description = "The job resource, an absolute URL"),
                ("X-Job-Id" = String, description = "The job's id"))),
        (status = 403, description = "The token lacks the `admin` scope (ask for a token that grants it), or the \
            tenant's session quota (`max_sessions`) is reached (delete a session first)", body = ErrorBody,
            headers(("WWW-Authenticate" = String,
                description = "On a missing scope: `Bearer error=\"insufficient_scope\", scope=\"...\"`"))),
        (status = 404, description = "No such job of this tenant", body = ErrorBody),
        (status = 409, description = "The job is not dead", body = ErrorBody,
            headers(("X-Job-Id" = String, description = "The job's id"))),
    ),
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])),
)]
pub async fn replay_job(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let principal = authorize(&req, &state, Scope::Admin, Bucket::Write).await?;
    let job = own_job(&state, &principal.tenant, job_id(&req)).await?;
    record_job(&req, job.id);
    match state.store.replay(&principal.tenant, job.id, state.max_sessions(&principal.tenant)).await? {
        Replay::Requeued(job) => {
            tracing::info!(job_id = %job.id, "dead job replayed");
            Ok(accepted(&state, &job))
        }
        Replay::NotDead(status) => Err(ApiError::NotDead(status)),
        Replay::NotFound => Err(NOT_FOUND),
        Replay::QuotaExceeded { limit } => Err(ApiError::QuotaExceeded { limit }),
    }
}
