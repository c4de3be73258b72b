//! The API document: OpenAPI 3.1, generated from the handlers' `#[utoipa::path]` attributes and the schemas of the
//! types they read and answer. Served at `GET /openapi.json` (no token), printed by `wgate openapi`, and kept in
//! `docs/openapi.json` (a test fails when that copy differs from what this module generates).
//!
//! A new route is one more line in [`ApiDoc`]'s `paths(...)` (and a `#[utoipa::path]` on its handler). What every
//! route shares is added here by [`Conventions`], so each handler declares only its own answers:
//! - every answer carries `X-Request-Id`, and every operation takes one;
//! - an authenticated operation (one with `security`) may answer 401, 403 and 429, and carries the rate-limit
//!   headers;
//! - an operation with a body may answer 400, 408 (the body did not arrive in time), 413 and 415;
//! - every operation but the document itself may answer 503 (Redis unreachable).

mod conventions;
mod messaging;
mod schemas;

use actix_web::{HttpResponse, http::header};
use serde_json::Value;
use utoipa::OpenApi;
use wgate_types::{ErrorBody, JobView, SessionView};

pub use self::{conventions::Conventions, messaging::*, schemas::*};

/// Security scheme names; each operation lists both, with its scope.
pub const BEARER: &str = "bearer";
pub const API_KEY: &str = "api_key";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "wgate",
        description = "A multi-tenant gateway with a durable job queue in front of the WhatsGate WhatsApp API. \
            Paths and bodies are WhatsGate's: a WhatsGate client works by changing its base URL and putting a \
            wgate token where its WhatsGate key was. See docs/API.md for a guide with examples.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        crate::routes::session_create::session_create,
        crate::routes::jobs::get_job,
        crate::routes::jobs::replay_job,
        crate::routes::sessions::sessions_get,
        crate::routes::sessions::session_delete,
        crate::routes::sessions::set_hook,
        crate::routes::sessions::set_name,
        crate::routes::qr::window_page,
        crate::routes::qr::window_state,
        crate::routes::hooks::relay_hook,
        crate::routes::messages::send,
        crate::routes::messages::send_v1,
        crate::routes::messages::check,
        crate::routes::messages::check_v1,
        crate::routes::messages::get_chats,
        crate::routes::messages::get_chats_v1,
        crate::routes::messages::seen,
        crate::routes::messages::seen_v1,
        crate::routes::messages::typing,
        crate::routes::messages::typing_v1,
        crate::routes::messages::get_media,
        crate::routes::messages::get_media_v1,
        crate::routes::webhooks::webhook_secret,
        crate::routes::webhooks::list_deliveries,
        crate::routes::webhooks::replay_delivery,
        crate::routes::webhooks::events_get,
        crate::routes::webhooks::events_get_v1,
        openapi_json,
    ),
    components(schemas(ErrorBody, SessionView, JobView)),
    modifiers(&Conventions),
    tags(
        (name = "sessions", description = "Creating WhatsApp sessions and the commands on them"),
        (name = "messages", description = "Messages through the caller's sessions, paced against bans; also under `/v1/`, the base path of WhatsGate's SDKs"),
        (name = "jobs", description = "The job behind each session-create"),
        (name = "qr-window", description = "The gateway's QR window, for tenants' customers (no token: the link is the capability)"),
        (name = "webhooks", description = "WhatsGate's webhooks: stored, then delivered to the tenant signed (Standard \
            Webhooks) with retries; the deliveries, their replay, and events-get for polling"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

/// Response headers every answer of that kind carries (`X-Request-Id` always; the job's headers and the
/// rate-limit headers on success; `Retry-After` on 429): declared `required`, so a client (and Schemathesis) may
/// rely on them. utoipa's header model has no `required`, so it is set on the JSON.
fn mark_required_headers(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else { return };
    for operation in paths.values_mut().filter_map(|i| i.as_object_mut()).flat_map(|i| i.values_mut()) {
        let Some(responses) = operation.get_mut("responses").and_then(|r| r.as_object_mut()) else { continue };
        for (status, response) in responses.iter_mut() {
            let Some(headers) = response.get_mut("headers").and_then(|h| h.as_object_mut()) else { continue };
            for (name, header) in headers.iter_mut() {
                let always = name == "X-Request-Id"
                    || (status.starts_with('2')
                        && matches!(name.as_str(), "X-Job-Id" | "Location" | "RateLimit" | "RateLimit-Policy"))
                    || (status == "429" && name == "Retry-After");
                if always && let Some(header) = header.as_object_mut() {
                    header.insert("required".to_owned(), serde_json::Value::Bool(true));
                }
            }
        }
    }
}

/// The document as served and as committed: pretty JSON and a final newline.
pub fn document_json() -> String {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    mark_required_headers(&mut doc);
    conventions::add_links(&mut doc);
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json",
        body = Object)),
)]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().insert_header((header::CONTENT_TYPE, "application/json")).body(document_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMITTED: &str = include_str!("../../../../docs/openapi.json");

    #[test]
    fn the_committed_document_is_the_one_the_code_generates() {
        assert!(
            COMMITTED == document_json(),
            "docs/openapi.json differs from the document the code generates. Regenerate it with\n\
             \n    cargo run -q -- openapi > docs/openapi.json\n\nand commit it (review the diff: it is the API's \
             change as clients see it)."
        );
    }

    #[test]
    fn every_tenant_operation_names_both_schemes_with_one_scope() {
        let doc = ApiDoc::openapi();
        let (mut authenticated, mut tenant_operations) = (0, 0);
        for (path, item) in &doc.paths.paths {
            for op in [&item.get, &item.post].into_iter().flatten() {
                if path.starts_with("/api/") || path.starts_with("/v1/") {
                    tenant_operations += 1;
                }
                let Some(security) = &op.security else { continue };
                let value = serde_json::to_value(security).unwrap_or_default();
                let text = value.to_string();
                assert!(text.contains(BEARER) && text.contains(API_KEY), "{path}: {text}");
                authenticated += 1;
            }
        }
        assert_eq!(authenticated, tenant_operations, "every tenant operation (under /api/ and /v1/) is authenticated");
        assert!(authenticated >= 12, "the tenant operations are all in the document: {authenticated}");
    }
}
