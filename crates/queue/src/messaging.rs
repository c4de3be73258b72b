//! What the API's messaging commands keep in Redis: the `Idempotency-Key` records of sends (a claim while the send
//! is in flight, then its answer for 24 h) and the pacing of each session's sends, on Redis's clock so that every
//! API replica paces together.

use std::time::Duration;

use wgate_types::TenantId;

use crate::{JobStore, QueueError, scripts};

/// What an `Idempotency-Key` holds when a send claims it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendClaim {
    /// The key was free: this send goes, and must end with [`JobStore::send_finish`].
    Claimed,
    /// Another body holds the key.
    Conflict,
    /// The first send with this key has not ended, or its process stopped while sending: `age` is how long ago it
    /// was claimed (`None` for a claim made before claims were timed), from which the caller tells the two apart.
    InFlight { age: Option<Duration> },
    /// The first send ended with this answer.
    Done { status: u16, body: String },
}

/// One pacing decision for a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaceAnswer {
    pub allowed: bool,
    /// Sends the window still holds now.
    pub remaining: u32,
    /// Allowed: until the window is empty again. Refused: until a send fits.
    pub wait: Duration,
}

/// The pace of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    pub per_minute: u32,
    pub min_interval: Duration,
    /// This send's random addition to `min_interval` before the next.
    pub jitter: Duration,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl JobStore {
    /// Claims `key` for a send whose body hashes to `fingerprint`, or answers what the key holds.
    pub async fn send_claim(
        &self,
        tenant: &TenantId,
        key: &str,
        fingerprint: &str,
        ttl: Duration,
    ) -> Result<SendClaim, QueueError> {
        let mut inv = scripts::SEND_CLAIM.prepare_invoke();
        inv.key(self.layout().tenant(tenant).send_idempotency(tenant, key))
            .arg(fingerprint)
            .arg(ttl.as_millis().max(1) as u64);
        let answer: Vec<String> =
            self.redis().call_acknowledged("send claim", |mut c| async move { inv.invoke_async(&mut c).await }).await?;
        Ok(match answer.first().map(String::as_str) {
            Some("claimed") => SendClaim::Claimed,
            Some("conflict") => SendClaim::Conflict,
            Some("done") => SendClaim::Done {
                status: answer.get(1).and_then(|s| s.parse().ok()).unwrap_or(200),
                body: answer.get(2).cloned().unwrap_or_default(),
            },
            _ => SendClaim::InFlight {
                age: answer.get(1).and_then(|s| s.parse::<u64>().ok()).map(Duration::from_millis),
            },
        })
    }

    /// Ends a claimed send: its answer is kept for `ttl` (`Some`), or the claim is dropped (`None`: the send surely
    /// never left the gateway, so the same key may send).
    pub async fn send_finish(
        &self,
        tenant: &TenantId,
        key: &str,
        fingerprint: &str,
        answer: Option<(u16, &str)>,
        ttl: Duration,
    ) -> Result<(), QueueError> {
        let mut inv = scripts::SEND_FINISH.prepare_invoke();
        let (status, body) = answer.map_or((String::new(), ""), |(s, b)| (s.to_string(), b));
        inv.key(self.layout().tenant(tenant).send_idempotency(tenant, key))
            .arg(fingerprint)
            .arg(status)
            .arg(body)
            .arg(ttl.as_millis().max(1) as u64);
        let _: i64 = self
            .redis()
            .call_acknowledged("send finish", |mut c| async move { inv.invoke_async(&mut c).await })
            .await?;
        Ok(())
    }

    /// Admits one send of the tenant's session `unique_id` at `pace`, or says how long until one fits.
    pub async fn pace_send(&self, tenant: &TenantId, unique_id: &str, pace: Pace) -> Result<PaceAnswer, QueueError> {
        let mut inv = scripts::PACE.prepare_invoke();
        inv.key(self.layout().tenant(tenant).send_pace(tenant, unique_id))
            .key(self.layout().tenant(tenant).send_pace_next(tenant, unique_id))
            .arg(pace.per_minute.max(1))
            .arg(micros(pace.min_interval))
            .arg(micros(pace.jitter))
            .arg(60_000_000u64);
        let (allowed, remaining, wait_us): (i64, i64, i64) =
            self.redis().call("pace", |mut c| async move { inv.invoke_async(&mut c).await }).await?;
        Ok(PaceAnswer {
            allowed: allowed == 1,
            remaining: u32::try_from(remaining).unwrap_or(0),
            wait: Duration::from_micros(u64::try_from(wait_us).unwrap_or(0)),
        })
    }
}
