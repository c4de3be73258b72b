//! The tenant's side of webhooks: its signing secret, its deliveries (listed and replayed), and its stored
//! events for polling (`events-get`, paged as WhatsGate pages its own).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use wgate_queue::{DELIVERY_STATUSES, DeliveryFilter, DeliveryRecord, DeliveryReplay};
use wgate_types::{ErrorBody, EventsGet, FieldProblem, Scope, TenantId, ValidationErrors};

use super::{
    authorize,
    sessions::{owned, request::body_object},
};
use crate::{error::ApiError, fallback::method_not_allowed, limits::Bucket, state::AppState};

/// The webhook routes: the secret, the deliveries, and events-get on both base paths.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/v1/webhooks/secret")
            .route(web::get().to(webhook_secret))
            .default_service(method_not_allowed("GET")),
    )
    .service(
        web::resource("/api/v1/webhooks/deliveries")
            .route(web::get().to(list_deliveries))
            .default_service(method_not_allowed("GET")),
    )
    .service(
        web::resource("/api/v1/webhooks/deliveries/{id}/replay")
            .route(web::post().to(replay_delivery))
            .default_service(method_not_allowed("POST")),
    );
    cfg.service(
        web::resource("/api/v1/events-get")
            .route(web::post().to(events_get))
            .default_service(method_not_allowed("POST")),
    )
    .service(
        web::resource("/v1/events-get")
            .route(web::post().to(events_get_v1))
            .default_service(method_not_allowed("POST")),
    );
}

/// Deliveries per page of the listing.
pub(crate) const DELIVERIES_PAGE: usize = 50;

fn invalid(field: &str, problem: impl Into<String>) -> ApiError {
    ApiError::Validation(ValidationErrors(vec![FieldProblem::new(field, problem.into())]))
}

async fn secrets_of(state: &AppState, tenant: &TenantId) -> Result<Vec<String>, ApiError> {
    let tenants = state.tenants.current();
    let configured = tenants.get(tenant).and_then(|o| o.webhook_secret.as_ref());
    let secrets = state.signing_key.secrets(tenant, configured, || state.store.webhook_signing_key()).await?;
    Ok(secrets.iter().map(wgate_webhooks::WebhookSecret::to_text).collect())
}

/// The caller's webhook signing secrets: `secret` verifies every delivery; during a rotation `secrets` lists
/// every active one (each delivery carries a signature per secret).
#[derive(Serialize, ToSchema)]
pub(crate) struct WebhookSecretData {
    /// `whsec_` + base64: give it to a Standard Webhooks library as is.
    pub secret: String,
    /// Every active secret, newest first.
    pub secrets: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct WebhookSecretAnswer {
    #[schema(pattern = "^OK$")]
    pub result: String,
    pub data: WebhookSecretData,
}

/// The caller's webhook signing secret.
///
/// Deliveries carry Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`); verify
/// them with this secret and any Standard Webhooks library.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/secret",
    tag = "webhooks",
    operation_id = "webhook_secret",
    responses((status = 200, description = "The caller's secret(s)", body = WebhookSecretAnswer)),
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])),
)]
pub(crate) async fn webhook_secret(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let principal = authorize(&req, &state, Scope::Admin, Bucket::Read).await?;
    let secrets = secrets_of(&state, &principal.tenant).await?;
    let secret = secrets.first().cloned().unwrap_or_default();
    Ok(HttpResponse::Ok()
        .json(WebhookSecretAnswer { result: "OK".into(), data: WebhookSecretData { secret, secrets } }))
}

/// One delivery of a stored event to the tenant.
#[derive(Serialize, ToSchema)]
pub(crate) struct DeliveryView {
    /// The delivery id: the `webhook-id` header of every attempt.
    pub id: String,
    /// The session (`whatsapp_id` of the event).
    pub session: String,
    /// The event's `event_action`.
    pub event: String,
    /// WhatsGate's event id.
    pub event_id: String,
    /// `queued`, `delivering`, `retrying`, `delivered`, `dead` (out of attempts, or the endpoint answered 410
    /// Gone or is refused; replayable), `stored` (kept for events-get only: the tenant's `webhook_events` leave
    /// it out, or no endpoint was set).
    pub status: String,
    pub attempts: u32,
    /// RFC 3339.
    pub received_at: String,
    pub updated_at: String,
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// The HTTP status the endpoint last answered.
    pub last_status: Option<u16>,
}

fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

impl From<&DeliveryRecord> for DeliveryView {
    fn from(r: &DeliveryRecord) -> Self {
        Self {
            id: r.id.to_string(),
            session: r.session.clone(),
            event: r.event.clone(),
            event_id: r.event_id.clone(),
            status: r.status.clone(),
            attempts: r.attempts,
            received_at: rfc3339(r.received_ms),
            updated_at: rfc3339(r.updated_ms),
            next_attempt_at: r.next_ms.map(rfc3339),
            delivered_at: r.delivered_ms.map(rfc3339),
            last_error: r.last_error.clone(),
            last_status: r.last_status,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct DeliveryList {
    #[schema(pattern = "^OK$")]
    pub result: String,
    pub pages: usize,
    pub elements: usize,
    pub page: usize,
    pub data: Vec<DeliveryView>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeliveryQuery {
    /// Only deliveries in this status.
    pub status: Option<String>,
    /// Only this session's (`WhatsappID`).
    pub session: Option<String>,
    /// The page, from 1 (50 per page, newest first).
    pub page: Option<String>,
}

/// The caller's webhook deliveries, newest first, with their attempts and last error.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/deliveries",
    tag = "webhooks",
    operation_id = "list_deliveries",
    params(DeliveryQuery),
    responses(
        (status = 200, description = "One page of the caller's deliveries", body = DeliveryList),
        (status = 400, description = "A bad filter or page", body = ErrorBody),
    ),
    security(("bearer" = ["sessions:read"]), ("api_key" = ["sessions:read"])),
)]
pub(crate) async fn list_deliveries(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let principal = authorize(&req, &state, Scope::SessionsRead, Bucket::Read).await?;
    let query = web::Query::<DeliveryQuery>::from_query(req.query_string())
        .map_err(|e| invalid("query", format!("cannot be read ({e})")))?
        .into_inner();
    let status = query.status.filter(|s| !s.is_empty());
    if let Some(s) = &status
        && !DELIVERY_STATUSES.contains(&s.as_str())
    {
        return Err(invalid("status", format!("must be one of {}", DELIVERY_STATUSES.join(", "))));
    }
    let page = match query.page.as_deref().filter(|p| !p.is_empty()) {
        None => 1,
        Some(p) => p
            .parse::<usize>()
            .ok()
            .filter(|p| (1..=1_000_000).contains(p))
            .ok_or_else(|| invalid("page", "must be a whole number from 1 to 1000000"))?,
    };
    let session = query.session.filter(|s| !s.is_empty());
    if session.as_ref().is_some_and(|s| s.len() > 64) {
        return Err(invalid("session", "must be at most 64 characters"));
    }
    let filter = DeliveryFilter { status, session, ..DeliveryFilter::default() };
    let skip = (page - 1) * DELIVERIES_PAGE;
    let found = state.store.tenant_deliveries(&principal.tenant, &filter, skip, DELIVERIES_PAGE).await?;
    Ok(HttpResponse::Ok().json(DeliveryList {
        result: "OK".into(),
        pages: found.total.div_ceil(DELIVERIES_PAGE),
        elements: found.total,
        page,
        data: found.items.iter().map(DeliveryView::from).collect(),
    }))
}

/// Send one delivery again.
///
/// A finished delivery (`delivered`, `dead` or `stored`) is queued again with a fresh set of attempts and the
/// same `webhook-id`, so a receiver that kept the id can tell the copy.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/deliveries/{id}/replay",
    tag = "webhooks",
    operation_id = "replay_delivery",
    params(("id" = String, Path, description = "The delivery id (the `webhook-id` header)")),
    responses(
        (status = 202, description = "Queued again", body = crate::openapi::HookAck),
        (status = 404, description = "No such delivery of this tenant", body = ErrorBody),
        (status = 409, description = "The delivery is still under way", body = ErrorBody),
    ),
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])),
)]
pub(crate) async fn replay_delivery(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let principal = authorize(&req, &state, Scope::Admin, Bucket::Write).await?;
    let Some(id) = super::jobs::job_id(&req) else {
        return Err(ApiError::NotFound("delivery"));
    };
    match state.store.replay_delivery(id, &principal.tenant).await? {
        DeliveryReplay::Requeued => {
            tracing::info!(delivery.id = %id, "webhook delivery replayed");
            Ok(HttpResponse::Accepted().json(json!({"result": "OK", "id": id.to_string()})))
        }
        DeliveryReplay::NotFound => Err(ApiError::NotFound("delivery")),
        DeliveryReplay::Busy(status) => Err(ApiError::Http {
            status: actix_web::http::StatusCode::CONFLICT,
            message: format!("This delivery is {status}: only a finished one can be sent again; try later."),
        }),
    }
}

