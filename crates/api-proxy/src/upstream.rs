//! The session commands' synchronous WhatsGate calls. The client is the worker's own (`wgate_upstream`, one
//! connection pool per process, its calls counted in `wgate_upstream_requests_total{command,status}` and
//! `wgate_upstream_request_duration_seconds{command}`); this module adds what a tenant waiting on the line needs:
//! one time budget per command, a small bounded retry where repeating is safe, and errors the tenant can act on.

use std::{future::Future, time::Duration};

use tokio::time::Instant;
use wgate_upstream::{ErrorClass, Upstream, UpstreamError};

use crate::error::ApiError;

/// Retries after the first call, at most.
pub const RETRIES: usize = 2;
/// Waits before the first and the second retry.
const BACKOFF: [Duration; RETRIES] = [Duration::from_millis(100), Duration::from_millis(300)];

/// Whether a failed call may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Repeating changes nothing (sessions-get, set-hook, set-name).
    Safe,
    /// Repeat only when the failed call surely never reached WhatsGate (session-delete: a second delete of a
    /// session the first one removed would answer NotFound instead of the session).
    IfNotSent,
}

/// The WhatsGate client of the session commands.
#[derive(Clone)]
pub struct SessionUpstream {
    client: Upstream,
    /// The whole command's budget, retries included (`WGATE_UPSTREAM_TIMEOUT_MS`).
    budget: Duration,
}

impl SessionUpstream {
    pub fn new(client: Upstream, budget: Duration) -> Self {
        Self { client, budget }
    }

    /// The underlying client (its calls counted in the API's upstream metrics), for other parts of the API that
    /// call WhatsGate, so one process keeps one pool.
    pub fn client(&self) -> &Upstream {
        &self.client
    }

    /// The budget of one tenant request (`WGATE_UPSTREAM_TIMEOUT_MS`).
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Runs `call` and retries it (at most [`RETRIES`] times, after 100 then 300 ms, or upstream's `Retry-After`
    /// when that is longer) while it fails with a retryable error other than a timeout, `repeat` allows it, and the
    /// budget is not spent. A timeout is not retried: the tenant already waited the whole budget. The budget bounds
    /// the command as a whole, retries included.
    pub async fn run<T, F, Fut>(&self, repeat: Repeat, call: F) -> Result<T, UpstreamError>
    where
        F: Fn(Upstream) -> Fut,
        Fut: Future<Output = Result<T, UpstreamError>>,
    {
        let deadline = Instant::now() + self.budget;
        let mut retries = 0;
        loop {
            let outcome = match tokio::time::timeout_at(deadline, call(self.client.clone())).await {
                Ok(outcome) => outcome,
                Err(_) => Err(UpstreamError::new(
                    ErrorClass::Timeout,
                    "Timeout",
                    format!("no answer from upstream within {} ms", self.budget.as_millis()),
                    true,
                )),
            };
            let error = match outcome {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let again = error.class() == ErrorClass::Unavailable
                && (repeat == Repeat::Safe || !error.maybe_sent())
                && retries < RETRIES;
            let wait = error.retry_after().map_or(BACKOFF[retries.min(RETRIES - 1)], |ra| ra.max(BACKOFF[0]));
            if !again || Instant::now() + wait >= deadline {
                return Err(error);
            }
            tracing::debug!(error.name = error.name(), retry = retries + 1, "upstream call failed; retrying");
            tokio::time::sleep(wait).await;
            retries += 1;
        }
    }
}

/// Did WhatsGate say, well-formed, that it does not know the session? Only its own error answer counts: HTTP 500
/// (how WhatsGate answers every error) with a JSON body whose `name` says not found. A 404 page (a wrong
/// `WGATE_UPSTREAM_URL`, a CDN in maintenance), another 5xx, a timeout or a transport error says nothing about the
/// session, and ownership must survive it.
pub fn is_not_found(e: &UpstreamError) -> bool {
    let name = e.name().to_ascii_lowercase();
    e.status() == Some(500) && (name.contains("notfound") || name.contains("not_found"))
}

/// The upstream's overall deadline for one tenant request that makes several calls.
pub fn deadline_error(budget: Duration) -> ApiError {
    ApiError::UpstreamFailed {
        name: "Timeout".into(),
        message: format!("WhatsGate did not answer every call within {} ms", budget.as_millis()),
        timeout: true,
    }
}

/// How a failed upstream call reaches the tenant: credentials rejected or unreachable 502, no answer in time 504,
/// the request rejected 422 (upstream's `name` and `message` in `details` each time). Callers handle
/// [`is_not_found`] first (404).
pub fn api_error(e: UpstreamError) -> ApiError {
    let (name, message) = (e.name().to_owned(), e.message().to_owned());
    // WhatsGate answers every error with HTTP 500: a 404 is a page from something else (a wrong
    // `WGATE_UPSTREAM_URL`, a CDN in maintenance), so upstream failed; the request was not judged.
    if e.status() == Some(404) {
        return ApiError::UpstreamFailed { name, message, timeout: false };
    }
    match e.class() {
        ErrorClass::Credentials => ApiError::UpstreamCredentials { name, message },
        ErrorClass::Rejected => ApiError::UpstreamRejected { name, message },
        ErrorClass::Timeout => ApiError::UpstreamFailed { name, message, timeout: true },
        ErrorClass::Unavailable => ApiError::UpstreamFailed { name, message, timeout: false },
    }
}
