//! `POST /api/v1/session-create`: validate, store and queue the job (idempotency and quota checked atomically in
//! Redis), then wait for it on the completion subscription — synchronously by default, up to `WGATE_SYNC_WAIT_MS`
//! or the client's `Prefer: wait=N` — or answer 202 at once for `Prefer: respond-async`.

use std::time::{Duration, Instant};

use actix_web::{
    HttpMessage, HttpRequest, HttpResponse,
    http::{StatusCode, header},
    web,
};
use bytes::BytesMut;
use futures::StreamExt;
use time::OffsetDateTime;
use wgate_queue::{Enqueued, RateDraw};
use wgate_types::{ErrorBody, IdempotencyKey, JobId, JobRecord, NewJob, Scope, SessionCreate};

use super::{accepted, admit, apply_decision, authenticate, check_callback, finished, record_job};
use crate::{auth::Principal, error::ApiError, limits::Bucket, middleware::RequestId, prefer, state::AppState};

/// Largest accepted body.
pub(crate) const MAX_BODY_BYTES: usize = 16 * 1024;

/// Create a WhatsApp session.
///
/// The request is stored and queued before anything else happens, and a worker calls WhatsGate with retries:
/// every accepted request yields exactly one session. By default the answer waits for the job (up to the
/// server's limit, or less with `Prefer: wait=N`) and is WhatsGate's answer with the session; with
/// `Prefer: respond-async`, or when the wait runs out, it is 202 with the job to poll at `Location`.
#[utoipa::path(
    post,
    path = "/api/v1/session-create",
    tag = "sessions",
    operation_id = "session_create",
    request_body(content = wgate_types::SessionCreate, content_type = "application/json"),
    params(
        ("Prefer" = Option<String>, Header, description = "`respond-async` answers 202 at once; `wait=N` waits at \
            most N seconds for the session (RFC 7240). Honoured preferences are echoed in `Preference-Applied`.", example = "respond-async"),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 printable ASCII characters. The same \
            key and body from the same tenant within 24 h get the same job (and, once it finished, the same answer) \
            instead of a second session; the same key with another body is 422.",
            min_length = 1, max_length = 255, pattern = "^[ -~]{1,255}$", example = "order-4711"),
    ),
    responses(
        (status = 200, description = "The session exists: WhatsGate's answer, with the gateway's `qr_link`",
            body = crate::openapi::SessionAnswer, headers(
                ("X-Job-Id" = String, description = "The job that created the session"),
                ("Preference-Applied" = String, description = "`wait=N` when it was honoured"))),
        (status = 202, description = "Accepted: the job is stored and queued; poll `Location`",
            body = crate::openapi::Accepted, headers(
                ("Location" = String, description = "The job resource, an absolute URL"),
                ("X-Job-Id" = String, description = "The job's id"),
                ("Preference-Applied" = String, description = "`respond-async` or `wait=N` when honoured"))),
        (status = 403, description = "The token lacks `sessions:write`, or the tenant's session quota \
            (`max_sessions`: live sessions plus unfinished creates) is reached; nothing was queued",
            body = ErrorBody),
        (status = 422, description = "The `Idempotency-Key` was used with another body; or WhatsGate rejected the \
            request for good (its `name` and `message` are in `details`)", body = ErrorBody,
            headers(("X-Job-Id" = String, description = "The job, when WhatsGate rejected it"))),
        (status = 502, description = "WhatsGate rejected the gateway's credentials, or failed on every attempt \
            (the job is dead and can be replayed)", body = ErrorBody,
            headers(("X-Job-Id" = String, description = "The job"))),
        (status = 504, description = "WhatsGate did not answer in time on the last attempt (the job is dead and \
            can be replayed)", body = ErrorBody, headers(("X-Job-Id" = String, description = "The job"))),
    ),
    security(("bearer" = ["sessions:write"]), ("api_key" = ["sessions:write"])),
)]
pub async fn session_create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let principal = authenticate(&req, &state).await?;
    // With shared buckets the enqueue script draws from the write bucket itself (one round trip for both). A
    // request turned away before it gets there draws on its own, so that a tenant over its limit is told 429
    // before anything else, as on every route.
    let draw = state.limits.shared_draw(&principal.tenant, Bucket::Write);
    if draw.is_none() {
        admit(&req, &state, &principal, Bucket::Write).await?;
    }
    let checked = match check(&req, payload, &state, &principal).await {
        Ok(checked) => checked,
        Err(e) => {
            if draw.is_some() {
                admit(&req, &state, &principal, Bucket::Write).await?;
            }
            return Err(e);
        }
    };
    let Checked { request, key, wait, applied } = checked;

    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    let id = JobId::new();
    let new = NewJob {
        tenant: principal.tenant.clone(),
        request,
        max_attempts: state.max_attempts,
        request_id,
        hook_token: state.store.mint_job_token(&principal.tenant, id),
        qr_token: state.store.mint_job_token(&principal.tenant, id),
    };
    let job = JobRecord::accepted(id, new, OffsetDateTime::now_utc());
    let (job, waiter) = enqueue(&req, &state, &principal, job, key.as_ref(), wait, draw).await?;
    record_job(&req, job.id);

    let answer = if job.status.is_terminal() {
        finished(&state, &job)
    } else if let Some(waiter) = waiter {
        wait_for(&state, job, waiter, wait).await
    } else {
        Ok(accepted(&state, &job))
    };
    with_preference_applied(answer, applied)
}

