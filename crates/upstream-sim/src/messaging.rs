//! WhatsGate's messaging side as the simulator plays it: the bodies of `send`, `check`, `seen`, `typing`,
//! `get-chats` and `get-media` parsed and validated, the message and chat objects they answer, and the media
//! a session holds.
//!
//! Wire names follow WhatsGate's swagger SDKs: a recipient is `{"id":"<digits>@c.us|@g.us"}` or
//! `{"number":"79999999999","type":"contact|group"}`; a message is `{"type":"text","body","quote"?}` or
//! `{"type":"image|video|audio|voice|doc|document|sticker","body"?,"quote"?,"media":{"mimetype","data","filename"}}`
//! with `data` in base64. A message object is `ResponseMessage`
//! `{id, ack, has_media, media_key, body, type, timestamp, from, to, is_forwarded}`.
//!
//! What WhatsApp would decide is made deterministic here: every number of 5 to 15 digits is on WhatsApp
//! except those ending in `404`; media bytes are a reproducible pseudo-random stream of the size the test chose.

use std::collections::VecDeque;

use base64::Engine as _;
use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::api::ApiError;
use crate::session::splitmix64;

/// Largest `send` request body (base64 media included).
pub const SEND_BODY_LIMIT: usize = 32 * 1024 * 1024;
/// Largest media an incoming message may carry.
pub const MAX_MEDIA_SIZE: u64 = 64 * 1024 * 1024;
/// Chats a session remembers for `get-chats` (the least recently active go first).
pub const CHATS_PER_SESSION: usize = 200;
/// Media a session remembers for `get-media` (the oldest go first).
pub const MEDIA_PER_SESSION: usize = 1000;

/// `check` answers `false` for numbers with this ending, so tests can reach both answers.
pub const UNREGISTERED_SUFFIX: &str = "404";

/// A validated `send` body.
#[derive(Debug)]
pub struct Outgoing {
    pub chat: ChatId,
    pub body: String,
    pub quote: Option<String>,
    /// `None` for text.
    pub media: Option<OutgoingMedia>,
    pub asynchronous: bool,
}

/// Media attached to a send: its WhatsApp message type and decoded size.
#[derive(Debug)]
pub struct OutgoingMedia {
    pub message_type: &'static str,
    pub mimetype: String,
    pub filename: String,
    pub size: usize,
}

/// A chat: `<digits>@c.us` (contact) or `<id>@g.us` (group).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatId(String);

impl ChatId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_group(&self) -> bool {
        self.0.ends_with("@g.us")
    }

    /// A contact chat from a phone number or an id (`79990001122` or `79990001122@c.us`).
    pub fn contact(text: &str) -> Result<Self, String> {
        let number = text.strip_suffix("@c.us").unwrap_or(text);
        if is_phone(number) { Ok(Self(format!("{number}@c.us"))) } else { Err(format!("{text} is not a phone number")) }
    }
}

fn is_phone(number: &str) -> bool {
    (5..=15).contains(&number.len()) && number.bytes().all(|b| b.is_ascii_digit())
}

/// Group ids are digits, optionally two parts joined by `-` (older groups: `<creator>-<timestamp>`).
fn is_group_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 40
        && id.split('-').count() <= 2
        && id.split('-').all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

/// A string, or a whole number written as one.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) if n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// `recipient`: `{"id"}` or `{"number","type"?}`.
pub fn parse_recipient(fields: &Map<String, Value>) -> Result<ChatId, ApiError> {
    let recipient = match fields.get("recipient") {
        None | Some(Value::Null) => return Err(ApiError::validation("recipient is required.")),
        Some(Value::Object(recipient)) => recipient,
        Some(_) => {
            return Err(ApiError::validation(
                r#"recipient must be an object: {"number":"79999999999"} or {"id":"79999999999@c.us"}."#,
            ));
        }
    };
    if let Some(id) = recipient.get("id").filter(|v| !v.is_null()) {
        let id = text(id).ok_or_else(|| ApiError::validation("recipient.id must be a string."))?;
        if let Some(group) = id.strip_suffix("@g.us") {
            if is_group_id(group) {
                return Ok(ChatId(id));
            }
        } else if let Some(number) = id.strip_suffix("@c.us")
            && is_phone(number)
        {
            return Ok(ChatId(id));
        }
        return Err(ApiError::validation(format!(
            "recipient.id {id} is not a WhatsApp id: digits followed by @c.us (contact) or @g.us (group)."
        )));
    }
    let number = match recipient.get("number").filter(|v| !v.is_null()) {
        None => return Err(ApiError::validation("recipient needs a number or an id.")),
        Some(number) => text(number).ok_or_else(|| ApiError::validation("recipient.number must be a string."))?,
    };
    let group = match recipient.get("type").filter(|v| !v.is_null()) {
        None => false,
        Some(Value::String(kind)) if kind == "contact" => false,
        Some(Value::String(kind)) if kind == "group" => true,
        Some(_) => return Err(ApiError::validation("recipient.type must be contact or group.")),
    };
    if group {
        if is_group_id(&number) {
            return Ok(ChatId(format!("{number}@g.us")));
        }
        return Err(ApiError::validation(format!("recipient.number {number} is not a group id.")));
    }
    ChatId::contact(&number).map_err(|_| {
        ApiError::validation(format!("recipient.number must be 5 to 15 digits, e.g. 79999999999, not {number}."))
    })
}

