//! The session-create request: the loose body a client sends, and the validated value it parses into.
//!
//! What reaches WhatsGate is what the tenant sent (`name` untrimmed: it is what the tenant's customer sees), except
//! that `number` goes without its optional leading `+` (WhatsGate takes digits only) and the callback is the
//! gateway's relay. Validation only decides whether it is acceptable.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::FieldProblem;

/// Longest accepted name, counted in characters after trimming.
pub const NAME_MAX_CHARS: usize = 100;
/// Longest accepted callback URL, in bytes.
pub const CALLBACK_MAX_BYTES: usize = 2048;

/// Every problem found in one body, one entry per field. Never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.summary())]
pub struct ValidationErrors(pub Vec<FieldProblem>);

impl ValidationErrors {
    fn one(field: &str, problem: impl Into<String>) -> Self {
        Self(vec![FieldProblem::new(field, problem)])
    }

    /// One sentence naming every field at fault, for the error body's `message`.
    pub fn summary(&self) -> String {
        let fields: Vec<&str> = self.0.iter().map(|p| p.field.as_str()).collect();
        format!("The request body is invalid ({}); see details and correct it.", fields.join(", "))
    }
}

/// A WhatsApp session's display name: 1..=100 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct SessionName(String);

impl SessionName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err("must not be empty or only white space".into());
        }
        let chars = trimmed.chars().count();
        if chars > NAME_MAX_CHARS {
            return Err(format!("must be at most {NAME_MAX_CHARS} characters after trimming, got {chars}"));
        }
        if s.chars().any(char::is_control) {
            return Err("must not contain control characters (newlines, tabs, ...)".into());
        }
        Ok(Self(s.to_owned()))
    }

    /// The name exactly as the client sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for SessionName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A phone number for pairing by code: 10..=15 digits after an optional leading `+`, kept as written (the request
/// sent upstream drops the `+`: [`SessionCreate::for_upstream`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(s: &str) -> Result<Self, String> {
        let digits = s.strip_prefix('+').unwrap_or(s);
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("must be digits only, with an optional leading '+', e.g. 79999999999".into());
        }
        if !(10..=15).contains(&digits.len()) {
            return Err(format!("must have 10 to 15 digits, got {}", digits.len()));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits alone, without a leading `+`.
    pub fn digits(&self) -> &str {
        self.0.strip_prefix('+').unwrap_or(&self.0)
    }
}

impl<'de> Deserialize<'de> for PhoneNumber {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A webhook URL: absolute `http`/`https` with a host, no user info, at most 2048 bytes. Kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct CallbackUrl(String);

impl CallbackUrl {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() > CALLBACK_MAX_BYTES {
            return Err(format!("must be at most {CALLBACK_MAX_BYTES} bytes, got {}", s.len()));
        }
        let url = url::Url::parse(s).map_err(|e| format!("must be an absolute http(s) URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("must use http or https, not '{}'", url.scheme()));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("must have a host".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not contain user info (user:password@)".into());
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for CallbackUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// How the device is paired: scanning a QR code, or typing a code sent for a phone number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum AuthType {
    #[default]
    Qr,
    Code,
}

impl AuthType {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "QR" => Ok(Self::Qr),
            "CODE" => Ok(Self::Code),
            other => Err(format!("must be \"QR\" or \"CODE\", got {other:?}")),
        }
    }
}

impl fmt::Display for AuthType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Qr => "QR",
            Self::Code => "CODE",
        })
    }
}

/// The body as a client sends it, before validation: every field loose so that each problem can be reported
/// against its field. Unknown fields are ignored, as WhatsGate ignores them.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SessionCreateBody {
    #[serde(default)]
    pub name: Option<Value>,
    #[serde(default)]
    pub callback: Option<Value>,
    #[serde(default)]
    pub auth_type: Option<Value>,
    #[serde(default)]
    pub number: Option<Value>,
}

/// A validated session-create request; serialises to exactly the body WhatsGate expects. Its schema is the
/// session-create body of the API document.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[schema(
    description = "The session-create body, as WhatsGate takes it. Unknown fields are ignored.",
    example = json!({"name": "My WhatsApp", "callback": "https://callback.example/hook"})
)]
pub struct SessionCreate {
    /// The session's display name, shown to the tenant's customer: 1 to 100 characters after trimming, no
    /// control characters. Sent to WhatsGate exactly as given.
    #[schema(value_type = String, min_length = 1, max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        example = "My WhatsApp")]
    name: SessionName,
    /// Where the session's webhooks go: an absolute `http`/`https` URL with a host, no user info, at most 2048
    /// bytes. The gateway relays WhatsGate's webhooks to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = "uri", max_length = 2048, example = "https://callback.example/hook")]
    callback: Option<CallbackUrl>,
    /// `QR` (default): pair by scanning the QR window; `CODE`: pair by a code for `number`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth_type: Option<AuthType>,
    /// Required with `auth_type` `CODE`: 10 to 15 digits after an optional leading `+`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = r"^\+?[0-9]{10,15}$", example = "79999999999")]
    number: Option<PhoneNumber>,
}

