//! What a tenant sees of an upstream session. WhatsGate holds the gateway's relay URL as every session's callback
//! and its own guessable QR window as `qr_link`; neither is the tenant's business. Every answer that carries
//! upstream session data (job answers, sessions-get, session-delete, set-hook, set-name) goes through
//! [`present_session`], so no path can leak the relay token or WhatsGate's address.

use serde_json::Value;

/// Upstream's session object as the tenant sees it:
/// - `callback` is the tenant's own (`null` when it gave none), never the gateway's relay URL;
/// - when the session has a QR-window token (`qr_token` non-empty), `qr_link` is the gateway's
///   `{public_base}/qr/{qr_token}` and upstream's link moves to `upstream_qr_link`. Without a token (a record
///   written before the QR window existed, or expired) `qr_link` is left as upstream gave it.
///
/// Anything that is not a JSON object is returned unchanged.
pub fn present_session(
    mut data: Value,
    tenant_callback: Option<&str>,
    qr_token: Option<&str>,
    public_base: &str,
) -> Value {
    let Some(obj) = data.as_object_mut() else { return data };
    let own = tenant_callback.map_or(Value::Null, |c| Value::String(c.to_owned()));
    obj.insert("callback".to_owned(), own);
    if let Some(token) = qr_token.filter(|t| !t.is_empty()) {
        let upstream = obj.remove("qr_link").unwrap_or(Value::Null);
        obj.insert("upstream_qr_link".to_owned(), upstream);
        obj.insert("qr_link".to_owned(), Value::String(format!("{}/qr/{token}", public_base.trim_end_matches('/'))));
    }
    data
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn upstream() -> Value {
        json!({"id": 1, "unique_id": "6345454545454", "callback": "http://gw/hooks/secret-relay-token",
            "qr_link": "https://whatsgate.ru/qr/6345454545454"})
    }

    #[test]
    fn the_tenant_sees_its_own_callback_or_null_and_never_the_relay_url() {
        let v = present_session(upstream(), Some("https://t.example/cb"), None, "http://gw");
        assert_eq!(v["callback"], "https://t.example/cb");
        let v = present_session(upstream(), None, None, "http://gw");
        assert_eq!(v["callback"], Value::Null);
        assert!(!v.to_string().contains("secret-relay-token"));
    }

    #[test]
    fn with_a_qr_token_the_qr_link_is_the_gateways_and_upstreams_is_kept_aside() {
        let v = present_session(upstream(), None, Some("tok"), "http://gw/");
        assert_eq!(v["qr_link"], "http://gw/qr/tok");
        assert_eq!(v["upstream_qr_link"], "https://whatsgate.ru/qr/6345454545454");
    }

    #[test]
    fn without_a_qr_token_the_qr_link_is_left_as_upstream_gave_it() {
        for token in [None, Some("")] {
            let v = present_session(upstream(), None, token, "http://gw");
            assert_eq!(v["qr_link"], "https://whatsgate.ru/qr/6345454545454");
            assert!(v.get("upstream_qr_link").is_none());
        }
    }

    #[test]
    fn a_value_that_is_not_an_object_is_returned_unchanged() {
        assert_eq!(present_session(json!(null), Some("https://x.example"), Some("t"), "http://gw"), json!(null));
    }
}
