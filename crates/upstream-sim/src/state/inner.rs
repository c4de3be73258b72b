//! The sessions table and the seeded generators, under the simulator's one lock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Fault, NewSession, SessionError};
use crate::config::FaultSettings;
use crate::session::{Phase, Session, Timing};

pub(super) struct Inner {
    pub(super) seed: u64,
    /// Decides faults: one draw per session-create call (plus one more for an ambiguous one).
    pub(super) fault_rng: StdRng,
    /// Draws ids, QR secrets and device numbers; kept apart so fault outcomes depend only on the call count.
    pub(super) id_rng: StdRng,
    pub(super) next_id: u64,
    pub(super) sessions: BTreeMap<u64, Session>,
    pub(super) by_unique: HashMap<u64, u64>,
    pub(super) by_name: HashMap<Arc<str>, BTreeSet<u64>>,
    pub(super) faults: FaultSettings,
    pub(super) create_calls: u64,
    pub(super) sessions_created: u64,
    pub(super) created_by_name: HashMap<Arc<str>, u64>,
    pub(super) sends: u64,
    /// Accepted sends per session (deleted sessions included, until a reset).
    pub(super) sends_by_session: HashMap<u64, u64>,
}

const ID_STREAM: u64 = 0x1D5E_ED00_5EED_1D00;

impl Inner {
    pub(super) fn new(seed: u64, faults: FaultSettings) -> Self {
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
    pub(super) fn ready_session(
        &mut self,
        unique_id: u64,
        timing: Timing,
    ) -> Result<(&mut Session, String), SessionError> {
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

    pub(super) fn draw_fault(&mut self) -> Option<Fault> {
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

    pub(super) fn session_mut(&mut self, unique_id: u64) -> Result<&mut Session, SessionError> {
        let id = self.by_unique.get(&unique_id).ok_or(SessionError::NotFound)?;
        self.sessions.get_mut(id).ok_or(SessionError::NotFound)
    }

    pub(super) fn session(&self, unique_id: u64) -> Result<&Session, SessionError> {
        let id = self.by_unique.get(&unique_id).ok_or(SessionError::NotFound)?;
        self.sessions.get(id).ok_or(SessionError::NotFound)
    }

    pub(super) fn insert(&mut self, new: NewSession, now: Instant) -> u64 {
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

    pub(super) fn remove(&mut self, unique_id: u64) -> Option<Session> {
        let id = self.by_unique.remove(&unique_id)?;
        let session = self.sessions.remove(&id)?;
        self.unindex_name(&session.name, id);
        Some(session)
    }

    pub(super) fn unindex_name(&mut self, name: &str, id: u64) {
        if let Some(ids) = self.by_name.get_mut(name) {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_name.remove(name);
            }
        }
    }
}
