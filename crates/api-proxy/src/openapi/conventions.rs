//! What every operation shares, added to the document in one place: the security schemes, the `X-Request-Id`
//! parameter and header, the answers of authentication, rate limiting, bodies and an unreachable Redis, each
//! operation's scope in its description, and the links between operations.

use serde_json::{Value, json};
use utoipa::{
    Modify,
    openapi::{
        self, HeaderBuilder, Ref, RefOr, Required, ResponseBuilder,
        content::ContentBuilder,
        path::{Operation, ParameterBuilder, ParameterIn},
        schema::{Object, ObjectBuilder, Type},
        security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

use super::{API_KEY, BEARER};

/// Operations whose body may be left out.
const BODY_OPTIONAL: &[&str] = &["sessions_get"];

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
pub(super) fn add_links(doc: &mut Value) {
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
        add_response(op, "408", || {
            error_response("The body did not arrive in time; send the whole body at once and retry.", &[])
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
