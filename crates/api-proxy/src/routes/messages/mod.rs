//! The messaging commands, scoped to the caller's own sessions: `send`, `check`, `get-chats`, `seen`, `typing` and
//! `get-media`, at WhatsGate's paths under `/api/v1/` and under `/v1/` (the base of WhatsGate's official SDKs), with
//! its bodies and answers. A `WhatsappID` that is not one of the caller's sessions answers exactly as an unknown one.
//!
//! A send is never repeated upstream unless the failed call surely never reached WhatsGate; with an
//! `Idempotency-Key` the same key and body get the first answer again for 24 h ([`send`]). Each session's sends are
//! paced in Redis (at most `send_per_minute`, at least `WGATE_SEND_MIN_INTERVAL_MS` plus jitter apart), shared by
//! every API replica, against the bans WhatsApp gives numbers that send in bursts.

mod send;

use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, ResponseError, http::header, web};
use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};
use wgate_types::{ChatCommand, CheckNumber, GetMedia, Scope, SessionOnly, TenantId, ValidationErrors};
use wgate_upstream::UpstreamError;

use super::{
    authorize,
    sessions::{owned, request::body_object_within, upstream_of},
};
use crate::{
    error::ApiError,
    limits::Bucket,
    routes::session_create::MAX_BODY_BYTES,
    state::AppState,
    upstream::{Repeat, api_error, is_not_found},
};

/// One messaging command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    Send,
    Check,
    GetChats,
    Seen,
    Typing,
    GetMedia,
}

impl Command {
    /// WhatsGate's name of the command (its path, and its `command` label in the metrics).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Send => "send",
            Self::Check => "check",
            Self::GetChats => "get-chats",
            Self::Seen => "seen",
            Self::Typing => "typing",
            Self::GetMedia => "get-media",
        }
    }

    /// `messages:send` for what acts in a chat, `messages:read` for what only reads.
    fn scope(self) -> Scope {
        match self {
            Self::Send | Self::Seen | Self::Typing => Scope::MessagesSend,
            Self::Check | Self::GetChats | Self::GetMedia => Scope::MessagesRead,
        }
    }

    fn bucket(self) -> Bucket {
        match self.scope() {
            Scope::MessagesSend => Bucket::Write,
            _ => Bucket::Read,
        }
    }
}

/// The `outcome` label of `wgate_messages_total`, from the answer's status.
fn outcome(answer: &Result<HttpResponse, ApiError>) -> &'static str {
    let status = match answer {
        Ok(res) if res.headers().contains_key(send::REPLAYED) => return "replayed",
        Ok(res) => res.status().as_u16(),
        Err(ApiError::SendPaced { .. }) => return "paced",
        Err(ApiError::UpstreamRejected { .. } | ApiError::UpstreamNotFound { .. }) => return "rejected",
        Err(e) => e.status_code().as_u16(),
    };
    match status {
        200..=299 => "ok",
        400 | 408 | 413 | 415 => "invalid",
        401 | 403 | 404 => "denied",
        409 | 422 => "conflict",
        429 => "limited",
        502 | 504 => "failed",
        503 => "unavailable",
        _ => "error",
    }
}

/// Runs one command and counts its answer.
async fn run(
    command: Command,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let answer = handle(command, &req, payload, &state).await;
    state.metrics.messages.with_label_values(&[command.name(), outcome(&answer)]).inc();
    answer
}

async fn handle(
    command: Command,
    req: &HttpRequest,
    payload: web::Payload,
    data: &web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let state: &AppState = data;
    let principal = authorize(req, state, command.scope(), command.bucket()).await?;
    upstream_of(state)?;
    let limit = if command == Command::Send { state.messaging.media_max_bytes } else { MAX_BODY_BYTES };
    let fields = body_object_within(req, state, payload, limit).await?;
    let tenant = &principal.tenant;
    match command {
        Command::Send => send::send(req, data, tenant, &fields).await,
        Command::Check => pass(state, tenant, command, CheckNumber::parse, &fields, |c| &c.whatsapp_id).await,
        Command::GetChats => pass(state, tenant, command, SessionOnly::parse, &fields, |c| &c.whatsapp_id).await,
        Command::Seen | Command::Typing => {
            pass(state, tenant, command, ChatCommand::parse, &fields, |c| &c.whatsapp_id).await
        }
        Command::GetMedia => stream_media(state, tenant, &fields).await,
    }
}

