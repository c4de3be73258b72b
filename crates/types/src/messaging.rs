//! The bodies of the messaging commands (`send`, `check`, `get-chats`, `seen`, `typing`, `get-media`), with
//! WhatsGate's wire names: a recipient is a number (`{"number","type":"contact|group"}`) or a chat id
//! (`{"id":"<digits>@c.us|<group>@g.us"}`); a message is text (`{"type":"text","body","quote"?}`) or media
//! (`{"type":"image|video|audio|voice|doc|document|sticker","body"?,"quote"?,"media":{"mimetype","data","filename"}}`,
//! `data` in base64). Each body is parsed once, every field at fault reported at once, into a value whose
//! `Serialize` is the body WhatsGate gets.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::{
    session::ValidationErrors,
    session_commands::{Fields, whole_number},
};

/// Longest text `body` (WhatsApp's own bound on a message).
pub const MAX_TEXT_CHARS: usize = 65_536;
/// Longest `quote` (a message id), `mimetype`, `filename` and `media_key`.
pub const MAX_SHORT_CHARS: usize = 512;

/// Whom a message goes to, as the client named it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Recipient {
    /// A phone number (digits only, a leading `+` dropped) or a group id, with its kind.
    Number {
        number: String,
        #[serde(rename = "type")]
        kind: RecipientKind,
    },
    /// A chat id: `<digits>@c.us` (contact) or `<group id>@g.us` (group).
    Id { id: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecipientKind {
    Contact,
    Group,
}

/// `type` of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    Text,
    Image,
    Video,
    Audio,
    Voice,
    Doc,
    Document,
    Sticker,
}

impl MessageKind {
    pub const ALL: [MessageKind; 8] =
        [Self::Text, Self::Image, Self::Video, Self::Audio, Self::Voice, Self::Doc, Self::Document, Self::Sticker];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Voice => "voice",
            Self::Doc => "doc",
            Self::Document => "document",
            Self::Sticker => "sticker",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A file sent with a message: `data` is the file in base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Media {
    pub mimetype: String,
    pub data: String,
    pub filename: String,
}

/// A message: text, or media with an optional caption in `body`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    #[serde(rename = "type")]
    pub kind: MessageKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<Media>,
}

/// A `send` body. `async` is passed on only when the client sent it (WhatsGate queues by default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SendMessage {
    #[serde(rename = "WhatsappID")]
    pub whatsapp_id: String,
    #[serde(rename = "async", skip_serializing_if = "Option::is_none")]
    pub asynchronous: Option<bool>,
    pub recipient: Recipient,
    pub message: Message,
}

impl SendMessage {
    pub fn parse(map: &Map<String, Value>) -> Result<Self, ValidationErrors> {
        let mut f = Fields::new(map);
        let whatsapp_id = f.whatsapp_id(true);
        let asynchronous = match f.get("async") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                f.problem("async", "must be true or false");
                None
            }
        };
        let recipient = recipient(&mut f);
        let message = message(&mut f);
        let value = match (whatsapp_id, recipient, message) {
            (Some(whatsapp_id), Some(recipient), Some(message)) => {
                Some(Self { whatsapp_id, asynchronous, recipient, message })
            }
            _ => None,
        };
        f.finish(value)
    }
}

/// A `check` body: is this number on WhatsApp?
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckNumber {
    #[serde(rename = "WhatsappID")]
    pub whatsapp_id: String,
    pub number: String,
}

impl CheckNumber {
    pub fn parse(map: &Map<String, Value>) -> Result<Self, ValidationErrors> {
        let mut f = Fields::new(map);
        let whatsapp_id = f.whatsapp_id(true);
        let number = match f.get("number") {
            None => {
                f.problem("number", "is required, e.g. 79999999999");
                None
            }
            Some(v) => phone_number(v).map_err(|p| f.problem("number", p)).ok(),
        };
        f.finish(whatsapp_id.zip(number).map(|(whatsapp_id, number)| Self { whatsapp_id, number }))
    }
}

/// A body that names only the session (`get-chats`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionOnly {
    #[serde(rename = "WhatsappID")]
    pub whatsapp_id: String,
}

impl SessionOnly {
    pub fn parse(map: &Map<String, Value>) -> Result<Self, ValidationErrors> {
        let mut f = Fields::new(map);
        let whatsapp_id = f.whatsapp_id(true);
        f.finish(whatsapp_id.map(|whatsapp_id| Self { whatsapp_id }))
    }
}

