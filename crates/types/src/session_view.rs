//! The shape of a WhatsGate session as the gateway serves it to its tenant. The gateway passes WhatsGate's session
//! object through (as JSON, so fields WhatsGate adds reach the tenant too), changing only `callback` (the tenant's
//! own) and `qr_link` (the gateway's QR window); this type describes that object in the API document.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A session's `unique_id` as WhatsGate writes it: a non-empty string, or a number (read as its digits).
pub fn unique_id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A WhatsApp session. More fields may appear: WhatsGate's own are passed through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = Session, example = json!({"id": 151, "name": "My WhatsApp", "unique_id": "6345454545454",
    "status": "PENDING", "callback": "https://callback.example/hook", "date_add": "2022-10-11 19:30:14",
    "qr": null, "status_name": "Initialization", "pushname": null, "wid": null,
    "qr_link": "https://gateway.example/qr/01JDQ3M8X4K2V7T9B6N5R0C1PZKx8f3vQ2mZ5nR7tY1wA9cE",
    "upstream_qr_link": "https://whatsgate.ru/qr/6345454545454"}))]
pub struct SessionView {
    /// WhatsGate's numeric id of the session.
    pub id: u64,
    pub name: String,
    /// The session's `WhatsappID`, used by the session commands.
    pub unique_id: String,
    /// `PENDING` (initialization), `AUTH` (waiting for the device), `READY` (working), `DESTROYING` (deleting).
    pub status: String,
    /// The tenant's own callback, `null` when it gave none.
    #[serde(default)]
    pub callback: Option<String>,
    /// When WhatsGate created the session.
    #[serde(default)]
    pub date_add: Option<String>,
    /// The current QR text while the session waits for a scan.
    #[serde(default)]
    pub qr: Option<String>,
    /// The pairing code, for `auth_type` `CODE`.
    #[serde(default)]
    pub code: Option<String>,
    /// WhatsGate's description of `status`.
    #[serde(default)]
    pub status_name: Option<String>,
    #[serde(default)]
    pub pushname: Option<String>,
    #[serde(default)]
    pub wid: Option<String>,
    /// The gateway's QR window for this session (`{public URL}/qr/{token}`), to open or embed in an iframe.
    #[serde(default)]
    pub qr_link: Option<String>,
    /// WhatsGate's own QR window, kept aside.
    #[serde(default)]
    pub upstream_qr_link: Option<String>,
}
