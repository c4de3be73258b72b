//! A tenant's sessions as the API's session commands need them: which upstream sessions the tenant owns (the set
//! the worker fills when a create job succeeds) and where a session's webhooks are relayed (the tenant's own
//! callback in the relay target, its create job's record, changed by `set-hook`). Ownership itself is read with `JobStore::session_owner` and
//! dropped with `JobStore::forget_session`.

use std::sync::LazyLock;

use redis::Script;
use wgate_types::{CallbackUrl, TenantId};

use crate::{JobStore, QueueError};

/// Changes the relay target of an existing hook only: a missing one is not created half-filled.
/// Setting a callback also lifts the stop a 410 Gone put on deliveries to the hook (`gone`).
/// KEYS: 1 the relay target (the job's record, or the hook hash of a token of an earlier release); ARGV: 1 callback ('' = none). Answers 1 when the hook exists, else 0.
static SET_HOOK_CALLBACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end \
         redis.call('HSET', KEYS[1], 'callback', ARGV[1]) redis.call('HDEL', KEYS[1], 'gone') return 1",
    )
});

impl JobStore {
    /// The `unique_id`s of the tenant's live sessions (`{ns}:tenant:<tenant>:sessions`), sorted, so that callers
    /// see a stable order whatever Redis's set order is.
    pub async fn tenant_sessions(&self, tenant: &TenantId) -> Result<Vec<String>, QueueError> {
        let key = self.layout().tenant(tenant).tenant_sessions(tenant);
        let mut ids: Vec<String> =
            self.redis().query_again("SMEMBERS tenant sessions", redis::cmd("SMEMBERS").arg(&key)).await?;
        ids.sort_unstable();
        Ok(ids)
    }

    /// Points the relay of `hook_token` at the tenant's new callback (`None`: webhooks are acknowledged and
    /// dropped). WhatsGate keeps the relay URL; only where the gateway forwards changes. Answers `false` when the
    /// hook is unknown (expired, or a malformed token). The hook is the session's owner's (a token minted before
    /// partitions need not hash to its tenant's partition, so the tenant says where it is).
    pub async fn set_hook_callback(
        &self,
        tenant: &TenantId,
        hook_token: &str,
        callback: Option<&CallbackUrl>,
    ) -> Result<bool, QueueError> {
        if wgate_types::token_job(hook_token).is_none() && !wgate_types::is_capability_token(hook_token) {
            return Ok(false);
        }
        let mut inv = SET_HOOK_CALLBACK.prepare_invoke();
        inv.key(self.layout().tenant(tenant).hook_record(hook_token)).arg(callback.map_or("", CallbackUrl::as_str));
        let set: i64 =
            self.redis().call("set hook callback", |mut c| async move { inv.invoke_async(&mut c).await }).await?;
        Ok(set == 1)
    }
}
