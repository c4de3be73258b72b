//! The worker's side of the job store: starting and finishing attempts, the scripts the backend runs in the
//! background (promotion of due retries, takeover, refresh, release).
mod store;
#[cfg(test)]
mod tests;

pub(crate) use store::{Reading, per_partition, unique_now};

use serde_json::Value;
use time::OffsetDateTime;
use wgate_types::{JobError, JobId, JobRecord};

use crate::{
    QueueError, record,
    store::{tagged, to_strings},
};

/// One stream entry handed to a worker: the apalis task arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub job_id: JobId,
    /// The stream entry id, acked when the attempt finishes.
    pub entry_id: String,
    /// The entry was taken over from a consumer that stopped answering: its attempt may have reached upstream.
    pub taken_over: bool,
    /// The partition whose stream the entry is in (that of the job's tenant).
    pub partition: usize,
}

/// What [`JobStore::start_attempt`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Started {
    /// Run attempt `record.attempts`. `reconcile`: an earlier attempt may have created the session upstream.
    Run { record: Box<JobRecord>, reconcile: bool },
    /// Every attempt was used, but one may have created the session upstream: look for it and adopt it, or end
    /// the job `dead`; never create. (A bounded number of these passes run; see `start.lua`.)
    Reconcile(Box<JobRecord>),
    /// Every attempt was used and the last one never finished: the job is now `dead` (and published).
    Dead(Box<JobRecord>),
    /// The job is already finished or gone, or its record cannot be read (the entry was dead-lettered): the
    /// entry was dropped.
    Skip,
}

/// A stream entry that cannot be run (no `job` field, a malformed job id, a record that cannot be read): it is
/// acked and kept, with its raw fields, in the dead-letter list ([`JobStore::dead_letter`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poison {
    pub entry_id: String,
    /// The entry's fields as read (lossy UTF-8, each value cut at [`DEAD_LETTER_VALUE_MAX`] bytes).
    pub fields: Vec<(String, String)>,
    pub reason: String,
}

/// Dead letters kept per queue; older ones are dropped.
pub const DEAD_LETTER_CAP: usize = 1000;
/// Longest raw field value kept in a dead letter, in bytes; fields kept per entry.
pub const DEAD_LETTER_VALUE_MAX: usize = 1024;
const DEAD_LETTER_FIELDS_MAX: usize = 32;

/// Reconcile-only passes a job out of attempts gets before it ends dead without having reached upstream.
pub const MAX_RECONCILE_PASSES: u32 = 5;

/// How an attempt ended, as the worker decided it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded {
        response: Value,
        unique_id: String,
    },
    /// Permanent: never retried.
    Failed(JobError),
    /// Retryable: run again at `due`.
    Retry {
        error: JobError,
        due: OffsetDateTime,
        maybe_sent: bool,
    },
    /// Retryable, but every attempt is used.
    Dead(JobError),
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Succeeded { .. } => "succeeded",
            Self::Failed(_) => "failed",
            Self::Retry { .. } => "retried",
            Self::Dead(_) => "dead",
        }
    }
}

/// A finished attempt: what the handler returns and the acknowledger writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub delivery: Delivery,
    /// The job as attempted and the attempt's outcome; `None` when there is nothing to write (the start script
    /// already dropped or buried the job).
    pub write: Option<(Box<JobRecord>, Outcome)>,
}

impl Finished {
    /// An attempt with an outcome to write.
    pub fn outcome(delivery: Delivery, job: Box<JobRecord>, outcome: Outcome) -> Self {
        Self { delivery, write: Some((job, outcome)) }
    }

    /// A delivery with nothing to write: only its slot is freed.
    pub fn nothing(delivery: Delivery) -> Self {
        Self { delivery, write: None }
    }
}

/// The result of writing an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Ok,
    /// Another attempt owns the job now (it was taken over): nothing was written.
    Stale,
}

fn consumer_fields(v: &redis::Value) -> Vec<(String, String)> {
    match v {
        redis::Value::Array(items) => items
            .chunks(2)
            .filter_map(|kv| match kv {
                [k, v] => Some((crate::store::text(k)?, crate::store::text(v)?)),
                _ => None,
            })
            .collect(),
        redis::Value::Map(items) => {
            items.iter().filter_map(|(k, v)| Some((crate::store::text(k)?, crate::store::text(v)?))).collect()
        }
        _ => Vec::new(),
    }
}

fn parse_started(item: redis::Value) -> Result<Started, QueueError> {
    let (tag, rest) = tagged(item)?;
    started_of(&tag, &rest)
}

/// An attempt the finish script started as it read the entry (`finish.lua`): the handler's start takes it instead
/// of paying a round trip of its own, and an entry given back to the stream unstarted is unstarted first.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Begun {
    pub(crate) started: Started,
    /// What the start changed, as it was before (`start_one.lua`'s order: status, attempts, updated_at,
    /// next_attempt_at, reconciles; '' = absent); empty after a skip or a dead end, which leave nothing to undo.
    pub(crate) prior: Vec<String>,
}

impl Begun {
    /// The arguments of `release.lua` that unstart an entry: the attempt and `updated_at` its start wrote, then the
    /// earlier values (all '' when it was not started here or there is nothing to undo).
    pub(crate) fn undo_args(begun: Option<&Self>) -> Vec<String> {
        match begun.map(|b| (&b.started, &b.prior)) {
            Some((Started::Run { record, .. } | Started::Reconcile(record), prior)) if prior.len() == 5 => {
                let mut args = vec![record.attempts.to_string(), record::ts(record.updated_at)];
                args.extend(prior.iter().cloned());
                args
            }
            _ => vec![String::new(); 7],
        }
    }
}

