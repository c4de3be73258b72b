//! The simulator's whole state behind one mutex: sessions, the seeded generators, counters and fault settings;
//! the stored events have a lock of their own ([`EventStore`]).
//!
//! One lock is plenty: every operation under it is a few map operations and, at most, serializing one page
//! of sessions. Answers are serialized while the lock is held so that no session is cloned on the hot path.
//! No lock is ever held across an await: webhooks are numbered, stored and handed to a delivery task after
//! the session lock is released.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::config::FaultSettings;
use crate::events::{EventQuery, EventStore, StoredEvent};
use crate::messaging::{self, ChatId, EventData, MediaFile, MessageView, Outgoing};
use crate::session::{AuthMode, Phase, Session, SessionView, Snapshot, Status, Timing, UniqueId};
use crate::webhook::{Webhooks, event_body};

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

/// A validated session-create request.
#[derive(Debug)]
pub struct NewSession {
    pub name: String,
    pub callback: Option<String>,
    pub auth: AuthMode,
}

/// The filters and page of a sessions-get request, validated.
#[derive(Debug, Default)]
pub struct ListQuery {
    /// `None` when the given `WhatsappID` cannot be one of ours (then nothing matches).
    pub unique_id: Option<Option<u64>>,
    pub name: Option<String>,
    pub status: Option<String>,
    pub page_cnt: usize,
    pub page: usize,
}

/// Why a control or command operation on one session could not be done.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    #[error("session not found")]
    NotFound,
    #[error("session is {0}")]
    WrongState(&'static str),
    /// A messaging command on a session that is not READY (its status).
    #[error("session is {0}, not READY")]
    NotReady(&'static str),
}

/// A message a test makes arrive on a session (`POST /sim/sessions/<id>/incoming`).
#[derive(Debug)]
pub struct Incoming {
    pub from: ChatId,
    pub body: String,
    /// `(mimetype, filename, size)` of an attached file.
    pub media: Option<(String, String, u64)>,
}

/// What an incoming message became.
#[derive(Debug, Serialize)]
pub struct IncomingResult {
    pub result: &'static str,
    pub event_id: u64,
    /// Whether the session has a callback the event was sent to.
    pub sent: bool,
    pub message_id: String,
    pub media_key: Option<String>,
}

/// What the QR page's state endpoint reports.
#[derive(Debug, Serialize)]
pub struct QrState {
    pub status: &'static str,
    pub qr: Option<String>,
    pub code: Option<String>,
    /// Counts failed authorizations: a change tells the page to report `error`.
    pub attempt: u32,
}

#[derive(Serialize)]
struct Envelope<'a> {
    result: &'static str,
    data: SessionView<'a>,
}

#[derive(Serialize)]
struct ListEnvelope<'a> {
    result: &'static str,
    pages: usize,
    elements: usize,
    page: usize,
    data: Vec<SessionView<'a>>,
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

struct Inner {
    seed: u64,
    /// Decides faults: one draw per session-create call (plus one more for an ambiguous one).
    fault_rng: StdRng,
    /// Draws ids, QR secrets and device numbers; kept apart so fault outcomes depend only on the call count.
    id_rng: StdRng,
    next_id: u64,
    sessions: BTreeMap<u64, Session>,
    by_unique: HashMap<u64, u64>,
    by_name: HashMap<Arc<str>, BTreeSet<u64>>,
    faults: FaultSettings,
    create_calls: u64,
    sessions_created: u64,
    created_by_name: HashMap<Arc<str>, u64>,
    sends: u64,
    /// Accepted sends per session (deleted sessions included, until a reset).
    sends_by_session: HashMap<u64, u64>,
}

const ID_STREAM: u64 = 0x1D5E_ED00_5EED_1D00;

impl Inner {
    fn new(seed: u64, faults: FaultSettings) -> Self {
        Self {
            seed,
            fault_rng: StdRng::seed_from_u64(seed),
            id_rng: StdRng::seed_from_u64(seed ^ ID_STREAM),
            next_id: 1,
            sessions: BTreeMap::new(),
            by_unique: HashMap::new(),
            by_name: HashMap::new(),
            faults,
            create_calls: 0,
            sessions_created: 0,
            created_by_name: HashMap::new(),
            sends: 0,
            sends_by_session: HashMap::new(),
        }
    }

