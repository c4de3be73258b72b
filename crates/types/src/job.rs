//! The job record shared by the API (which creates and reads it) and the worker (which runs it).
//!
//! Lifecycle: `queued -> running -> (retrying -> running)* -> succeeded | failed | dead`.
//! `failed`: upstream said no for good, never retried. `dead`: every attempt used up; kept for inspection and replay.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::{session::SessionCreate, tenant::TenantId};

/// The callback WhatsGate is given for a job's session: the gateway's webhook relay, `{public_base}/hooks/{token}`.
/// The worker sends it and reconciliation looks for it; the API serves it and re-confirms it on set-hook: one
/// definition keeps them from drifting apart.
pub fn relay_url(public_base: &str, hook_token: &str) -> String {
    format!("{}/hooks/{hook_token}", public_base.trim_end_matches('/'))
}

/// A job id: a ULID, sortable by creation time and with 80 random bits, so ids cannot be guessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(ulid::Ulid);

impl JobId {
    pub fn new() -> Self {
        Self(ulid::Ulid::new())
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a job id is a 26-character ULID")]
pub struct InvalidJobId;

impl FromStr for JobId {
    type Err = InvalidJobId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Only the canonical upper-case form, so one job has exactly one id string (and one Redis key).
        if s.len() != 26 || s.bytes().any(|b| b.is_ascii_lowercase()) {
            return Err(InvalidJobId);
        }
        ulid::Ulid::from_string(s).map(Self).map_err(|_| InvalidJobId)
    }
}

impl TryFrom<String> for JobId {
    type Error = InvalidJobId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> Self {
        id.0.to_string()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// What a job does. One kind today; the name is part of the API and of metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[schema(description = "What the job does: `session-create` creates a WhatsApp session.")]
pub enum JobKind {
    #[default]
    #[serde(rename = "session-create")]
    SessionCreate,
}

impl JobKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::SessionCreate => "session-create",
        }
    }
}

/// Where a job is in its lifecycle: `queued -> running -> (retrying -> running)* -> succeeded | failed | dead`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Retrying,
    Succeeded,
    Failed,
    Dead,
}

impl JobStatus {
    pub const ALL: [Self; 6] = [Self::Queued, Self::Running, Self::Retrying, Self::Succeeded, Self::Failed, Self::Dead];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Retrying => "retrying",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Dead => "dead",
        }
    }

    /// A terminal job never changes again (except a `dead` one an operator replays).
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Dead)
    }
}

impl FromStr for JobStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| format!("unknown job status {s:?}"))
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an attempt or a job failed, by how a client must react.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Upstream rejected the gateway's own credentials: an operator must fix the key (HTTP 502).
    Credentials,
    /// Upstream rejected the request itself: the client must change it (HTTP 422).
    Rejected,
    /// Upstream could not be reached or answered with a transient error; retried (HTTP 502 once attempts run out).
    Unavailable,
    /// Upstream did not answer in time; retried (HTTP 504 once attempts run out).
    Timeout,
}

/// The last error of a job: upstream's `name` and `message` where it gave them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    pub name: String,
    pub message: String,
    pub class: ErrorClass,
}

/// Everything stored about one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: JobId,
    pub kind: JobKind,
    pub tenant: TenantId,
    pub status: JobStatus,
    /// Attempts started so far, the running one included.
    pub attempts: u32,
    pub max_attempts: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    pub error: Option<JobError>,
    /// Upstream's `data` object once the session exists.
    pub response: Option<Value>,
    /// The tenant's request, exactly as it will reach upstream (but for the callback, which the worker owns).
    pub request: SessionCreate,
    /// The `X-Request-Id` of the request that created the job, to link the worker's logs to it.
    pub request_id: Option<String>,
    /// An unguessable token (at least 128 random bits, URL-safe) made at accept time. WhatsGate is given the
    /// callback `{WGATE_PUBLIC_URL}/hooks/{hook_token}`, which the gateway relays to the tenant's own callback; the
    /// same token is the marker that tells this job's upstream session apart from any other of the same name when
    /// the worker reconciles after an attempt whose outcome it could not see.
    pub hook_token: String,
    /// An unguessable token (at least 128 random bits, URL-safe, not derived from the session) made at accept
    /// time: the tenant's customers open `{WGATE_PUBLIC_URL}/qr/{qr_token}` to pair the device. Empty in records
    /// written before the QR window existed.
    #[serde(default)]
    pub qr_token: String,
}

/// What the API knows of a session-create job when it accepts it; [`JobRecord::accepted`] makes the record.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub tenant: TenantId,
    pub request: SessionCreate,
    /// Attempts the job may use, the first included.
    pub max_attempts: u32,
    /// The `X-Request-Id` of the accepting request.
    pub request_id: Option<String>,
    /// The relay's capability token (see [`JobRecord::hook_token`]).
    pub hook_token: String,
    /// The QR window's capability token (see [`JobRecord::qr_token`]).
    pub qr_token: String,
}

