//! The Redis key layout (mirrored in `docs/ARCHITECTURE.md`).
//!
//! Keys are spread over `WGATE_QUEUE_PARTITIONS` hash tags ([`Layout`]): everything of one tenant lives under its
//! partition's tag, and each partition has its own queues, so a script only ever touches keys of one slot and a
//! Redis Cluster's primaries share the work. With one partition the tag is `{<namespace>}`, the names every
//! deployment had before partitions existed.

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

/// Builds every key of one partition: `{<tag>}:...` (with one partition the tag is the namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

/// Most partitions a deployment may have (`WGATE_QUEUE_PARTITIONS`).
pub const MAX_PARTITIONS: u16 = 256;

/// Hash slots of a Redis Cluster.
const SLOTS: u32 = 16384;

/// The Redis Cluster hash slot of a key (CRC16 of its hash tag, or of the whole key without one).
pub fn key_slot(key: &str) -> u16 {
    let b = key.as_bytes();
    let hashed = match b.iter().position(|&c| c == b'{') {
        Some(open) => match b[open + 1..].iter().position(|&c| c == b'}') {
            Some(len) if len > 0 => &b[open + 1..open + 1 + len],
            _ => b,
        },
        None => b,
    };
    // The remainder of a division by 16384 always fits.
    u16::try_from(u32::from(crc16::State::<crc16::XMODEM>::calculate(hashed)) % SLOTS).unwrap_or(0)
}

/// FNV-1a: a stable hash (the same in every process and every version) of tenant ids and tokens.
fn stable_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The key layout of one namespace split into partitions. A tenant's partition is a stable hash of its id; a
/// capability token's is a stable hash of the token (tokens are minted to land in their tenant's partition), so
/// an unauthenticated `/hooks/<token>` or `/qr/<token>` finds its records without a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// `{<namespace>}`: keys of the whole deployment, not of a tenant (the webhook signing key).
    base: Keys,
    parts: Vec<Keys>,
}

impl Layout {
    /// `partitions` is clamped to `1..=`[`MAX_PARTITIONS`]. Partition `p`'s tag is `{<namespace>}` when there is
    /// one, else `{<namespace>:<n>}` with the smallest `n` whose slot lies in `[p*16384/P, (p+1)*16384/P)`: the
    /// partitions spread evenly over any cluster's slot ranges.
    pub fn new(namespace: &str, partitions: u16) -> Self {
        let count = u32::from(partitions.clamp(1, MAX_PARTITIONS));
        let base = Keys::new(namespace);
        if count == 1 {
            return Self { parts: vec![base.clone()], base };
        }
        let mut parts = Vec::with_capacity(count as usize);
        let mut n = 0u64;
        for p in 0..count {
            let range = (p * SLOTS / count)..((p + 1) * SLOTS / count);
            loop {
                let tag = format!("{namespace}:{n}");
                n += 1;
                if range.contains(&u32::from(key_slot(&tag))) {
                    parts.push(Keys { prefix: format!("{{{tag}}}:") });
                    break;
                }
            }
            n = 0;
        }
        Self { base, parts }
    }

    /// How many partitions there are.
    pub fn count(&self) -> usize {
        self.parts.len()
    }

    /// Partition `p`'s keys (`p` is taken modulo the count).
    pub fn part(&self, p: usize) -> &Keys {
        &self.parts[p % self.parts.len()]
    }

    /// Every partition's keys, partition 0 first.
    pub fn all(&self) -> &[Keys] {
        &self.parts
    }

    /// Keys of the whole deployment (`{<namespace>}:...`), whatever the partitions.
    pub fn base(&self) -> &Keys {
        &self.base
    }

    fn bucket(&self, bytes: &[u8]) -> usize {
        match self.parts.len() {
            1 => 0,
            n => usize::try_from(stable_hash(bytes) % n as u64).unwrap_or(0),
        }
    }

    /// The partition of a tenant.
    pub fn of_tenant(&self, tenant: &TenantId) -> usize {
        self.bucket(tenant.as_str().as_bytes())
    }

    /// The partition of a capability token (hook or QR).
    pub fn of_token(&self, token: &str) -> usize {
        self.bucket(token.as_bytes())
    }

