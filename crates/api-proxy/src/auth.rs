//! Tenant authentication: a JWT in `Authorization: Bearer` or `X-Api-Key`, verified against HS256 secrets, PEM
//! public keys and a JWKS URL, each key pinned to its algorithm family.
//!
//! The algorithm in a token's header only selects among keys of that family: an HS256 token is tried against the
//! HS256 secrets only, never against a public key's bytes, and `alg: none` does not parse. A `kid` must name a
//! configured key (a PEM file's name without extension, or a JWKS key); an unknown `kid` refetches the JWKS once
//! per cooldown, one fetch at a time, and the JWKS is also refetched every [`JWKS_REFRESH_EVERY`]. A public-key
//! token without `kid` is verified only when exactly one configured key (PEM or JWKS) has its family; with several,
//! it must say which (`kid`), so a forged token never costs a verification per key. HS256 tokens need no `kid`:
//! every secret is tried (secrets rotate), each check costing a microsecond.
//!
//! The JWKS comes over https (plain http only from a loopback host), at most [`JWKS_MAX_BYTES`], and a redirect is
//! not followed.
//!
//! RSA and ECDSA verification costs 0.2 to 0.3 ms of CPU, a hundred times an HS256 check; a tenant sends the same
//! token on every request until it expires, so a token whose signature verified once is remembered (by its SHA-256,
//! in a bounded cache) and only its claims are checked again on each request: `exp`, `nbf`, `aud`, `iss` still
//! apply every time. A key removed from the JWKS stops every token it signed at the next refresh, the remembered
//! ones included: a remembered verification names the JWKS key that made it and holds only while that key is
//! served. `WGATE_JWT_MAX_TTL_SECS`, when set, refuses tokens whose `exp` lies further ahead.

use base64::Engine;
use std::{
    path::Path,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use actix_web::{HttpRequest, http::header};
use jsonwebtoken::{
    Algorithm, AlgorithmFamily, DecodingKey,
    errors::ErrorKind,
    jwk::{AlgorithmParameters, JwkSet},
};
use secrecy::ExposeSecret;
use wgate_service::ConfigError;
use wgate_types::{Audience, Claims, Scope, Scopes, TenantId};

use crate::settings::ApiSettings;

/// Clock skew allowed on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: u64 = 30;

/// Asymmetric tokens whose signature verified, remembered by SHA-256 (about 200 bytes each with their claims).
pub const VERIFIED_TOKENS: usize = 50_000;

/// Largest JWKS answer read.
pub const JWKS_MAX_BYTES: usize = 64 * 1024;

/// The JWKS is refetched this often besides on unknown `kid`s, so a removed key stops its tokens.
pub const JWKS_REFRESH_EVERY: Duration = Duration::from_secs(300);

/// Who is calling, once the token checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: TenantId,
    pub scopes: Scopes,
}

impl Principal {
    pub fn require(&self, scope: Scope) -> Result<(), AuthError> {
        if self.scopes.contains(scope) { Ok(()) } else { Err(AuthError::Scope(scope)) }
    }
}

/// Why a request was not authenticated; `reason()` is the metric label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no token: send `Authorization: Bearer <JWT>` or `X-Api-Key: <JWT>`")]
    Missing,
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm matches no configured key")]
    Algorithm,
    #[error("the token's kid names no known key")]
    UnknownKid,
    #[error("the token has no kid and several keys of its algorithm are configured; name the key in kid")]
    KidRequired,
    #[error("the token's exp lies more than {0} s ahead; ask for a shorter-lived token")]
    TooLongLived(u64),
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf or iat in the future)")]
    NotYetValid,
    #[error("the token's aud does not hold the expected audience")]
    Audience,
    #[error("the token's iss is not the expected issuer")]
    Issuer,
    #[error("the token's claims are invalid: {0}")]
    Claims(String),
    #[error("the token lacks the scope {}", .0.as_str())]
    Scope(Scope),
}

impl AuthError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Algorithm => "algorithm",
            Self::UnknownKid => "unknown_kid",
            Self::KidRequired => "kid_required",
            Self::TooLongLived(_) => "lifetime",
            Self::Signature => "signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Audience => "audience",
            Self::Issuer => "issuer",
            Self::Claims(_) => "claims",
            Self::Scope(_) => "scope",
        }
    }
}

