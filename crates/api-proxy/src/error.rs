//! The API's one error type, by how the client must react, mapped to HTTP in one `ResponseError` impl. Every
//! error answer is an `ErrorBody`; the client gets a clear message, the log gets the whole cause chain.

use actix_web::{
    HttpResponse, ResponseError,
    http::{StatusCode, header},
};
use wgate_types::{ErrorBody, FieldProblem, JobStatus, ValidationErrors};

use crate::auth::AuthError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("rate limit exceeded")]
    RateLimited { retry_after: u64, bucket: &'static str },
    #[error(transparent)]
    Validation(#[from] ValidationErrors),
    #[error("bad header {header}: {problem}")]
    BadHeader { header: &'static str, problem: String },
    #[error("body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body could not be read: {0}")]
    BadBody(String),
    /// The client did not send its whole body within the read deadline (408).
    #[error("the request body did not arrive within {ms} ms")]
    BodyTimeout { ms: u128 },
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A `WhatsappID` that is not one of the caller's sessions, foreign or unknown alike (404).
    #[error("no such session")]
    UnknownSession,
    #[error("method not allowed")]
    /// Another method than the resource's (`allow`, sent back in `Allow`).
    MethodNotAllowed { allow: &'static str },
    #[error("job is {0}, not dead")]
    NotDead(JobStatus),
    #[error("idempotency key reused with another body")]
    IdempotencyConflict,
    /// A send with this `Idempotency-Key` has not ended yet, or its outcome is unknown (409).
    #[error("a send with this idempotency key is in flight")]
    SendInFlight,
    /// The first send with this `Idempotency-Key` began long ago and its outcome was lost (409).
    #[error("the outcome of the first send with this Idempotency-Key was lost")]
    SendOutcomeLost { age_secs: u64 },
    /// The session's send pace is reached (429).
    #[error("send pace of the session reached")]
    SendPaced { retry_after: u64, per_minute: u32 },
    /// WhatsGate answered that it does not know what the command named (a media key, a chat) (404).
    #[error("upstream does not know it: {name}: {message}")]
    UpstreamNotFound { name: String, message: String },
    #[error("session quota of {limit} reached")]
    QuotaExceeded { limit: u32 },
    /// The job failed because upstream rejected the request (422).
    #[error("upstream rejected the request: {name}: {message}")]
    UpstreamRejected { name: String, message: String },
    /// The job failed because upstream rejected the gateway's credentials (502).
    #[error("upstream rejected the gateway's credentials: {name}: {message}")]
    UpstreamCredentials { name: String, message: String },
    /// The job used up its attempts (502, or 504 when the last attempt timed out).
    #[error("upstream failed after every attempt: {name}: {message}")]
    UpstreamExhausted { name: String, message: String, timeout: bool },
    /// A session command's upstream call failed after its bounded retries: unreachable or failing (502), or no
    /// answer in time (504).
    #[error("upstream call failed: {name}: {message}")]
    UpstreamFailed { name: String, message: String, timeout: bool },
    /// The session commands need `WGATE_UPSTREAM_API_KEY`, which this API process was started without (503).
    #[error("WGATE_UPSTREAM_API_KEY is not set")]
    UpstreamNotConfigured,
    /// A webhook relay the tenant did not acknowledge (502, so WhatsGate retries).
    #[error("the tenant's callback did not acknowledge the webhook: {0}")]
    CallbackFailed(String),
    /// Redis could not be reached in time (503).
    #[error("redis unavailable during {op}: {cause}")]
    Unavailable { op: &'static str, cause: String },
    /// The enqueue was sent but its reply never came: the job may or may not be stored (503).
    #[error("the enqueue of job {job} was not confirmed: {cause}")]
    EnqueueUnconfirmed { job: wgate_types::JobId, cause: String },
    /// An error answer produced outside our handlers (actix extractors, routing), rewritten into an `ErrorBody`.
    #[error("{message}")]
    Http { status: StatusCode, message: String },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// The error body as JSON text, as answered (kept, for instance, as the answer of an idempotent send).
    pub fn body_json(&self) -> String {
        serde_json::to_string(&self.body()).unwrap_or_default()
    }

    fn body(&self) -> ErrorBody {
        let status = self.status_code();
        let name = status.canonical_reason().unwrap_or("Error");
        let body = |msg: String| ErrorBody::new(status.as_u16(), name, msg);
        match self {
            Self::Auth(AuthError::Scope(scope)) => {
                body(format!("The token lacks the scope `{}`; ask for a token that grants it.", scope.as_str()))
            }
            Self::Auth(e) => body(format!(
                "Authentication failed: {e}. Send a valid JWT as `Authorization: Bearer <token>` or `X-Api-Key`."
            )),
            Self::RateLimited { retry_after, bucket } => body(format!(
                "Too many {bucket} requests for this tenant; retry after {retry_after} s (see Retry-After)."
            )),
            Self::Validation(e) => body(e.summary()).with_details(e.0.clone()),
            Self::BadHeader { header, problem } => body(format!("The header {header} is invalid: {problem}."))
                .with_details(vec![FieldProblem::new(*header, problem.clone())]),
            Self::PayloadTooLarge { limit } => {
                body(format!("The request body is larger than {limit} bytes; send a smaller body."))
            }
            Self::BadBody(why) => body(format!("The request body could not be read ({why}); send it again.")),
            Self::BodyTimeout { ms } => {
                body(format!("The request body did not arrive within {ms} ms; send the whole body at once and retry."))
            }
            Self::UnsupportedMediaType => {
                body("The body must be JSON: send `Content-Type: application/json`.".to_owned())
            }
            Self::NotFound(what) => body(format!("No such {what}; check the URL.")),
            Self::UnknownSession => body(
                "No session with this WhatsappID belongs to this tenant; check the WhatsappID (sessions-get lists \
                 yours)."
                    .to_owned(),
            ),
            Self::MethodNotAllowed { allow } => {
                body(format!("This method is not allowed on this resource; use {allow}."))
            }
            Self::NotDead(status) => body(format!("Only a dead job can be replayed; this job is {status}.")),
            Self::IdempotencyConflict => body(
                "This Idempotency-Key was already used with another request body; use a new key for a new request."
                    .to_owned(),
            ),
            Self::SendInFlight => body(
                "A send with this Idempotency-Key is still in flight; it is not sent again. Retry in a few seconds \
                 with the same key to get its answer."
                    .to_owned(),
            ),
            Self::SendOutcomeLost { age_secs } => body(format!(
                "The first send with this Idempotency-Key began {age_secs} s ago and its outcome was lost (the \
                 gateway stopped while sending), so it may have reached WhatsApp. It is never sent again under this \
                 key: look at the chat (get-chats), and send with a new Idempotency-Key if the message is missing."
            )),
            Self::SendPaced { retry_after, per_minute } => body(format!(
                "This session sends at most {per_minute} messages a minute, spaced apart, to keep its number from \
                 being banned; retry after {retry_after} s (see Retry-After)."
            )),
            Self::UpstreamNotFound { name, message } => {
                body("WhatsGate does not know what the request names; see details.".to_owned())
                    .with_details(upstream_details(name, message))
            }
            Self::QuotaExceeded { limit } => body(format!(
                "Session quota exceeded: this tenant may have at most {limit} sessions (live sessions plus \
                 unfinished creates, max_sessions); delete a session or ask for a higher quota."
            )),
            Self::UpstreamRejected { name, message } => {
                body("WhatsGate rejected the request; see details and correct it.".to_owned())
                    .with_details(upstream_details(name, message))
            }
            Self::UpstreamCredentials { name, message } => body(
                "WhatsGate rejected the gateway's credentials; the operator must fix the upstream key. Retry later."
                    .to_owned(),
            )
            .with_details(upstream_details(name, message)),
            Self::UpstreamExhausted { name, message, timeout } => body(format!(
                "WhatsGate {} on every attempt; the job is dead and can be replayed. Retry later.",
                if *timeout { "did not answer in time" } else { "could not be reached or failed" }
            ))
            .with_details(upstream_details(name, message)),
            Self::UpstreamFailed { name, message, timeout } => body(format!(
                "WhatsGate {}; retry later.",
                if *timeout { "did not answer in time" } else { "could not be reached or failed, also when retried" }
            ))
            .with_details(upstream_details(name, message)),
            Self::UpstreamNotConfigured => body(
                "The session commands are not available: the operator has not set WGATE_UPSTREAM_API_KEY for the API."
                    .to_owned(),
            ),
            Self::CallbackFailed(_) => {
                body("The tenant's callback did not acknowledge the webhook; retry later.".to_owned())
            }
            Self::Unavailable { .. } => {
                body("The job store is unreachable; nothing was accepted. Retry in a moment.".to_owned())
            }
            Self::EnqueueUnconfirmed { job, .. } => body(format!(
                "The job store did not confirm the request: job {job} may have been stored (GET /api/v1/jobs/{job} \
                 shows it if so). Retry in a moment with the same Idempotency-Key header to get that job instead of \
                 a second one; send an Idempotency-Key with every session-create to make retries safe."
            )),
            Self::Http { message, .. } => body(message.clone()),
            Self::Internal(_) => body("An internal error occurred; retry, and report it if it persists.".to_owned()),
        }
    }
}

fn upstream_details(name: &str, message: &str) -> Vec<FieldProblem> {
    vec![FieldProblem::new("upstream.name", name), FieldProblem::new("upstream.message", message)]
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Auth(AuthError::Scope(_)) => StatusCode::FORBIDDEN,
            Self::Auth(_) => StatusCode::UNAUTHORIZED,
            Self::RateLimited { .. } | Self::SendPaced { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::SendInFlight | Self::SendOutcomeLost { .. } => StatusCode::CONFLICT,
            Self::UpstreamNotFound { .. } => StatusCode::NOT_FOUND,
            Self::Validation(_) | Self::BadHeader { .. } | Self::BadBody(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NotFound(_) | Self::UnknownSession => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotDead(_) => StatusCode::CONFLICT,
            Self::IdempotencyConflict | Self::UpstreamRejected { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::QuotaExceeded { .. } => StatusCode::FORBIDDEN,
            Self::UpstreamCredentials { .. } | Self::CallbackFailed(_) => StatusCode::BAD_GATEWAY,
            Self::UpstreamExhausted { timeout: true, .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::UpstreamExhausted { timeout: false, .. } => StatusCode::BAD_GATEWAY,
            Self::UpstreamFailed { timeout: true, .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::UpstreamFailed { timeout: false, .. } => StatusCode::BAD_GATEWAY,
            Self::UpstreamNotConfigured => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unavailable { .. } | Self::EnqueueUnconfirmed { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Http { status, .. } => *status,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        match self {
            Self::Auth(AuthError::Scope(scope)) => {
                res.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!("Bearer error=\"insufficient_scope\", scope=\"{}\"", scope.as_str()),
                ));
            }
            Self::Auth(e) => {
                // A quoted-string of visible ASCII: a parser's message may quote the token's own text.
                let description: String = e
                    .to_string()
                    .chars()
                    .map(|c| if (c.is_ascii_graphic() || c == ' ') && c != '"' && c != '\\' { c } else { '\'' })
                    .collect();
                res.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!("Bearer error=\"invalid_token\", error_description=\"{description}\""),
                ));
            }
            Self::RateLimited { retry_after, .. } | Self::SendPaced { retry_after, .. } => {
                res.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            Self::Unavailable { .. } | Self::EnqueueUnconfirmed { .. } => {
                res.insert_header((header::RETRY_AFTER, "1"));
            }
            Self::MethodNotAllowed { allow } => {
                res.insert_header((header::ALLOW, *allow));
            }
            _ => {}
        }
        res.json(self.body())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_www_authenticate_description_never_breaks_its_quoting() {
        let e = ApiError::Auth(AuthError::Claims("invalid type: string \"x\\y\", expected u64\n".into()));
        let res = e.error_response();
        let v = res.headers().get(header::WWW_AUTHENTICATE).unwrap().to_str().unwrap();
        assert_eq!(v.matches('"').count(), 4, "{v}");
        assert!(!v.contains('\\'), "{v}");
    }

    #[test]
    fn every_variant_answers_an_error_body_with_its_status_as_code() {
        let errors = [
            ApiError::Auth(AuthError::Expired),
            ApiError::Auth(AuthError::Scope(wgate_types::Scope::Admin)),
            ApiError::RateLimited { retry_after: 2, bucket: "write" },
            ApiError::PayloadTooLarge { limit: 16 },
            ApiError::NotDead(JobStatus::Queued),
            ApiError::UpstreamExhausted { name: "Timeout".into(), message: "m".into(), timeout: true },
            ApiError::Unavailable { op: "enqueue", cause: "down".into() },
            ApiError::UpstreamFailed { name: "Timeout".into(), message: "m".into(), timeout: true },
            ApiError::UpstreamFailed { name: "ConnectError".into(), message: "m".into(), timeout: false },
            ApiError::UpstreamNotConfigured,
        ];
        for e in errors {
            let b = e.body();
            assert_eq!(b.code, e.status_code().as_u16());
            assert_eq!(b.result, "ERROR");
            assert_eq!(Some(b.name.as_str()), e.status_code().canonical_reason());
        }
    }
}
