//! Per-tenant rate limits: one GCRA bucket per tenant for writes and one for reads at ten times the write quota
//! (governor, keyed by tenant), and the IETF draft headers `RateLimit-Policy` / `RateLimit` that describe them.
//!
//! With the shared store (`WGATE_RATE_LIMIT_STORE=redis`, the default) the buckets live in Redis, drawn by one
//! script on Redis's clock, so N API replicas together admit what one would; the in-process limiters then only
//! stand in while Redis does not answer. With `local` each process keeps its own buckets.
//!
//! Tenants with an override in the tenants file get their own limiter pair; everyone else shares the default
//! keyed limiters. Keys idle long enough to be indistinguishable from a fresh bucket are pruned on a timer, so
//! memory follows the number of recently active tenants, not all tenants ever seen.

use std::{collections::HashMap, num::NonZeroU32, sync::Arc, time::Duration};

use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::StateInformationMiddleware,
    state::keyed::DefaultKeyedStateStore,
};
use wgate_queue::{JobStore, QueueError, RateAnswer, RateDraw};
use wgate_types::TenantId;

use wgate_service::tenants::{TenantSettings, Tenants};

type Keyed = RateLimiter<TenantId, DefaultKeyedStateStore<TenantId>, DefaultClock, StateInformationMiddleware>;

/// Which bucket a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Write,
    Read,
}

impl Bucket {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Write => "write",
            Self::Read => "read",
        }
    }
}

/// Rate and burst of one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

impl Rate {
    fn quota(&self) -> Quota {
        let period = Duration::from_secs_f64(1.0 / self.per_second.max(1e-6));
        let burst = NonZeroU32::new(self.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Quota::with_period(period.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst)
    }

    fn reads(&self) -> Rate {
        Rate { per_second: self.per_second * 10.0, burst: self.burst.saturating_mul(10) }
    }

    /// The window (seconds) in which the whole burst is replenished: `w` of the policy.
    fn window_secs(&self) -> u64 {
        ((self.burst as f64 / self.per_second).ceil() as u64).max(1)
    }
}

/// What one check decided, with the header values to send either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// `RateLimit-Policy` value, e.g. `"write";q=20;w=2`.
    pub policy: String,
    /// `RateLimit` value, e.g. `"write";r=17;t=1`.
    pub current: String,
    /// Whole seconds before a retry can succeed (at least 1), when refused.
    pub retry_after: Option<u64>,
}

/// One rate's two in-process buckets (writes, and reads at ten times the rate) with their `RateLimit-Policy` values.
struct RateBuckets {
    write_rate: Rate,
    write: Keyed,
    read: Keyed,
    write_policy: String,
    read_policy: String,
}

impl RateBuckets {
    fn new(write_rate: Rate) -> Self {
        let read_rate = write_rate.reads();
        Self {
            write: RateLimiter::keyed(write_rate.quota()).with_middleware::<StateInformationMiddleware>(),
            read: RateLimiter::keyed(read_rate.quota()).with_middleware::<StateInformationMiddleware>(),
            write_policy: format!("\"write\";q={};w={}", write_rate.burst, write_rate.window_secs()),
            read_policy: format!("\"read\";q={};w={}", read_rate.burst, read_rate.window_secs()),
            write_rate,
        }
    }

    /// The rate and the policy header of one of this pair's buckets.
    fn rate_of(&self, bucket: Bucket) -> (Rate, &String) {
        match bucket {
            Bucket::Write => (self.write_rate, &self.write_policy),
            Bucket::Read => (self.write_rate.reads(), &self.read_policy),
        }
    }

