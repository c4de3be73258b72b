//! The bodies whose shape is declared here for the document: the handlers read and write them as JSON field by
//! field, and the answers' envelopes wrap the types of `wgate-types`.

use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{
    IntoResponses, PartialSchema, ToSchema,
    openapi::{
        RefOr,
        schema::{ObjectBuilder, OneOfBuilder, Schema, Type},
    },
};
use wgate_types::{ErrorBody, JobView, SessionView};

/// `{"result":"OK","data":<session>}`: WhatsGate's answer with the session as the tenant sees it.
#[derive(ToSchema)]
#[schema(as = SessionAnswer)]
pub struct SessionAnswer {
    /// `OK`.
    #[schema(pattern = "^OK$")]
    pub result: String,
    pub data: SessionView,
}

/// `{"result":"OK","data":<job>}`.
#[derive(ToSchema)]
#[schema(as = JobAnswer)]
pub struct JobAnswer {
    /// `OK`.
    #[schema(pattern = "^OK$")]
    pub result: String,
    pub data: JobView,
}

/// `{"result":"ACCEPTED","data":<job>}`: the job is stored and queued; poll `Location`.
#[derive(ToSchema)]
#[schema(as = Accepted)]
pub struct Accepted {
    /// `ACCEPTED`.
    #[schema(pattern = "^ACCEPTED$")]
    pub result: String,
    pub data: JobView,
}

/// The caller's sessions, one page of them.
#[derive(ToSchema)]
#[schema(as = SessionList)]
pub struct SessionList {
    /// `OK`.
    #[schema(pattern = "^OK$")]
    pub result: String,
    /// Pages of `page_cnt` sessions.
    pub pages: u64,
    /// The caller's sessions matching the filters, on every page.
    pub elements: u64,
    /// This page, from 1.
    pub page: u64,
    pub data: Vec<SessionView>,
}

/// A session's `WhatsappID` (its `unique_id`), as a string (not blank) or a whole number.
pub struct WhatsappId;

impl PartialSchema for WhatsappId {
    fn schema() -> RefOr<Schema> {
        let text =
            ObjectBuilder::new().schema_type(Type::String).pattern(Some(r"\S")).examples([json!("6345454545454")]);
        let number = ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0));
        OneOfBuilder::new()
            .item(text)
            .item(number)
            .description(Some("A session's `WhatsappID` (its `unique_id`), as a string (not blank) or a whole number."))
            .into()
    }
}

impl ToSchema for WhatsappId {}

/// `sessions-get`: every field optional; an empty body lists every session of the caller.
#[derive(ToSchema, Deserialize)]
#[schema(as = SessionsGetRequest)]
pub struct SessionsGetRequest {
    /// Only this session.
    #[serde(rename = "WhatsappID")]
    #[schema(value_type = Option<WhatsappId>)]
    pub whatsapp_id: Option<Value>,
    /// Only sessions of this name (WhatsGate's filter).
    pub name: Option<String>,
    /// Only sessions in this status (`PENDING`, `AUTH`, `READY`, `DESTROYING`).
    pub status: Option<String>,
    /// Sessions per page, 1 to 100 (default 20); a string of digits is accepted too.
    #[schema(minimum = 1, maximum = 100)]
    pub page_cnt: Option<u32>,
    /// The page, from 1 (default 1); a string of digits is accepted too.
    #[schema(value_type = Option<u64>, minimum = 1)]
    pub page: Option<u32>,
}

/// `session-delete`.
#[derive(ToSchema, Deserialize)]
#[schema(as = SessionDeleteRequest)]
pub struct SessionDeleteRequest {
    #[serde(rename = "WhatsappID")]
    #[schema(value_type = WhatsappId)]
    pub whatsapp_id: Value,
}

/// `set-hook`: the session's new callback; `null` or `""` removes it (webhooks are then acknowledged and dropped).
#[derive(ToSchema, Deserialize)]
#[schema(as = SetHookRequest)]
pub struct SetHookRequest {
    #[serde(rename = "WhatsappID")]
    #[schema(value_type = WhatsappId)]
    pub whatsapp_id: Value,
    /// An absolute `http`/`https` URL with a host, no user info, at most 2048 bytes; or `null` / `""`.
    #[schema(required = true, format = "uri", max_length = 2048)]
    pub callback: Option<String>,
}

/// `set-name`: the session's new name, validated as in session-create.
#[derive(ToSchema, Deserialize)]
#[schema(as = SetNameRequest)]
pub struct SetNameRequest {
    #[serde(rename = "WhatsappID")]
    #[schema(value_type = WhatsappId)]
    pub whatsapp_id: Value,
    /// 1 to 100 characters after trimming, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: String,
}

/// `{"result":"OK","id":<event id>}`: the tenant's callback took the webhook.
#[derive(ToSchema)]
#[schema(as = HookAck)]
pub struct HookAck {
    /// `OK`.
    #[schema(pattern = "^OK$")]
    pub result: String,
    /// The event's `id`, `null` when it had none.
    #[schema(value_type = Object)]
    pub id: serde_json::Value,
}

/// What the QR window's page shows: `status` is `loading` (the session is being created), a WhatsGate status
/// (`PENDING`, `AUTH`, `READY`), `broken` (unknown or expired link, failed job, deleted session) or
/// `unavailable` (try again); `qr_svg` / `qr_image` while a code waits to be scanned, `code` when pairing by code.
#[derive(ToSchema)]
#[schema(as = QrWindowState)]
pub struct QrWindowState {
    pub status: String,
    /// The current QR code as an SVG document.
    pub qr_svg: Option<String>,
    /// The current QR code as a `data:` image URL, when WhatsGate gives one.
    pub qr_image: Option<String>,
    /// The pairing code.
    pub code: Option<String>,
}

/// The answers of the commands that call WhatsGate, when it fails.
#[derive(IntoResponses)]
pub enum UpstreamErrors {
    /// WhatsGate rejected the request (its `name` and `message` in `details`)
    #[response(status = 422)]
    Rejected(ErrorBody),
    /// WhatsGate failed or could not be reached, also when retried; or rejected the gateway's credentials
    #[response(status = 502)]
    Failed(ErrorBody),
    /// Redis is unreachable, or the operator has not configured the WhatsGate key for the API; retry later
    #[response(status = 503)]
    Unavailable(ErrorBody),
    /// WhatsGate did not answer in time
    #[response(status = 504)]
    Timeout(ErrorBody),
}

/// The answer of a command on a session that is not the caller's (or does not exist: the same answer).
#[derive(IntoResponses)]
pub enum UnknownSession {
    /// No session with this `WhatsappID` belongs to the caller
    #[response(status = 404)]
    NotFound(ErrorBody),
}
