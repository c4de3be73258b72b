//! The tenant identity carried in a JWT's `sub`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A tenant id: `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`. Safe to put in a Redis key and a metric label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a tenant id is 1 to 64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit")]
pub struct InvalidTenantId;

impl TenantId {
    pub fn parse(s: &str) -> Result<Self, InvalidTenantId> {
        let bytes = s.as_bytes();
        let ok = !bytes.is_empty()
            && bytes.len() <= 64
            && bytes[0].is_ascii_alphanumeric()
            && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok { Ok(Self(s.to_owned())) } else { Err(InvalidTenantId) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = InvalidTenantId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<TenantId> for String {
    fn from(t: TenantId) -> Self {
        t.0
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_id_matching_the_pattern_is_accepted(s in "[A-Za-z0-9][A-Za-z0-9._-]{0,63}") {
            prop_assert_eq!(TenantId::parse(&s).map(String::from), Ok(s));
        }

        #[test]
        fn an_id_with_any_other_character_is_rejected(
            a in "[A-Za-z0-9]{1,10}", bad in "[^A-Za-z0-9._-]", b in "[A-Za-z0-9]{0,10}"
        ) {
            let s = format!("{a}{bad}{b}");
            prop_assert!(TenantId::parse(&s).is_err());
        }
    }

    #[test]
    fn empty_too_long_and_leading_punctuation_are_rejected() {
        assert!(TenantId::parse("").is_err());
        assert!(TenantId::parse(&"a".repeat(65)).is_err());
        assert!(TenantId::parse(&"a".repeat(64)).is_ok());
        assert!(TenantId::parse("-abc").is_err());
        assert!(TenantId::parse(".abc").is_err());
    }
}