/// A command whose repetition changes nothing: parsed, owned, sent (retried while WhatsGate was unreachable), and
/// WhatsGate's answer passed through.
async fn pass<T: Serialize + Send + Sync>(
    state: &AppState,
    tenant: &TenantId,
    command: Command,
    parse: fn(&Map<String, Value>) -> Result<T, ValidationErrors>,
    fields: &Map<String, Value>,
    whatsapp_id: fn(&T) -> &String,
) -> Result<HttpResponse, ApiError> {
    let body = parse(fields)?;
    owned(state, tenant, whatsapp_id(&body)).await?;
    let upstream = upstream_of(state)?;
    let name = command.name();
    let answer = upstream
        .run(Repeat::Safe, |u| {
            let body = &body;
            async move { u.call(name, body).await }
        })
        .await;
    Ok(HttpResponse::Ok().json(answer.map_err(upstream_error)?))
}

/// How a messaging command's upstream failure reaches the tenant: as for the session commands, except that
/// WhatsGate's "not found" may name a media key or a chat as well as the session, so ownership is kept and the
/// answer is a 404 with WhatsGate's words.
pub(crate) fn upstream_error(e: UpstreamError) -> ApiError {
    if is_not_found(&e) {
        return ApiError::UpstreamNotFound { name: e.name().to_owned(), message: e.message().to_owned() };
    }
    api_error(e)
}

/// `get-media`: WhatsGate's answer (the file in base64 inside JSON, possibly large) streamed through as it
/// arrives, never held whole.
async fn stream_media(
    state: &AppState,
    tenant: &TenantId,
    fields: &Map<String, Value>,
) -> Result<HttpResponse, ApiError> {
    let body = GetMedia::parse(fields)?;
    owned(state, tenant, &body.whatsapp_id).await?;
    let upstream = upstream_of(state)?;
    let response = upstream
        .run(Repeat::Safe, |u| {
            let body = &body;
            async move { u.open("get-media", body).await }
        })
        .await
        .map_err(upstream_error)?;
    let started = Instant::now();
    let stream = futures::stream::unfold(Some(response), move |response| async move {
        let mut response = response?;
        match response.chunk().await {
            Ok(Some(chunk)) => Some((Ok::<Bytes, std::io::Error>(chunk), Some(response))),
            Ok(None) => None,
            Err(e) => {
                // The client sees a cut answer (no valid JSON); the log says why.
                tracing::warn!(error = %e, elapsed_ms = started.elapsed().as_millis() as u64, "get-media stream broke");
                Some((Err(std::io::Error::other("upstream stream broke")), None))
            }
        }
    });
    Ok(HttpResponse::Ok().insert_header((header::CONTENT_TYPE, "application/json")).streaming(stream))
}

/// A resource that answers other methods than POST with 405.
fn post_only(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(crate::fallback::method_not_allowed("POST"))
}

/// One handler with its operation in the document.
macro_rules! handler {
    ($command:ident, $name:ident, $path:literal, $scope:literal, $request:ty, $answer:ty, $summary:literal,
     $description:expr, [$($params:tt)*]) => {
        #[utoipa::path(
            post,
            path = $path,
            tag = "messages",
            operation_id = stringify!($name),
            summary = $summary,
            description = $description,
            params($($params)*),
            request_body(content = $request, content_type = "application/json"),
            responses(
                (status = 200, description = "WhatsGate's answer", body = $answer),
                crate::openapi::MessagingErrors,
                crate::openapi::UpstreamErrors,
            ),
            security(("bearer" = [$scope]), ("api_key" = [$scope])),
        )]
        pub(crate) async fn $name(
            req: HttpRequest,
            payload: web::Payload,
            state: web::Data<AppState>,
        ) -> Result<HttpResponse, ApiError> {
            run(Command::$command, req, payload, state).await
        }
    };
}