    /// The keys of a tenant's partition.
    pub fn tenant(&self, tenant: &TenantId) -> &Keys {
        self.part(self.of_tenant(tenant))
    }

    /// The keys of a token's partition.
    pub fn token(&self, token: &str) -> &Keys {
        self.part(self.of_token(token))
    }

    /// A capability token of the tenant's job `job` (its relay `/hooks/<token>`, its QR window `/qr/<token>`): the
    /// job's id, where the capability's state is kept, and 128 random bits, URL-safe base64 without padding, drawn
    /// until the token lands in the tenant's partition. Each call draws its own bits: knowing one of a job's tokens
    /// tells nothing of the other.
    pub fn mint_job_token(&self, tenant: &TenantId, job: JobId) -> String {
        use base64::Engine;
        self.mint_token(tenant, || {
            format!("{job}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>()))
        })
    }

    /// A token from `draw` that lands in the tenant's partition: drawn again until it does (`count` draws are
    /// expected; with one partition the first one does).
    pub fn mint_token(&self, tenant: &TenantId, mut draw: impl FnMut() -> String) -> String {
        let want = self.of_tenant(tenant);
        loop {
            let token = draw();
            if self.of_token(&token) == want {
                return token;
            }
        }
    }
}

impl Keys {
    pub fn new(namespace: &str) -> Self {
        Self { prefix: format!("{{{namespace}}}:") }
    }

    /// `{tag}:` — scripts build keys of records they only learn about inside Redis from it (same hash slot).
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

    /// The own record of a hook token of an earlier release (`{tenant, job, callback, gone}`). A token of this
    /// release has none: see [`Keys::hook_record`].
    pub fn hook(&self, token: &str) -> String {
        format!("{}hook:{token}", self.prefix)
    }

    /// The record that holds a hook token's relay target (`tenant`, `callback`, the 410 stop `gone`): its job's
    /// record for a token of this release, which names its job; the token's own hash for one of an earlier
    /// release.
    pub fn hook_record(&self, token: &str) -> String {
        match wgate_types::token_job(token) {
            Some(job) => self.job(job),
            None => self.hook(token),
        }
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

    /// The partition of a capability token minted before partitions (kept in the base keys by `wgate migrate`):
    /// its own hash need not lead to its tenant's partition.
    pub fn token_partition(&self, token: &str) -> String {
        format!("{}token-partition:{token}", self.prefix)
    }

    /// Set by `wgate migrate` in the namespace it wrote (the source it copied), so it does not run twice.
    pub fn migrated_marker(&self) -> String {
        format!("{}migrated-from", self.prefix)
    }

    /// The pub/sub channel terminal job ids of this partition are published on (a shard channel on a cluster).
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }

    #[test]
    fn one_partition_keeps_every_key_name_of_a_deployment_without_partitions() {
        let layout = Layout::new("wgate", 1);
        let (k, t) = (layout.tenant(&tenant("acme")), tenant("acme"));
        let id: JobId = "01ARZ3NDEKTSV4RRFFQ69G5FAV".parse().unwrap();
        assert_eq!(k.prefix(), "{wgate}:");
        assert_eq!(k.job(id), "{wgate}:job:01ARZ3NDEKTSV4RRFFQ69G5FAV");
        assert_eq!(k.stream(JobKind::SessionCreate), "{wgate}:queue:session-create");
        assert_eq!(k.queue_stream(Queue::Webhook), "{wgate}:queue:webhook");
        assert_eq!(k.scheduled(), "{wgate}:scheduled");
        assert_eq!(k.queue_dead(Queue::Webhook), "{wgate}:dead:webhook");
        assert_eq!(k.tenant_pending(&t), "{wgate}:tenant:acme:pending");
        assert_eq!(k.rate("write", &t), "{wgate}:rate:write:acme");
        assert_eq!(k.done_channel(), "{wgate}:done");
        assert_eq!(layout.token("anything").hook("x"), "{wgate}:hook:x");
        assert_eq!(layout.base().webhook_signing_key(), "{wgate}:webhook:signing-key");
        assert_eq!(Keys::new("wgate"), *k);
    }

