//! `wgate token`: an HS256 JWT for a tenant, as the gateway expects it.

use anyhow::Context;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use wgate_types::{Claims, TenantId, claims::Audience};

/// What goes into a token.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub tenant: String,
    pub ttl_secs: u64,
    pub scope: Option<String>,
    pub audience: String,
    pub issuer: Option<String>,
}

impl TokenRequest {
    /// A token for `tenant` with the default audience and scopes, valid for a day: what the local stacks hand out.
    pub fn day_pass(tenant: impl Into<String>) -> Self {
        Self { tenant: tenant.into(), ttl_secs: 24 * 3600, scope: None, audience: "wgate".into(), issuer: None }
    }
}

/// Signs the claims with HS256. The tenant id is checked with the gateway's own rule, so a token that would be
/// refused is never minted.
pub fn mint(secret: &[u8], req: &TokenRequest, now_secs: u64) -> anyhow::Result<String> {
    anyhow::ensure!(!secret.is_empty(), "--secret must not be empty");
    let tenant = TenantId::parse(&req.tenant).with_context(|| format!("--tenant {:?}", req.tenant))?;
    let claims = Claims {
        sub: tenant.to_string(),
        exp: now_secs.saturating_add(req.ttl_secs),
        nbf: None,
        iat: Some(now_secs),
        aud: Some(Audience::One(req.audience.clone())),
        iss: req.issuer.clone(),
        scope: req.scope.clone(),
    };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret))
        .context("signing the token")
}

/// Seconds since the Unix epoch, the clock tokens are minted against.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
