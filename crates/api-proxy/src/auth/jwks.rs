//! The JWKS: fetched over HTTP (bounded, no redirect), cached by `kid`, refetched on demand.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, AlgorithmFamily, DecodingKey,
    jwk::{AlgorithmParameters, JwkSet},
};

use super::{
    JWKS_MAX_BYTES,
    keys::{NamedKey, check_key, token_digest_bytes},
};

/// The JWKS cache: keys by `kid`, refetched on an unknown `kid` at most once per cooldown, one fetch at a time.
pub(super) struct Jwks {
    pub(super) url: String,
    client: reqwest::Client,
    cooldown: Duration,
    keys: RwLock<Arc<Vec<NamedKey>>>,
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl Jwks {
    pub(super) fn new(url: String, cooldown_ms: u64) -> Self {
        // reqwest is built without a default TLS provider and panics without one (as `Client::default` would).
        wgate_service::init_crypto();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .connect_timeout(Duration::from_secs(2))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            url,
            client,
            cooldown: Duration::from_millis(cooldown_ms),
            keys: RwLock::new(Arc::new(Vec::new())),
            last_fetch: tokio::sync::Mutex::new(None),
        }
    }

    pub(super) fn snapshot(&self) -> Arc<Vec<NamedKey>> {
        self.keys.read().map(|k| k.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    pub(super) fn cached(&self, kid: &str) -> Option<NamedKey> {
        self.snapshot().iter().find(|k| k.kid.as_deref() == Some(kid)).cloned()
    }

    pub(super) async fn find(&self, kid: &str) -> Option<NamedKey> {
        if let Some(k) = self.cached(kid) {
            return Some(k);
        }
        // Single flight: whoever holds the lock fetches; the others then find the key in the cache.
        let mut last = self.last_fetch.lock().await;
        if let Some(k) = self.cached(kid) {
            return Some(k);
        }
        if last.is_some_and(|t| t.elapsed() < self.cooldown) {
            return None;
        }
        *last = Some(Instant::now());
        if let Err(e) = self.fetch_and_store().await {
            tracing::warn!(error = %e, url = %self.url, "refetching the JWKS failed");
        }
        drop(last);
        self.cached(kid)
    }

    /// The fetch at start; it does not count against the cooldown of refetches on unknown `kid`s.
    pub(super) async fn refresh(&self) -> anyhow::Result<()> {
        let _single = self.last_fetch.lock().await;
        self.fetch_and_store().await
    }

    async fn fetch_and_store(&self) -> anyhow::Result<()> {
        let mut answer = self.client.get(&self.url).send().await.map_err(|e| anyhow::anyhow!(e.without_url()))?;
        if !answer.status().is_success() {
            // A redirect is an answer like any other non-2xx: its target is never fetched.
            anyhow::bail!("the JWKS URL answered {}", answer.status());
        }
        if answer.content_length().is_some_and(|n| n > JWKS_MAX_BYTES as u64) {
            anyhow::bail!("the JWKS is larger than {JWKS_MAX_BYTES} bytes");
        }
        let mut body = Vec::new();
        while let Some(chunk) = answer.chunk().await.map_err(|e| anyhow::anyhow!(e.without_url()))? {
            if body.len() + chunk.len() > JWKS_MAX_BYTES {
                anyhow::bail!("the JWKS is larger than {JWKS_MAX_BYTES} bytes");
            }
            body.extend_from_slice(&chunk);
        }
        let set: JwkSet = serde_json::from_slice(&body)?;
        let mut keys = Vec::with_capacity(set.keys.len());
        for jwk in &set.keys {
            let family = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => AlgorithmFamily::Rsa,
                AlgorithmParameters::EllipticCurve(_) => AlgorithmFamily::Ec,
                AlgorithmParameters::OctetKeyPair(_) => AlgorithmFamily::Ed,
                // Shared secrets do not belong in a published key set; unknown key types are skipped.
                _ => continue,
            };
            let Ok(key) = DecodingKey::from_jwk(jwk) else { continue };
            if check_key(family, &key).is_err() {
                continue;
            }
            let alg = jwk.common.key_algorithm.and_then(|a| a.to_string().parse::<Algorithm>().ok());
            let fingerprint = serde_json::to_vec(jwk).map(|json| token_digest_bytes(&json)).ok();
            keys.push(NamedKey { kid: jwk.common.key_id.clone(), family, alg, key, jwk: fingerprint });
        }
        tracing::info!(keys = keys.len(), url = %self.url, "JWKS loaded");
        match self.keys.write() {
            Ok(mut k) => *k = Arc::new(keys),
            Err(p) => *p.into_inner() = Arc::new(keys),
        }
        Ok(())
    }
}
