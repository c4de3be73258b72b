//! One simulated WhatsApp session and its lifecycle, computed lazily from timestamps on every read.
//!
//! A session is PENDING for `init` after it is created (or after a failed authorization), then AUTH with a QR
//! (or pairing code) that changes every `rotate`, until the test scans it (READY). Nothing ticks in the
//! background: the status and the current QR are derived from the instant the present attempt began.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::{Serialize, Serializer};

/// The timings of the lifecycle.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// PENDING -> AUTH.
    pub init: Duration,
    /// How long one QR/code is shown.
    pub rotate: Duration,
}

/// The statuses WhatsGate reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Pending,
    Auth,
    Ready,
    Destroying,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Auth => "AUTH",
            Status::Ready => "READY",
            Status::Destroying => "DESTROYING",
        }
    }

    /// The Russian `status_name` WhatsGate sends alongside.
    pub fn name(self) -> &'static str {
        match self {
            Status::Pending => "Инициализация",
            Status::Auth => "Авторизация",
            Status::Ready => "Работает",
            Status::Destroying => "Удаление",
        }
    }
}

/// How the device is to be linked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthMode {
    Qr,
    /// Pairing by code for this phone number (digits only).
    Code(String),
}

/// Where a session is in its lifecycle.
#[derive(Clone, Debug)]
pub enum Phase {
    /// PENDING until `since + init`, then AUTH. `attempt` counts failed authorizations.
    Authorizing { since: Instant, attempt: u32 },
    /// The device is linked.
    Ready { wid: String },
}

/// The pushname every simulated device reports.
pub const PUSHNAME: &str = "Sim User";

#[derive(Debug)]
pub struct Session {
    pub id: u64,
    pub unique_id: u64,
    pub name: Arc<str>,
    pub callback: Option<String>,
    /// Creation time, unix seconds (UTC), shown as `date_add`.
    pub created: i64,
    pub auth: AuthMode,
    /// Seeds this session's QR values and codes.
    pub secret: u64,
    pub phase: Phase,
    /// Chats and media, for the messaging commands; boxed on first use, so a session that never messages
    /// costs one pointer.
    pub messaging: Option<Box<crate::messaging::Messaging>>,
}

/// The lifecycle state of a session at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub status: Status,
    pub qr: Option<String>,
    /// `Some` in CODE mode only (the value itself may be null).
    pub code: Option<Option<String>>,
    pub attempt: u32,
}

impl Session {
    pub fn snapshot(&self, now: Instant, timing: Timing) -> Snapshot {
        let code_mode = matches!(self.auth, AuthMode::Code(_));
        match &self.phase {
            Phase::Ready { .. } => {
                Snapshot { status: Status::Ready, qr: None, code: code_mode.then_some(None), attempt: self.attempt() }
            }
            Phase::Authorizing { since, attempt } => {
                let elapsed = now.saturating_duration_since(*since);
                if elapsed < timing.init {
                    // The pairing code is handed out at once (it comes in the create answer); a QR is not.
                    Snapshot {
                        status: Status::Pending,
                        qr: None,
                        code: code_mode.then(|| Some(pairing_code(self.secret, *attempt, 0))),
                        attempt: *attempt,
                    }
                } else {
                    let shown = (elapsed - timing.init).as_millis() / timing.rotate.as_millis().max(1);
                    let index = u64::try_from(shown).unwrap_or(u64::MAX);
                    if code_mode {
                        Snapshot {
                            status: Status::Auth,
                            qr: None,
                            code: Some(Some(pairing_code(self.secret, *attempt, index))),
                            attempt: *attempt,
                        }
                    } else {
                        Snapshot {
                            status: Status::Auth,
                            qr: Some(qr_value(self.secret, *attempt, index)),
                            code: None,
                            attempt: *attempt,
                        }
                    }
                }
            }
        }
    }

    pub fn messaging_mut(&mut self) -> &mut crate::messaging::Messaging {
        self.messaging.get_or_insert_default()
    }

    pub fn attempt(&self) -> u32 {
        match self.phase {
            Phase::Authorizing { attempt, .. } => attempt,
            Phase::Ready { .. } => 0,
        }
    }

    pub fn wid(&self) -> Option<&str> {
        match &self.phase {
            Phase::Ready { wid } => Some(wid),
            Phase::Authorizing { .. } => None,
        }
    }

    /// The session object as WhatsGate returns it, at `now`.
    pub fn view<'a>(&'a self, now: Instant, timing: Timing, public_url: &'a str) -> SessionView<'a> {
        let snapshot = self.snapshot(now, timing);
        self.view_of(snapshot, public_url)
    }

    /// The session object with the given state (used for the DESTROYING answer of session-delete).
    pub fn view_of<'a>(&'a self, snapshot: Snapshot, public_url: &'a str) -> SessionView<'a> {
        let ready = snapshot.status == Status::Ready;
        SessionView {
            id: self.id,
            name: &self.name,
            unique_id: UniqueId(self.unique_id),
            status: snapshot.status.as_str(),
            callback: self.callback.as_deref(),
            date_add: crate::clock::Date(self.created),
            qr: snapshot.qr,
            code: snapshot.code,
            status_name: snapshot.status.name(),
            pushname: ready.then_some(PUSHNAME),
            wid: self.wid(),
            qr_link: QrLink { public_url, unique_id: self.unique_id },
        }
    }
}