/// The WhatsApp message type of a WhatsGate `message.type` carrying media.
fn media_type(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "image" => "image",
        "video" => "video",
        "audio" => "audio",
        "voice" | "ptt" => "ptt",
        "doc" | "document" => "document",
        "sticker" => "sticker",
        _ => return None,
    })
}

fn optional_string(fields: &Map<String, Value>, key: &str, path: &str) -> Result<Option<String>, ApiError> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::validation(format!("{path} must be a string."))),
    }
}

fn required_string(fields: &Map<String, Value>, key: &str, path: &str) -> Result<String, ApiError> {
    match optional_string(fields, key, path)? {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(ApiError::validation(format!("{path} is required."))),
    }
}

/// The whole `send` body, after `WhatsappID`.
pub fn parse_send(fields: &Map<String, Value>) -> Result<Outgoing, ApiError> {
    // WhatsGate queues sends unless told otherwise.
    let asynchronous = match fields.get("async") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::validation("async must be true or false.")),
    };
    let chat = parse_recipient(fields)?;
    let message = match fields.get("message") {
        None | Some(Value::Null) => return Err(ApiError::validation("message is required.")),
        Some(Value::Object(message)) => message,
        Some(_) => return Err(ApiError::validation(r#"message must be an object, e.g. {"type":"text","body":"Hi"}."#)),
    };
    let kind = optional_string(message, "type", "message.type")?.unwrap_or_else(|| "text".to_owned());
    let quote = optional_string(message, "quote", "message.quote")?.filter(|q| !q.is_empty());
    if kind == "text" {
        let body = required_string(message, "body", "message.body")?;
        return Ok(Outgoing { chat, body, quote, media: None, asynchronous });
    }
    let Some(message_type) = media_type(&kind) else {
        return Err(ApiError::validation(format!(
            "message.type must be one of text, image, video, audio, voice, doc, document, sticker, not {kind}."
        )));
    };
    let media = match message.get("media") {
        Some(Value::Object(media)) => media,
        None | Some(Value::Null) => {
            return Err(ApiError::validation(format!("message.media is required for a message of type {kind}.")));
        }
        Some(_) => return Err(ApiError::validation("message.media must be an object {mimetype, data, filename}.")),
    };
    let mimetype = required_string(media, "mimetype", "message.media.mimetype")?;
    let filename = required_string(media, "filename", "message.media.filename")?;
    let data = required_string(media, "data", "message.media.data")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| ApiError::validation("message.media.data must be the file in base64."))?;
    let body = optional_string(message, "body", "message.body")?.unwrap_or_default();
    Ok(Outgoing {
        chat,
        body,
        quote,
        media: Some(OutgoingMedia { message_type, mimetype, filename, size: decoded.len() }),
        asynchronous,
    })
}

/// `number` of `check`: digits only.
pub fn parse_number(fields: &Map<String, Value>) -> Result<String, ApiError> {
    let number = match fields.get("number").filter(|v| !v.is_null()) {
        None => return Err(ApiError::validation("number is required, e.g. 79999999999.")),
        Some(value) => text(value).ok_or_else(|| ApiError::validation("number must be a string of digits."))?,
    };
    if is_phone(&number) {
        Ok(number)
    } else {
        Err(ApiError::validation(format!("number must be 5 to 15 digits, e.g. 79999999999, not {number}.")))
    }
}

/// Whether a number is on WhatsApp, as the simulator decides it.
pub fn is_registered(number: &str) -> bool {
    !number.ends_with(UNREGISTERED_SUFFIX)
}

/// `ResponseMessage`, in the SDKs' key order.
#[derive(Clone, Debug, Serialize)]
pub struct MessageView {
    pub id: String,
    pub ack: u8,
    pub has_media: bool,
    pub media_key: Option<String>,
    pub body: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub timestamp: i64,
    pub from: String,
    pub to: String,
    pub is_forwarded: bool,
}