/// WhatsGate's events-get body.
#[derive(Deserialize, ToSchema)]
#[allow(non_snake_case, dead_code)]
pub(crate) struct EventsGetRequest {
    /// Only this session's events; another tenant's session is 404.
    WhatsappID: Option<String>,
    /// `YYYY-MM-DD` (that day, UTC) or `YYYY-MM-DD HH:MM:SS` (from then on).
    date: Option<String>,
    /// Only events with this `event_action`.
    action: Option<String>,
    /// Events per page, 1 to 100 (default 10).
    page_cnt: Option<u32>,
    /// The page, from 1.
    page: Option<u32>,
}

/// A page of events, each exactly the body WhatsGate posted.
#[derive(Serialize, ToSchema)]
pub(crate) struct EventsPage {
    #[schema(pattern = "^OK$")]
    pub result: String,
    pub pages: usize,
    pub elements: usize,
    pub page: usize,
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<Value>,
}

/// `YYYY-MM-DD` is that whole day (UTC), `YYYY-MM-DD HH:MM:SS` that moment on: `[from, to)` in Unix seconds.
fn date_range(text: &str) -> Option<(i64, i64)> {
    if text.len() == 10 {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let day = time::Date::parse(text, &format).ok()?.midnight().assume_utc().unix_timestamp();
        return Some((day, day + 86_400));
    }
    super::hooks::event_unix(text).map(|from| (from, i64::MAX))
}

/// The caller's stored events, as WhatsGate's events-get pages them.
///
/// Every event WhatsGate posted for the caller's sessions is kept (7 days), whether or not it was delivered, so a
/// tenant without a public endpoint can poll. Newest first.
#[utoipa::path(
    post,
    path = "/api/v1/events-get",
    tag = "webhooks",
    operation_id = "events_get",
    request_body(content = EventsGetRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "One page of the caller's events", body = EventsPage),
        (status = 404, description = "The WhatsappID is not one of the caller's sessions", body = ErrorBody),
    ),
    security(("bearer" = ["messages:read"]), ("api_key" = ["messages:read"])),
)]
pub(crate) async fn events_get(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let principal = authorize(&req, &state, Scope::MessagesRead, Bucket::Read).await?;
    let fields = body_object(&req, &state, payload).await?;
    let query = EventsGet::parse(&fields, &wgate_webhooks::KNOWN_EVENTS)?;
    let between = match &query.date {
        None => None,
        Some(d) => Some(date_range(d).ok_or_else(|| invalid("date", "must be YYYY-MM-DD or YYYY-MM-DD HH:MM:SS"))?),
    };
    if let Some(id) = &query.whatsapp_id {
        owned(&state, &principal.tenant, id).await?;
    }
    let (page, page_cnt) = (query.page as usize, query.page_cnt as usize);
    let filter =
        DeliveryFilter { session: query.whatsapp_id, event: query.action, between, ..DeliveryFilter::default() };
    let found = state.store.tenant_deliveries(&principal.tenant, &filter, (page - 1) * page_cnt, page_cnt).await?;
    let data: Vec<Value> = found.items.iter().map(|r| serde_json::from_str(&r.body).unwrap_or(Value::Null)).collect();
    Ok(HttpResponse::Ok().json(EventsPage {
        result: "OK".into(),
        pages: found.total.div_ceil(page_cnt),
        elements: found.total,
        page,
        data,
    }))
}

/// The caller's stored events, on the base path of WhatsGate's SDKs (`/v1`); the same as `/api/v1/events-get`.
#[utoipa::path(
    post,
    path = "/v1/events-get",
    tag = "webhooks",
    operation_id = "events_get_v1",
    request_body(content = EventsGetRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "One page of the caller's events", body = EventsPage),
        (status = 404, description = "The WhatsappID is not one of the caller's sessions", body = ErrorBody),
    ),
    security(("bearer" = ["messages:read"]), ("api_key" = ["messages:read"])),
)]
pub(crate) async fn events_get_v1(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    events_get(req, payload, state).await
}