fn string_field<'a>(field: &str, v: &'a Value, errors: &mut Vec<FieldProblem>) -> Option<&'a str> {
    match v {
        Value::String(s) => Some(s),
        _ => {
            errors.push(FieldProblem::new(field, "must be a string"));
            None
        }
    }
}

impl SessionCreate {
    /// Parses a loose body, reporting every field at fault at once.
    pub fn parse(body: &SessionCreateBody) -> Result<Self, ValidationErrors> {
        let mut errors = Vec::new();
        let check = |field: &str, v: Option<&Value>, errors: &mut Vec<FieldProblem>| match v {
            None | Some(Value::Null) => None,
            Some(v) => string_field(field, v, errors).map(str::to_owned),
        };
        let name_raw = check("name", body.name.as_ref(), &mut errors);
        let callback_raw = check("callback", body.callback.as_ref(), &mut errors);
        let auth_raw = check("auth_type", body.auth_type.as_ref(), &mut errors);
        let number_raw = check("number", body.number.as_ref(), &mut errors);

        let name = match (&name_raw, body.name.as_ref()) {
            (Some(s), _) => SessionName::parse(s).map_err(|p| errors.push(FieldProblem::new("name", p))).ok(),
            (None, None | Some(Value::Null)) => {
                errors.push(FieldProblem::new("name", "is required"));
                None
            }
            (None, Some(_)) => None,
        };
        let callback = callback_raw
            .as_deref()
            .and_then(|s| CallbackUrl::parse(s).map_err(|p| errors.push(FieldProblem::new("callback", p))).ok());
        let auth_type = auth_raw
            .as_deref()
            .and_then(|s| AuthType::parse(s).map_err(|p| errors.push(FieldProblem::new("auth_type", p))).ok());
        let number = number_raw
            .as_deref()
            .and_then(|s| PhoneNumber::parse(s).map_err(|p| errors.push(FieldProblem::new("number", p))).ok());
        if auth_type == Some(AuthType::Code) && number_raw.is_none() && body.number.as_ref().is_none_or(Value::is_null)
        {
            errors.push(FieldProblem::new("number", "is required when auth_type is \"CODE\""));
        }
        match name {
            Some(name) if errors.is_empty() => Ok(Self { name, callback, auth_type, number }),
            _ => Err(ValidationErrors(errors)),
        }
    }