impl MessageView {
    /// This message as event data, with another `ack`.
    pub fn with_ack(&self, ack: u8) -> EventData {
        let mut view = self.clone();
        view.ack = ack;
        EventData::Message(view)
    }
}

/// An event's `event_data`: a message keeps its documented key order.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum EventData {
    Json(Value),
    Message(MessageView),
}

impl From<Value> for EventData {
    fn from(value: Value) -> Self {
        EventData::Json(value)
    }
}

/// The answer of a synchronous `send`: `{"result": ResponseMessage}`.
#[derive(Serialize)]
pub struct SendAnswer<'a> {
    pub result: &'a MessageView,
}

/// A message id as WhatsApp serializes it: `<fromMe>_<chat>_<hex>`.
pub fn message_id(from_me: bool, chat: &str, random: u64) -> String {
    format!("{from_me}_{chat}_3EB0{random:016X}")
}

/// A media key: 32 bytes in base64, like WhatsApp's.
pub fn media_key(state: &mut u64) -> String {
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(8) {
        chunk.copy_from_slice(&splitmix64(state).to_le_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A media file a session can serve through `get-media`; its bytes are generated from `seed`.
#[derive(Clone, Debug)]
pub struct MediaFile {
    pub key: String,
    pub mimetype: String,
    pub filename: String,
    pub size: u64,
    pub seed: u64,
}

#[derive(Debug)]
struct Chat {
    id: ChatId,
    unread: u32,
    timestamp: i64,
}

/// What a session remembers of its conversations; empty (and allocation-free) until it messages.
#[derive(Debug, Default)]
pub struct Messaging {
    chats: Vec<Chat>,
    media: VecDeque<MediaFile>,
}

impl Messaging {
    /// A message went to or came from `chat` at `timestamp`.
    pub fn touch(&mut self, chat: &ChatId, incoming: bool, timestamp: i64) {
        let position = self.chats.iter().position(|c| &c.id == chat);
        let entry = match position {
            Some(i) => &mut self.chats[i],
            None => {
                if self.chats.len() >= CHATS_PER_SESSION
                    && let Some(oldest) = self.chats.iter().enumerate().min_by_key(|(_, c)| c.timestamp).map(|(i, _)| i)
                {
                    self.chats.swap_remove(oldest);
                }
                self.chats.push(Chat { id: chat.clone(), unread: 0, timestamp });
                let last = self.chats.len() - 1;
                &mut self.chats[last]
            }
        };
        entry.timestamp = timestamp;
        if incoming {
            entry.unread = entry.unread.saturating_add(1);
        }
    }

    /// `seen`: the chat's messages are read.
    pub fn seen(&mut self, chat: &ChatId) {
        if let Some(entry) = self.chats.iter_mut().find(|c| &c.id == chat) {
            entry.unread = 0;
        }
    }

    pub fn add_media(&mut self, file: MediaFile) {
        if self.media.len() >= MEDIA_PER_SESSION {
            self.media.pop_front();
        }
        self.media.push_back(file);
    }

    pub fn media(&self, key: &str) -> Option<&MediaFile> {
        self.media.iter().find(|m| m.key == key)
    }

    /// `ResponseChat` objects, most recently active first.
    pub fn chats(&self, own_wid: &str) -> Vec<Value> {
        let mut chats: Vec<&Chat> = self.chats.iter().collect();
        chats.sort_by_key(|c| std::cmp::Reverse(c.timestamp));
        chats.into_iter().map(|chat| chat_view(chat, own_wid)).collect()
    }
}

fn chat_view(chat: &Chat, own_wid: &str) -> Value {
    let id = chat.id.as_str();
    let local = id.split('@').next().unwrap_or(id);
    let mut view = json!({
        "id": id,
        "name": if chat.id.is_group() { format!("Group {local}") } else { format!("+{local}") },
        "is_group": chat.id.is_group(),
        "is_read_only": false,
        "unread_count": chat.unread,
        "timestamp": chat.timestamp,
        "pinned": false,
        "is_muted": false,
        "mute_expiration": 0,
    });
    if chat.id.is_group() {
        // The session's own device created the group; one more member, derived from the group id.
        let member = format!("7999{:07}@c.us", local.bytes().fold(0u64, |h, b| h * 31 + u64::from(b)) % 10_000_000);
        view["group_metadata"] = json!({
            "id": id,
            "creation": chat.timestamp,
            "owner": own_wid,
            "size": 2,
            "participants": [
                { "id": own_wid, "is_admin": true, "is_super_admin": true },
                { "id": member, "is_admin": false, "is_super_admin": false },
            ],
        });
    }
    view
}

/// The WhatsApp message type of an incoming media file, from its MIME type.
pub fn type_of_mimetype(mimetype: &str) -> &'static str {
    match mimetype.split('/').next() {
        Some("image") => "image",
        Some("video") => "video",
        Some("audio") => "audio",
        _ => "document",
    }
}

/// Raw bytes per generated piece: a multiple of 3 (base64 pieces then join up) and of 8 (one draw per 8 bytes).
const PIECE: usize = 48 * 1024;

/// The `get-media` answer, `{"result":"OK","media":{"mimetype","filename","data":"<base64>"}}`, streamed piece
/// by piece: a file of any size costs one piece of memory.
pub fn media_answer(file: &MediaFile) -> impl Stream<Item = Result<Bytes, std::io::Error>> + use<> {
    let head = format!(
        r#"{{"result":"OK","media":{{"mimetype":{},"filename":{},"data":""#,
        Value::String(file.mimetype.clone()),
        Value::String(file.filename.clone())
    );
    let size = file.size;
    let pieces = futures::stream::unfold((0u64, file.seed), move |(done, mut state)| async move {
        if done >= size {
            return None;
        }
        let len = usize::try_from((size - done).min(PIECE as u64)).unwrap_or(PIECE);
        let mut raw = vec![0u8; len.div_ceil(8) * 8];
        for chunk in raw.chunks_mut(8) {
            chunk.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
        }
        raw.truncate(len);
        let encoded = base64::engine::general_purpose::STANDARD.encode(&raw);
        Some((Ok(Bytes::from(encoded)), (done + len as u64, state)))
    });
    futures::stream::once(async move { Ok(Bytes::from(head)) })
        .chain(pieces)
        .chain(futures::stream::once(async { Ok(Bytes::from_static(br#""}}"#)) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("an object")
    }

    #[test]
    fn a_recipient_is_an_id_or_a_number_with_a_type() {
        let chat = |v: Value| parse_recipient(&fields(json!({ "recipient": v })));
        assert_eq!(chat(json!({"number": "79990001122"})).expect("contact").as_str(), "79990001122@c.us");
        assert_eq!(chat(json!({"number": 79990001122u64})).expect("number").as_str(), "79990001122@c.us");
        assert_eq!(chat(json!({"number": "120363", "type": "group"})).expect("group").as_str(), "120363@g.us");
        assert_eq!(chat(json!({"id": "7999-1600000000@g.us"})).expect("old group").as_str(), "7999-1600000000@g.us");
        for bad in [
            json!({}),
            json!({"number": "+7999"}),
            json!({"id": "7999"}),
            json!({"number": "1", "type": "x"}),
            json!("7"),
        ] {
            assert_eq!(chat(bad.clone()).expect_err("invalid").name(), "ValidationError", "{bad}");
        }
    }

    #[test]
    fn a_media_message_needs_its_media_in_base64() {
        let send = |m: Value| parse_send(&fields(json!({ "recipient": {"number": "79990001122"}, "message": m })));
        let ok = send(json!({"type": "doc", "media": {"mimetype": "text/plain", "data": "aGk=", "filename": "a.txt"}}))
            .expect("a document");
        assert_eq!(ok.media.as_ref().map(|m| (m.message_type, m.size)), Some(("document", 2)));
        assert!(ok.asynchronous, "sends are asynchronous unless told otherwise");
        for bad in [
            json!({"type": "image"}),
            json!({"type": "image", "media": {"mimetype": "image/png", "data": "not base64!", "filename": "a"}}),
            json!({"type": "image", "media": {"data": "aGk=", "filename": "a"}}),
            json!({"type": "gif", "body": "x"}),
            json!({"type": "text"}),
            json!({"body": ""}),
        ] {
            assert_eq!(send(bad.clone()).expect_err("invalid").name(), "ValidationError", "{bad}");
        }
    }

    #[test]
    fn chats_are_bounded_and_seen_clears_the_unread_count() {
        let mut messaging = Messaging::default();
        for n in 0..(CHATS_PER_SESSION as i64 + 1) {
            let chat = ChatId::contact(&format!("7999{n:07}")).expect("a number");
            messaging.touch(&chat, true, n);
        }
        let chats = messaging.chats("79990000000@c.us");
        assert_eq!(chats.len(), CHATS_PER_SESSION);
        assert_eq!(chats[0]["unread_count"], 1);
        let newest = ChatId::contact(chats[0]["id"].as_str().expect("id")).expect("contact");
        messaging.seen(&newest);
        assert_eq!(messaging.chats("w")[0]["unread_count"], 0);
    }
}
