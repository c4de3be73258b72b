//! The API document: OpenAPI 3.1, generated from the handlers' `#[utoipa::path]` attributes and the schemas of the
//! types they read and answer. Served at `GET /openapi.json` (no token), printed by `wgate openapi`, and kept in
//! `docs/openapi.json` (a test fails when that copy differs from what this module generates).
//!
//! A new route is one more line in [`ApiDoc`]'s `paths(...)` (and a `#[utoipa::path]` on its handler). What every
//! route shares is added here by [`Conventions`], so each handler declares only its own answers:
//! - every answer carries `X-Request-Id`, and every operation takes one;
//! - an authenticated operation (one with `security`) may answer 401, 403 and 429, and carries the rate-limit
//!   headers;
//! - an operation with a body may answer 400, 413 and 415;
//! - every operation but the document itself may answer 503 (Redis unreachable).

use actix_web::{HttpResponse, http::header};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{
    IntoResponses, Modify, OpenApi, PartialSchema, ToSchema,
    openapi::{
        self, HeaderBuilder, Ref, RefOr, Required, ResponseBuilder,
        content::ContentBuilder,
        path::{Operation, ParameterBuilder, ParameterIn},
        schema::{Object, ObjectBuilder, OneOfBuilder, Type},
        security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};
use wgate_types::{ErrorBody, JobView, SessionView};

/// Operations whose body may be left out.
const BODY_OPTIONAL: &[&str] = &["sessions_get"];

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
        crate::qr::window_page,
        crate::qr::window_state,
        crate::routes::hooks::relay_hook,
        openapi_json,
    ),
    components(schemas(ErrorBody, SessionView, JobView)),
    modifiers(&Conventions),
    tags(
        (name = "sessions", description = "Creating WhatsApp sessions and the commands on them"),
        (name = "jobs", description = "The job behind each session-create"),
        (name = "qr-window", description = "The gateway's QR window, for tenants' customers (no token: the link is the capability)"),
        (name = "webhooks", description = "WhatsGate's webhooks, relayed to the tenant's callback"),
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
    add_links(&mut doc);
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

// ---- bodies that are shaped here (the handlers read them field by field) ----

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
    fn schema() -> RefOr<openapi::schema::Schema> {
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

// ---- what every operation shares ----

/// Adds the security schemes, and to every operation the parameters, answers and headers it shares with the
/// others (see the module documentation).
pub struct Conventions;

fn error_response(description: &str, headers: &[(&str, &str)]) -> RefOr<openapi::Response> {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    let mut builder = ResponseBuilder::new().description(description).content("application/json", content);
    for (name, what) in headers {
        builder = builder.header(
            *name,
            HeaderBuilder::new().schema(Object::with_type(Type::String)).description(Some(*what)).build(),
        );
    }
    RefOr::T(builder.build())
}

fn add_response(op: &mut Operation, status: &str, response: impl FnOnce() -> RefOr<openapi::Response>) {
    op.responses.responses.entry(status.to_owned()).or_insert_with(response);
}

fn optional_header(description: &str) -> openapi::Header {
    HeaderBuilder::new().schema(Object::with_type(Type::String)).description(Some(description)).build()
}

impl Modify for Conventions {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT whose `sub` is the tenant id, with `exp` and `aud`; `scope` (space separated) grants \
                         `sessions:write`, `sessions:read`, `admin`; without `scope` every scope but `admin`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            API_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Api-Key",
                "The same JWT, where a WhatsGate client puts its key.",
            ))),
        );

        for item in doc.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.post].into_iter().flatten() {
                apply(op);
            }
        }
    }
}

/// What a client can do next with an answer (OpenAPI links; Schemathesis follows them in its stateful phase):
/// `(operation, status, link name, link)`. Written as JSON: utoipa 5.5's `Link` names its fields in snake case.
fn links() -> Vec<(&'static str, &'static str, &'static str, Value)> {
    let job = |target: &str| {
        json!({"operationId": target, "parameters": {"id": "$response.header.X-Job-Id"},
            "description": "The job of this answer"})
    };
    let session = |target: &str, body: Value| json!({"operationId": target, "requestBody": body, "description": "The session of this answer"});
    let created = "$response.body#/data/unique_id";
    let mut links = Vec::new();
    for status in ["200", "202"] {
        links.push(("session_create", status, "GetJob", job("get_job")));
        links.push(("session_create", status, "ReplayJob", job("replay_job")));
    }
    links.push(("replay_job", "202", "GetJob", job("get_job")));
    links.push(("session_create", "200", "ListSession", session("sessions_get", json!({"WhatsappID": created}))));
    links.push((
        "session_create",
        "200",
        "RenameSession",
        session("set_name", json!({"WhatsappID": created, "name": "renamed"})),
    ));
    links.push((
        "session_create",
        "200",
        "SetHook",
        session("set_hook", json!({"WhatsappID": created, "callback": "https://callback.example/other"})),
    ));
    links.push(("session_create", "200", "DeleteSession", session("session_delete", json!({"WhatsappID": created}))));
    links
}