/// A request that passed every check before the enqueue.
struct Checked {
    request: SessionCreate,
    key: Option<IdempotencyKey>,
    wait: Duration,
    applied: Option<String>,
}

/// Scope, body, `Idempotency-Key`, callback and preferences.
async fn check(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    principal: &Principal,
) -> Result<Checked, ApiError> {
    principal.require(Scope::SessionsWrite)?;
    check_json_content_type(req)?;
    let body = read_body(req, payload, MAX_BODY_BYTES, state.body_read_timeout).await?;
    let key = idempotency_key(req)?;
    let request = SessionCreate::from_json(&body)?;
    if let Some(callback) = request.callback() {
        check_callback(state, callback).await?;
    }
    let (wait, applied) = wait_of(&prefer::parse(req.headers()), state.sync_wait);
    Ok(Checked { request, key, wait, applied })
}

/// The `Idempotency-Key` header, when sent.
pub(crate) fn idempotency_key(req: &HttpRequest) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(v) = req.headers().get("idempotency-key") else { return Ok(None) };
    let key = v.to_str().ok().and_then(|s| IdempotencyKey::parse(s).ok()).ok_or_else(|| ApiError::BadHeader {
        header: "Idempotency-Key",
        problem: "must be 1 to 255 printable ASCII characters".into(),
    })?;
    Ok(Some(key))
}

/// How long to wait, and what to tell the client about its preferences.
fn wait_of(prefs: &prefer::Preferences, sync_wait: Duration) -> (Duration, Option<String>) {
    if prefs.respond_async {
        (Duration::ZERO, Some("respond-async".to_owned()))
    } else if let Some(secs) = prefs.wait {
        let asked = Duration::from_secs(secs);
        if asked <= sync_wait { (asked, Some(format!("wait={secs}"))) } else { (sync_wait, None) }
    } else {
        (sync_wait, None)
    }
}

