//! JWT claims as wgate reads them, and the scopes they grant.

use serde::{Deserialize, Serialize};

/// The claims of a tenant token. Signature, `exp`, `nbf`, `aud` and `iss` are checked by the verifier; `sub` and
/// `scope` are read from here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Space-separated scopes; absent means every scope but `admin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// `aud` is a string or an array of strings (RFC 7519 4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    SessionsWrite,
    SessionsRead,
    MessagesSend,
    MessagesRead,
    Admin,
}

impl Scope {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::SessionsWrite => "sessions:write",
            Self::SessionsRead => "sessions:read",
            Self::MessagesSend => "messages:send",
            Self::MessagesRead => "messages:read",
            Self::Admin => "admin",
        }
    }
}

/// The set of scopes a token grants. Unknown scope words are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes {
    write: bool,
    read: bool,
    send: bool,
    messages_read: bool,
    admin: bool,
}

impl Scopes {
    pub fn from_claim(scope: Option<&str>) -> Self {
        match scope {
            None => Self { write: true, read: true, send: true, messages_read: true, admin: false },
            Some(s) => s.split_ascii_whitespace().fold(Self::default(), |mut acc, word| {
                match word {
                    "sessions:write" => acc.write = true,
                    "sessions:read" => acc.read = true,
                    "messages:send" => acc.send = true,
                    "messages:read" => acc.messages_read = true,
                    "admin" => acc.admin = true,
                    _ => {}
                }
                acc
            }),
        }
    }

    pub fn contains(&self, scope: Scope) -> bool {
        match scope {
            Scope::SessionsWrite => self.write,
            Scope::SessionsRead => self.read,
            Scope::MessagesSend => self.send,
            Scope::MessagesRead => self.messages_read,
            Scope::Admin => self.admin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_scope_grants_every_scope_but_admin() {
        let s = Scopes::from_claim(None);
        assert!(s.contains(Scope::SessionsRead) && s.contains(Scope::SessionsWrite) && !s.contains(Scope::Admin));
        assert!(s.contains(Scope::MessagesSend) && s.contains(Scope::MessagesRead));
        let m = Scopes::from_claim(Some("messages:read"));
        assert!(
            m.contains(Scope::MessagesRead) && !m.contains(Scope::MessagesSend) && !m.contains(Scope::SessionsRead)
        );
    }

    #[test]
    fn a_present_scope_grants_only_what_it_names() {
        let s = Scopes::from_claim(Some("sessions:read  admin bogus"));
        assert!(s.contains(Scope::SessionsRead) && s.contains(Scope::Admin) && !s.contains(Scope::SessionsWrite));
        assert_eq!(Scopes::from_claim(Some("")), Scopes::default());
    }

    #[test]
    fn audience_reads_a_string_or_an_array() {
        let one: Claims = serde_json::from_str(r#"{"sub":"t","exp":1,"aud":"wgate"}"#).expect("one");
        assert_eq!(one.aud, Some(Audience::One("wgate".into())));
        let many: Claims = serde_json::from_str(r#"{"sub":"t","exp":1,"aud":["a","wgate"]}"#).expect("many");
        assert_eq!(many.aud, Some(Audience::Many(vec!["a".into(), "wgate".into()])));
    }
}
