//! The `Idempotency-Key` header value.

use serde::{Deserialize, Serialize};

/// 1..=255 printable ASCII characters (space through `~`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Idempotency-Key must be 1 to 255 printable ASCII characters")]
pub struct InvalidIdempotencyKey;

impl IdempotencyKey {
    pub fn parse(s: &str) -> Result<Self, InvalidIdempotencyKey> {
        let ok = (1..=255).contains(&s.len()) && s.bytes().all(|b| (0x20..=0x7e).contains(&b));
        if ok { Ok(Self(s.to_owned())) } else { Err(InvalidIdempotencyKey) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = InvalidIdempotencyKey;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<IdempotencyKey> for String {
    fn from(k: IdempotencyKey) -> Self {
        k.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn printable_ascii_keys_up_to_255_are_accepted(s in "[ -~]{1,255}") {
            prop_assert!(IdempotencyKey::parse(&s).is_ok());
        }

        #[test]
        fn keys_with_other_bytes_are_rejected(a in "[ -~]{0,10}", bad in "[^ -~]", b in "[ -~]{0,10}") {
            let s = format!("{a}{bad}{b}");
            prop_assert!(IdempotencyKey::parse(&s).is_err());
        }
    }

    #[test]
    fn empty_and_overlong_keys_are_rejected() {
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
    }
}
