//! The QR window's capability tokens. A token is its job's id and 128 random bits; the job's record keeps the
//! token (`qr_token`), written by the `enqueue` script with the job, and removed by `forget_session` when the
//! session is deleted. The window closes a job TTL after the job finished: then the record of a job that failed
//! expires, and a succeeded job's record, which lives as long as its session (it is the relay's target too), no
//! longer opens it. A token minted by an earlier release (43 random characters) has
//! its own record instead, `{ns}:qr:<token>` -> `{tenant, job}`, which is still honoured. The API resolves a
//! `GET /qr/<token>` through [`JobStore::qr_target`]; the job then names the upstream session.

use time::OffsetDateTime;
use wgate_types::{JobId, JobStatus, TenantId, is_capability_token, token_job};

use crate::{JobStore, QueueError, store::RecordHash};

/// Whose session a QR window token opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrTarget {
    pub tenant: TenantId,
    pub job_id: JobId,
}

impl JobStore {
    /// The tenant and job a QR window token belongs to; `None` for an unknown, expired, revoked or malformed one.
    pub async fn qr_target(&self, token: &str) -> Result<Option<QrTarget>, QueueError> {
        if let Some(job_id) = token_job(token) {
            // The job's record, in the token's partition (minted to be its tenant's, or named by a migration).
            let fields = ["tenant", "qr_token", "status", "updated_at"];
            let Some(record) = self.token_record("job", token, &fields, |k| k.job(job_id)).await? else {
                return Ok(None);
            };
            if !record.keeps("qr_token", token) || self.finished_long_ago(&record) {
                return Ok(None);
            }
            return Ok(Some(QrTarget { tenant: record.tenant()?, job_id }));
        }
        if !is_capability_token(token) {
            return Ok(None);
        }
        let Some(record) = self.token_record("qr token", token, &["tenant", "job"], |k| k.qr(token)).await? else {
            return Ok(None);
        };
        Ok(Some(QrTarget { tenant: record.tenant()?, job_id: record.job()? }))
    }

    /// True for a job record that finished more than a job TTL ago (its `updated_at` is when it finished).
    fn finished_long_ago(&self, record: &RecordHash) -> bool {
        let finished =
            record.optional("status").and_then(|s| s.parse::<JobStatus>().ok()).is_some_and(|s| s.is_terminal());
        let updated = record.optional("updated_at").and_then(|t| t.parse::<i128>().ok());
        let ttl = i128::try_from(self.config().job_ttl.as_nanos()).unwrap_or(i128::MAX);
        finished && updated.is_some_and(|t| t.saturating_add(ttl) < OffsetDateTime::now_utc().unix_timestamp_nanos())
    }
}
