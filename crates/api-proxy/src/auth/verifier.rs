//! Token verification: the key chosen by the token's family and `kid`, the signature checked, then the claims;
//! public-key verifications remembered.

use std::path::Path;

use base64::Engine;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, errors::ErrorKind};
use secrecy::ExposeSecret;
use wgate_service::ConfigError;
use wgate_types::{Audience, Claims, Scopes, TenantId};

use super::{
    AuthConfig, AuthError, LEEWAY_SECS, Principal, VERIFIED_TOKENS,
    jwks::Jwks,
    keys::{NamedKey, load_pem, token_digest},
};

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
    pub fn new(s: &AuthConfig) -> Result<Self, ConfigError> {
        let mut hmac = Vec::new();
        if let Some(secrets) = &s.secrets {
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
        if let Some(files) = &s.public_keys {
            for file in files.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                pem.push(load_pem(Path::new(file)).map_err(|e| ConfigError::setting("jwt_public_keys", e))?);
            }
        }
        let jwks = s.jwks_url.as_ref().map(|url| Jwks::new(url.clone(), s.jwks_cooldown_ms));
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
            audience: s.audience.clone(),
            issuer: s.issuer.clone(),
            max_ttl: s.max_ttl_secs,
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
        // HS256 is cheaper to verify than to look up; only public-key tokens are remembered, by their digest
        // (computed once: the look-up and the remembering share it).
        let digest = (family != AlgorithmFamily::Hmac).then(|| token_digest(token));
        if let Some(digest) = &digest
            && let Some((claims, jwk)) = self.verified.get(digest)
        {
            // A verification by a JWKS key holds only while the JWKS still serves that key.
            let served =
                |fp: [u8; 32]| self.jwks.as_ref().is_some_and(|j| j.snapshot().iter().any(|k| k.jwk == Some(fp)));
            if jwk.is_none_or(served) {
                return self.check_claims(claims);
            }
            self.verified.remove(digest);
        }
        match &head.kid {
            None if family == AlgorithmFamily::Hmac => self.verify_with(token, alg, digest, self.hmac.iter()),
            None => {
                let jwks = self.jwks.as_ref().map(Jwks::snapshot);
                let keys: Vec<&NamedKey> =
                    self.pem.iter().chain(jwks.iter().flat_map(|s| s.iter())).filter(|k| k.family == family).collect();
                match keys.len() {
                    0 => Err(AuthError::Algorithm),
                    1 => self.verify_with(token, alg, digest, keys.into_iter()),
                    _ => Err(AuthError::KidRequired),
                }
            }
            Some(kid) => {
                if let Some(key) = self.pem.iter().find(|k| k.kid.as_deref() == Some(kid.as_str())) {
                    return self.verify_with(token, alg, digest, std::iter::once(key));
                }
                let key = match &self.jwks {
                    Some(jwks) => jwks.find(kid).await,
                    None => None,
                };
                let key = key.ok_or(AuthError::UnknownKid)?;
                self.verify_with(token, alg, digest, std::iter::once(&key))
            }
        }
    }

    /// Tries the keys of the token's family (and, for a JWK that names one, its algorithm) in turn; a verified
    /// token with a `digest` (a public-key one) is remembered under it.
    fn verify_with<'k>(
        &self,
        token: &str,
        alg: Algorithm,
        digest: Option<[u8; 32]>,
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
        if let Some(digest) = digest {
            self.verified.insert(digest, (claims.clone(), jwk));
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