    /// The session, if it is READY, with its `wid`.
    fn ready_session(&mut self, unique_id: u64, timing: Timing) -> Result<(&mut Session, String), SessionError> {
        let session = self.session_mut(unique_id)?;
        match &session.phase {
            Phase::Ready { wid } => {
                let wid = wid.clone();
                Ok((session, wid))
            }
            Phase::Authorizing { .. } => {
                Err(SessionError::NotReady(session.snapshot(Instant::now(), timing).status.as_str()))
            }
        }
    }

    fn draw_fault(&mut self) -> Option<Fault> {
        let f = self.faults;
        let draw: f64 = self.fault_rng.random();
        let mut edge = f.error_rate;
        if draw < edge {
            return Some(Fault::Error);
        }
        edge += f.throttle_rate;
        if draw < edge {
            return Some(Fault::Throttle);
        }
        edge += f.timeout_rate;
        if draw < edge {
            return Some(Fault::Timeout);
        }
        edge += f.ambiguous_rate;
        if draw < edge {
            return Some(Fault::Ambiguous { drop_connection: self.fault_rng.random() });
        }
        None
    }

    fn session_mut(&mut self, unique_id: u64) -> Result<&mut Session, SessionError> {
        let id = self.by_unique.get(&unique_id).ok_or(SessionError::NotFound)?;
        self.sessions.get_mut(id).ok_or(SessionError::NotFound)
    }

    fn session(&self, unique_id: u64) -> Result<&Session, SessionError> {
        let id = self.by_unique.get(&unique_id).ok_or(SessionError::NotFound)?;
        self.sessions.get(id).ok_or(SessionError::NotFound)
    }

    fn insert(&mut self, new: NewSession, now: Instant) -> u64 {
        let unique_id = loop {
            let candidate = self.id_rng.random_range(1_000_000_000_000..10_000_000_000_000u64);
            if !self.by_unique.contains_key(&candidate) {
                break candidate;
            }
        };
        let id = self.next_id;
        self.next_id += 1;
        // Many sessions share a name (a benchmark's, a tenant's); share its allocation too.
        let name: Arc<str> = match self.by_name.get_key_value(new.name.as_str()) {
            Some((name, _)) => Arc::clone(name),
            None => Arc::from(new.name),
        };
        self.by_name.entry(Arc::clone(&name)).or_default().insert(id);
        match self.created_by_name.get_mut(&*name) {
            Some(count) => *count += 1,
            None => {
                self.created_by_name.insert(Arc::clone(&name), 1);
            }
        }
        let session = Session {
            id,
            unique_id,
            name,
            callback: new.callback,
            created: crate::clock::unix_seconds(),
            auth: new.auth,
            secret: self.id_rng.random(),
            phase: Phase::Authorizing { since: now, attempt: 0 },
            messaging: None,
        };
        self.sessions.insert(id, session);
        self.by_unique.insert(unique_id, id);
        self.sessions_created += 1;
        unique_id
    }

    fn remove(&mut self, unique_id: u64) -> Option<Session> {
        let id = self.by_unique.remove(&unique_id)?;
        let session = self.sessions.remove(&id)?;
        self.unindex_name(&session.name, id);
        Some(session)
    }

    fn unindex_name(&mut self, name: &str, id: u64) {
        if let Some(ids) = self.by_name.get_mut(name) {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_name.remove(name);
            }
        }
    }
}