/// Stores and queues the job (or finds the one its idempotency key names), registering the completion waiter
/// first when the answer is to wait, so a job that finishes at once is not missed. With `draw`, the same script
/// first draws from the tenant's shared write bucket, and nothing is stored when that refuses.
async fn enqueue(
    req: &HttpRequest,
    state: &AppState,
    principal: &Principal,
    job: JobRecord,
    key: Option<&IdempotencyKey>,
    wait: Duration,
    draw: Option<RateDraw<'static>>,
) -> Result<(JobRecord, Option<wgate_queue::Waiter>), ApiError> {
    let tenant = &principal.tenant;
    let max_sessions = state.max_sessions(tenant);
    let waiter = (!wait.is_zero()).then(|| state.completions.waiter(job.id));
    let stored = match draw {
        None => state.store.enqueue(&job, key, max_sessions).await.map(Some),
        Some(draw) => match state.store.enqueue_drawing(&job, key, max_sessions, draw).await {
            Ok((answer, outcome)) => {
                let decision = state.limits.shared_decision(tenant, Bucket::Write, answer);
                apply_decision(req, state, principal, Bucket::Write, decision)?;
                Ok(outcome)
            }
            Err(e) => {
                if matches!(e, ApiError::Unavailable { .. }) {
                    state.limits.shared_failed(&e);
                }
                Err(e)
            }
        },
    };
    let outcome = match stored {
        Ok(Some(outcome)) => outcome,
        Ok(None) => return Err(ApiError::Internal(anyhow::anyhow!("the enqueue script refused an allowed draw"))),
        // The script may have run and only its reply been lost: the client must be told the job may exist.
        Err(ApiError::Unavailable { cause, .. }) => {
            record_job(req, job.id);
            return Err(ApiError::EnqueueUnconfirmed { job: job.id, cause });
        }
        Err(e) => return Err(e),
    };
    match outcome {
        Enqueued::Created => {
            let label = state.metrics.tenant_label(tenant.as_str());
            state.metrics.jobs_enqueued.with_label_values(&[label.as_str(), job.kind.as_str()]).inc();
            tracing::info!(job_id = %job.id, "job accepted");
            Ok((job, waiter))
        }
        Enqueued::Existing(existing) if !wait.is_zero() && !existing.status.is_terminal() => {
            let waiter = state.completions.waiter(existing.id);
            // It may have finished between the script's read and this registration: read once more.
            let fresh = state.store.get(&existing.tenant, existing.id).await.ok().flatten().unwrap_or(existing);
            Ok((fresh, Some(waiter)))
        }
        Enqueued::Existing(existing) => Ok((existing, None)),
        Enqueued::IdempotencyConflict => Err(ApiError::IdempotencyConflict),
        Enqueued::QuotaExceeded { limit } => Err(ApiError::QuotaExceeded { limit }),
    }
}

/// `Preference-Applied` on the answer, for a preference that was honoured.
fn with_preference_applied(
    answer: Result<HttpResponse, ApiError>,
    applied: Option<String>,
) -> Result<HttpResponse, ApiError> {
    match (answer, applied) {
        // An idempotent repeat of a finished job answers at once: respond-async was not what happened.
        (Ok(res), Some(applied)) if applied == "respond-async" && res.status() != StatusCode::ACCEPTED => Ok(res),
        (Ok(mut res), Some(applied)) => {
            if let Ok(v) = header::HeaderValue::from_str(&applied) {
                res.headers_mut().insert(header::HeaderName::from_static("preference-applied"), v);
            }
            Ok(res)
        }
        (answer, _) => answer,
    }
}

/// Waits on the completion subscription (no polling): each wake-up is a finish or a resubscription, after which
/// the record is read again.
async fn wait_for(
    state: &AppState,
    mut job: JobRecord,
    mut waiter: wgate_queue::Waiter,
    wait: Duration,
) -> Result<HttpResponse, ApiError> {
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + wait;
    let answer = loop {
        if tokio::time::timeout_at(deadline, &mut waiter).await.is_err() {
            break None;
        }
        // Register again before reading, so a finish between the read and the next wait is not missed.
        waiter = state.completions.waiter(job.id);
        match state.store.get(&job.tenant, job.id).await {
            Ok(Some(fresh)) if fresh.status.is_terminal() => break Some(finished(state, &fresh)),
            Ok(Some(fresh)) => job = fresh,
            // The job was stored: a read failure now does not undo that; answer 202 with what we know.
            Ok(None) | Err(_) => break None,
        }
    };
    state.metrics.sync_wait.observe(start.elapsed().as_secs_f64());
    match answer {
        Some(a) => a,
        None => Ok(accepted(state, &job)),
    }
}

pub(super) fn check_json_content_type(req: &HttpRequest) -> Result<(), ApiError> {
    match req.mime_type() {
        Ok(Some(m)) if m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json") => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType),
    }
}

/// Reads the body under the size bound `limit` (refused as soon as `Content-Length` or the bytes read pass it) and
/// the read deadline `deadline` (a client that stops sending gets 408 instead of holding the connection).
pub(crate) async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    deadline: Duration,
) -> Result<bytes::Bytes, ApiError> {
    if let Some(len) = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok())
        && len.parse::<u64>().is_ok_and(|n| n > limit as u64)
    {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let read = async {
        let mut body = BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| match e {
                actix_web::error::PayloadError::Overflow => ApiError::PayloadTooLarge { limit },
                other => ApiError::BadBody(other.to_string()),
            })?;
            if body.len() + chunk.len() > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    tokio::time::timeout(deadline, read).await.map_err(|_| ApiError::BodyTimeout { ms: deadline.as_millis() })?
}
