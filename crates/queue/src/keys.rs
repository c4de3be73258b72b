//! The Redis key layout (mirrored in `docs/ARCHITECTURE.md`).

use sha2::{Digest, Sha256};
use wgate_types::{JobId, JobKind, TenantId};

/// The consumer group every worker reads the job stream through.
pub const GROUP: &str = "workers";

/// A queue of the backend: each has its own stream, scheduled set, dead set and dead-letter list, and the same
/// machinery (fetcher, takeover, promotion, trimming, dead letters) runs each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Queue {
    /// `session-create` jobs.
    #[default]
    SessionCreate,
    /// Webhook deliveries to tenants.
    Webhook,
}

impl Queue {
    /// The name in key names and in the `queue` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SessionCreate => "session-create",
            Self::Webhook => "webhook",
        }
    }
}

impl From<JobKind> for Queue {
    fn from(kind: JobKind) -> Self {
        match kind {
            JobKind::SessionCreate => Self::SessionCreate,
        }
    }
}

/// Builds every key of one namespace: `{<namespace>}:...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(namespace: &str) -> Self {
        Self { prefix: format!("{{{namespace}}}:") }
    }

    /// `{ns}:` — scripts build keys of records they only learn about inside Redis from it (same hash slot).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn job(&self, id: JobId) -> String {
        format!("{}job:{id}", self.prefix)
    }

    pub fn stream(&self, kind: JobKind) -> String {
        self.queue_stream(kind.into())
    }

    pub fn scheduled(&self) -> String {
        self.queue_scheduled(Queue::SessionCreate)
    }

    pub fn dead(&self) -> String {
        self.queue_dead(Queue::SessionCreate)
    }

    /// Stream entries that could not be run, with their raw fields (capped, expiring; see `dead_letter.lua`).
    pub fn dead_letters(&self, kind: JobKind) -> String {
        self.queue_dead_letters(kind.into())
    }

    /// A queue's stream (consumer group [`GROUP`]); entry field `job` = the record's id.
    pub fn queue_stream(&self, q: Queue) -> String {
        format!("{}queue:{}", self.prefix, q.as_str())
    }

    /// A queue's retries waiting for their time (score = due ms).
    pub fn queue_scheduled(&self, q: Queue) -> String {
        match q {
            Queue::SessionCreate => format!("{}scheduled", self.prefix),
            other => format!("{}scheduled:{}", self.prefix, other.as_str()),
        }
    }

    /// A queue's dead records (score = ms they died), kept for inspection and replay.
    pub fn queue_dead(&self, q: Queue) -> String {
        match q {
            Queue::SessionCreate => format!("{}dead", self.prefix),
            other => format!("{}dead:{}", self.prefix, other.as_str()),
        }
    }

    pub fn queue_dead_letters(&self, q: Queue) -> String {
        format!("{}dead-letters:{}", self.prefix, q.as_str())
    }

    /// A webhook event as received and its delivery state (hash, expires with the retention).
    pub fn delivery(&self, id: JobId) -> String {
        format!("{}delivery:{id}", self.prefix)
    }

    /// WhatsGate's event id seen on a hook token -> the delivery that stored it (WhatsGate's redeliveries). The
    /// event id is hashed: it is upstream's text, of any length.
    pub fn event_seen(&self, hook_token: &str, event_id: &str) -> String {
        let h = sha256_hex(event_id.as_bytes());
        format!("{}event:{hook_token}:{}", self.prefix, &h[..32])
    }

    /// A tenant's stored events (sorted set of delivery ids, score = received ms), for listing and events-get.
    pub fn tenant_deliveries(&self, tenant: &TenantId) -> String {
        format!("{}tenant:{}:deliveries", self.prefix, tenant.as_str())
    }

    /// The random key tenants' webhook secrets are derived from when no signing key is configured.
    pub fn webhook_signing_key(&self) -> String {
        format!("{}webhook:signing-key", self.prefix)
    }

    pub fn hook(&self, token: &str) -> String {
        format!("{}hook:{token}", self.prefix)
    }

    /// The QR window's token -> `{tenant, job}`; written with the job, expires with the job TTL.
    pub fn qr(&self, token: &str) -> String {
        format!("{}qr:{token}", self.prefix)
    }

    /// The key of an `Idempotency-Key`: hashed, so any printable key makes a short, safe Redis key.
    pub fn idempotency(&self, tenant: &TenantId, key: &str) -> String {
        format!("{}idem:{}:{}", self.prefix, tenant.as_str(), idempotency_id(key))
    }

    pub fn tenant_pending(&self, tenant: &TenantId) -> String {
        format!("{}tenant:{}:pending", self.prefix, tenant.as_str())
    }

    pub fn tenant_sessions(&self, tenant: &TenantId) -> String {
        format!("{}tenant:{}:sessions", self.prefix, tenant.as_str())
    }

    /// A tenant's rate-limit bucket (`write` or `read`), shared by every API replica.
    pub fn rate(&self, bucket: &str, tenant: &TenantId) -> String {
        format!("{}rate:{bucket}:{}", self.prefix, tenant.as_str())
    }

    /// The record of a send's `Idempotency-Key` (hashed, as for session-create, in a space of its own).
    pub fn send_idempotency(&self, tenant: &TenantId, key: &str) -> String {
        format!("{}send-idem:{}:{}", self.prefix, tenant.as_str(), sha256_hex(key.as_bytes()))
    }

    /// The sends of one of a tenant's sessions within the last minute, which pace its next send.
    pub fn send_pace(&self, tenant: &TenantId, unique_id: &str) -> String {
        format!("{}pace:{}:{unique_id}", self.prefix, tenant.as_str())
    }

    /// When that session's next send may go (and a sequence that keeps its sends apart).
    pub fn send_pace_next(&self, tenant: &TenantId, unique_id: &str) -> String {
        format!("{}pace:{}:{unique_id}:next", self.prefix, tenant.as_str())
    }

    pub fn session(&self, unique_id: &str) -> String {
        format!("{}session:{unique_id}", self.prefix)
    }

    /// The pub/sub channel terminal job ids are published on.
    pub fn done_channel(&self) -> String {
        format!("{}done", self.prefix)
    }
}

/// The last part of an `Idempotency-Key`'s Redis key (see [`Keys::idempotency`]).
pub(crate) fn idempotency_id(key: &str) -> String {
    sha256_hex(key.as_bytes())
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
