//! The `Prefer` request header (RFC 7240) as session-create reads it: `respond-async` and `wait=<seconds>`.

use actix_web::http::header::HeaderMap;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Preferences {
    pub respond_async: bool,
    /// Seconds the client is willing to wait.
    pub wait: Option<u64>,
}

/// Reads every `Prefer` header; unknown or malformed preferences are ignored, as RFC 7240 asks.
pub fn parse(headers: &HeaderMap) -> Preferences {
    let mut p = Preferences::default();
    for value in headers.get_all("prefer") {
        let Ok(value) = value.to_str() else { continue };
        for pref in value.split(',') {
            // Parameters after ';' do not matter for these two preferences.
            let head = pref.split(';').next().unwrap_or_default().trim();
            let (name, val) = match head.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
                None => (head, None),
            };
            if name.eq_ignore_ascii_case("respond-async") {
                p.respond_async = true;
            } else if name.eq_ignore_ascii_case("wait")
                && p.wait.is_none()
                && let Some(secs) = val.and_then(|v| v.parse::<u64>().ok())
            {
                p.wait = Some(secs);
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn prefs(values: &[&str]) -> Preferences {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(HeaderName::from_static("prefer"), HeaderValue::from_str(v).unwrap());
        }
        parse(&h)
    }

    #[test]
    fn respond_async_and_wait_are_read_from_one_or_several_headers() {
        assert_eq!(prefs(&["respond-async, wait=10"]), Preferences { respond_async: true, wait: Some(10) });
        assert_eq!(prefs(&["wait=\"3\"", "respond-async"]), Preferences { respond_async: true, wait: Some(3) });
        assert_eq!(prefs(&["Wait = 5 ; foo=bar"]).wait, Some(5));
        assert_eq!(prefs(&["wait=-1, wait=soon, handling=lenient"]), Preferences::default());
        assert_eq!(prefs(&[]), Preferences::default());
    }
}
