//! `GET /api/v1/jobs/{id}` and `POST /api/v1/jobs/{id}/replay`. Another tenant's job and a malformed id answer
//! exactly as a missing job does, so ids reveal nothing.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;
use wgate_queue::Replay;
use wgate_types::{JobId, JobRecord, Scope, TenantId};

use super::{accepted, authorize, concerns_job, job_view};
use crate::{error::ApiError, limits::Bucket, state::AppState};

const NOT_FOUND: ApiError = ApiError::NotFound("job");

fn job_id(req: &HttpRequest) -> Option<JobId> {
    req.match_info().get("id").and_then(|s| s.parse().ok())
}

async fn own_job(state: &AppState, tenant: &TenantId, id: Option<JobId>) -> Result<JobRecord, ApiError> {
    let Some(id) = id else { return Err(NOT_FOUND) };
    match state.store.get(id).await? {
        Some(job) if &job.tenant == tenant => Ok(job),
        _ => Err(NOT_FOUND),
    }
}

pub async fn get_job(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let principal = authorize(&req, &state, Scope::SessionsRead, Bucket::Read).await?;
    let job = own_job(&state, &principal.tenant, job_id(&req)).await?;
    concerns_job(&req, job.id);
    Ok(HttpResponse::Ok().json(json!({"result": "OK", "data": job_view(&state, &job)})))
}

/// Replays one of the caller's own dead jobs (scope `admin`); 409 when the job is not dead, 403 when the tenant's
/// session quota is reached (a replay may create a session, as a session-create does).
pub async fn replay_job(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let principal = authorize(&req, &state, Scope::Admin, Bucket::Write).await?;
    let job = own_job(&state, &principal.tenant, job_id(&req)).await?;
    concerns_job(&req, job.id);
    match state.store.replay(job.id, state.max_sessions(&principal.tenant)).await? {
        Replay::Requeued(job) => {
            tracing::info!(job_id = %job.id, "dead job replayed");
            Ok(accepted(&state, &job))
        }
        Replay::NotDead(status) => Err(ApiError::NotDead(status)),
        Replay::NotFound => Err(NOT_FOUND),
        Replay::QuotaExceeded { limit } => Err(ApiError::QuotaExceeded { limit }),
    }
}
