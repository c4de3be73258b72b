//! Standard Webhooks signing (<https://www.standardwebhooks.com/>): `webhook-signature` is
//! `v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">`, one space-separated entry per active
//! secret, so a receiver holding either the old or the new secret verifies during a rotation.
//!
//! A tenant's secret is `whsec_` + base64 of the key bytes. Unless the tenants file sets one, it is derived from
//! the deployment's signing key and the tenant id (HMAC-SHA256), so every process derives the same one.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use wgate_types::TenantId;

type HmacSha256 = Hmac<Sha256>;

/// The prefix of a secret's text form.
pub const PREFIX: &str = "whsec_";

/// A signing secret. Its `Debug` form hides the key.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

impl WebhookSecret {
    /// `whsec_<base64>` with a key of 24 to 64 bytes (the range Standard Webhooks recommends).
    pub fn parse(text: &str) -> Result<Self, String> {
        let b64 = text.trim().strip_prefix(PREFIX).ok_or_else(|| format!("a webhook secret starts with {PREFIX}"))?;
        let key = STANDARD.decode(b64).map_err(|_| format!("a webhook secret is {PREFIX} followed by base64"))?;
        if !(24..=64).contains(&key.len()) {
            return Err("a webhook secret's key is 24 to 64 bytes (32 recommended)".into());
        }
        Ok(Self(key))
    }

    /// The tenant's secret derived from the deployment's signing key.
    pub fn derive(signing_key: &[u8], tenant: &TenantId) -> Self {
        let mut mac = HmacSha256::new_from_slice(signing_key).expect("HMAC takes a key of any length");
        mac.update(b"wgate webhook secret v1\0");
        mac.update(tenant.as_str().as_bytes());
        Self(mac.finalize().into_bytes().to_vec())
    }

    /// A fresh random secret.
    pub fn random() -> Self {
        Self(rand::random::<[u8; 32]>().to_vec())
    }

    /// The text form a tenant configures its verifier with: `whsec_<base64>`.
    pub fn to_text(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// `base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>"))`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        STANDARD.encode(mac.finalize().into_bytes())
    }
}

/// The `webhook-signature` header: one `v1,<signature>` per secret, space separated.
pub fn signature_header(secrets: &[WebhookSecret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets.iter().map(|s| format!("v1,{}", s.sign(id, timestamp, body))).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_webhooks_example_signature_is_reproduced() {
        // The example of the Standard Webhooks specification and its reference libraries.
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature_header(&[secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_are_checked_and_derived_ones_differ_per_tenant() {
        assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=").is_err());
        assert!(WebhookSecret::parse("whsec_!!!").is_err());
        let a = WebhookSecret::derive(b"k", &TenantId::parse("a").unwrap());
        let b = WebhookSecret::derive(b"k", &TenantId::parse("b").unwrap());
        assert_ne!(a, b);
        assert_eq!(WebhookSecret::parse(&a.to_text()).unwrap(), a, "a derived secret round-trips as text");
        assert!(!format!("{a:?}").contains(&a.to_text()[6..]));
    }
}
