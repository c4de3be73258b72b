//! Session-create, sessions-get and the other session commands, and the control operations a test drives
//! (scan, fail, disconnect).

use std::sync::Arc;
use std::time::Instant;

use rand::Rng;
use serde::Serialize;

use super::{Fault, SimState, to_json};
use crate::session::{AuthMode, Phase, Session, SessionView, Snapshot, Status};

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

impl SimState {
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
}