/// A session as serialized in every answer, in WhatsGate's key order.
#[derive(Serialize, Debug)]
pub struct SessionView<'a> {
    pub id: u64,
    pub name: &'a str,
    pub unique_id: UniqueId,
    pub status: &'static str,
    pub callback: Option<&'a str>,
    pub date_add: crate::clock::Date,
    pub qr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<Option<String>>,
    pub status_name: &'static str,
    pub pushname: Option<&'static str>,
    pub wid: Option<&'a str>,
    pub qr_link: QrLink<'a>,
}

/// A 13-digit session id, serialized as a string without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UniqueId(pub u64);

impl fmt::Display for UniqueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:013}", self.0)
    }
}

impl Serialize for UniqueId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// `<public-url>/qr/<unique_id>`, serialized without allocating.
#[derive(Clone, Copy, Debug)]
pub struct QrLink<'a> {
    pub public_url: &'a str,
    pub unique_id: u64,
}

impl fmt::Display for QrLink<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/qr/{}", self.public_url, UniqueId(self.unique_id))
    }
}

impl Serialize for QrLink<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Parses a `WhatsappID` as the simulator issues them: exactly 13 digits.
pub fn parse_unique_id(text: &str) -> Option<u64> {
    if text.len() == 13 && text.bytes().all(|b| b.is_ascii_digit()) { text.parse().ok() } else { None }
}

/// SplitMix64: a tiny, good mixer; QR values need to look random and be reproducible, nothing more.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn mix(secret: u64, attempt: u32, index: u64) -> u64 {
    let mut state = secret ^ (u64::from(attempt) << 48) ^ index.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    splitmix64(&mut state)
}

/// The QR payload shown for `(attempt, index)`: opaque, shaped like WhatsApp's (`2@` + base64).
pub fn qr_value(secret: u64, attempt: u32, index: u64) -> String {
    let mut state = mix(secret, attempt, index);
    let mut bytes = [0u8; 48];
    for chunk in bytes.chunks_mut(8) {
        chunk.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
    }
    let engine = base64::engine::general_purpose::STANDARD;
    format!("2@{},{},{}", engine.encode(&bytes[..24]), engine.encode(&bytes[24..40]), engine.encode(&bytes[40..]))
}

/// The pairing code shown for `(attempt, index)`, e.g. `QWER-1234`.
pub fn pairing_code(secret: u64, attempt: u32, index: u64) -> String {
    const LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut state = mix(secret, attempt, index) ^ 0x5A5A_5A5A;
    let mut value = splitmix64(&mut state);
    let mut code = String::with_capacity(9);
    for _ in 0..4 {
        code.push(char::from(LETTERS[(value % LETTERS.len() as u64) as usize]));
        value /= LETTERS.len() as u64;
    }
    code.push('-');
    for _ in 0..4 {
        code.push(char::from(b'0' + (value % 10) as u8));
        value /= 10;
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(auth: AuthMode, since: Instant) -> Session {
        Session {
            id: 1,
            unique_id: 1_234_567_890_123,
            name: Arc::from("n"),
            callback: None,
            created: 1_665_516_614,
            auth,
            secret: 42,
            phase: Phase::Authorizing { since, attempt: 0 },
            messaging: None,
        }
    }

    const TIMING: Timing = Timing { init: Duration::from_millis(100), rotate: Duration::from_millis(1000) };

    #[test]
    fn a_new_qr_session_is_pending_then_shows_a_qr_that_rotates() {
        let t0 = Instant::now();
        let s = session(AuthMode::Qr, t0);
        let pending = s.snapshot(t0 + Duration::from_millis(99), TIMING);
        assert_eq!((pending.status, pending.qr, pending.code), (Status::Pending, None, None));
        let first = s.snapshot(t0 + Duration::from_millis(100), TIMING);
        let same = s.snapshot(t0 + Duration::from_millis(1099), TIMING);
        let next = s.snapshot(t0 + Duration::from_millis(1100), TIMING);
        assert_eq!(first.status, Status::Auth);
        assert!(first.qr.as_deref().is_some_and(|q| q.starts_with("2@")));
        assert_eq!(first.qr, same.qr);
        assert_ne!(first.qr, next.qr);
    }

    #[test]
    fn a_code_session_has_a_pairing_code_from_the_start() {
        let t0 = Instant::now();
        let s = session(AuthMode::Code("79990001122".into()), t0);
        let pending = s.snapshot(t0, TIMING);
        let code = pending.code.flatten().expect("a code");
        assert_eq!(code.len(), 9);
        assert_eq!(&code[4..5], "-");
        assert!(code[..4].bytes().all(|b| b.is_ascii_uppercase()));
        assert!(code[5..].bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(pending.qr, None);
    }

    #[test]
    fn unique_ids_are_thirteen_digits() {
        assert_eq!(UniqueId(1).to_string(), "0000000000001");
        assert_eq!(parse_unique_id("6345454545454"), Some(6_345_454_545_454));
        assert_eq!(parse_unique_id("634545454545"), None);
        assert_eq!(parse_unique_id("634545454545x"), None);
    }
}