fn to_json(value: &impl Serialize) -> Vec<u8> {
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

    /// Counts a session-create call that passed the key check but not validation.
    pub fn count_create_call(&self) {
        self.lock().create_calls += 1;
    }

    /// One session-create call: draws the fault, creates unless the fault forbids it, and serializes the answer.
    ///
    /// Returns the fault (if any) and the success body (when there is an answer to give).
    pub fn create(&self, new: NewSession) -> (Option<Fault>, Option<Vec<u8>>) {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.create_calls += 1;
        let fault = inner.draw_fault();
        match fault {
            Some(Fault::Error | Fault::Throttle | Fault::Timeout) => (fault, None),
            Some(Fault::Ambiguous { .. }) => {
                inner.insert(new, now);
                (fault, None)
            }
            None => {
                let unique_id = inner.insert(new, now);
                let body = inner.session(unique_id).ok().map(|session| {
                    to_json(&Envelope { result: "OK", data: session.view(now, self.timing, &self.public_url) })
                });
                (None, body)
            }
        }
    }

    pub fn list(&self, query: &ListQuery) -> Vec<u8> {
        let now = Instant::now();
        let inner = self.lock();
        let status_ok = |session: &Session| match &query.status {
            None => true,
            Some(status) => session.snapshot(now, self.timing).status.as_str() == status,
        };
        let name_ok = |session: &Session| query.name.as_deref().is_none_or(|name| &*session.name == name);
        let skip = (query.page - 1).saturating_mul(query.page_cnt);
        let (elements, data): (usize, Vec<&Session>) =
            if query.unique_id.is_none() && query.name.is_none() && query.status.is_none() {
                // No filter: count and page without looking at each session.
                (inner.sessions.len(), inner.sessions.values().skip(skip).take(query.page_cnt).collect())
            } else {
                let by_id = |id: &u64| inner.sessions.get(id);
                let candidates: Box<dyn Iterator<Item = &Session> + '_> = match (&query.unique_id, &query.name) {
                    (Some(None), _) => Box::new(std::iter::empty()),
                    (Some(Some(unique_id)), _) => Box::new(inner.session(*unique_id).ok().into_iter()),
                    (None, Some(name)) => {
                        Box::new(inner.by_name.get(name.as_str()).into_iter().flatten().filter_map(by_id))
                    }
                    (None, None) => Box::new(inner.sessions.values()),
                };
                let mut elements = 0usize;
                let mut data = Vec::new();
                for session in candidates.filter(|s| name_ok(s) && status_ok(s)) {
                    if elements >= skip && data.len() < query.page_cnt {
                        data.push(session);
                    }
                    elements += 1;
                }
                (elements, data)
            };
        let pages = elements.div_ceil(query.page_cnt);
        let data = data.into_iter().map(|s| s.view(now, self.timing, &self.public_url)).collect();
        to_json(&ListEnvelope { result: "OK", pages, elements, page: query.page, data })
    }

    pub fn delete(&self, unique_id: u64) -> Result<Vec<u8>, SessionError> {
        let mut inner = self.lock();
        let session = inner.remove(unique_id).ok_or(SessionError::NotFound)?;
        self.events.session_deleted(unique_id);
        let code_mode = matches!(session.auth, AuthMode::Code(_));
        let snapshot = Snapshot {
            status: Status::Destroying,
            qr: None,
            code: code_mode.then_some(None),
            attempt: session.attempt(),
        };
        Ok(to_json(&Envelope { result: "OK", data: session.view_of(snapshot, &self.public_url) }))
    }

    pub fn set_hook(&self, unique_id: u64, callback: Option<String>) -> Result<Vec<u8>, SessionError> {
        let now = Instant::now();
        let mut inner = self.lock();
        let session = inner.session_mut(unique_id)?;
        session.callback = callback;
        Ok(to_json(&Envelope { result: "OK", data: session.view(now, self.timing, &self.public_url) }))
    }

    pub fn set_name(&self, unique_id: u64, name: String) -> Result<Vec<u8>, SessionError> {
        let now = Instant::now();
        let mut inner = self.lock();
        let session = inner.session_mut(unique_id)?;
        let id = session.id;
        let old = std::mem::replace(&mut session.name, Arc::from(name));
        let new = Arc::clone(&session.name);
        inner.unindex_name(&old, id);
        inner.by_name.entry(new).or_default().insert(id);
        let session = inner.session(unique_id)?;
        Ok(to_json(&Envelope { result: "OK", data: session.view(now, self.timing, &self.public_url) }))
    }

    /// The device scanned the QR (or entered the code): READY, and a `ready` webhook.
    pub fn scan(&self, unique_id: u64) -> Result<Vec<u8>, SessionError> {
        let now = Instant::now();
        let mut inner = self.lock();
        let session = inner.session(unique_id)?;
        if matches!(session.phase, Phase::Ready { .. }) {
            return Err(SessionError::WrongState("READY already"));
        }
        let wid = match &session.auth {
            AuthMode::Code(number) => format!("{number}@c.us"),
            AuthMode::Qr => {
                let digits = inner.id_rng.random_range(0..10_000_000u64);
                format!("7999{digits:07}@c.us")
            }
        };
        let session = inner.session_mut(unique_id)?;
        session.phase = Phase::Ready { wid: wid.clone() };
        let data = serde_json::json!({
            "status": Status::Ready.as_str(),
            "status_name": Status::Ready.name(),
            "wid": wid,
            "pushname": crate::session::PUSHNAME,
        });
        let callback = session.callback.clone();
        let body = to_json(&Envelope { result: "OK", data: session.view(now, self.timing, &self.public_url) });
        drop(inner);
        self.emit(unique_id, callback, vec![("ready", data.into())]);
        Ok(body)
    }

    /// Authorization failed: back to PENDING, then AUTH again with fresh QR values.
    pub fn fail(&self, unique_id: u64) -> Result<Vec<u8>, SessionError> {
        let now = Instant::now();
        let mut inner = self.lock();
        let session = inner.session_mut(unique_id)?;
        match session.phase {
            Phase::Ready { .. } => Err(SessionError::WrongState("READY")),
            Phase::Authorizing { attempt, .. } => {
                session.phase = Phase::Authorizing { since: now, attempt: attempt + 1 };
                Ok(to_json(&Envelope { result: "OK", data: session.view(now, self.timing, &self.public_url) }))
            }
        }
    }

    /// The linked device logged out: back to PENDING, then AUTH with a new QR, and a `disconnect` event.
    pub fn disconnect(&self, unique_id: u64, reason: String) -> Result<Vec<u8>, SessionError> {
        let now = Instant::now();
        let mut inner = self.lock();
        let secret = inner.id_rng.random();
        let session = inner.session_mut(unique_id)?;
        if !matches!(session.phase, Phase::Ready { .. }) {
            return Err(SessionError::NotReady(session.snapshot(now, self.timing).status.as_str()));
        }
        session.phase = Phase::Authorizing { since: now, attempt: 0 };
        session.secret = secret;
        let callback = session.callback.clone();
        let body = to_json(&Envelope { result: "OK", data: session.view(now, self.timing, &self.public_url) });
        drop(inner);
        let data = serde_json::json!({ "status": Status::Pending.as_str(), "reason": reason });
        self.emit(unique_id, callback, vec![("disconnect", data.into())]);
        Ok(body)
    }

    /// An incoming WhatsApp message, with or without a file: a `message` event.
    pub fn incoming(&self, unique_id: u64, message: Incoming) -> Result<IncomingResult, SessionError> {
        let timestamp = crate::clock::unix_seconds();
        let mut inner = self.lock();
        let random: u64 = inner.id_rng.random();
        let mut key_state: u64 = inner.id_rng.random();
        let session = inner.session_mut(unique_id)?;
        let media = message.media.map(|(mimetype, filename, size)| {
            let key = messaging::media_key(&mut key_state);
            let kind = messaging::type_of_mimetype(&mimetype);
            session.messaging_mut().add_media(MediaFile {
                key: key.clone(),
                mimetype,
                filename,
                size,
                seed: key_state,
            });
            (key, kind)
        });
        session.messaging_mut().touch(&message.from, true, timestamp);
        let view = MessageView {
            id: messaging::message_id(false, message.from.as_str(), random),
            ack: 1,
            has_media: media.is_some(),
            media_key: media.as_ref().map(|(key, _)| key.clone()),
            body: message.body,
            kind: media.as_ref().map_or("chat", |(_, kind)| *kind),
            timestamp,
            from: message.from.as_str().to_owned(),
            to: session.wid().unwrap_or_default().to_owned(),
            is_forwarded: false,
        };
        let callback = session.callback.clone();
        drop(inner);
        let sent = callback.is_some();
        let ids = self.emit(unique_id, callback, vec![("message", view.with_ack(1))]);
        Ok(IncomingResult {
            result: "OK",
            event_id: ids.first().copied().unwrap_or_default(),
            sent,
            message_id: view.id,
            media_key: view.media_key,
        })
    }

    /// Any documented event a test asks for, on a live session. Returns its id and whether it is delivered.
    pub fn inject(
        &self,
        unique_id: u64,
        action: &'static str,
        data: serde_json::Value,
    ) -> Result<(u64, bool), SessionError> {
        let callback = self.lock().session(unique_id)?.callback.clone();
        let sent = callback.is_some();
        let ids = self.emit(unique_id, callback, vec![(action, data.into())]);
        Ok((ids.first().copied().unwrap_or_default(), sent))
    }

    /// `send`: the message object (or the queued answer), then `sent` (asynchronous sends) and `ack` events.
    pub fn send(&self, unique_id: u64, message: Outgoing) -> Result<Vec<u8>, SessionError> {
        let timestamp = crate::clock::unix_seconds();
        let mut inner = self.lock();
        let (session, wid) = inner.ready_session(unique_id, self.timing)?;
        session.messaging_mut().touch(&message.chat, false, timestamp);
        let callback = session.callback.clone();
        let random: u64 = inner.id_rng.random();
        let mut key_state: u64 = inner.id_rng.random();
        inner.sends += 1;
        *inner.sends_by_session.entry(unique_id).or_default() += 1;
        drop(inner);
        let view = MessageView {
            id: messaging::message_id(true, message.chat.as_str(), random),
            ack: 1,
            has_media: message.media.is_some(),
            media_key: message.media.as_ref().map(|_| messaging::media_key(&mut key_state)),
            body: message.body,
            kind: message.media.as_ref().map_or("chat", |m| m.message_type),
            timestamp,
            from: wid,
            to: message.chat.as_str().to_owned(),
            is_forwarded: false,
        };
        let mut events = Vec::with_capacity(2);
        if message.asynchronous {
            events.push(("sent", view.with_ack(1)));
        }
        events.push(("ack", view.with_ack(2)));
        self.emit(unique_id, callback, events);
        if message.asynchronous {
            Ok(br#"{"result":{}}"#.to_vec())
        } else {
            Ok(to_json(&messaging::SendAnswer { result: &view }))
        }
    }

    /// `check`: whether the number is on WhatsApp.
    pub fn check(&self, unique_id: u64, number: &str) -> Result<bool, SessionError> {
        self.lock().ready_session(unique_id, self.timing)?;
        Ok(messaging::is_registered(number))
    }

    /// `get-chats`: `{"result":"OK","data":[chat...]}`.
    pub fn chats(&self, unique_id: u64) -> Result<Vec<u8>, SessionError> {
        let mut inner = self.lock();
        let (session, wid) = inner.ready_session(unique_id, self.timing)?;
        Ok(to_json(
            &serde_json::json!({ "result": "OK", "data": session.messaging.as_ref().map(|m| m.chats(&wid)).unwrap_or_default() }),
        ))
    }

    /// `seen` (the chat's messages are read) or `typing` (nothing to remember).
    pub fn chat_action(&self, unique_id: u64, chat: &ChatId, seen: bool) -> Result<(), SessionError> {
        let mut inner = self.lock();
        let (session, _) = inner.ready_session(unique_id, self.timing)?;
        if seen {
            session.messaging_mut().seen(chat);
        }
        Ok(())
    }

    /// `get-media`: the file with this key, if the session has it.
    pub fn media(&self, unique_id: u64, key: &str) -> Result<Option<MediaFile>, SessionError> {
        let mut inner = self.lock();
        let (session, _) = inner.ready_session(unique_id, self.timing)?;
        Ok(session.messaging.as_ref().and_then(|m| m.media(key)).cloned())
    }

    /// `events-get`: one page of stored events. A given session must exist or have left events behind.
    pub fn events(&self, query: &EventQuery) -> Result<Vec<u8>, SessionError> {
        if let Some(unique_id) = query.unique_id {
            let live = self.lock().session(unique_id).is_ok();
            if !live && !self.events.knows(unique_id) {
                return Err(SessionError::NotFound);
            }
        }
        Ok(self.events.query(query).to_json())
    }

    pub fn qr_state(&self, unique_id: u64) -> Option<QrState> {
        let now = Instant::now();
        let inner = self.lock();
        let session = inner.session(unique_id).ok()?;
        let snapshot = session.snapshot(now, self.timing);
        Some(QrState {
            status: snapshot.status.as_str(),
            qr: snapshot.qr,
            code: snapshot.code.flatten(),
            attempt: snapshot.attempt,
        })
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
