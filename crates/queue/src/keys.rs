//! The Redis key layout (mirrored in `docs/ARCHITECTURE.md`).

use sha2::{Digest, Sha256};
use wgate_types::{JobId, JobKind, TenantId};

/// The consumer group every worker reads the job stream through.
pub const GROUP: &str = "workers";

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
        format!("{}queue:{}", self.prefix, kind.as_str())
    }

    pub fn scheduled(&self) -> String {
        format!("{}scheduled", self.prefix)
    }

    pub fn dead(&self) -> String {
        format!("{}dead", self.prefix)
    }

    /// Stream entries that could not be run, with their raw fields (capped, expiring; see `dead_letter.lua`).
    pub fn dead_letters(&self, kind: JobKind) -> String {
        format!("{}dead-letters:{}", self.prefix, kind.as_str())
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
        format!("{}idem:{}:{}", self.prefix, tenant.as_str(), sha256_hex(key.as_bytes()))
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

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
