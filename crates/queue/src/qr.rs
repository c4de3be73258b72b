//! The QR window's capability tokens. A token is its job's id and 128 random bits; the job's record keeps the
//! token (`qr_token`), written by the `enqueue` script with the job, gone with the job's TTL and removed by
//! `forget_session` when the session is deleted. A token minted by an earlier release (43 random characters) has
//! its own record instead, `{ns}:qr:<token>` -> `{tenant, job}`, which is still honoured. The API resolves a
//! `GET /qr/<token>` through [`JobStore::qr_target`]; the job then names the upstream session.

use subtle::ConstantTimeEq;
use wgate_types::{JobId, TenantId, is_capability_token, qr_token_job};

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
        if let Some(job_id) = qr_token_job(token) {
            // The job's record, in the token's partition (minted to be its tenant's, or named by a migration).
            let Some(record) = self.token_record("job", token, |k| k.job(job_id)).await? else {
                return Ok(None);
            };
            let kept = record.optional("qr_token").unwrap_or_default();
            if !bool::from(kept.as_bytes().ct_eq(token.as_bytes())) {
                return Ok(None);
            }
            return Ok(Some(QrTarget { tenant: record.tenant()?, job_id }));
        }
        if !is_capability_token(token) {
            return Ok(None);
        }
        let Some(record) = self.token_record("qr token", token, |k| k.qr(token)).await? else {
            return Ok(None);
        };
        Ok(Some(QrTarget { tenant: record.tenant()?, job_id: record.job()? }))
    }
}