    /// How to draw from this pair's `bucket` in Redis.
    fn draw(&self, bucket: Bucket) -> RateDraw<'static> {
        let (rate, _) = self.rate_of(bucket);
        RateDraw {
            bucket: bucket.name(),
            interval: Duration::from_secs_f64(1.0 / rate.per_second.max(1e-6)),
            burst: rate.burst.max(1),
        }
    }

    /// Draws from the tenant's bucket in Redis.
    async fn check_shared(&self, store: &JobStore, tenant: &TenantId, bucket: Bucket) -> Result<Decision, QueueError> {
        let draw = self.draw(bucket);
        let answer = store.rate_check(draw.bucket, tenant, draw.interval, draw.burst).await?;
        Ok(self.decision(bucket, answer))
    }

    /// The decision (and its headers) of a draw from the shared `bucket`.
    fn decision(&self, bucket: Bucket, answer: RateAnswer) -> Decision {
        let (_, policy) = self.rate_of(bucket);
        let name = bucket.name();
        let secs = |d: Duration| d.as_secs_f64().ceil() as u64;
        if answer.allowed {
            Decision {
                allowed: true,
                policy: policy.clone(),
                current: format!("\"{name}\";r={};t={}", answer.remaining, secs(answer.reset)),
                retry_after: None,
            }
        } else {
            let wait = secs(answer.retry_after).max(1);
            Decision {
                allowed: false,
                policy: policy.clone(),
                current: format!("\"{name}\";r=0;t={wait}"),
                retry_after: Some(wait),
            }
        }
    }

    fn check(&self, tenant: &TenantId, bucket: Bucket) -> Decision {
        let (limiter, policy, name) = match bucket {
            Bucket::Write => (&self.write, &self.write_policy, "write"),
            Bucket::Read => (&self.read, &self.read_policy, "read"),
        };
        match limiter.check_key(tenant) {
            Ok(snapshot) => {
                let quota = snapshot.quota();
                let remaining = snapshot.remaining_burst_capacity();
                let missing = quota.burst_size().get().saturating_sub(remaining);
                let reset = (quota.replenish_interval() * missing).as_secs_f64().ceil() as u64;
                Decision {
                    allowed: true,
                    policy: policy.clone(),
                    current: format!("\"{name}\";r={remaining};t={reset}"),
                    retry_after: None,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(limiter.clock().now());
                let secs = (wait.as_secs_f64().ceil() as u64).max(1);
                Decision {
                    allowed: false,
                    policy: policy.clone(),
                    current: format!("\"{name}\";r=0;t={secs}"),
                    retry_after: Some(secs),
                }
            }
        }
    }

    fn prune(&self) {
        self.write.retain_recent();
        self.write.shrink_to_fit();
        self.read.retain_recent();
        self.read.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.write.len() + self.read.len()
    }
}

/// The limiters of one process.
pub struct Limits {
    default: RateBuckets,
    overrides: std::sync::RwLock<HashMap<TenantId, Arc<RateBuckets>>>,
    /// The shared buckets in Redis, unless the store is `local`.
    shared: Option<JobStore>,
    /// After the shared store failed, this process's buckets answer until then, so that a dead Redis does not add
    /// its timeout to every request.
    shared_down_until: std::sync::Mutex<Option<std::time::Instant>>,
}

/// How long the in-process buckets stand in after the shared store failed.
const SHARED_RETRY_AFTER: Duration = Duration::from_secs(1);

impl Limits {
    pub fn new(default: Rate) -> Self {
        Self {
            default: RateBuckets::new(default),
            overrides: Default::default(),
            shared: None,
            shared_down_until: Default::default(),
        }
    }

    /// Keeps the buckets in Redis, shared by every API replica.
    pub fn shared(mut self, store: JobStore) -> Self {
        self.shared = Some(store);
        self
    }

    /// Draws one request: from the shared bucket in Redis, or (with the `local` store, or for a second after Redis
    /// did not answer) from this process's own. The request whose shared check failed gets the error: it answers
    /// 503 at once instead of spending a second timeout on the Redis call that follows, so an unreachable Redis is
    /// still a 503 within `WGATE_REDIS_TIMEOUT_MS`; the requests after it skip the shared check for a second.
    pub async fn decide(&self, tenant: &TenantId, bucket: Bucket) -> Result<Decision, QueueError> {
        let Some(store) = &self.shared else { return Ok(self.check(tenant, bucket)) };
        if self.shared_down() {
            return Ok(self.check(tenant, bucket));
        }
        let pair = self.override_of(tenant);
        let shared = pair.as_deref().unwrap_or(&self.default).check_shared(store, tenant, bucket).await;
        if let Err(e) = &shared {
            self.shared_failed(e);
        }
        shared
    }