/// An `events-get` body: optional filters (`WhatsappID`, `action`, `date`) and paging over the caller's stored
/// events. An empty `action` or `date` is no filter; `WhatsappID` is read as by the session commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsGet {
    pub whatsapp_id: Option<String>,
    /// One of the actions the caller passes as known.
    pub action: Option<String>,
    /// As sent; the caller reads it as a day or a moment.
    pub date: Option<String>,
    pub page_cnt: u32,
    pub page: u32,
}

impl EventsGet {
    /// `page_cnt` when none is given, and its largest value (as WhatsGate's).
    pub const DEFAULT_PAGE_CNT: u32 = 10;
    pub const MAX_PAGE_CNT: u32 = 100;
    /// Largest `page`.
    pub const MAX_PAGE: u32 = 1_000_000;

    pub fn parse(map: &Map<String, Value>, actions: &[&str]) -> Result<Self, ValidationErrors> {
        let mut f = Fields::new(map);
        let whatsapp_id = f.whatsapp_id(false);
        let action = f.filter_text("action");
        if let Some(a) = &action
            && !actions.contains(&a.as_str())
        {
            f.problem("action", format!("must be one of {}", actions.join(", ")));
        }
        let date = f.filter_text("date");
        let page_cnt = f.positive("page_cnt", Self::DEFAULT_PAGE_CNT, Self::MAX_PAGE_CNT);
        let page = f.positive("page", 1, Self::MAX_PAGE);
        f.finish(Some(Self { whatsapp_id, action, date, page_cnt, page }))
    }
}

/// A body that names a session and a chat (`seen`, `typing`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatCommand {
    #[serde(rename = "WhatsappID")]
    pub whatsapp_id: String,
    pub recipient: Recipient,
}

impl ChatCommand {
    pub fn parse(map: &Map<String, Value>) -> Result<Self, ValidationErrors> {
        let mut f = Fields::new(map);
        let whatsapp_id = f.whatsapp_id(true);
        let recipient = recipient(&mut f);
        f.finish(whatsapp_id.zip(recipient).map(|(whatsapp_id, recipient)| Self { whatsapp_id, recipient }))
    }
}

/// A `get-media` body: the `media_key` of a message's file. WhatsGate's docs spell it `media_key`, its swagger SDKs
/// `mediaKey`: either is read, and WhatsGate gets both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetMedia {
    pub whatsapp_id: String,
    pub media_key: String,
}

impl GetMedia {
    pub fn parse(map: &Map<String, Value>) -> Result<Self, ValidationErrors> {
        let mut f = Fields::new(map);
        let whatsapp_id = f.whatsapp_id(true);
        let (path, value) = match (f_get(map, "media_key"), f_get(map, "mediaKey")) {
            (Some(a), Some(b)) if a != b => {
                f.problem("mediaKey", "differs from media_key: send one of them");
                return f.finish(None);
            }
            (Some(v), _) => ("media_key", Some(v)),
            (None, Some(v)) => ("mediaKey", Some(v)),
            (None, None) => ("media_key", None),
        };
        let media_key = short_text(&mut f, path, value, true);
        f.finish(whatsapp_id.zip(media_key).map(|(whatsapp_id, media_key)| Self { whatsapp_id, media_key }))
    }
}

impl Serialize for GetMedia {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut body = s.serialize_struct("GetMedia", 3)?;
        body.serialize_field("WhatsappID", &self.whatsapp_id)?;
        body.serialize_field("media_key", &self.media_key)?;
        body.serialize_field("mediaKey", &self.media_key)?;
        body.end()
    }
}

fn f_get<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|v| !v.is_null())
}

/// A required (or optional) string of 1..=[`MAX_SHORT_CHARS`] characters, without control characters.
fn short_text(f: &mut Fields<'_>, path: &str, value: Option<&Value>, required: bool) -> Option<String> {
    match value {
        None if required => {
            f.problem(path, "is required");
            None
        }
        None => None,
        Some(Value::String(s)) if s.trim().is_empty() => {
            f.problem(path, "must not be empty");
            None
        }
        Some(Value::String(s)) if s.chars().count() > MAX_SHORT_CHARS => {
            f.problem(path, format!("must be at most {MAX_SHORT_CHARS} characters"));
            None
        }
        Some(Value::String(s)) if s.chars().any(char::is_control) => {
            f.problem(path, "must not contain control characters");
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            f.problem(path, "must be a string");
            None
        }
    }
}

