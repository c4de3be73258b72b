//! Webhook delivery as WhatsGate does it: POST the event to the session's callback, expect
//! `{"result":"OK","id":<event id>}` back, otherwise try again up to 3 more times, `retry` apart.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use crate::session::UniqueId;

/// How long one delivery attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// The first attempt and three retries.
pub const ATTEMPTS: u32 = 4;

/// The webhook body of one event, in WhatsGate's key order; `events-get` lists the same bytes.
pub fn event_body(id: u64, whatsapp_id: u64, action: &str, unix: i64, data: &impl Serialize) -> Bytes {
    let payload = Payload {
        id,
        whatsapp_id: UniqueId(whatsapp_id),
        event_action: action,
        event_date: crate::clock::Date(unix),
        status_code: 200,
        event_data: data,
    };
    // Serializing a plain struct over a JSON value into a Vec cannot fail.
    Bytes::from(serde_json::to_vec(&payload).unwrap_or_default())
}

#[derive(Serialize)]
struct Payload<'a, T: Serialize> {
    id: u64,
    whatsapp_id: UniqueId,
    event_action: &'a str,
    event_date: crate::clock::Date,
    status_code: u16,
    event_data: &'a T,
}

/// The delivery side: an HTTP client, the event id sequence and the counters shown in `/sim/stats`.
pub struct Webhooks {
    client: reqwest::Client,
    retry: Duration,
    next_id: AtomicU64,
    delivered: AtomicU64,
    attempts: AtomicU64,
    failed: AtomicU64,
}

impl Webhooks {
    pub fn new(retry: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .user_agent("wgate-sim webhook")
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the webhook HTTP client: {e}"))?;
        Ok(Self {
            client,
            retry,
            next_id: AtomicU64::new(1),
            delivered: AtomicU64::new(0),
            attempts: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        })
    }

    /// Takes the next event id (ids increase across every session).
    pub fn next_event_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// `(delivered, attempts, failed)`.
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.delivered.load(Ordering::Relaxed),
            self.attempts.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    pub fn reset_counts(&self) {
        self.delivered.store(0, Ordering::Relaxed);
        self.attempts.store(0, Ordering::Relaxed);
        self.failed.store(0, Ordering::Relaxed);
    }

    /// Delivers the events, in this order, in the background (on the calling runtime); each one gets its
    /// own attempts, and the next waits until the one before is acknowledged or given up.
    pub fn deliver_in_order(self: &Arc<Self>, url: String, events: Vec<(u64, Bytes)>) {
        if events.is_empty() {
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            for (id, body) in events {
                this.deliver(&url, id, body).await;
            }
        });
    }

    async fn deliver(&self, url: &str, id: u64, body: Bytes) {
        for attempt in 1..=ATTEMPTS {
            if attempt > 1 {
                tokio::time::sleep(self.retry).await;
            }
            self.attempts.fetch_add(1, Ordering::Relaxed);
            match self.attempt(url, id, body.clone()).await {
                Ok(()) => {
                    self.delivered.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(webhook.id = id, webhook.attempt = attempt, "webhook delivered");
                    return;
                }
                Err(problem) => {
                    tracing::debug!(webhook.id = id, webhook.attempt = attempt, %problem, "webhook not acknowledged");
                }
            }
        }
        self.failed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(webhook.id = id, webhook.url = %url, "webhook given up after {ATTEMPTS} attempts");
    }

    async fn attempt(&self, url: &str, id: u64, body: Bytes) -> Result<(), String> {
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("answered {status}"));
        }
        let ack = response.bytes().await.map_err(|e| format!("reading the answer failed: {e}"))?;
        if is_ack(&ack, id) { Ok(()) } else { Err(format!("not an acknowledgement of event {id}")) }
    }
}

/// `{"result":"OK","id":<id>}` (the id as a number or a string).
pub fn is_ack(body: &[u8], id: u64) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    let id_matches = match value.get("id") {
        Some(serde_json::Value::Number(n)) => n.as_u64() == Some(id),
        Some(serde_json::Value::String(s)) => s.trim() == id.to_string(),
        _ => false,
    };
    value.get("result").and_then(|r| r.as_str()) == Some("OK") && id_matches
}

#[cfg(test)]
mod tests {
    use super::is_ack;

    #[test]
    fn an_ack_must_say_ok_and_name_the_event() {
        assert!(is_ack(br#"{"result":"OK","id":7}"#, 7));
        assert!(is_ack(br#"{"result":"OK","id":"7"}"#, 7));
        assert!(!is_ack(br#"{"result":"OK","id":8}"#, 7));
        assert!(!is_ack(br#"{"result":"ERROR","id":7}"#, 7));
        assert!(!is_ack(br#"{"result":"OK"}"#, 7));
        assert!(!is_ack(b"OK", 7));
    }
}
