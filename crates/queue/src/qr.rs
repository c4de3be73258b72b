//! The QR window's capability tokens: `{ns}:qr:<token>` -> `{tenant, job}`, written by the `enqueue` script with
//! the job (and the job TTL) and removed by `forget_session` when the session is deleted. The API resolves a
//! `GET /qr/<token>` through [`JobStore::qr_target`]; the job then names the upstream session.

use std::collections::HashMap;

use redis::AsyncCommands;
use wgate_types::{JobId, TenantId};

use crate::{JobStore, QueueError};

/// Whose session a QR window token opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrTarget {
    pub tenant: TenantId,
    pub job_id: JobId,
}

/// Tokens are URL-safe base64 of at least 128 bits; anything else matches nothing (and never reaches Redis).
fn plausible_token(t: &str) -> bool {
    (22..=128).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

impl JobStore {
    /// The tenant and job a QR window token belongs to; `None` for an unknown, expired, revoked or malformed one.
    pub async fn qr_target(&self, token: &str) -> Result<Option<QrTarget>, QueueError> {
        if !plausible_token(token) {
            return Ok(None);
        }
        let key = self.keys().qr(token);
        let map: HashMap<String, String> = self
            .redis()
            .call_again("HGETALL qr", |mut c| {
                let key = key.clone();
                async move { c.hgetall(key).await }
            })
            .await?;
        if map.is_empty() {
            return Ok(None);
        }
        let bad = |what: &str| QueueError::Corrupt(format!("qr token: bad {what}"));
        let tenant = map.get("tenant").and_then(|t| TenantId::parse(t).ok()).ok_or_else(|| bad("tenant"))?;
        let job_id = map.get("job").and_then(|j| j.parse().ok()).ok_or_else(|| bad("job"))?;
        Ok(Some(QrTarget { tenant, job_id }))
    }
}
