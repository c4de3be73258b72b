//! The check of a tenant's callback URL when it is given, before anything is queued: it must be one the egress
//! guard will call.

use std::time::{Duration, Instant};

use wgate_egress::{EgressError, EgressPolicy};
use wgate_types::{CallbackUrl, FieldProblem, ValidationErrors};

use crate::error::ApiError;

/// How long the check of a tenant's callback waits for its host name to resolve.
const CALLBACK_RESOLVE_WITHIN: Duration = Duration::from_secs(2);
/// How long the verdict on a callback's host and port is remembered (tenants reuse one callback host).
pub const CALLBACK_CHECK_TTL: Duration = Duration::from_secs(60);

/// Remembered verdicts on callback hosts: `(host, port)` -> when checked, and the problem if refused.
pub struct CallbackChecks(quick_cache::sync::Cache<(String, u16), (Instant, Option<String>)>);

impl CallbackChecks {
    /// Remembers the verdicts on at most `hosts` hosts.
    pub fn new(hosts: usize) -> Self {
        Self(quick_cache::sync::Cache::new(hosts))
    }

    /// A tenant's callback must be one the egress guard will call: an IP literal in a refused range, or a host
    /// name whose every address is refused, is a 400 naming the rule. (The guard checks again at every call, so a
    /// name that changes its addresses later gains nothing.) A host name's verdict is remembered for
    /// [`CALLBACK_CHECK_TTL`], so a tenant's creates do not each wait on DNS.
    pub async fn check(&self, policy: &EgressPolicy, callback: &CallbackUrl) -> Result<(), ApiError> {
        let refuse =
            |problem: String| ApiError::Validation(ValidationErrors(vec![FieldProblem::new("callback", problem)]));
        let url =
            url::Url::parse(callback.as_str()).map_err(|e| refuse(format!("must be an absolute http(s) URL ({e})")))?;
        let key = (url.host_str().unwrap_or_default().to_owned(), url.port_or_known_default().unwrap_or(0));
        if let Some((at, verdict)) = self.0.get(&key)
            && at.elapsed() < CALLBACK_CHECK_TTL
        {
            return verdict.map_or(Ok(()), |p| Err(refuse(p)));
        }
        let verdict = match policy.check_url(&url, CALLBACK_RESOLVE_WITHIN).await {
            Ok(()) => None,
            Err(EgressError::Refused(r)) if matches!(url.host(), Some(url::Host::Domain(_))) => Some(format!(
                "must reach a public address: {} resolves only to refused addresses ({} is {})",
                r.host, r.ip, r.rule
            )),
            Err(EgressError::Refused(r)) => Some(format!("must reach a public address: {} is {}", r.host, r.rule)),
            Err(EgressError::Gateway(host)) => Some(format!("must not point at the gateway itself ({host})")),
            Err(EgressError::BadUrl) => Some("must be an absolute http(s) URL with a host".to_owned()),
        };
        self.0.insert(key, (Instant::now(), verdict.clone()));
        verdict.map_or(Ok(()), |p| Err(refuse(p)))
    }
}