    /// Parses raw JSON bytes; a body that is not a JSON object is reported against the field `body`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ValidationErrors> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| ValidationErrors::one("body", format!("must be valid JSON ({e})")))?;
        if !value.is_object() {
            return Err(ValidationErrors::one("body", "must be a JSON object"));
        }
        let body: SessionCreateBody = serde_json::from_value(value)
            .map_err(|e| ValidationErrors::one("body", format!("must be a JSON object ({e})")))?;
        Self::parse(&body)
    }

    pub fn name(&self) -> &SessionName {
        &self.name
    }

    pub fn callback(&self) -> Option<&CallbackUrl> {
        self.callback.as_ref()
    }

    pub fn auth_type(&self) -> AuthType {
        self.auth_type.unwrap_or_default()
    }

    pub fn number(&self) -> Option<&PhoneNumber> {
        self.number.as_ref()
    }

    /// The body WhatsGate gets: the gateway's relay as callback, and the number as digits only (WhatsGate's format
    /// is `7XXXXXXXXXX`; a `+` makes it reject the request).
    pub fn for_upstream(&self, relay: CallbackUrl) -> Self {
        Self {
            callback: Some(relay),
            number: self.number.as_ref().map(|n| PhoneNumber(n.digits().to_owned())),
            ..self.clone()
        }
    }

    /// A stable serialisation, for comparing two requests under one idempotency key.
    pub fn canonical_json(&self) -> String {
        // Serialising a struct of strings cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<SessionCreate, ValidationErrors> {
        SessionCreate::from_json(v.to_string().as_bytes())
    }

    fn fields(e: &ValidationErrors) -> Vec<&str> {
        e.0.iter().map(|p| p.field.as_str()).collect()
    }

    #[test]
    fn the_upstream_body_drops_the_plus_of_the_number_and_carries_the_relay() {
        let req =
            parse(json!({"name":" Shop ","callback":"https://t.example/h","auth_type":"CODE","number":"+79991234567"}))
                .expect("code body");
        let relay = CallbackUrl::parse("https://gw.example/hooks/abc").expect("relay");
        let up = serde_json::to_value(req.for_upstream(relay)).expect("json");
        assert_eq!(
            up,
            json!({"name":" Shop ","callback":"https://gw.example/hooks/abc","auth_type":"CODE","number":"79991234567"})
        );
        assert_eq!(req.number().map(PhoneNumber::as_str), Some("+79991234567"), "the stored request keeps the +");
    }

    #[test]
    fn the_documented_bodies_are_accepted_and_round_trip_unchanged() {
        let qr = json!({"name":"My WhatsApp","callback":"https://callback.my/script.handler"});
        let req = parse(qr.clone()).expect("qr body");
        assert_eq!(serde_json::to_value(&req).expect("json"), qr);
        assert_eq!(req.auth_type(), AuthType::Qr);

        let code = json!({"name":"My WhatsApp","callback":"https://callback.my/script.handler",
            "auth_type":"CODE","number":"79999999999"});
        let req = parse(code.clone()).expect("code body");
        assert_eq!(serde_json::to_value(&req).expect("json"), code);
        assert_eq!(req.number().map(PhoneNumber::digits), Some("79999999999"));
    }

    #[test]
    fn the_name_reaches_upstream_exactly_as_sent() {
        let req = parse(json!({"name":"  Shop 1 "})).expect("valid");
        assert_eq!(req.name().as_str(), "  Shop 1 ");
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let err = parse(json!({"name":"", "callback":"ftp://x", "auth_type":"CODE", "number":"12"})).unwrap_err();
        assert_eq!(fields(&err), ["name", "callback", "number"]);
        let err = parse(json!({"auth_type":"CODE"})).unwrap_err();
        assert_eq!(fields(&err), ["name", "number"]);
        let err = parse(json!({"name": 5, "auth_type": "qr"})).unwrap_err();
        assert_eq!(fields(&err), ["name", "auth_type"]);
    }

    #[test]
    fn non_objects_and_broken_json_are_reported_against_the_body() {
        for raw in ["", "[]", "\"x\"", "{", "null"] {
            let err = SessionCreate::from_json(raw.as_bytes()).unwrap_err();
            assert_eq!(fields(&err), ["body"], "{raw}");
        }
    }

    #[test]
    fn callbacks_without_host_with_user_info_or_too_long_are_rejected() {
        for bad in ["/relative", "mailto:a@b.c", "https://user:pw@host/x", "https://user@host/", "http://"] {
            assert!(CallbackUrl::parse(bad).is_err(), "{bad}");
        }
        let long = format!("https://h.example/{}", "a".repeat(CALLBACK_MAX_BYTES));
        assert!(CallbackUrl::parse(&long).is_err());
        assert!(CallbackUrl::parse("http://localhost:8080/hook?x=1").is_ok());
    }

    #[test]
    fn names_at_the_limits() {
        assert!(SessionName::parse(&"я".repeat(100)).is_ok());
        assert!(SessionName::parse(&"я".repeat(101)).is_err());
        assert!(SessionName::parse(&format!("  {}  ", "a".repeat(100))).is_ok());
        assert!(SessionName::parse("a\nb").is_err());
        assert!(SessionName::parse("a\u{7f}").is_err());
        assert!(SessionName::parse(" \t ").is_err());
    }

    proptest! {
        #[test]
        fn numbers_of_10_to_15_digits_are_accepted(plus in proptest::bool::ANY, d in "[0-9]{10,15}") {
            let s = if plus { format!("+{d}") } else { d.clone() };
            let n = PhoneNumber::parse(&s).expect("valid");
            prop_assert_eq!(n.digits(), d.as_str());
            prop_assert_eq!(n.as_str(), s.as_str());
        }

        #[test]
        fn numbers_of_other_lengths_or_characters_are_rejected(d in "[0-9]{0,9}|[0-9]{16,20}|[0-9]{5}[- a-z][0-9]{6}") {
            prop_assert!(PhoneNumber::parse(&d).is_err());
        }

        #[test]
        fn names_of_printable_text_are_accepted(s in "[^\\p{Cc}\\s][^\\p{Cc}]{0,99}") {
            prop_assume!(s.trim().chars().count() <= NAME_MAX_CHARS);
            prop_assert_eq!(SessionName::parse(&s).map(|n| n.as_str().to_owned()), Ok(s));
        }

        #[test]
        fn http_urls_with_a_host_are_accepted(host in "[a-z][a-z0-9-]{0,20}(\\.[a-z]{2,5}){0,2}", path in "(/[a-z0-9]{0,8}){0,4}") {
            let s = format!("https://{host}{path}");
            prop_assert!(CallbackUrl::parse(&s).is_ok(), "{}", s);
        }

        #[test]
        fn any_json_body_parses_or_fails_without_panicking(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = SessionCreate::from_json(&raw);
        }

        #[test]
        fn any_object_with_arbitrary_fields_yields_a_value_or_field_errors(
            name in proptest::option::of(any::<String>()),
            callback in proptest::option::of(any::<String>()),
            auth in proptest::option::of("QR|CODE|[a-z]{0,4}"),
            number in proptest::option::of("\\+?[0-9]{0,18}"),
        ) {
            let body = json!({"name": name, "callback": callback, "auth_type": auth, "number": number});
            match parse(body) {
                Ok(req) => prop_assert!(req.name().as_str().trim().chars().count() <= NAME_MAX_CHARS),
                Err(e) => prop_assert!(!e.0.is_empty()),
            }
        }
    }
}