/// Each command's two handlers (under `/api/v1/` and `/v1/`) and their routes.
macro_rules! commands {
    ($($command:ident, $api:ident, $v1:ident, $path:literal, $v1_path:literal, $scope:literal, $request:ty,
       $answer:ty, $summary:literal, $description:literal, [$($params:tt)*];)*) => {$(
        handler!($command, $api, $path, $scope, $request, $answer, $summary, $description, [$($params)*]);
        handler!($command, $v1, $v1_path, $scope, $request, $answer, $summary,
            concat!($description, " The same command at the base path of WhatsGate's official SDKs."),
            [$($params)*]);
    )*

    /// The messaging routes, under both base paths.
    pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
        $(
            cfg.service(post_only($path).route(web::post().to($api)))
                .service(post_only($v1_path).route(web::post().to($v1)));
        )*
    }
    };
}

commands! {
    Send, send, send_v1, "/api/v1/send", "/v1/send", "messages:send",
        crate::openapi::SendRequest, crate::openapi::SendAnswer,
        "Send a message",
        "Sends a text or a file from one of the caller's sessions. Sends are paced per session (at most `send_per_minute`, spaced apart with jitter); over the pace is 429 with `Retry-After`. A send is never repeated upstream unless it surely never left the gateway; with an `Idempotency-Key` the same key and body get the first answer again for 24 h (header `Idempotent-Replayed: true`) instead of a second message. `async` (WhatsGate's default `true`) queues the message at WhatsGate: the answer is then `{\"result\":{}}` and the message arrives as `sent`/`ack` webhooks.",
        [("Idempotency-Key" = Option<String>, Header, description = "1 to 255 printable ASCII characters. The same \
            key and body from the same tenant within 24 h get the first send's answer again (`Idempotent-Replayed: \
            true`) without a second message; 409 while the first is in flight (or when its outcome was lost: the \
            message says which), 422 with another body.",
            min_length = 1, max_length = 255, pattern = "^[ -~]{1,255}$", example = "order-4711")];
    Check, check, check_v1, "/api/v1/check", "/v1/check", "messages:read",
        crate::openapi::CheckRequest, crate::openapi::CheckAnswer,
        "Check a number",
        "Whether a phone number is on WhatsApp, asked through one of the caller's sessions.", [];
    GetChats, get_chats, get_chats_v1, "/api/v1/get-chats", "/v1/get-chats", "messages:read",
        crate::openapi::SessionOnlyRequest, crate::openapi::ChatsAnswer,
        "List a session's chats",
        "The chats of one of the caller's sessions, as WhatsGate answers them.", [];
    Seen, seen, seen_v1, "/api/v1/seen", "/v1/seen", "messages:send",
        crate::openapi::ChatRequest, crate::openapi::OkAnswer,
        "Mark a chat as read",
        "Marks the chat's messages as read in one of the caller's sessions.", [];
    Typing, typing, typing_v1, "/api/v1/typing", "/v1/typing", "messages:send",
        crate::openapi::ChatRequest, crate::openapi::OkAnswer,
        "Show typing",
        "Shows \"typing...\" in the chat for a few seconds, from one of the caller's sessions.", [];
    GetMedia, get_media, get_media_v1, "/api/v1/get-media", "/v1/get-media", "messages:read",
        crate::openapi::GetMediaRequest, crate::openapi::MediaAnswer,
        "Download a message's file",
        "The file of a message (by its `media_key`) in base64, streamed through as WhatsGate sends it.", [];
}
