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
        let verdict = self.remembered(key, || verdict(policy, &url)).await;
        verdict.map_or(Ok(()), |p| Err(refuse(p)))
    }

    /// The verdict on `key`: remembered, or made by `judge` once however many requests ask for it meanwhile (the
    /// others wait for it), so a burst of creates naming a new host makes one DNS lookup, not one each, and holds
    /// no blocking thread per request.
    async fn remembered<F: Future<Output = Option<String>>>(
        &self,
        key: (String, u16),
        judge: impl FnOnce() -> F,
    ) -> Option<String> {
        loop {
            match self.0.get_value_or_guard_async(&key).await {
                Ok((at, verdict)) if at.elapsed() < CALLBACK_CHECK_TTL => return verdict,
                // Out of date: gone, and the next turn judges it again (or waits for whoever does).
                Ok(_) => {
                    self.0.remove_if(&key, |(at, _)| at.elapsed() >= CALLBACK_CHECK_TTL);
                }
                Err(guard) => {
                    let verdict = judge().await;
                    // Only fails when the entry was replaced meanwhile; the verdict stands for this request.
                    let _ = guard.insert((Instant::now(), verdict.clone()));
                    return verdict;
                }
            }
        }
    }
}

/// The problem with a callback URL, `None` when the egress guard will call it.
async fn verdict(policy: &EgressPolicy, url: &url::Url) -> Option<String> {
    match policy.check_url(url, CALLBACK_RESOLVE_WITHIN).await {
        Ok(()) => None,
        Err(EgressError::Refused(r)) if matches!(url.host(), Some(url::Host::Domain(_))) => Some(format!(
            "must reach a public address: {} resolves only to refused addresses ({} is {})",
            r.host, r.ip, r.rule
        )),
        Err(EgressError::Refused(r)) => Some(format!("must reach a public address: {} is {}", r.host, r.rule)),
        Err(EgressError::Gateway(host)) => Some(format!("must not point at the gateway itself ({host})")),
        Err(EgressError::BadUrl) => Some("must be an absolute http(s) URL with a host".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use super::*;

    #[tokio::test]
    async fn a_burst_of_checks_of_one_new_host_judges_it_once_and_each_host_on_its_own() {
        let checks = Arc::new(CallbackChecks::new(16));
        let judged = Arc::new(AtomicUsize::new(0));
        let (release, released) = tokio::sync::watch::channel(false);
        let ask = |host: &'static str| {
            let (checks, judged, mut released) = (checks.clone(), judged.clone(), released.clone());
            tokio::spawn(async move {
                checks
                    .remembered((host.to_owned(), 443), || async move {
                        judged.fetch_add(1, Ordering::SeqCst);
                        // Held until every request of the burst has asked.
                        let _ = released.wait_for(|r| *r).await;
                        Some(format!("{host} refused"))
                    })
                    .await
            })
        };
        let burst: Vec<_> = (0..50).map(|i| ask(if i % 2 == 0 { "a.example" } else { "b.example" })).collect();
        // Every request is waiting: on the one judging its host, or judging it.
        while judged.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        release.send_replace(true);
        for (i, answer) in futures::future::join_all(burst).await.into_iter().enumerate() {
            let host = if i % 2 == 0 { "a.example" } else { "b.example" };
            assert_eq!(answer.expect("the check ran"), Some(format!("{host} refused")));
        }
        assert_eq!(judged.load(Ordering::SeqCst), 2, "one judgement per host");
        // Remembered afterwards: no new judgement.
        let again = checks.remembered(("a.example".to_owned(), 443), || async { unreachable!("remembered") }).await;
        assert_eq!(again.as_deref(), Some("a.example refused"));
    }
}
