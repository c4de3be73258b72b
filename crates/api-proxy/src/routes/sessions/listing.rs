//! `sessions-get` over the caller's own sessions: each looked up upstream by its id, a few at a time, and
//! presented to its tenant.

use futures::{StreamExt, TryStreamExt, stream};
use serde_json::Value;
use wgate_types::{SessionsList, TenantId, unique_id_text};
use wgate_upstream::{ErrorClass, SessionsQuery, UpstreamError};

use super::presentation;
use crate::{
    error::ApiError,
    present::present_session,
    state::AppState,
    upstream::{Repeat, SessionUpstream, api_error, is_not_found},
};

/// The caller's sessions are looked up one by one (`sessions-get {WhatsappID}` each), this many at a time: what a
/// listing costs upstream follows the caller's own sessions, never the size of the shared WhatsGate account (no
/// walk over other tenants' pages), and the whole listing runs under one deadline (`WGATE_UPSTREAM_TIMEOUT_MS`).
pub const FETCH_CONCURRENCY: usize = 8;

/// One listed session as its tenant sees it.
pub(super) async fn present_listed(state: &AppState, tenant: &TenantId, session: Value) -> Result<Value, ApiError> {
    let owner = match unique_id_of(&session) {
        Some(id) => state.store.session_owner(tenant, &id).await?.filter(|o| &o.tenant == tenant),
        None => None,
    };
    let (callback, qr_token) = match &owner {
        Some(owner) => presentation(state, owner).await?,
        None => (None, None),
    };
    Ok(present_session(session, callback.as_deref(), qr_token.as_deref(), &state.public_base))
}

/// One `sessions-get {WhatsappID, name?, status?}` per owned session, a few at a time. A session WhatsGate says,
/// well-formed, it no longer has (an OK answer whose `data` list lacks it, or its `NotFound` error) is dropped,
/// and, when no filter could explain its absence, forgotten. Any other failure fails the listing and forgets
/// nothing.
pub(super) async fn fetch_each(
    state: &AppState,
    upstream: &SessionUpstream,
    list: &SessionsList,
    tenant: &TenantId,
    owned: Vec<String>,
) -> Result<Vec<Value>, ApiError> {
    let found: Vec<Option<Value>> = stream::iter(owned.into_iter().map(|id| async move {
        let query = query(list, id.clone());
        let answer = upstream
            .run(Repeat::Safe, |u| {
                let query = query.clone();
                async move { u.call("sessions-get", &query).await }
            })
            .await;
        let session = match answer {
            Ok(page) => match page.get("data") {
                Some(Value::Array(data)) => {
                    data.iter().find(|s| unique_id_of(s).as_deref() == Some(id.as_str())).cloned()
                }
                _ => {
                    return Err(api_error(UpstreamError::new(
                        ErrorClass::Unavailable,
                        "UnexpectedAnswer",
                        "sessions-get answered OK without a data list",
                        true,
                    )));
                }
            },
            Err(e) if is_not_found(&e) => None,
            Err(e) => return Err(api_error(e)),
        };
        if session.is_none() && !list.filtered() {
            tracing::info!(session.unique_id = %id, "upstream no longer knows the session; forgetting it");
            state.store.forget_session(tenant, &id).await?;
        }
        Ok(session)
    }))
    .buffer_unordered(FETCH_CONCURRENCY)
    .try_collect()
    .await?;
    Ok(found.into_iter().flatten().collect())
}

/// The upstream query for one of the caller's sessions, with the caller's filters.
fn query(list: &SessionsList, whatsapp_id: String) -> SessionsQuery {
    SessionsQuery {
        whatsapp_id: Some(whatsapp_id),
        name: list.name.clone(),
        status: list.status.clone(),
        page_cnt: None,
        page: None,
    }
}

/// A session's `unique_id`, which WhatsGate writes as a string (a number is read too).
pub(super) fn unique_id_of(session: &Value) -> Option<String> {
    session.get("unique_id").and_then(unique_id_text)
}

/// Upstream's numeric `id` (the listing order); a session without one sorts last.
pub(super) fn upstream_id(session: &Value) -> u64 {
    match session.get("id") {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(u64::MAX),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(u64::MAX),
        _ => u64::MAX,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn sessions_sort_by_upstream_id_and_those_without_one_last() {
        assert!(upstream_id(&json!({"id": 2})) < upstream_id(&json!({"id": "10"})));
        assert_eq!(upstream_id(&json!({})), u64::MAX);
        assert_eq!(unique_id_of(&json!({"unique_id": 6345454545454u64})).as_deref(), Some("6345454545454"));
    }
}
