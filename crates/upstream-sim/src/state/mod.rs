//! The simulator's whole state behind one mutex: sessions, the seeded generators, counters and fault settings;
//! the stored events have a lock of their own ([`EventStore`]).
//!
//! One lock is plenty: every operation under it is a few map operations and, at most, serializing one page
//! of sessions. Answers are serialized while the lock is held so that no session is cloned on the hot path.
//! No lock is ever held across an await: webhooks are numbered, stored and handed to a delivery task after
//! the session lock is released.

mod inner;
mod messages;
mod sessions;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::Serialize;

use crate::config::FaultSettings;
use crate::events::{EventStore, StoredEvent};
use crate::messaging::EventData;
use crate::session::{Timing, UniqueId};
use crate::webhook::{Webhooks, event_body};

use inner::Inner;
pub use messages::{Incoming, IncomingResult};
pub use sessions::{ListQuery, NewSession, QrState, SessionError};

/// What the fault draw decided for one session-create call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 500 InternalError, nothing created.
    Error,
    /// 429 with `Retry-After: 1`, nothing created.
    Throttle,
    /// Never answered, nothing created.
    Timeout,
    /// Created, then the answer is lost: a 500 or (`drop_connection`) a closed connection.
    Ambiguous { drop_connection: bool },
}

#[derive(Serialize)]
struct StatsView<'a> {
    create_calls: u64,
    sessions_created: u64,
    by_name: BTreeMap<&'a str, u64>,
    webhooks_delivered: u64,
    webhook_attempts: u64,
    webhooks_failed: u64,
    sessions_live: usize,
    requests_held: u64,
    sends: u64,
    sends_by_session: BTreeMap<String, u64>,
}

/// A request held open by the timeout fault; see [`SimState::hold`].
pub struct HeldRequest<'a>(&'a AtomicU64);

impl Drop for HeldRequest<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Shared by every worker thread.
pub struct SimState {
    inner: Mutex<Inner>,
    /// Read before the lock is taken, so kept apart from the rest of the fault settings.
    latency_ms: AtomicU64,
    /// session-create calls held open by the timeout fault right now.
    held: AtomicU64,
    timing: Timing,
    public_url: String,
    api_keys: Vec<String>,
    webhooks: Arc<Webhooks>,
    events: EventStore,
}

pub(super) fn to_json(value: &impl Serialize) -> Vec<u8> {
    let mut body = Vec::with_capacity(512);
    // Serializing our own plain structs into a Vec cannot fail.
    if serde_json::to_writer(&mut body, value).is_err() {
        body.clear();
        body.extend_from_slice(br#"{"result":"ERROR"}"#);
    }
    body
}

impl SimState {
    pub fn new(
        seed: u64,
        faults: FaultSettings,
        timing: Timing,
        public_url: String,
        api_keys: Vec<String>,
        webhooks: Arc<Webhooks>,
    ) -> Self {
        Self {
            inner: Mutex::new(Inner::new(seed, faults)),
            latency_ms: AtomicU64::new(faults.latency_ms),
            held: AtomicU64::new(0),
            timing,
            public_url,
            api_keys,
            webhooks,
            events: EventStore::default(),
        }
    }

    /// Numbers, stores (for `events-get`) and, when the session has a callback, delivers these events of
    /// one session in order. Called without the session lock. Returns the event ids.
    fn emit(&self, unique_id: u64, callback: Option<String>, events: Vec<(&'static str, EventData)>) -> Vec<u64> {
        let unix = crate::clock::unix_seconds();
        let mut ids = Vec::with_capacity(events.len());
        let mut bodies = Vec::with_capacity(events.len());
        for (action, data) in events {
            let id = self.webhooks.next_event_id();
            let body = event_body(id, unique_id, action, unix, &data);
            self.events.push(unique_id, StoredEvent { id, action, unix, body: body.clone() });
            ids.push(id);
            bodies.push((id, body));
        }
        if let Some(callback) = callback {
            self.webhooks.deliver_in_order(callback, bodies);
        }
        ids
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a request held open by the timeout fault until the guard is dropped (its client hung up).
    pub fn hold(&self) -> HeldRequest<'_> {
        self.held.fetch_add(1, Ordering::Relaxed);
        HeldRequest(&self.held)
    }

    pub fn latency_ms(&self) -> u64 {
        self.latency_ms.load(Ordering::Relaxed)
    }

    pub fn key_is_valid(&self, key: &[u8]) -> bool {
        self.api_keys.iter().any(|k| k.as_bytes() == key)
    }

    pub fn stats(&self) -> Vec<u8> {
        let inner = self.lock();
        let (delivered, attempts, failed) = self.webhooks.counts();
        to_json(&StatsView {
            create_calls: inner.create_calls,
            sessions_created: inner.sessions_created,
            by_name: inner.created_by_name.iter().map(|(name, n)| (&**name, *n)).collect(),
            webhooks_delivered: delivered,
            webhook_attempts: attempts,
            webhooks_failed: failed,
            sessions_live: inner.sessions.len(),
            requests_held: self.held.load(Ordering::Relaxed),
            sends: inner.sends,
            sends_by_session: inner.sends_by_session.iter().map(|(id, n)| (UniqueId(*id).to_string(), *n)).collect(),
        })
    }

    pub fn faults(&self) -> FaultSettings {
        self.lock().faults
    }

    pub fn set_faults(&self, faults: FaultSettings) {
        let mut inner = self.lock();
        inner.faults = faults;
        self.latency_ms.store(faults.latency_ms, Ordering::Relaxed);
    }

    /// Forgets every session and counter and restarts the generators from the seed; fault settings stay.
    pub fn reset(&self) {
        let mut inner = self.lock();
        let faults = inner.faults;
        *inner = Inner::new(inner.seed, faults);
        drop(inner);
        self.events.clear();
        self.webhooks.reset_counts();
    }
}
