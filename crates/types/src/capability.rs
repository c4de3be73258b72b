//! Capability tokens: the secret part of `/hooks/<token>` (WhatsGate's callback) and `/qr/<token>` (the QR window).
//! The API mints them; everyone who looks one up checks its shape here first, so a malformed token matches nothing
//! and never reaches Redis.
//!
//! - Both are minted as their job's id followed by 128 random bits (22 characters), drawn independently: the
//!   relay's target and the QR window's state live in the job's own record, so accepting a job writes no key for
//!   them, and the id says where to look. The id is no secret (it opens nothing without the tenant's credentials);
//!   the random part is the capability, compared with the one the record keeps.
//! - A token minted by an earlier release is 256 random bits, URL-safe base64 without padding (43 characters), and
//!   has a record of its own (`hook:<token>`, `qr:<token>`); those are still honoured.

use crate::JobId;

const fn url_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')
}

/// Characters in a token: 32 bytes in URL-safe base64 without padding.
pub const CAPABILITY_TOKEN_LEN: usize = 43;

/// True for a string shaped like a token of an earlier release (one with a record of its own).
pub fn is_capability_token(s: &str) -> bool {
    s.len() == CAPABILITY_TOKEN_LEN && s.bytes().all(url_safe)
}

/// Characters of a job-bound token's random part: 16 bytes in URL-safe base64 without padding.
pub const TOKEN_SECRET_LEN: usize = 22;

/// Characters of a job id.
const JOB_ID_LEN: usize = 26;

/// The job a hook or QR token of this release opens: `Some` for a string shaped like `<job id><22 URL-safe
/// characters>`. The caller still compares the whole token with the one in the job's record.
pub fn token_job(s: &str) -> Option<JobId> {
    if s.len() != JOB_ID_LEN + TOKEN_SECRET_LEN || !s.bytes().all(url_safe) {
        return None;
    }
    // All ASCII: any byte index is a character boundary.
    s[..JOB_ID_LEN].parse().ok()
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

    #[test]
    fn a_job_bound_token_names_its_job_and_nothing_else_does() {
        let id = JobId::new();
        let secret = "aZ09-_".repeat(4)[..TOKEN_SECRET_LEN].to_owned();
        assert_eq!(token_job(&format!("{id}{secret}")), Some(id));
        // A token of an earlier release is not one.
        assert_eq!(token_job(&"A".repeat(43)), None);
        assert_eq!(token_job(&format!("{id}{}", &secret[1..])), None);
        assert_eq!(token_job(&format!("{id}{}.", &secret[1..])), None);
        assert_eq!(token_job(&format!("{}{secret}", id.to_string().to_lowercase())), None);
        // Not ASCII: refused, never sliced inside a character.
        assert_eq!(token_job(&format!("é{}{secret}", &id.to_string()[2..])), None);
    }
}