    /// How the script that does a request's write should draw from the tenant's shared `bucket` in the same round
    /// trip; `None` when the request must be decided on its own first ([`decide`](Self::decide)): with the `local`
    /// store, or for a second after Redis did not answer.
    pub fn shared_draw(&self, tenant: &TenantId, bucket: Bucket) -> Option<RateDraw<'static>> {
        if self.shared.is_none() || self.shared_down() {
            return None;
        }
        Some(self.override_of(tenant).as_deref().unwrap_or(&self.default).draw(bucket))
    }

    /// The decision of a draw made by [`shared_draw`](Self::shared_draw)'s script.
    pub fn shared_decision(&self, tenant: &TenantId, bucket: Bucket, answer: RateAnswer) -> Decision {
        self.override_of(tenant).as_deref().unwrap_or(&self.default).decision(bucket, answer)
    }

    /// The shared store did not answer: this process's buckets stand in for a second.
    pub fn shared_failed(&self, e: &dyn std::fmt::Display) {
        tracing::warn!(error = %e, "the shared rate limit is unavailable; using this process's buckets for a second");
        *self.shared_down_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(std::time::Instant::now() + SHARED_RETRY_AFTER);
    }

    fn shared_down(&self) -> bool {
        self.shared_down_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|t| std::time::Instant::now() < t)
    }

    fn override_of(&self, tenant: &TenantId) -> Option<Arc<RateBuckets>> {
        self.overrides.read().ok().and_then(|m| m.get(tenant).cloned())
    }

    /// Applies the tenants file: tenants whose rate is unchanged keep their bucket state.
    pub fn apply(&self, tenants: &Tenants) {
        let mut map = match self.overrides.write() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let mut next = HashMap::new();
        for (tenant, o) in tenants.iter() {
            let Some(rate) = override_rate(o, self.default.write_rate) else { continue };
            let pair = match map.get(tenant) {
                Some(p) if p.write_rate == rate => p.clone(),
                _ => Arc::new(RateBuckets::new(rate)),
            };
            next.insert(tenant.clone(), pair);
        }
        *map = next;
    }

    pub fn check(&self, tenant: &TenantId, bucket: Bucket) -> Decision {
        self.override_of(tenant).as_deref().unwrap_or(&self.default).check(tenant, bucket)
    }

    /// Drops the state of keys idle long enough to be back at a full bucket.
    pub fn prune(&self) {
        self.default.prune();
        if let Ok(m) = self.overrides.read() {
            m.values().for_each(|p| p.prune());
        }
    }

    /// Live keys in the default limiters (reads and writes), for tests and benchmarks.
    pub fn tracked_keys(&self) -> usize {
        self.default.len()
    }
}

fn override_rate(o: &TenantSettings, default: Rate) -> Option<Rate> {
    if o.rate_per_second.is_none() && o.burst.is_none() {
        return None;
    }
    Some(Rate { per_second: o.rate_per_second.unwrap_or(default.per_second), burst: o.burst.unwrap_or(default.burst) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }

    #[test]
    fn a_burst_is_allowed_then_refused_with_a_retry_after_of_at_least_one_second() {
        let limits = Limits::new(Rate { per_second: 10.0, burst: 20 });
        let first = limits.check(&t("a"), Bucket::Write);
        assert_eq!(first.policy, "\"write\";q=20;w=2");
        assert_eq!(first.current, "\"write\";r=19;t=1");
        for _ in 0..19 {
            assert!(limits.check(&t("a"), Bucket::Write).allowed);
        }
        let refused = limits.check(&t("a"), Bucket::Write);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Some(1));
        assert!(limits.check(&t("b"), Bucket::Write).allowed, "another tenant is not limited");
        assert!(limits.check(&t("a"), Bucket::Read).allowed, "reads have their own bucket");
    }

    #[test]
    fn reads_get_ten_times_the_write_quota() {
        let limits = Limits::new(Rate { per_second: 1.0, burst: 2 });
        let d = limits.check(&t("a"), Bucket::Read);
        assert_eq!(d.policy, "\"read\";q=20;w=2");
        for _ in 0..19 {
            assert!(limits.check(&t("a"), Bucket::Read).allowed);
        }
        assert!(!limits.check(&t("a"), Bucket::Read).allowed);
    }

    #[test]
    fn a_hundred_thousand_idle_tenants_are_pruned_to_nothing() {
        let limits = Limits::new(Rate { per_second: 1_000_000.0, burst: 1 });
        for i in 0..100_000 {
            assert!(limits.check(&t(&format!("tenant-{i}")), Bucket::Write).allowed);
        }
        assert_eq!(limits.tracked_keys(), 100_000);
        std::thread::sleep(Duration::from_millis(5));
        limits.prune();
        assert_eq!(limits.tracked_keys(), 0);
    }

    #[test]
    fn idle_keys_are_pruned() {
        let limits = Limits::new(Rate { per_second: 1_000_000.0, burst: 1 });
        for i in 0..1000 {
            limits.check(&t(&format!("t{i}")), Bucket::Write);
        }
        std::thread::sleep(Duration::from_millis(5));
        limits.prune();
        assert_eq!(limits.tracked_keys(), 0);
    }
}
