//! What the QR windows know of upstream sessions: one `sessions-get {WhatsappID}` per session per second at
//! most, however many windows are open on it.
//!
//! Each session has a slot holding its last answer and when it was fetched. A request takes the slot's async
//! lock: a fresh answer (younger than `max_age`) is served as is; otherwise the request fetches, and every other
//! request for that session waits on the lock and then finds the fresh answer (single flight). Failures are
//! remembered as long as answers, so a failing upstream is not called more often either. The bound holds per
//! API process: with N replicas behind one balancer, a session costs at most N upstream calls per second.
//!
//! The map is bounded: past `capacity` sessions, slots idle for a while are dropped; when every slot is still in
//! use, the window is told "unavailable" (it tries again a second later) rather than calling upstream uncached.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::Value;
use wgate_types::unique_id_text;
use wgate_upstream::{SessionsQuery, Upstream};

/// What a window shows of one upstream session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionState {
    /// Upstream's status: `PENDING`, `AUTH`, `READY`, `DESTROYING` (or anything else it may add).
    pub status: String,
    /// The QR drawn as an inline SVG element, when upstream gives a QR as text.
    pub qr_svg: Option<Arc<str>>,
    /// The QR as an image URL (`data:image/...`), when upstream gives it as one.
    pub qr_image: Option<Arc<str>>,
    /// The pairing code (CODE mode).
    pub code: Option<String>,
}

/// The outcome of one lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Found(Arc<SessionState>),
    /// Upstream does not know the session (deleted, or never existed).
    Gone,
    /// Upstream could not be asked or failed; the window tries again.
    Unavailable,
}

struct Fetched {
    at: Instant,
    lookup: Lookup,
}

type Slot = Arc<tokio::sync::Mutex<Option<Fetched>>>;

pub struct SessionCache {
    upstream: Option<Upstream>,
    max_age: Duration,
    capacity: usize,
    slots: Mutex<HashMap<String, Slot>>,
    fetches: AtomicU64,
}

/// A slot not fetched for this long may be dropped when the map is full.
const IDLE: Duration = Duration::from_secs(30);

impl SessionCache {
    /// `upstream` is `None` when the API has no upstream key: every lookup is then `Unavailable`.
    pub fn new(upstream: Option<Upstream>, max_age: Duration, capacity: usize) -> Self {
        Self {
            upstream,
            max_age,
            capacity: capacity.max(1),
            slots: Mutex::new(HashMap::new()),
            fetches: AtomicU64::new(0),
        }
    }

    /// Sessions currently held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock_slots().len()
    }

    /// Upstream calls made so far (for tests: the bound is what this cache is for).
    pub fn upstream_calls(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn lock_slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn slot(&self, unique_id: &str) -> Option<Slot> {
        let mut slots = self.lock_slots();
        if let Some(slot) = slots.get(unique_id) {
            return Some(slot.clone());
        }
        if slots.len() >= self.capacity {
            // Keep slots someone is using (a fetch in flight holds the lock) or that were fetched lately.
            slots.retain(|_, slot| match slot.try_lock() {
                Ok(fetched) => fetched.as_ref().is_some_and(|f| f.at.elapsed() < IDLE),
                Err(_) => true,
            });
            if slots.len() >= self.capacity {
                return None;
            }
        }
        let slot = Slot::default();
        slots.insert(unique_id.to_owned(), slot.clone());
        Some(slot)
    }

    /// The session's state, at most `max_age` old.
    pub async fn get(&self, unique_id: &str) -> Lookup {
        let Some(slot) = self.slot(unique_id) else {
            tracing::warn!(capacity = self.capacity, "QR window cache full; answering unavailable");
            return Lookup::Unavailable;
        };
        let mut fetched = slot.lock().await;
        if let Some(f) = fetched.as_ref()
            && f.at.elapsed() < self.max_age
        {
            return f.lookup.clone();
        }
        let lookup = self.fetch(unique_id).await;
        *fetched = Some(Fetched { at: Instant::now(), lookup: lookup.clone() });
        lookup
    }

    async fn fetch(&self, unique_id: &str) -> Lookup {
        let Some(upstream) = &self.upstream else { return Lookup::Unavailable };
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let query = SessionsQuery { whatsapp_id: Some(unique_id.to_owned()), ..SessionsQuery::default() };
        match upstream.sessions_get(&query).await {
            Ok(page) => page
                .data
                .iter()
                .find(|s| s.get("unique_id").and_then(unique_id_text).as_deref() == Some(unique_id))
                .map_or(Lookup::Gone, |s| Lookup::Found(Arc::new(session_state(s)))),
            // Upstream refused this id for good (WhatsGate answers an unknown session with an error).
            Err(e) if e.class() == wgate_types::ErrorClass::Rejected => Lookup::Gone,
            Err(e) => {
                tracing::warn!(error = %e, "sessions-get for a QR window failed");
                Lookup::Unavailable
            }
        }
    }
}

fn session_state(s: &Value) -> SessionState {
    let text = |k: &str| s.get(k).and_then(Value::as_str).filter(|v| !v.is_empty()).map(str::to_owned);
    let qr = text("qr");
    let (qr_svg, qr_image) = match qr {
        Some(q) if q.starts_with("data:image/") => (None, Some(Arc::from(q))),
        Some(q) => (render_svg(&q).map(Arc::from), None),
        None => (None, None),
    };
    SessionState { status: text("status").unwrap_or_default(), qr_svg, qr_image, code: text("code") }
}

/// The QR of `text` as an `<svg>` element (no XML declaration: it goes inline into HTML).
pub fn render_svg(text: &str) -> Option<String> {
    let code = match qrcode::QrCode::new(text.as_bytes()) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, len = text.len(), "a QR value upstream gave cannot be drawn");
            return None;
        }
    };
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(256, 256)
        .dark_color(qrcode::render::svg::Color("#111b21"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build();
    let start = svg.find("<svg").unwrap_or(0);
    Some(svg[start..].to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_qr_text_becomes_an_inline_svg_and_an_image_url_stays_an_image() {
        let s = session_state(&json!({"status": "AUTH", "qr": "2@abc,def", "code": null}));
        assert_eq!(s.status, "AUTH");
        assert!(s.qr_svg.as_deref().is_some_and(|v| v.starts_with("<svg") && v.contains("<path")));
        let s = session_state(&json!({"status": "AUTH", "qr": "data:image/png;base64,AAAA"}));
        assert_eq!((s.qr_svg, s.qr_image.as_deref()), (None, Some("data:image/png;base64,AAAA")));
        let s = session_state(&json!({"status": "AUTH", "qr": null, "code": "QWER-1234"}));
        assert_eq!((s.qr_svg, s.code.as_deref()), (None, Some("QWER-1234")));
    }

    #[tokio::test]
    async fn without_an_upstream_every_lookup_is_unavailable_and_the_map_stays_bounded() {
        let cache = SessionCache::new(None, Duration::from_secs(1), 2);
        assert_eq!(cache.get("1").await, Lookup::Unavailable);
        assert_eq!(cache.get("2").await, Lookup::Unavailable);
        // Both slots were fetched just now: a third session does not fit and is not asked for.
        assert_eq!(cache.get("3").await, Lookup::Unavailable);
        assert_eq!(cache.len(), 2);
    }
}
