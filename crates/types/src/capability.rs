//! Capability tokens: the secret part of `/hooks/<token>` (WhatsGate's callback) and `/qr/<token>` (the QR window).
//! The API mints them (256 random bits, URL-safe base64 without padding); everyone who looks one up checks its
//! shape here first, so a malformed token matches nothing and never reaches Redis.

/// Characters in a token: 32 bytes in URL-safe base64 without padding.
pub const CAPABILITY_TOKEN_LEN: usize = 43;

/// True for a string shaped like a minted token.
pub fn is_capability_token(s: &str) -> bool {
    s.len() == CAPABILITY_TOKEN_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_43_url_safe_characters_make_a_token() {
        assert!(is_capability_token(&"aZ09-_".repeat(8)[..43]));
        assert!(!is_capability_token(&"a".repeat(42)) && !is_capability_token(&"a".repeat(44)));
        assert!(!is_capability_token(&format!("{}=", "a".repeat(42))));
        assert!(!is_capability_token(&format!("{}.", "a".repeat(42))));
    }
}
