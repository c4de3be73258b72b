//! What happens around every request: the request id, the tracing span, the metrics, the headers every answer
//! carries (`X-Request-Id`, and where known `X-Job-Id`, `RateLimit-Policy`, `RateLimit`), one log line for a
//! failure, and the rewriting of error answers made outside our handlers into `ErrorBody`.

use std::{sync::Arc, time::Instant};

use actix_web::{
    Error, HttpMessage, ResponseError,
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{
        StatusCode,
        header::{self, HeaderName, HeaderValue},
    },
    middleware::Next,
    web,
};
use tracing::{Instrument, field::Empty};
use wgate_types::JobId;

use crate::{error::ApiError, metrics::ApiMetrics};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const X_JOB_ID: HeaderName = HeaderName::from_static("x-job-id");
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// The request id of the current request (the client's when sane, else a fresh ULID).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Rate-limit headers for this answer, set by the handler once the tenant is known.
#[derive(Debug, Clone)]
pub struct RateHeaders {
    pub policy: String,
    pub current: String,
}

/// The job this answer concerns.
#[derive(Debug, Clone, Copy)]
pub struct JobHeader(pub JobId);

/// A client's `X-Request-Id` is kept when it is 1..=128 characters of `[A-Za-z0-9._-]`.
pub fn sane_request_id(v: &str) -> bool {
    (1..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let start = Instant::now();
    let metrics = req.app_data::<web::Data<Arc<ApiMetrics>>>().map(|m| m.get_ref().clone());
    let request_id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane_request_id(v))
        .map_or_else(|| ulid::Ulid::new().to_string(), str::to_owned);
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        http.method = %method,
        http.route = Empty,
        tenant = Empty,
        job_id = Empty,
    );
    // Handlers' errors arrive as responses; an `Err` here could only come from an inner middleware (none).
    let res = next.call(req).instrument(span.clone()).await?;
    let mut res = rewrite_foreign_errors(res.map_into_boxed_body());

    let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    span.record("http.route", route.as_str());
    let status = res.status();
    {
        let ext = res.request().extensions();
        let rate = ext.get::<RateHeaders>().cloned();
        let job = ext.get::<JobHeader>().copied();
        drop(ext);
        let headers = res.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            headers.insert(X_REQUEST_ID, v);
        }
        if let Some(rate) = rate {
            if let Ok(v) = HeaderValue::from_str(&rate.policy) {
                headers.insert(RATELIMIT_POLICY, v);
            }
            if let Ok(v) = HeaderValue::from_str(&rate.current) {
                headers.insert(RATELIMIT, v);
            }
        }
        if let Some(JobHeader(id)) = job
            && let Ok(v) = HeaderValue::from_str(&id.to_string())
        {
            headers.insert(X_JOB_ID, v);
        }
    }

    let elapsed = start.elapsed();
    if let Some(m) = &metrics {
        let method = crate::metrics::method_label(&method);
        m.http_requests.with_label_values(&[route.as_str(), method, status.as_str()]).inc();
        m.http_duration.with_label_values(&[route.as_str(), method]).observe(elapsed.as_secs_f64());
    }
    let api_error = res.response().error().and_then(|e| e.as_error::<ApiError>());
    if let (Some(crate::error::ApiError::Auth(e)), Some(m)) = (api_error, &metrics) {
        m.auth_failures.with_label_values(&[e.reason()]).inc();
    }
    // A failure is logged once, here, with its whole cause chain.
    let _entered = span.enter();
    let ms = elapsed.as_secs_f64() * 1000.0;
    if status.is_server_error() {
        // The whole cause chain (`{:#}` of an anyhow error), never shown to the client.
        let error = match api_error {
            Some(ApiError::Internal(e)) => Some(format!("{e:#}")),
            _ => res.response().error().map(|e| e.to_string()),
        };
        tracing::error!(status = status.as_u16(), elapsed_ms = ms, error, "request failed");
    } else if status.is_client_error() {
        let error = res.response().error().map(|e| e.to_string());
        tracing::info!(status = status.as_u16(), elapsed_ms = ms, error, "request refused");
    } else {
        tracing::debug!(status = status.as_u16(), elapsed_ms = ms, "request answered");
    }
    Ok(res)
}

/// Error answers that did not come from an `ApiError` (actix's own extractor errors, a 405 from routing) get an
/// `ErrorBody` too, with the same status.
fn rewrite_foreign_errors(res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let ours = res.response().error().is_some_and(|e| e.as_error::<ApiError>().is_some());
    let content_type = res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    // JSON is already an error body; HTML is a page a handler meant (the QR window of an unknown token).
    let deliberate = content_type.starts_with("application/json") || content_type.starts_with("text/html");
    if ours || deliberate {
        return res;
    }
    let message = match res.response().error() {
        Some(e) if status != StatusCode::INTERNAL_SERVER_ERROR => format!("{e}"),
        _ => match status {
            StatusCode::NOT_FOUND => "No such resource; check the URL.".to_owned(),
            StatusCode::METHOD_NOT_ALLOWED => "This method is not allowed on this resource.".to_owned(),
            _ => "The request could not be handled.".to_owned(),
        },
    };
    let allow = res.headers().get(header::ALLOW).cloned();
    let (req, _old) = res.into_parts();
    let mut new = ApiError::Http { status, message }.error_response();
    if let Some(allow) = allow {
        new.headers_mut().insert(header::ALLOW, allow);
    }
    ServiceResponse::new(req, new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_kept_only_when_sane() {
        assert!(sane_request_id("abc-123_X.y"));
        assert!(sane_request_id(&"a".repeat(128)));
        assert!(!sane_request_id(&"a".repeat(129)));
        assert!(!sane_request_id(""));
        assert!(!sane_request_id("a b"));
        assert!(!sane_request_id("a\"b"));
    }
}