/// Parses the starts a finish script answered (entry id, job id, start reply, ...) as deliveries of `partition`.
pub(crate) fn parse_begun(v: redis::Value, partition: usize) -> Result<Vec<(Delivery, Begun)>, QueueError> {
    let redis::Value::Array(items) = v else { return Ok(Vec::new()) };
    let mut begun = Vec::with_capacity(items.len() / 3);
    let mut items = items.into_iter();
    while let (Some(entry), Some(job), Some(reply)) = (items.next(), items.next(), items.next()) {
        let entry_id =
            crate::store::text(&entry).ok_or_else(|| QueueError::Corrupt("a start without its entry".into()))?;
        let job_id = crate::store::text(&job)
            .and_then(|j| j.parse().ok())
            .ok_or_else(|| QueueError::Corrupt("a start without its job id".into()))?;
        let (tag, rest) = tagged(reply)?;
        // What the start changed: one comma-separated string.
        let prior = match rest.get(1).map(crate::store::text) {
            Some(Some(p)) => p.split(',').map(str::to_owned).collect(),
            Some(None) => return Err(QueueError::Corrupt("a start's earlier values are not text".into())),
            None => Vec::new(),
        };
        let delivery = Delivery { job_id, entry_id, taken_over: false, partition };
        begun.push((delivery, Begun { started: started_of(&tag, &rest)?, prior }));
    }
    Ok(begun)
}

fn started_of(tag: &str, rest: &[redis::Value]) -> Result<Started, QueueError> {
    let flat = match rest.first() {
        // A run's record: its pairs as one JSON array of strings.
        Some(redis::Value::BulkString(json)) => serde_json::from_slice::<Vec<String>>(json)
            .map_err(|e| QueueError::Corrupt(format!("a started record: {e}")))?,
        other => other.map(to_strings).transpose()?.unwrap_or_default(),
    };
    match tag {
        "skip" => Ok(Started::Skip),
        "dead" => {
            let rec = record::from_flat(flat)?.ok_or_else(|| QueueError::Corrupt("dead job vanished".into()))?;
            Ok(Started::Dead(Box::new(rec)))
        }
        "reconcile" => {
            let rec = record::from_flat(flat)?.ok_or_else(|| QueueError::Corrupt("started job vanished".into()))?;
            Ok(Started::Reconcile(Box::new(rec)))
        }
        "run" => {
            let reconcile = flat.chunks(2).any(|kv| kv.len() == 2 && kv[0] == "maybe_sent" && kv[1] == "1");
            let rec = record::from_flat(flat)?.ok_or_else(|| QueueError::Corrupt("started job vanished".into()))?;
            Ok(Started::Run { record: Box::new(rec), reconcile })
        }
        other => Err(QueueError::Corrupt(format!("start script answered {other:?}"))),
    }
}

/// Parses an `XREADGROUP` reply (`[[stream, entries], ...]`, or nil when nothing was read) as [`parse_entries`]
/// parses each stream's entries.
pub(crate) fn parse_read(reply: &redis::Value, partition: usize) -> (Vec<Delivery>, Vec<Poison>) {
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    if let redis::Value::Array(streams) = reply {
        for s in streams {
            if let redis::Value::Array(parts) = s
                && let Some(entries) = parts.get(1)
            {
                let (g, b) = parse_entries(entries, false, partition);
                good.extend(g);
                bad.extend(b);
            }
        }
    }
    (good, bad)
}

/// Parses `[[id, [field, value, ...]], ...]` into deliveries, and the entries without a valid `job` field into
/// poison to dead-letter.
pub(crate) fn parse_entries(v: &redis::Value, taken_over: bool, partition: usize) -> (Vec<Delivery>, Vec<Poison>) {
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    let redis::Value::Array(entries) = v else { return (good, bad) };
    for e in entries {
        let redis::Value::Array(parts) = e else { continue };
        let Some(entry_id) = parts.first().and_then(crate::store::text) else { continue };
        let fields: Vec<(String, String)> = match parts.get(1) {
            Some(redis::Value::Array(fields)) => fields
                .chunks(2)
                .take(DEAD_LETTER_FIELDS_MAX)
                .map(|kv| (raw_text(&kv[0]), kv.get(1).map(raw_text).unwrap_or_default()))
                .collect(),
            _ => Vec::new(),
        };
        let job = fields.iter().find(|(k, _)| k == "job").map(|(_, v)| v.as_str());
        let reason = match job.map(str::parse::<JobId>) {
            Some(Ok(job_id)) => {
                good.push(Delivery { job_id, entry_id, taken_over, partition });
                continue;
            }
            Some(Err(_)) => "the entry's job field is not a job id",
            None => "the entry has no job field",
        };
        bad.push(Poison { entry_id, fields, reason: reason.to_owned() });
    }
    (good, bad)
}

/// A raw reply value as text for a dead letter: lossy UTF-8, cut at [`DEAD_LETTER_VALUE_MAX`] bytes.
fn raw_text(v: &redis::Value) -> String {
    let s = match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(&b[..b.len().min(DEAD_LETTER_VALUE_MAX)]).into_owned(),
        other => crate::store::text(other).unwrap_or_default(),
    };
    if s.len() > DEAD_LETTER_VALUE_MAX {
        let mut end = DEAD_LETTER_VALUE_MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s[..end].to_owned()
    } else {
        s
    }
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}