    #[test]
    fn the_slot_of_a_key_is_the_one_redis_computes() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(key_slot("123456789"), 0x31C3);
        assert_eq!(key_slot("foo"), 12182);
        assert_eq!(key_slot("{foo}:bar"), 12182);
        assert_eq!(key_slot("{}foo"), key_slot("{}foo"));
        assert_eq!(key_slot("bar"), 5061);
    }

    #[test]
    fn partition_slots_fall_evenly_over_the_slot_space() {
        for count in [2u16, 3, 16, 100, 256] {
            let layout = Layout::new("wgate", count);
            assert_eq!(layout.count(), usize::from(count));
            for (p, keys) in layout.all().iter().enumerate() {
                let slot = u32::from(key_slot(keys.prefix()));
                let (p, n) = (p as u32, u32::from(count));
                assert!((p * SLOTS / n..(p + 1) * SLOTS / n).contains(&slot), "{count} partitions: {p} at {slot}");
            }
        }
        assert_eq!(Layout::new("wgate", 0).count(), 1);
        assert_eq!(Layout::new("wgate", 1000).count(), usize::from(MAX_PARTITIONS));
    }

    #[test]
    fn a_minted_token_lands_in_its_tenants_partition() {
        let layout = Layout::new("ns", 16);
        let mut seen = std::collections::HashSet::new();
        for i in 0..200 {
            let t = tenant(&format!("tenant-{i}"));
            seen.insert(layout.of_tenant(&t));
            let mut n = 0u32;
            let token = layout.mint_token(&t, || {
                n += 1;
                format!("{:0>43}", format!("{i}x{n}"))
            });
            assert!(wgate_types::is_capability_token(&token), "{token}");
            assert_eq!(layout.of_token(&token), layout.of_tenant(&t), "{token}");
            assert_eq!(layout.token(&token), layout.tenant(&t));
        }
        assert_eq!(seen.len(), 16, "200 tenants use every one of 16 partitions");
    }

    #[test]
    fn a_job_token_names_its_job_lands_in_its_tenants_partition_and_is_drawn_afresh() {
        let layout = Layout::new("ns", 16);
        let t = tenant("acme");
        let id = JobId::new();
        let (hook, qr) = (layout.mint_job_token(&t, id), layout.mint_job_token(&t, id));
        assert_ne!(hook, qr);
        for token in [&hook, &qr] {
            assert_eq!(wgate_types::token_job(token), Some(id), "{token}");
            assert_eq!(layout.of_token(token), layout.of_tenant(&t), "{token}");
            assert_eq!(layout.token(token).hook_record(token), layout.tenant(&t).job(id));
        }
        // A token of an earlier release keeps its own hash.
        let old = "A".repeat(43);
        assert_eq!(layout.part(0).hook_record(&old), layout.part(0).hook(&old));
    }

    #[test]
    fn every_key_of_one_tenant_shares_one_slot() {
        let layout = Layout::new("ns", 16);
        let t = tenant("acme");
        let k = layout.tenant(&t);
        let id = JobId::new();
        let token = layout.mint_token(&t, || format!("{:0>43}", rand::random::<u32>()));
        let names = [
            k.job(id),
            layout.token(&token).hook(&token),
            layout.token(&token).qr(&token),
            k.idempotency(&t, "key"),
            k.tenant_pending(&t),
            k.tenant_sessions(&t),
            k.rate("write", &t),
            k.send_idempotency(&t, "key"),
            k.send_pace(&t, "s1"),
            k.send_pace_next(&t, "s1"),
            k.session("s1"),
            k.delivery(id),
            k.event_seen(&token, "ev"),
            k.tenant_deliveries(&t),
            k.stream(JobKind::SessionCreate),
            k.scheduled(),
            k.dead(),
            k.queue_stream(Queue::Webhook),
            k.queue_scheduled(Queue::Webhook),
            k.queue_dead_letters(Queue::Webhook),
            k.done_channel(),
        ];
        let slot = key_slot(&names[0]);
        for n in &names {
            assert_eq!(key_slot(n), slot, "{n}");
        }
        assert_ne!(key_slot(&layout.part(layout.of_tenant(&t) + 1).job(id)), slot);
    }
}