/// The token of a request, from `Authorization: Bearer` or else `X-Api-Key` (also when `Authorization` carries
/// another scheme, e.g. a proxy's `Basic`).
pub fn token_of(req: &HttpRequest) -> Result<&str, AuthError> {
    let headers = req.headers();
    let bearer = match headers.get(header::AUTHORIZATION) {
        Some(v) => {
            let v = v.to_str().map_err(|_| AuthError::Malformed)?.trim();
            match v.split_once(' ') {
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Some(token.trim()),
                _ => None,
            }
        }
        None => None,
    };
    if let Some(token) = bearer {
        return if token.is_empty() { Err(AuthError::Malformed) } else { Ok(token) };
    }
    if let Some(v) = headers.get("x-api-key") {
        let v = v.to_str().map_err(|_| AuthError::Malformed)?.trim();
        return if v.is_empty() { Err(AuthError::Missing) } else { Ok(v) };
    }
    if headers.contains_key(header::AUTHORIZATION) { Err(AuthError::Malformed) } else { Err(AuthError::Missing) }
}

#[derive(Clone)]
struct NamedKey {
    kid: Option<String>,
    family: AlgorithmFamily,
    /// A JWK's own `alg`, when it names one: the token must use exactly that.
    alg: Option<Algorithm>,
    key: DecodingKey,
    /// SHA-256 of a JWKS key's JWK (`None` for configured keys): what a remembered verification names.
    jwk: Option<[u8; 32]>,
}

/// Verifies tenant tokens. Keys are parsed once, when it is built.
pub struct Verifier {
    hmac: Vec<NamedKey>,
    pem: Vec<NamedKey>,
    jwks: Option<Jwks>,
    audience: String,
    issuer: Option<String>,
    max_ttl: Option<u64>,
    /// SHA-256 of an RSA/EC/Ed25519 token whose signature verified -> its claims and the JWKS key that verified it.
    verified: quick_cache::sync::Cache<[u8; 32], (Claims, Option<[u8; 32]>)>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("hmac_secrets", &self.hmac.len())
            .field("pem_keys", &self.pem.len())
            .field("jwks", &self.jwks.as_ref().map(|j| j.url.as_str()))
            .finish()
    }
}

