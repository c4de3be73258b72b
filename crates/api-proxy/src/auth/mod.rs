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

mod header;
mod jwks;
mod keys;
mod verifier;

use std::time::Duration;

use secrecy::SecretString;
use wgate_types::{Scope, Scopes, TenantId};

pub use header::token_of;
pub use verifier::Verifier;

use crate::settings::ApiSettings;

/// Clock skew allowed on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: u64 = 30;

/// Asymmetric tokens whose signature verified, remembered by SHA-256 (about 200 bytes each with their claims).
pub const VERIFIED_TOKENS: usize = 50_000;

/// Largest JWKS answer read.
pub const JWKS_MAX_BYTES: usize = 64 * 1024;

/// The JWKS is refetched this often besides on unknown `kid`s, so a removed key stops its tokens.
pub const JWKS_REFRESH_EVERY: Duration = Duration::from_secs(300);
/// What authentication needs of the settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// HS256 secrets, comma-separated (`WGATE_JWT_SECRET`).
    pub secrets: Option<SecretString>,
    /// PEM public key files, comma-separated (`WGATE_JWT_PUBLIC_KEYS`).
    pub public_keys: Option<String>,
    /// `WGATE_JWT_JWKS_URL`.
    pub jwks_url: Option<String>,
    /// Least time between two refetches on unknown `kid`s (`WGATE_JWT_JWKS_COOLDOWN_MS`).
    pub jwks_cooldown_ms: u64,
    /// `WGATE_JWT_AUDIENCE`.
    pub audience: String,
    /// `WGATE_JWT_ISSUER`.
    pub issuer: Option<String>,
    /// `WGATE_JWT_MAX_TTL_SECS`.
    pub max_ttl_secs: Option<u64>,
}

impl AuthConfig {
    pub fn from_settings(s: &ApiSettings) -> Self {
        Self {
            secrets: s.jwt_secret.clone(),
            public_keys: s.jwt_public_keys.clone(),
            jwks_url: s.jwt_jwks_url.clone(),
            jwks_cooldown_ms: s.jwt_jwks_cooldown_ms,
            audience: s.jwt_audience.clone(),
            issuer: s.jwt_issuer.clone(),
            max_ttl_secs: s.jwt_max_ttl_secs,
        }
    }
}

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
