//! The bodies of the messaging commands as the document declares them: WhatsGate's shapes (and the wire names of
//! its official SDKs). The handlers read them field by field through the constructors of `wgate-types`.

use serde_json::Value;
use utoipa::{IntoResponses, ToSchema};
use wgate_types::ErrorBody;

use super::WhatsappId;

/// A contact by phone number, or a group by id (`type` `group`).
#[derive(ToSchema, serde::Serialize)]
#[schema(as = RecipientByNumber)]
pub struct RecipientByNumber {
    /// 5 to 15 digits (a leading `+` is dropped) for a contact; a group id for a group.
    #[schema(example = "79999999999")]
    pub number: String,
    /// `contact` (default) or `group`.
    #[serde(rename = "type")]
    #[schema(pattern = "^(contact|group)$")]
    pub kind: Option<String>,
}

/// A chat by its id: `<digits>@c.us` (contact) or `<group id>@g.us` (group).
#[derive(ToSchema, serde::Serialize)]
#[schema(as = RecipientById)]
pub struct RecipientById {
    #[schema(example = "79999999999@c.us")]
    pub id: String,
}

/// Whom a message goes to: a number, or a chat id.
#[derive(ToSchema, serde::Serialize)]
#[serde(untagged)]
#[schema(as = Recipient)]
pub enum Recipient {
    Number(RecipientByNumber),
    Id(RecipientById),
}

/// A file: `data` is its bytes in base64 (standard alphabet, padded).
#[derive(ToSchema)]
#[schema(as = MessageMedia)]
pub struct MessageMedia {
    #[schema(example = "image/png")]
    pub mimetype: String,
    pub data: String,
    #[schema(example = "photo.png")]
    pub filename: String,
}

/// A message: text (`body` required), or a file (`media` required, `body` its caption).
#[derive(ToSchema)]
#[schema(as = OutgoingMessage)]
pub struct OutgoingMessage {
    /// `text` (default), `image`, `video`, `audio`, `voice`, `doc`, `document` or `sticker`.
    #[schema(rename = "type", pattern = "^(text|image|video|audio|voice|doc|document|sticker)$")]
    pub kind: Option<String>,
    /// The text, or a file's caption; at most 65536 characters.
    #[schema(example = "Hello!")]
    pub body: Option<String>,
    /// The id of a message this one answers.
    pub quote: Option<String>,
    pub media: Option<MessageMedia>,
}

/// `send`.
#[derive(ToSchema)]
#[schema(as = SendRequest)]
pub struct SendRequest {
    #[schema(rename = "WhatsappID", value_type = WhatsappId)]
    pub whatsapp_id: Value,
    /// `true` (WhatsGate's default): queued at WhatsGate, the message arrives as `sent`/`ack` webhooks and the
    /// answer is `{"result":{}}`; `false`: the answer is the sent message.
    #[schema(rename = "async")]
    pub asynchronous: Option<bool>,
    pub recipient: Recipient,
    pub message: OutgoingMessage,
}

/// `check`.
#[derive(ToSchema)]
#[schema(as = CheckRequest)]
pub struct CheckRequest {
    #[schema(rename = "WhatsappID", value_type = WhatsappId)]
    pub whatsapp_id: Value,
    /// 5 to 15 digits.
    #[schema(example = "79999999999")]
    pub number: String,
}

/// A body that names only the session (`get-chats`).
#[derive(ToSchema)]
#[schema(as = SessionOnlyRequest)]
pub struct SessionOnlyRequest {
    #[schema(rename = "WhatsappID", value_type = WhatsappId)]
    pub whatsapp_id: Value,
}

/// A body that names a session and a chat (`seen`, `typing`).
#[derive(ToSchema)]
#[schema(as = ChatRequest)]
pub struct ChatRequest {
    #[schema(rename = "WhatsappID", value_type = WhatsappId)]
    pub whatsapp_id: Value,
    pub recipient: Recipient,
}

/// `get-media`.
#[derive(ToSchema)]
#[schema(as = GetMediaRequest)]
pub struct GetMediaRequest {
    #[schema(rename = "WhatsappID", value_type = WhatsappId)]
    pub whatsapp_id: Value,
    /// The `media_key` of a message with a file.
    pub media_key: Option<String>,
    /// The same, as WhatsGate's SDKs name it; send one of the two.
    #[schema(rename = "mediaKey")]
    pub media_key_sdk: Option<String>,
}

/// `send`'s answer: `{"result": <the sent message>}`, or `{"result":{}}` when queued (`async`).
#[derive(ToSchema)]
#[schema(as = SendAnswer)]
pub struct SendAnswer {
    /// WhatsGate's message object (`id`, `ack`, `has_media`, `media_key`, `body`, `type`, `timestamp`, `from`,
    /// `to`, `is_forwarded`), empty when queued.
    #[schema(value_type = Object)]
    pub result: Value,
}

/// `{"result":"OK","data":true|false}`.
#[derive(ToSchema)]
#[schema(as = CheckAnswer)]
pub struct CheckAnswer {
    #[schema(pattern = "^OK$")]
    pub result: String,
    /// Whether the number is on WhatsApp.
    pub data: bool,
}

/// `{"result":"OK","data":[chat...]}`.
#[derive(ToSchema)]
#[schema(as = ChatsAnswer)]
pub struct ChatsAnswer {
    #[schema(pattern = "^OK$")]
    pub result: String,
    /// WhatsGate's chat objects.
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<Value>,
}

/// `{"result":"OK"}`.
#[derive(ToSchema)]
#[schema(as = OkAnswer)]
pub struct OkAnswer {
    #[schema(pattern = "^OK$")]
    pub result: String,
}

/// `{"result":"OK","media":{"mimetype","filename","data"}}`, `data` in base64.
#[derive(ToSchema)]
#[schema(as = MediaAnswer)]
pub struct MediaAnswer {
    #[schema(pattern = "^OK$")]
    pub result: String,
    #[schema(value_type = Object)]
    pub media: Value,
}

/// The answers of a messaging command that concern its session or its key.
#[derive(IntoResponses)]
pub enum MessagingErrors {
    /// No session with this `WhatsappID` belongs to the caller; or WhatsGate does not know what the request names
    /// (a media key)
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// `send`: a send with this `Idempotency-Key` is still in flight, or its outcome is unknown
    #[response(status = 409)]
    InFlight(ErrorBody),
}