/// A phone number: digits (a JSON string or number), an optional leading `+` dropped, 5 to 15 of them.
fn phone_number(value: &Value) -> Result<String, String> {
    let text = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) if let Some(n) = whole_number(n) => n.to_string(),
        _ => return Err("must be a string of digits, e.g. \"79999999999\"".into()),
    };
    let digits = text.strip_prefix('+').unwrap_or(&text);
    if is_phone(digits) {
        Ok(digits.to_owned())
    } else {
        Err(format!("must be 5 to 15 digits (an optional leading +), e.g. 79999999999, not {text:?}"))
    }
}

fn is_phone(digits: &str) -> bool {
    (5..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Group ids are digits, or two runs of digits joined by `-` (older groups: `<creator>-<timestamp>`).
fn is_group_id(id: &str) -> bool {
    (1..=40).contains(&id.len())
        && id.split('-').count() <= 2
        && id.split('-').all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

/// `recipient`: `{"id"}` or `{"number","type"?}`.
fn recipient(f: &mut Fields<'_>) -> Option<Recipient> {
    const EXAMPLE: &str = r#"{"number":"79999999999"} or {"id":"79999999999@c.us"}"#;
    let object = match f.get("recipient") {
        None => {
            f.problem("recipient", format!("is required: {EXAMPLE}"));
            return None;
        }
        Some(Value::Object(o)) => o,
        Some(_) => {
            f.problem("recipient", format!("must be an object: {EXAMPLE}"));
            return None;
        }
    };
    if let Some(id) = f_get(object, "id") {
        let Value::String(id) = id else {
            f.problem("recipient.id", "must be a string");
            return None;
        };
        let id = id.trim();
        let ok = match (id.strip_suffix("@c.us"), id.strip_suffix("@g.us")) {
            (Some(number), _) => is_phone(number),
            (_, Some(group)) => is_group_id(group),
            _ => false,
        };
        if !ok {
            f.problem(
                "recipient.id",
                "must be a chat id: 5 to 15 digits then @c.us (contact), or a group id then @g.us",
            );
            return None;
        }
        return Some(Recipient::Id { id: id.to_owned() });
    }
    let kind = match f_get(object, "type") {
        None => RecipientKind::Contact,
        Some(Value::String(s)) if s == "contact" => RecipientKind::Contact,
        Some(Value::String(s)) if s == "group" => RecipientKind::Group,
        Some(_) => {
            f.problem("recipient.type", "must be contact or group");
            return None;
        }
    };
    let Some(number) = f_get(object, "number") else {
        f.problem("recipient", format!("needs a number or an id: {EXAMPLE}"));
        return None;
    };
    let number = match kind {
        RecipientKind::Contact => phone_number(number).map_err(|p| f.problem("recipient.number", p)).ok()?,
        RecipientKind::Group => match number {
            Value::String(s) if is_group_id(s.trim()) => s.trim().to_owned(),
            _ => {
                f.problem("recipient.number", "must be a group id (digits, or two runs of digits joined by -)");
                return None;
            }
        },
    };
    Some(Recipient::Number { number, kind })
}

/// `message`: text, or media with its file.
fn message(f: &mut Fields<'_>) -> Option<Message> {
    let object = match f.get("message") {
        None => {
            f.problem("message", r#"is required, e.g. {"type":"text","body":"Hello"}"#);
            return None;
        }
        Some(Value::Object(o)) => o,
        Some(_) => {
            f.problem("message", r#"must be an object, e.g. {"type":"text","body":"Hello"}"#);
            return None;
        }
    };
    let kind = match f_get(object, "type") {
        None => Some(MessageKind::Text),
        Some(Value::String(s)) => MessageKind::parse(s).or_else(|| {
            let all: Vec<&str> = MessageKind::ALL.iter().map(|k| k.as_str()).collect();
            f.problem("message.type", format!("must be one of {}", all.join(", ")));
            None
        }),
        Some(_) => {
            f.problem("message.type", "must be a string");
            None
        }
    };
    let body = match f_get(object, "body") {
        None => None,
        Some(Value::String(s)) if s.chars().count() > MAX_TEXT_CHARS => {
            f.problem("message.body", format!("must be at most {MAX_TEXT_CHARS} characters"));
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            f.problem("message.body", "must be a string");
            None
        }
    };
    let quote = short_text(f, "message.quote", f_get(object, "quote"), false);
    let kind = kind?;
    if kind == MessageKind::Text {
        if object.contains_key("media") && f_get(object, "media").is_some() {
            f.problem("message.media", "is only for media messages: set message.type to image, doc, ...");
            return None;
        }
        if body.as_deref().is_none_or(|b| b.trim().is_empty()) {
            if f_get(object, "body").is_none_or(Value::is_string) {
                f.problem("message.body", "is required for a text message and must not be empty");
            }
            return None;
        }
        return Some(Message { kind, body, quote, media: None });
    }
    let media = match f_get(object, "media") {
        None => {
            f.problem("message.media", format!("is required for a message of type {}", kind.as_str()));
            return None;
        }
        Some(Value::Object(m)) => m,
        Some(_) => {
            f.problem("message.media", "must be an object {mimetype, data, filename}");
            return None;
        }
    };
    let mimetype = short_text(f, "message.media.mimetype", f_get(media, "mimetype"), true);
    if let Some(m) = &mimetype
        && !m.contains('/')
    {
        f.problem("message.media.mimetype", "must be a MIME type such as image/png");
    }
    let filename = short_text(f, "message.media.filename", f_get(media, "filename"), true);
    let data = match f_get(media, "data") {
        None => {
            f.problem("message.media.data", "is required: the file in base64");
            None
        }
        Some(Value::String(s)) if is_base64(s) => Some(s.clone()),
        Some(_) => {
            f.problem("message.media.data", "must be the file in base64 (standard alphabet, padded)");
            None
        }
    };
    let media = Media { mimetype: mimetype?, data: data?, filename: filename? };
    Some(Message { kind, body, quote, media: Some(media) })
}

/// Standard base64 with padding, not empty (checked without decoding: the file may be large).
fn is_base64(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !b.len().is_multiple_of(4) {
        return false;
    }
    let pad = b.iter().rev().take_while(|&&c| c == b'=').count();
    pad <= 2 && b[..b.len() - pad].iter().all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::session_commands::test_support::{fields, problems_of as problems};

    #[test]
    fn a_text_send_reaches_upstream_in_the_sdks_wire_form() {
        let body = json!({"WhatsappID": "6345454545454", "async": false,
            "recipient": {"number": "+79990001122"}, "message": {"body": "Hi"}});
        let send = SendMessage::parse(&fields(body)).unwrap();
        assert_eq!(
            serde_json::to_value(&send).unwrap(),
            json!({"WhatsappID": "6345454545454", "async": false,
                "recipient": {"number": "79990001122", "type": "contact"},
                "message": {"type": "text", "body": "Hi"}})
        );
        let by_id = json!({"WhatsappID": 1, "recipient": {"id": "1203630-1612@g.us"},
            "message": {"type": "doc", "media": {"mimetype": "application/pdf", "data": "aGk=", "filename": "a.pdf"}}});
        let send = SendMessage::parse(&fields(by_id)).unwrap();
        assert_eq!(send.asynchronous, None, "async is passed on only when sent");
        assert_eq!(send.recipient, Recipient::Id { id: "1203630-1612@g.us".into() });
        assert_eq!(send.message.media.unwrap().filename, "a.pdf");
    }

    #[test]
    fn each_field_at_fault_is_reported_at_once() {
        let e = SendMessage::parse(&fields(json!({"async": "yes"}))).unwrap_err();
        assert_eq!(problems(e), vec!["WhatsappID", "async", "recipient", "message"]);
        for (body, field) in [
            (json!({"recipient": {"number": "12ab"}}), "recipient.number"),
            (json!({"recipient": {"id": "79990001122"}}), "recipient.id"),
            (json!({"recipient": {"number": "1", "type": "channel"}}), "recipient.type"),
            (json!({"recipient": {"number": "x-1", "type": "group"}}), "recipient.number"),
            (json!({"recipient": {}}), "recipient"),
            (json!({"message": {"type": "text", "body": " "}}), "message.body"),
            (json!({"message": {"type": "gif", "body": "x"}}), "message.type"),
            (json!({"message": {"type": "image"}}), "message.media"),
            (
                json!({"message": {"type": "image", "media": {"mimetype": "image/png", "filename": "a", "data": "a*b="}}}),
                "message.media.data",
            ),
            (
                json!({"message": {"type": "image", "media": {"mimetype": "png", "filename": "a", "data": "aGk="}}}),
                "message.media.mimetype",
            ),
        ] {
            let mut full = json!({"WhatsappID": "1", "recipient": {"number": "79990001122"}, "message": {"body": "x"}});
            for (k, v) in body.as_object().unwrap() {
                full[k] = v.clone();
            }
            let e = SendMessage::parse(&fields(full)).expect_err("invalid");
            assert_eq!(problems(e), vec![field.to_owned()], "{body}");
        }
    }

    #[test]
    fn the_other_commands_need_their_fields() {
        assert_eq!(problems(CheckNumber::parse(&fields(json!({}))).unwrap_err()), vec!["WhatsappID", "number"]);
        assert_eq!(
            CheckNumber::parse(&fields(json!({"WhatsappID": "1", "number": 79990001122u64}))).unwrap().number,
            "79990001122"
        );
        assert_eq!(problems(ChatCommand::parse(&fields(json!({"WhatsappID": "1"}))).unwrap_err()), vec!["recipient"]);
        assert_eq!(
            problems(GetMedia::parse(&fields(json!({"WhatsappID": "1", "media_key": 5}))).unwrap_err()),
            vec!["media_key"]
        );
        assert_eq!(problems(SessionOnly::parse(&fields(json!({}))).unwrap_err()), vec!["WhatsappID"]);
        let sdk = GetMedia::parse(&fields(json!({"WhatsappID": "1", "mediaKey": "k"}))).unwrap();
        assert_eq!(serde_json::to_value(&sdk).unwrap(), json!({"WhatsappID": "1", "media_key": "k", "mediaKey": "k"}));
        let both = json!({"WhatsappID": "1", "mediaKey": "k", "media_key": "j"});
        assert_eq!(problems(GetMedia::parse(&fields(both)).unwrap_err()), vec!["mediaKey"]);
    }

    proptest! {
        #[test]
        fn numbers_of_5_to_15_digits_are_recipients_and_others_are_not(n in "[0-9]{1,20}", plus in any::<bool>()) {
            let text = if plus { format!("+{n}") } else { n.clone() };
            let body = json!({"WhatsappID": "1", "recipient": {"number": text}});
            let parsed = ChatCommand::parse(&fields(body));
            prop_assert_eq!(parsed.is_ok(), (5..=15).contains(&n.len()));
            if let Ok(c) = parsed {
                prop_assert_eq!(c.recipient, Recipient::Number { number: n, kind: RecipientKind::Contact });
            }
        }

        #[test]
        fn any_bytes_in_base64_are_accepted_as_media(bytes in proptest::collection::vec(any::<u8>(), 1..64)) {
            use std::fmt::Write as _;
            // A small standard base64 encoder, so this crate needs no dependency for its test.
            const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let mut s = String::new();
            for c in bytes.chunks(3) {
                let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
                for i in 0..4 {
                    if i <= c.len() { let _ = write!(s, "{}", A[(n >> (18 - 6 * i) & 63) as usize] as char); } else { s.push('='); }
                }
            }
            prop_assert!(is_base64(&s), "{}", s);
        }
    }

    #[test]
    fn events_get_reads_filters_and_paging_and_names_every_bad_field() {
        let map = |v: Value| v.as_object().cloned().unwrap();
        let q = EventsGet::parse(&map(json!({"WhatsappID": 7, "action": " ack ", "date": "", "page": "2"})), &["ack"]);
        assert_eq!(
            q.unwrap(),
            EventsGet { whatsapp_id: Some("7".into()), action: Some("ack".into()), date: None, page_cnt: 10, page: 2 }
        );
        let bad = EventsGet::parse(&map(json!({"action": "nope", "page_cnt": 101, "page": 0})), &["ack", "message"]);
        let fields: Vec<String> = bad.unwrap_err().0.iter().map(|p| p.field.clone()).collect();
        assert_eq!(fields, ["action", "page_cnt", "page"]);
    }
}
