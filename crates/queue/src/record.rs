//! A `JobRecord` as a Redis hash: one field per record field, timestamps as Unix nanoseconds (so a record
//! round-trips exactly), `request`, `error` and `response` as JSON, absent optional fields left out.

use std::collections::HashMap;

use time::OffsetDateTime;
use wgate_types::{JobError, JobId, JobKind, JobRecord, JobStatus, SessionCreate, TenantId};

use crate::QueueError;

pub(crate) fn ts(t: OffsetDateTime) -> String {
    t.unix_timestamp_nanos().to_string()
}

/// The hash fields of a record, in `HSET` order.
pub(crate) fn to_fields(job: &JobRecord) -> Result<Vec<(&'static str, String)>, QueueError> {
    let mut f = vec![
        ("id", job.id.to_string()),
        ("kind", job.kind.as_str().to_owned()),
        ("tenant", job.tenant.as_str().to_owned()),
        ("status", job.status.as_str().to_owned()),
        ("attempts", job.attempts.to_string()),
        ("max_attempts", job.max_attempts.to_string()),
        ("created_at", ts(job.created_at)),
        ("updated_at", ts(job.updated_at)),
        ("request", json(&job.request)?),
        ("hook_token", job.hook_token.clone()),
    ];
    if !job.qr_token.is_empty() {
        f.push(("qr_token", job.qr_token.clone()));
    }
    if let Some(t) = job.next_attempt_at {
        f.push(("next_attempt_at", ts(t)));
    }
    if let Some(e) = &job.error {
        f.push(("error", json(e)?));
    }
    if let Some(r) = &job.response {
        f.push(("response", json(r)?));
    }
    if let Some(r) = &job.request_id {
        f.push(("request_id", r.clone()));
    }
    Ok(f)
}

/// The record fields the enqueue script takes as bare values, in this order (see `enqueue.lua`).
const ENQUEUE_FIXED: [&str; 7] = ["kind", "status", "attempts", "max_attempts", "created_at", "updated_at", "request"];

/// A record as the enqueue script takes it: the values of [`ENQUEUE_FIXED`] in order, then the number of the
/// other fields and their field/value pairs. Its id, tenant and tokens are not among them: the script has them.
pub(crate) fn enqueue_args(job: &JobRecord, out: &mut Vec<String>) -> Result<(), QueueError> {
    let start = out.len();
    out.resize(start + ENQUEUE_FIXED.len() + 1, String::new());
    let mut found = 0;
    for (k, v) in to_fields(job)? {
        if matches!(k, "id" | "tenant" | "hook_token" | "qr_token") {
            continue;
        }
        match ENQUEUE_FIXED.iter().position(|f| *f == k) {
            Some(i) => {
                out[start + i] = v;
                found += 1;
            }
            None => out.extend([k.to_owned(), v]),
        }
    }
    if found != ENQUEUE_FIXED.len() {
        return Err(QueueError::Corrupt(format!("job {}: a record field is missing", job.id)));
    }
    let pairs = (out.len() - start - ENQUEUE_FIXED.len() - 1) / 2;
    out[start + ENQUEUE_FIXED.len()] = pairs.to_string();
    Ok(())
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, QueueError> {
    serde_json::to_string(v).map_err(|e| QueueError::Corrupt(format!("serialising a job: {e}")))
}

/// Parses the hash of one job (as `HGETALL` returns it). `None` for an empty hash (no such job).
pub(crate) fn from_map(map: &HashMap<String, String>) -> Result<Option<JobRecord>, QueueError> {
    if map.is_empty() {
        return Ok(None);
    }
    let id_hint = map.get("id").map(String::as_str).unwrap_or("?");
    let bad = |field: &str, why: String| QueueError::Corrupt(format!("job {id_hint}: field {field}: {why}"));
    let get = |field: &str| map.get(field).map(String::as_str).ok_or_else(|| bad(field, "missing".into()));
    let time = |field: &str, v: &str| -> Result<OffsetDateTime, QueueError> {
        let n: i128 = v.parse().map_err(|e| bad(field, format!("{e}")))?;
        OffsetDateTime::from_unix_timestamp_nanos(n).map_err(|e| bad(field, format!("{e}")))
    };
    let int = |field: &str| -> Result<u32, QueueError> { get(field)?.parse().map_err(|e| bad(field, format!("{e}"))) };

    let id: JobId = get("id")?.parse().map_err(|e| bad("id", format!("{e}")))?;
    let kind = match get("kind")? {
        "session-create" => JobKind::SessionCreate,
        other => return Err(bad("kind", format!("unknown kind {other:?}"))),
    };
    let tenant = TenantId::parse(get("tenant")?).map_err(|e| bad("tenant", format!("{e}")))?;
    let status: JobStatus = get("status")?.parse().map_err(|e| bad("status", e))?;
    let request: SessionCreate = serde_json::from_str(get("request")?).map_err(|e| bad("request", format!("{e}")))?;
    let error: Option<JobError> = match map.get("error").filter(|s| !s.is_empty()) {
        Some(s) => Some(serde_json::from_str(s).map_err(|e| bad("error", format!("{e}")))?),
        None => None,
    };
    let response = match map.get("response").filter(|s| !s.is_empty()) {
        Some(s) => Some(serde_json::from_str(s).map_err(|e| bad("response", format!("{e}")))?),
        None => None,
    };
    let next_attempt_at = match map.get("next_attempt_at").filter(|s| !s.is_empty()) {
        Some(s) => Some(time("next_attempt_at", s)?),
        None => None,
    };
    Ok(Some(JobRecord {
        id,
        kind,
        tenant,
        status,
        attempts: int("attempts")?,
        max_attempts: int("max_attempts")?,
        created_at: time("created_at", get("created_at")?)?,
        updated_at: time("updated_at", get("updated_at")?)?,
        next_attempt_at,
        error,
        response,
        request,
        request_id: map.get("request_id").cloned(),
        hook_token: get("hook_token")?.to_owned(),
        qr_token: map.get("qr_token").cloned().unwrap_or_default(),
    }))
}

/// Parses a flat `[field, value, field, value, ...]` reply (a script's `HGETALL`).
pub(crate) fn from_flat(values: Vec<String>) -> Result<Option<JobRecord>, QueueError> {
    let mut map = HashMap::with_capacity(values.len() / 2);
    let mut it = values.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        map.insert(k, v);
    }
    from_map(&map)
}
