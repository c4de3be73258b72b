//! `UpstreamError` and the classification of WhatsGate's answers.

use std::time::Duration;

use wgate_types::ErrorClass;

/// One failed upstream call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {message}")]
pub struct UpstreamError {
    class: ErrorClass,
    name: String,
    message: String,
    retry_after: Option<Duration>,
    maybe_sent: bool,
    status: Option<u16>,
}

impl UpstreamError {
    pub fn new(class: ErrorClass, name: impl Into<String>, message: impl Into<String>, maybe_sent: bool) -> Self {
        Self { class, name: name.into(), message: message.into(), retry_after: None, maybe_sent, status: None }
    }

    /// How the caller must react: permanent (`Credentials`, `Rejected`) or retryable (`Unavailable`, `Timeout`).
    pub fn class(&self) -> ErrorClass {
        self.class
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self.class, ErrorClass::Unavailable | ErrorClass::Timeout)
    }

    /// The wait upstream asked for (HTTP 429 `Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Could the request have reached WhatsGate and created something? False only when it surely did not
    /// (connection refused, 429, an explicit rejection).
    pub fn maybe_sent(&self) -> bool {
        self.maybe_sent
    }

    /// Upstream's error `name` (e.g. `Unauthorized`), or ours for transport failures (`Timeout`, `ConnectError`).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status, when an answer came.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// Classifies an HTTP answer that was not a success. `body` is the raw body (WhatsGate's error JSON or not).
    pub fn from_response(status: u16, retry_after: Option<&str>, body: &[u8]) -> Self {
        #[derive(serde::Deserialize)]
        struct Body {
            name: Option<String>,
            message: Option<String>,
        }
        let parsed: Option<Body> = serde_json::from_slice(body).ok();
        let (name, message) = match parsed {
            Some(Body { name: Some(n), message }) if !n.is_empty() => (n, message.unwrap_or_default()),
            _ => (
                format!("Http{status}"),
                format!("upstream answered HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(200)])),
            ),
        };
        let by_name = classify_name(&name);
        let (class, maybe_sent) = match status {
            429 => (ErrorClass::Unavailable, false),
            401 | 403 => (ErrorClass::Credentials, false),
            400 | 404 | 409 | 413 | 422 => (ErrorClass::Rejected, false),
            _ => match by_name {
                Some(class) => (class, false),
                // Other 5xx, or an unexpected status: it may have been processed.
                None => (ErrorClass::Unavailable, true),
            },
        };
        let retry_after = if status == 429 || status == 503 { retry_after.and_then(parse_retry_after) } else { None };
        Self { class, name, message, retry_after, maybe_sent, status: Some(status) }
    }

    /// Classifies a transport failure. `sent` is false when the connection was never made.
    /// Its message never holds upstream's URL: it reaches tenants (job errors, session commands).
    pub(crate) fn from_transport(e: &reqwest::Error, timeout: Duration) -> Self {
        let mut detail = error_chain(e);
        if let Some(url) = e.url() {
            detail = detail.replace(&format!(" for url ({url})"), "").replace(url.as_str(), "<upstream>");
        }
        if e.is_timeout() {
            // A connect timeout never reached upstream; any other may have.
            let connect = e.is_connect();
            Self::new(
                ErrorClass::Timeout,
                "Timeout",
                format!("no answer from upstream within {} ms ({detail})", timeout.as_millis()),
                !connect,
            )
        } else if e.is_connect() {
            Self::new(ErrorClass::Unavailable, "ConnectError", format!("cannot connect to upstream: {detail}"), false)
        } else {
            // The connection broke after the request was (maybe) written: sent, answer lost.
            Self::new(ErrorClass::Unavailable, "ConnectionLost", format!("upstream connection lost: {detail}"), true)
        }
    }

    pub(crate) fn unexpected(status: u16, what: String) -> Self {
        Self {
            class: ErrorClass::Unavailable,
            name: "UnexpectedAnswer".into(),
            message: what,
            retry_after: None,
            maybe_sent: true,
            status: Some(status),
        }
    }
}

/// Permanent classes by WhatsGate's error `name`; `None` = transient.
fn classify_name(name: &str) -> Option<ErrorClass> {
    let n = name.to_ascii_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| n.contains(w));
    if any(&[
        "unauthori",
        "forbidden",
        "apikey",
        "api_key",
        "accessdenied",
        "access_denied",
        "credential",
        "permission",
    ]) {
        Some(ErrorClass::Credentials)
    } else if any(&[
        "validation",
        "badrequest",
        "bad_request",
        "notfound",
        "not_found",
        "invalid",
        "unprocessable",
        "required",
        "limitexceeded",
        "quota",
    ]) {
        Some(ErrorClass::Rejected)
    } else {
        None
    }
}

/// Seconds or an HTTP date, at most an hour.
fn parse_retry_after(v: &str) -> Option<Duration> {
    wgate_types::retry_after(v, std::time::SystemTime::now()).map(|d| d.min(Duration::from_secs(3600)))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(name: &str) -> Vec<u8> {
        serde_json::json!({"name": name, "message": "m", "code": 0}).to_string().into_bytes()
    }

    #[test]
    fn credentials_names_are_permanent_credential_errors() {
        for name in ["Unauthorized", "Forbidden", "InvalidApiKey", "AccessDenied"] {
            let e = UpstreamError::from_response(500, None, &body(name));
            assert_eq!(
                (e.class(), e.is_retryable(), e.maybe_sent()),
                (ErrorClass::Credentials, false, false),
                "{name}"
            );
            assert_eq!(e.name(), name);
        }
        assert_eq!(UpstreamError::from_response(401, None, b"").class(), ErrorClass::Credentials);
    }

    #[test]
    fn validation_names_are_permanent_rejections() {
        for name in ["ValidationError", "BadRequest", "NotFound", "InvalidArgument"] {
            let e = UpstreamError::from_response(500, None, &body(name));
            assert_eq!((e.class(), e.is_retryable(), e.maybe_sent()), (ErrorClass::Rejected, false, false), "{name}");
        }
        assert_eq!(UpstreamError::from_response(422, None, b"{}").class(), ErrorClass::Rejected);
    }

    #[test]
    fn other_server_errors_are_retryable_and_may_have_been_processed() {
        for (status, b) in
            [(500, body("InternalError")), (500, b"<html>".to_vec()), (502, vec![]), (503, vec![]), (504, vec![])]
        {
            let e = UpstreamError::from_response(status, None, &b);
            assert_eq!(
                (e.class(), e.is_retryable(), e.maybe_sent()),
                (ErrorClass::Unavailable, true, true),
                "{status}"
            );
            assert_eq!(e.status(), Some(status));
        }
        assert_eq!(UpstreamError::from_response(502, None, b"").name(), "Http502");
    }

    #[test]
    fn throttling_is_retryable_was_not_processed_and_carries_retry_after() {
        let e = UpstreamError::from_response(429, Some("7"), b"");
        assert_eq!((e.class(), e.maybe_sent()), (ErrorClass::Unavailable, false));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        // An HTTP date is honoured too; one already past asks for no wait.
        let past = UpstreamError::from_response(429, Some("Wed, 21 Oct 2015 07:28:00 GMT"), b"");
        assert_eq!(past.retry_after(), Some(Duration::ZERO));
        assert_eq!(UpstreamError::from_response(429, Some("later"), b"").retry_after(), None);
        assert_eq!(UpstreamError::from_response(500, Some("7"), &body("InternalError")).retry_after(), None);
    }
}