impl Verifier {
    /// Parses every configured key; a malformed value or file is an error naming its variable.
    pub fn from_settings(s: &ApiSettings) -> Result<Self, ConfigError> {
        let mut hmac = Vec::new();
        if let Some(secrets) = &s.jwt_secret {
            for secret in secrets.expose_secret().split(',') {
                let secret = secret.trim();
                if secret.is_empty() {
                    return Err(ConfigError::setting("jwt_secret", "an empty secret in the comma-separated list"));
                }
                hmac.push(NamedKey {
                    kid: None,
                    family: AlgorithmFamily::Hmac,
                    alg: None,
                    key: DecodingKey::from_secret(secret.as_bytes()),
                    jwk: None,
                });
            }
        }
        let mut pem = Vec::new();
        if let Some(files) = &s.jwt_public_keys {
            for file in files.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                pem.push(load_pem(Path::new(file)).map_err(|e| ConfigError::setting("jwt_public_keys", e))?);
            }
        }
        let jwks = s.jwt_jwks_url.as_ref().map(|url| Jwks::new(url.clone(), s.jwt_jwks_cooldown_ms));
        if hmac.is_empty() && pem.is_empty() && jwks.is_none() {
            return Err(ConfigError::setting(
                "jwt_secret",
                "no JWT key configured: set WGATE_JWT_SECRET, WGATE_JWT_PUBLIC_KEYS or WGATE_JWT_JWKS_URL",
            ));
        }
        Ok(Self {
            hmac,
            pem,
            jwks,
            audience: s.jwt_audience.clone(),
            issuer: s.jwt_issuer.clone(),
            max_ttl: s.jwt_max_ttl_secs,
            verified: quick_cache::sync::Cache::new(VERIFIED_TOKENS),
        })
    }

    /// Fetches the JWKS once at start, so the first request does not pay for it. A failure is logged, not fatal:
    /// the next token with an unknown `kid` fetches again.
    pub async fn warm_up(&self) {
        if let Some(jwks) = &self.jwks
            && let Err(e) = jwks.refresh().await
        {
            tracing::warn!(error = %e, url = %jwks.url, "fetching the JWKS at start failed; will retry on demand");
        }
    }

    /// Refetches the JWKS (the periodic refresh); a failure keeps the keys and is logged.
    pub async fn refresh_jwks(&self) {
        if let Some(jwks) = &self.jwks
            && let Err(e) = jwks.refresh().await
        {
            tracing::warn!(error = %e, url = %jwks.url, "refreshing the JWKS failed; keeping the keys");
        }
    }

    /// Whether a JWKS is configured (the periodic refresh runs only then).
    pub fn has_jwks(&self) -> bool {
        self.jwks.is_some()
    }

    /// Asymmetric tokens remembered as verified (for tests and benchmarks).
    pub fn verified_tokens(&self) -> usize {
        self.verified.len()
    }

    /// Verifies a token and reads the tenant and scopes from it.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let head = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            ErrorKind::InvalidAlgorithmName | ErrorKind::UnsupportedAlgorithm => AuthError::Algorithm,
            _ => AuthError::Malformed,
        })?;
        let alg = head.alg;
        let family = alg.family();
        // HS256 is cheaper to verify than to look up; only public-key tokens are remembered.
        if family != AlgorithmFamily::Hmac
            && let Some((claims, jwk)) = self.verified.get(&token_digest(token))
        {
            // A verification by a JWKS key holds only while the JWKS still serves that key.
            let served =
                |fp: [u8; 32]| self.jwks.as_ref().is_some_and(|j| j.snapshot().iter().any(|k| k.jwk == Some(fp)));
            if jwk.is_none_or(served) {
                return self.check_claims(claims);
            }
            self.verified.remove(&token_digest(token));
        }
        match &head.kid {
            None if family == AlgorithmFamily::Hmac => self.verify_with(token, alg, self.hmac.iter()),
            None => {
                let jwks = self.jwks.as_ref().map(Jwks::snapshot);
                let keys: Vec<&NamedKey> =
                    self.pem.iter().chain(jwks.iter().flat_map(|s| s.iter())).filter(|k| k.family == family).collect();
                match keys.len() {
                    0 => Err(AuthError::Algorithm),
                    1 => self.verify_with(token, alg, keys.into_iter()),
                    _ => Err(AuthError::KidRequired),
                }
            }
            Some(kid) => {
                if let Some(key) = self.pem.iter().find(|k| k.kid.as_deref() == Some(kid.as_str())) {
                    return self.verify_with(token, alg, std::iter::once(key));
                }
                let key = match &self.jwks {
                    Some(jwks) => jwks.find(kid).await,
                    None => None,
                };
                let key = key.ok_or(AuthError::UnknownKid)?;
                self.verify_with(token, alg, std::iter::once(&key))
            }
        }
    }

    /// Tries the keys of the token's family (and, for a JWK that names one, its algorithm) in turn.
    fn verify_with<'k>(
        &self,
        token: &str,
        alg: Algorithm,
        candidates: impl Iterator<Item = &'k NamedKey>,
    ) -> Result<Principal, AuthError> {
        // `decode_header` already refused anything but three base64url parts with a known `alg`.
        let (message, signature) = token.rsplit_once('.').ok_or(AuthError::Malformed)?;
        let (_, payload) = message.split_once('.').ok_or(AuthError::Malformed)?;
        let usable = candidates.filter(|k| k.family == alg.family() && k.alg.is_none_or(|a| a == alg));
        let mut last = AuthError::Algorithm;
        let mut verified = None;
        for key in usable {
            // The backend builds a verifier for `alg` and refuses a key of another family.
            match jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key.key, alg) {
                Ok(true) => {
                    verified = Some(key.jwk);
                    break;
                }
                Ok(false) | Err(_) => last = AuthError::Signature,
            }
        }
        let Some(jwk) = verified else {
            return Err(last);
        };
        // Only a verified payload is parsed, once.
        let json =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).map_err(|_| AuthError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&json)
            .map_err(|e| AuthError::Claims(format!("the claims are not as expected ({e})")))?;
        if alg.family() != AlgorithmFamily::Hmac {
            self.verified.insert(token_digest(token), (claims.clone(), jwk));
        }
        self.check_claims(claims)
    }

    /// `exp` required, `nbf`/`iat` honoured (with leeway), `aud` must hold the audience, `iss` when configured,
    /// `sub` must be a tenant id.
    fn check_claims(&self, claims: Claims) -> Result<Principal, AuthError> {
        let now = jsonwebtoken::get_current_timestamp();
        if claims.exp.saturating_add(LEEWAY_SECS) < now {
            return Err(AuthError::Expired);
        }
        if let Some(max) = self.max_ttl
            && claims.exp > now.saturating_add(max).saturating_add(LEEWAY_SECS)
        {
            return Err(AuthError::TooLongLived(max));
        }
        let future = |t: Option<u64>| t.is_some_and(|t| t > now.saturating_add(LEEWAY_SECS));
        if future(claims.nbf) || future(claims.iat) {
            return Err(AuthError::NotYetValid);
        }
        let aud_ok = match &claims.aud {
            Some(Audience::One(a)) => *a == self.audience,
            Some(Audience::Many(list)) => list.contains(&self.audience),
            None => false,
        };
        if !aud_ok {
            return Err(AuthError::Audience);
        }
        if let Some(want) = &self.issuer
            && claims.iss.as_deref() != Some(want.as_str())
        {
            return Err(AuthError::Issuer);
        }
        let tenant = TenantId::parse(&claims.sub)
            .map_err(|_| AuthError::Claims("sub is not a tenant id ([A-Za-z0-9][A-Za-z0-9._-]{0,63})".into()))?;
        Ok(Principal { tenant, scopes: Scopes::from_claim(claims.scope.as_deref()) })
    }
}

