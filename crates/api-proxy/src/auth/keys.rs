//! Verification keys: the named key every source yields, PEM files read from disk, and the checks a key must
//! pass before it is used.

use std::path::Path;

use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};

#[derive(Clone)]
pub(super) struct NamedKey {
    pub(super) kid: Option<String>,
    pub(super) family: AlgorithmFamily,
    /// A JWK's own `alg`, when it names one: the token must use exactly that.
    pub(super) alg: Option<Algorithm>,
    pub(super) key: DecodingKey,
    /// SHA-256 of a JWKS key's JWK (`None` for configured keys): what a remembered verification names.
    pub(super) jwk: Option<[u8; 32]>,
}

pub(super) fn token_digest(token: &str) -> [u8; 32] {
    token_digest_bytes(token.as_bytes())
}

pub(super) fn token_digest_bytes(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

pub(super) fn load_pem(path: &Path) -> Result<NamedKey, String> {
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
pub(super) fn check_key(family: AlgorithmFamily, key: &DecodingKey) -> Result<(), String> {
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
