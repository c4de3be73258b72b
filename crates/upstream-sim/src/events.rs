//! Every event the simulator produces, kept for `events-get` in bounded per-session logs.
//!
//! Each event is stored as the exact JSON body its webhook carries, so `events-get` answers the same objects
//! a callback receives. Bounds: the newest [`EVENTS_PER_SESSION`] events of each session, and the logs of the
//! [`DELETED_LOGS_KEPT`] most recently deleted sessions (WhatsGate's events-get still lists a deleted session's
//! events); older ones are dropped. The store has its own lock, apart from the sessions, and never holds it
//! across an await.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;

/// Events kept per session (the oldest go first).
pub const EVENTS_PER_SESSION: usize = 1000;
/// Deleted sessions whose logs are kept for `events-get`.
pub const DELETED_LOGS_KEPT: usize = 1000;

/// The `event_action` values WhatsGate documents.
pub const ACTIONS: [&str; 8] = ["message", "ack", "media", "sent", "error", "disconnect", "create", "ready"];

/// One stored event: its id, action, time (unix seconds) and webhook body.
#[derive(Clone, Debug)]
pub struct StoredEvent {
    pub id: u64,
    pub action: &'static str,
    pub unix: i64,
    pub body: Bytes,
}

/// The filters and page of an `events-get` call, validated.
#[derive(Debug)]
pub struct EventQuery {
    pub unique_id: Option<u64>,
    pub action: Option<&'static str>,
    /// Unix seconds, inclusive start and exclusive end.
    pub between: Option<(i64, i64)>,
    pub page_cnt: usize,
    pub page: usize,
}

/// One page of events, newest first.
#[derive(Debug)]
pub struct EventPage {
    pub elements: usize,
    pub pages: usize,
    pub page: usize,
    pub data: Vec<Bytes>,
}

impl EventPage {
    /// `{"result":"OK","pages":..,"elements":..,"page":..,"data":[event...]}`, the events written as stored.
    pub fn to_json(&self) -> Vec<u8> {
        let size: usize = self.data.iter().map(|e| e.len() + 1).sum();
        let mut out = Vec::with_capacity(size + 96);
        out.extend_from_slice(
            format!(
                r#"{{"result":"OK","pages":{},"elements":{},"page":{},"data":["#,
                self.pages, self.elements, self.page
            )
            .as_bytes(),
        );
        for (i, event) in self.data.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(event);
        }
        out.extend_from_slice(b"]}");
        out
    }
}

#[derive(Default)]
struct Logs {
    by_session: HashMap<u64, VecDeque<StoredEvent>>,
    /// Deleted sessions with a log, oldest deletion first.
    deleted: VecDeque<u64>,
    deleted_set: HashSet<u64>,
}

/// The event logs of every session.
#[derive(Default)]
pub struct EventStore {
    logs: Mutex<Logs>,
}

impl EventStore {
    fn lock(&self) -> MutexGuard<'_, Logs> {
        self.logs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn push(&self, unique_id: u64, event: StoredEvent) {
        let mut logs = self.lock();
        let log = logs.by_session.entry(unique_id).or_default();
        if log.len() >= EVENTS_PER_SESSION {
            log.pop_front();
        }
        log.push_back(event);
    }

    /// The session is gone: keep its log among the last [`DELETED_LOGS_KEPT`] deleted ones.
    pub fn session_deleted(&self, unique_id: u64) {
        let mut logs = self.lock();
        if !logs.by_session.contains_key(&unique_id) || !logs.deleted_set.insert(unique_id) {
            return;
        }
        logs.deleted.push_back(unique_id);
        while logs.deleted.len() > DELETED_LOGS_KEPT {
            if let Some(oldest) = logs.deleted.pop_front() {
                logs.deleted_set.remove(&oldest);
                logs.by_session.remove(&oldest);
            }
        }
    }

    /// Whether events of this session are kept (it may be deleted).
    pub fn knows(&self, unique_id: u64) -> bool {
        self.lock().by_session.contains_key(&unique_id)
    }

    pub fn query(&self, query: &EventQuery) -> EventPage {
        let logs = self.lock();
        let matches = |event: &&StoredEvent| {
            query.action.is_none_or(|action| event.action == action)
                && query.between.is_none_or(|(from, to)| (from..to).contains(&event.unix))
        };
        let mut found: Vec<&StoredEvent> = match query.unique_id {
            Some(unique_id) => logs.by_session.get(&unique_id).into_iter().flatten().filter(matches).collect(),
            None => logs.by_session.values().flatten().filter(matches).collect(),
        };
        found.sort_unstable_by_key(|e| std::cmp::Reverse(e.id));
        let elements = found.len();
        let skip = (query.page - 1).saturating_mul(query.page_cnt);
        let data = found.into_iter().skip(skip).take(query.page_cnt).map(|e| e.body.clone()).collect();
        EventPage { elements, pages: elements.div_ceil(query.page_cnt), page: query.page, data }
    }

    pub fn clear(&self) {
        *self.lock() = Logs::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: u64, action: &'static str) -> StoredEvent {
        StoredEvent { id, action, unix: 100, body: Bytes::from(format!(r#"{{"id":{id}}}"#)) }
    }

    fn all(unique_id: Option<u64>) -> EventQuery {
        EventQuery { unique_id, action: None, between: None, page_cnt: 100, page: 1 }
    }

    #[test]
    fn a_session_keeps_only_its_newest_events() {
        let store = EventStore::default();
        for id in 1..=(EVENTS_PER_SESSION as u64 + 5) {
            store.push(7, event(id, "ack"));
        }
        let page = store.query(&EventQuery { page_cnt: 1, ..all(Some(7)) });
        assert_eq!(page.elements, EVENTS_PER_SESSION);
        assert_eq!(page.data[0], format!(r#"{{"id":{}}}"#, EVENTS_PER_SESSION + 5));
    }

    #[test]
    fn only_the_last_deleted_sessions_keep_their_logs() {
        let store = EventStore::default();
        for session in 0..(DELETED_LOGS_KEPT as u64 + 1) {
            store.push(session, event(session + 1, "ready"));
            store.session_deleted(session);
        }
        assert!(!store.knows(0), "the oldest deleted log is dropped");
        assert!(store.knows(1));
        assert_eq!(store.query(&all(None)).elements, DELETED_LOGS_KEPT);
    }

    #[test]
    fn pages_list_the_newest_first_and_filter_by_action() {
        let store = EventStore::default();
        store.push(1, event(1, "ready"));
        store.push(2, event(2, "message"));
        store.push(1, event(3, "message"));
        let page = store.query(&EventQuery { action: Some("message"), page_cnt: 1, page: 2, ..all(None) });
        assert_eq!((page.elements, page.pages), (2, 2));
        assert_eq!(page.data, vec![Bytes::from(r#"{"id":2}"#)]);
        assert!(
            String::from_utf8_lossy(&page.to_json())
                .starts_with(r#"{"result":"OK","pages":2,"elements":2,"page":2,"data":[{"id":2}]}"#)
        );
    }
}