/// Adds [`links`] to the operations' answers.
fn add_links(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for operation in paths.values_mut().filter_map(Value::as_object_mut).flat_map(|i| i.values_mut()) {
        let id = operation.get("operationId").and_then(Value::as_str).unwrap_or_default().to_owned();
        for (from, status, name, link) in links() {
            if from == id
                && let Some(response) =
                    operation.pointer_mut(&format!("/responses/{status}")).and_then(Value::as_object_mut)
            {
                let links = response.entry("links").or_insert_with(|| json!({}));
                if let Some(links) = links.as_object_mut() {
                    links.insert(name.to_owned(), link);
                }
            }
        }
    }
}

/// The scope an operation's security requirements name (the same in each).
fn scope_of(op: &Operation) -> Option<String> {
    let requirements = serde_json::to_value(op.security.as_ref()?).ok()?;
    let scopes = requirements.get(0)?.as_object()?.values().next()?.as_array()?.clone();
    Some(scopes.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "))
}

fn apply(op: &mut Operation) {
    let authenticated = op.security.as_ref().is_some_and(|s| !s.is_empty());
    if let Some(scope) = scope_of(op).filter(|s| !s.is_empty()) {
        let line = format!("Scope: `{scope}`.");
        op.description = Some(match op.description.take() {
            Some(d) => format!("{d}\n\n{line}"),
            None => line,
        });
    }
    let meta = op.tags.as_ref().is_some_and(|t| t.iter().any(|t| t == "meta"));
    let parameters = op.parameters.get_or_insert_with(Vec::new);
    parameters.push(
        ParameterBuilder::new()
            .name("X-Request-Id")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Your id for this request, 1 to 128 characters of letters, digits, '.', '_' and '-'; echoed in the \
                 answer and carried into the job's logs. Another value is replaced by a fresh id.",
            ))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build(),
    );

    if op.operation_id.as_deref().is_some_and(|id| BODY_OPTIONAL.contains(&id))
        && let Some(body) = op.request_body.as_mut()
    {
        body.required = Some(Required::False);
    }
    if op.request_body.is_some() {
        add_response(op, "400", || {
            error_response("The body (or a header) is invalid: `details` names each field at fault. Correct it.", &[])
        });
        add_response(op, "413", || error_response("The body is too large; send a smaller one.", &[]));
        add_response(op, "415", || {
            error_response("The body must be JSON: send `Content-Type: application/json`.", &[])
        });
    }
    if authenticated {
        add_response(op, "401", || {
            error_response(
                "The token is missing, malformed, expired, not yet valid, for another audience or issuer, or not \
                 signed by a configured key. Get a fresh token.",
                &[("WWW-Authenticate", "`Bearer error=\"invalid_token\", error_description=\"...\"`")],
            )
        });
        add_response(op, "403", || {
            error_response(
                "The token lacks this operation's scope; ask for a token that grants it.",
                &[("WWW-Authenticate", "`Bearer error=\"insufficient_scope\", scope=\"...\"`")],
            )
        });
        add_response(op, "429", || {
            error_response(
                "The tenant's rate limit is used up; retry after `Retry-After` seconds.",
                &[("Retry-After", "Whole seconds to wait, at least 1")],
            )
        });
    }
    if !meta {
        add_response(op, "503", || {
            error_response(
                "The job store (Redis) is unreachable; nothing was done. Retry after `Retry-After` seconds.",
                &[("Retry-After", "Seconds to wait")],
            )
        });
    }

    for response in op.responses.responses.values_mut() {
        let RefOr::T(response) = response else { continue };
        response.headers.insert(
            "X-Request-Id".to_owned(),
            HeaderBuilder::new()
                .schema(Object::with_type(Type::String))
                .description(Some("The request's id: the client's when it sent a valid one, else a fresh ULID."))
                .build(),
        );
        if authenticated {
            response.headers.entry("RateLimit-Policy".to_owned()).or_insert_with(|| {
                optional_header(
                    "The tenant's bucket for this operation, e.g. `\"write\";q=20;w=2` (IETF draft \
                     RateLimit headers); absent when the token was refused before the tenant was known.",
                )
            });
            response
                .headers
                .entry("RateLimit".to_owned())
                .or_insert_with(|| optional_header("What is left of that bucket now, e.g. `\"write\";r=19;t=1`."));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMITTED: &str = include_str!("../../../docs/openapi.json");

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
        let mut authenticated = 0;
        for (path, item) in &doc.paths.paths {
            for op in [&item.get, &item.post].into_iter().flatten() {
                let Some(security) = &op.security else { continue };
                let value = serde_json::to_value(security).unwrap_or_default();
                let text = value.to_string();
                assert!(text.contains(BEARER) && text.contains(API_KEY), "{path}: {text}");
                authenticated += 1;
            }
        }
        assert_eq!(authenticated, 7, "the seven tenant operations are authenticated");
    }
}
