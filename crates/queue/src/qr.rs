//! The QR window's capability tokens: `{ns}:qr:<token>` -> `{tenant, job}`, written by the `enqueue` script with
//! the job (and the job TTL) and removed by `forget_session` when the session is deleted. The API resolves a
//! `GET /qr/<token>` through [`JobStore::qr_target`]; the job then names the upstream session.

use wgate_types::{JobId, TenantId, is_capability_token};

use crate::{JobStore, QueueError};

/// Whose session a QR window token opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrTarget {
    pub tenant: TenantId,
    pub job_id: JobId,
}

impl JobStore {
    /// The tenant and job a QR window token belongs to; `None` for an unknown, expired, revoked or malformed one.
    pub async fn qr_target(&self, token: &str) -> Result<Option<QrTarget>, QueueError> {
        if !is_capability_token(token) {
            return Ok(None);
        }
        let Some(record) = self.token_record("qr token", token, |k| k.qr(token)).await? else {
            return Ok(None);
        };
        Ok(Some(QrTarget { tenant: record.tenant()?, job_id: record.job()? }))
    }
}