impl JobRecord {
    /// A fresh job, queued, as the API stores it on accept.
    pub fn accepted(id: JobId, new: NewJob, now: OffsetDateTime) -> Self {
        let NewJob { tenant, request, max_attempts, request_id, hook_token, qr_token } = new;
        Self {
            id,
            kind: JobKind::SessionCreate,
            tenant,
            status: JobStatus::Queued,
            attempts: 0,
            max_attempts,
            created_at: now,
            updated_at: now,
            next_attempt_at: None,
            error: None,
            response: None,
            request,
            request_id,
            hook_token,
            qr_token,
        }
    }

    /// The public shape served by `GET /api/v1/jobs/{id}`.
    pub fn view(&self) -> JobView {
        JobView {
            id: self.id,
            kind: self.kind,
            status: self.status,
            attempts: self.attempts,
            max_attempts: self.max_attempts,
            created_at: self.created_at,
            updated_at: self.updated_at,
            next_attempt_at: self.next_attempt_at,
            error: self.error.as_ref().map(|e| JobErrorView { name: e.name.clone(), message: e.message.clone() }),
            response: self.response.clone(),
        }
    }
}

/// The last error of a job, as WhatsGate (or the gateway, for timeouts and transport errors) named it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = JobError)]
pub struct JobErrorView {
    pub name: String,
    pub message: String,
}

/// The job resource: `{"id","type","status","attempts","max_attempts","created_at","updated_at","next_attempt_at",
/// "error","response"}`, times in RFC 3339 UTC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = Job)]
pub struct JobView {
    /// The job id, a ULID (26 characters).
    #[schema(value_type = String, pattern = "^[0-9A-HJKMNP-TV-Z]{26}$", example = "01JDQ3M8X4K2V7T9B6N5R0C1PZ")]
    pub id: JobId,
    #[serde(rename = "type")]
    pub kind: JobKind,
    pub status: JobStatus,
    /// Attempts started so far, the running one included.
    pub attempts: u32,
    pub max_attempts: u32,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// When a retrying job runs again.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub next_attempt_at: Option<OffsetDateTime>,
    /// The last error, once an attempt failed.
    #[schema(required = true)]
    pub error: Option<JobErrorView>,
    /// WhatsGate's session once the job succeeded, as the tenant sees it.
    #[schema(value_type = Option<crate::SessionView>, required = true)]
    pub response: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record() -> JobRecord {
        let req = SessionCreate::from_json(br#"{"name":"Shop"}"#).expect("valid");
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time");
        let tenant = TenantId::parse("acme").expect("tenant");
        let new = NewJob {
            tenant,
            request: req,
            max_attempts: 6,
            request_id: None,
            hook_token: "tok".into(),
            qr_token: String::new(),
        };
        JobRecord::accepted(JobId::new(), new, now)
    }

    #[test]
    fn job_ids_round_trip_through_their_string_and_reject_other_forms() {
        let id = JobId::new();
        let s = id.to_string();
        assert_eq!(s.len(), 26);
        assert_eq!(s.parse::<JobId>(), Ok(id));
        assert!(s.to_lowercase().parse::<JobId>().is_err());
        assert!("not-a-job".parse::<JobId>().is_err());
        assert!("../../etc/passwd".parse::<JobId>().is_err());
    }

    #[test]
    fn the_view_has_exactly_the_documented_shape() {
        let mut r = record();
        r.error =
            Some(JobError { name: "InternalError".into(), message: "boom".into(), class: ErrorClass::Unavailable });
        let v = serde_json::to_value(r.view()).expect("json");
        let keys: Vec<&str> = v.as_object().expect("object").keys().map(String::as_str).collect();
        let mut expected = vec![
            "id",
            "type",
            "status",
            "attempts",
            "max_attempts",
            "created_at",
            "updated_at",
            "next_attempt_at",
            "error",
            "response",
        ];
        expected.sort_unstable();
        let mut keys_sorted = keys.clone();
        keys_sorted.sort_unstable();
        assert_eq!(keys_sorted, expected);
        assert_eq!(v["type"], "session-create");
        assert_eq!(v["status"], "queued");
        assert_eq!(v["created_at"], "2023-11-14T22:13:20Z");
        assert_eq!(v["next_attempt_at"], Value::Null);
        assert_eq!(v["error"], json!({"name":"InternalError","message":"boom"}));
    }

    #[test]
    fn records_round_trip_through_json() {
        let r = record();
        let back: JobRecord = serde_json::from_str(&serde_json::to_string(&r).expect("ser")).expect("de");
        assert_eq!(back, r);
    }

    #[test]
    fn statuses_parse_from_their_names() {
        for s in JobStatus::ALL {
            assert_eq!(s.as_str().parse::<JobStatus>(), Ok(s));
        }
        assert!(JobStatus::Dead.is_terminal() && !JobStatus::Retrying.is_terminal());
    }
}