fn token_digest(token: &str) -> [u8; 32] {
    token_digest_bytes(token.as_bytes())
}

fn token_digest_bytes(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

fn load_pem(path: &Path) -> Result<NamedKey, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let kid = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned);
    let (family, key) = if let Ok(k) = DecodingKey::from_rsa_pem(&bytes) {
        (AlgorithmFamily::Rsa, k)
    } else if let Ok(k) = DecodingKey::from_ec_pem(&bytes) {
        (AlgorithmFamily::Ec, k)
    } else if let Ok(k) = DecodingKey::from_ed_pem(&bytes) {
        (AlgorithmFamily::Ed, k)
    } else {
        return Err(format!("{} is not a PEM public key (RSA, EC P-256 or Ed25519)", path.display()));
    };
    check_key(family, &key).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(NamedKey { kid, family, alg: None, key, jwk: None })
}

/// Rejects keys the crypto backend would refuse (or, for a short Ed25519 key, panic on) at verify time.
fn check_key(family: AlgorithmFamily, key: &DecodingKey) -> Result<(), String> {
    match family {
        AlgorithmFamily::Ed => match key.try_get_as_bytes() {
            Ok(b) if b.len() == 32 => Ok(()),
            _ => Err("an Ed25519 public key must be 32 bytes".into()),
        },
        AlgorithmFamily::Ec => {
            // Building a verifier parses the point; a dummy signature then simply does not verify.
            jsonwebtoken::crypto::verify("AA", b"x", key, Algorithm::ES256)
                .or_else(|_| jsonwebtoken::crypto::verify("AA", b"x", key, Algorithm::ES384))
                .map(|_| ())
                .map_err(|_| "not a valid EC public key".into())
        }
        AlgorithmFamily::Rsa | AlgorithmFamily::Hmac => Ok(()),
    }
}

/// The JWKS cache: keys by `kid`, refetched on an unknown `kid` at most once per cooldown, one fetch at a time.
struct Jwks {
    url: String,
    client: reqwest::Client,
    cooldown: Duration,
    keys: RwLock<Arc<Vec<NamedKey>>>,
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl Jwks {
    fn new(url: String, cooldown_ms: u64) -> Self {
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

    fn snapshot(&self) -> Arc<Vec<NamedKey>> {
        self.keys.read().map(|k| k.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    fn cached(&self, kid: &str) -> Option<NamedKey> {
        self.snapshot().iter().find(|k| k.kid.as_deref() == Some(kid)).cloned()
    }

    async fn find(&self, kid: &str) -> Option<NamedKey> {
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
    async fn refresh(&self) -> anyhow::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn the_token_comes_from_bearer_or_x_api_key() {
        let r = TestRequest::default().insert_header(("authorization", "Bearer abc")).to_http_request();
        assert_eq!(token_of(&r), Ok("abc"));
        let r = TestRequest::default().insert_header(("x-api-key", " k ")).to_http_request();
        assert_eq!(token_of(&r), Ok("k"));
        let r = TestRequest::default()
            .insert_header(("authorization", "Basic dXNlcg=="))
            .insert_header(("x-api-key", "k"))
            .to_http_request();
        assert_eq!(token_of(&r), Ok("k"));
        let r = TestRequest::default().insert_header(("authorization", "Basic dXNlcg==")).to_http_request();
        assert_eq!(token_of(&r), Err(AuthError::Malformed));
        let r = TestRequest::default().insert_header(("authorization", "Bearer ")).to_http_request();
        assert_eq!(token_of(&r), Err(AuthError::Malformed));
        assert_eq!(token_of(&TestRequest::default().to_http_request()), Err(AuthError::Missing));
    }
}
