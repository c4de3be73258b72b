//! The gateway's QR window, for tenants to embed in their own pages instead of WhatsGate's guessable one.
//!
//! `GET /qr/{token}` serves one self-contained page (inline script and style under a per-answer CSP nonce,
//! nothing loaded from anywhere) that polls `GET /qr/{token}/state` about once a second, draws the QR (an SVG
//! made here from upstream's QR text) or the pairing code, and posts WhatsGate's messages to `window.parent`:
//! `loading`, `qr`, `success`, `error`, `broken`. The token (made at accept time, stored with the job by the
//! queue's `enqueue` script) leads to the job and so to the upstream session; neither upstream's address nor the
//! session id ever reaches the page. No JWT and no tenant rate limit: the token is the capability, and the
//! upstream cost of any number of windows is bounded by the per-session [`crate::qr_cache::SessionCache`].

use actix_web::{
    HttpRequest, HttpResponse,
    http::header::{self, HeaderName, HeaderValue},
    web,
};
use base64::Engine;
use rand::RngCore;
use serde_json::{Value, json};
use wgate_types::{JobStatus, unique_id_text};

use crate::{
    error::ApiError,
    fallback::method_not_allowed,
    qr_cache::{Lookup, SessionState},
    state::AppState,
};

const PAGE: &str = include_str!("qr_page.html");

/// What the state endpoint answers: the page's whole view of the session.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WindowState {
    /// The job has not created the session yet.
    Loading,
    /// Upstream's session, as the page shows it.
    Session(std::sync::Arc<SessionState>),
    /// Unknown, expired or revoked token; failed job; session gone.
    Broken,
    /// Redis or upstream could not be asked; the page asks again.
    Unavailable,
}

/// Resolves a token to what its window shows, and the tenant's `frame-ancestors` (for the page's CSP).
async fn resolve(state: &AppState, token: &str) -> Result<(WindowState, Option<wgate_types::TenantId>), ApiError> {
    let Some(target) = state.store.qr_target(token).await? else { return Ok((WindowState::Broken, None)) };
    tracing::Span::current().record("tenant", target.tenant.as_str());
    tracing::Span::current().record("job_id", tracing::field::display(target.job_id));
    let tenant = Some(target.tenant.clone());
    let job = match state.store.get(&target.tenant, target.job_id).await? {
        Some(job) if job.tenant == target.tenant => job,
        _ => return Ok((WindowState::Broken, tenant)),
    };
    let unique_id = match job.status {
        JobStatus::Queued | JobStatus::Running | JobStatus::Retrying => return Ok((WindowState::Loading, tenant)),
        JobStatus::Failed | JobStatus::Dead => return Ok((WindowState::Broken, tenant)),
        JobStatus::Succeeded => job.response.as_ref().and_then(|r| r.get("unique_id")).and_then(unique_id_text),
    };
    let Some(unique_id) = unique_id else { return Ok((WindowState::Broken, tenant)) };
    let shown = match state.qr_cache.get(&unique_id).await {
        Lookup::Found(s) if s.status == "DESTROYING" => WindowState::Broken,
        Lookup::Found(s) => WindowState::Session(s),
        Lookup::Gone => WindowState::Broken,
        Lookup::Unavailable => WindowState::Unavailable,
    };
    Ok((shown, tenant))
}

fn token_of(req: &HttpRequest) -> &str {
    req.match_info().get("token").unwrap_or_default()
}

fn no_store(res: &mut actix_web::HttpResponseBuilder) {
    res.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .insert_header((header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")));
}

/// `GET /qr/{token}/state`: `{status, qr_svg?, qr_image?, code?}`; 404 `{status:"broken"}`, 503
/// `{status:"unavailable"}`.
#[utoipa::path(
    get,
    path = "/qr/{token}/state",
    tag = "qr-window",
    operation_id = "qr_window_state",
    summary = "What the QR window shows now",
    description = "The state the QR window's page polls about once a second. Not needed to embed the window.",
    params(("token" = String, Path, description = "The token of the session's `qr_link`")),
    responses(
        (status = 200, description = "The session's state, with the QR code or pairing code while one is shown",
            body = crate::openapi::QrWindowState),
        (status = 404, description = "`{\"status\":\"broken\"}`: unknown or expired link, failed job, deleted session",
            body = crate::openapi::QrWindowState),
        (status = 503, description = "`{\"status\":\"unavailable\"}`: try again", body = crate::openapi::QrWindowState,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
    ),
)]
pub(crate) async fn window_state(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let shown = match resolve(&state, token_of(&req)).await {
        Ok((shown, _)) => shown,
        Err(e) => {
            tracing::warn!(error = %e, "QR window state unavailable");
            WindowState::Unavailable
        }
    };
    let (mut res, body) = match shown {
        WindowState::Loading => (HttpResponse::Ok(), json!({"status": "loading"})),
        WindowState::Session(s) => {
            let mut body = json!({"status": s.status});
            if let Some(obj) = body.as_object_mut() {
                for (k, v) in [("qr_svg", &s.qr_svg), ("qr_image", &s.qr_image)] {
                    if let Some(v) = v {
                        obj.insert(k.to_owned(), Value::String(v.to_string()));
                    }
                }
                if let Some(code) = &s.code {
                    obj.insert("code".to_owned(), Value::String(code.clone()));
                }
            }
            (HttpResponse::Ok(), body)
        }
        WindowState::Broken => (HttpResponse::NotFound(), json!({"status": "broken"})),
        WindowState::Unavailable => {
            let mut res = HttpResponse::ServiceUnavailable();
            res.insert_header((header::RETRY_AFTER, "1"));
            (res, json!({"status": "unavailable"}))
        }
    };
    no_store(&mut res);
    res.json(body)
}

/// `GET /qr/{token}`: the page, framed only by the tenant's `frame_ancestors` (default any). The token is looked
/// up first: an unknown one answers 404 at once, with the same page, so that a window embedded with a bad token
/// still tells its parent `broken` (browsers run a 404 page's script like any other).
#[utoipa::path(
    get,
    path = "/qr/{token}",
    tag = "qr-window",
    operation_id = "qr_window",
    summary = "The QR window",
    description = "A self-contained page that shows the session's current QR code (or pairing code), follows it as \
        it rotates, and posts `{module: \"qr\", message}` to `window.parent` (`loading`, `qr`, `success`, `error`, \
        `broken`). Meant for an iframe; see docs/QR-WINDOW.md.",
    params(("token" = String, Path, description = "The token of the session's `qr_link`")),
    responses(
        (status = 200, description = "The page",
            content_type = "text/html", body = String, headers(
                ("Content-Security-Policy" = String, description = "Inline code by nonce only; `frame-ancestors` from the tenant's setting"),
                ("Cache-Control" = String, description = "`no-store`"))),
        (status = 404, description = "The same page for a link that is unknown or expired: it shows and posts \
            `broken`", content_type = "text/html", body = String),
    ),
)]
pub(crate) async fn window_page(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let tenant = match state.store.qr_target(token_of(&req)).await? {
        Some(target) => Some(target.tenant),
        None => None,
    };
    let known = tenant.is_some();
    let ancestors = tenant
        .and_then(|t| state.tenants.current().get(&t).and_then(|o| o.frame_ancestors.clone()))
        .map_or_else(|| "*".to_owned(), |a| frame_ancestors(&a));
    let nonce = nonce();
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; img-src 'self' data:; \
         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors {ancestors}"
    );
    let mut res = if known { HttpResponse::Ok() } else { HttpResponse::NotFound() };
    no_store(&mut res);
    res.insert_header((header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")));
    if let Ok(v) = HeaderValue::from_str(&csp) {
        res.insert_header((HeaderName::from_static("content-security-policy"), v));
    }
    Ok(res.body(PAGE.replace("{{NONCE}}", &nonce)))
}

/// A tenant's `frame_ancestors` setting as a CSP source list: whitespace-separated sources, each of
/// visible ASCII without `;` or `,` (which would end the directive or the policy). A setting that is not that
/// allows no framing at all, rather than any.
pub(crate) fn frame_ancestors(setting: &str) -> String {
    let sources: Vec<&str> = setting.split_whitespace().collect();
    let sane = !sources.is_empty()
        && sources.iter().all(|s| s.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'"')));
    if sane {
        sources.join(" ")
    } else {
        tracing::warn!(setting, "frame_ancestors is not a CSP source list; framing refused");
        "'none'".to_owned()
    }
}

/// 128 random bits for the page's CSP nonce.
fn nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Routes of the QR window (no authentication: the token is the capability).
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/qr/{token}").route(web::get().to(window_page)).default_service(method_not_allowed("GET")),
    )
    .service(
        web::resource("/qr/{token}/state")
            .route(web::get().to(window_state))
            .default_service(method_not_allowed("GET")),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_ancestors_setting_is_kept_when_it_is_a_source_list_and_refuses_framing_otherwise() {
        assert_eq!(frame_ancestors("https://a.example  https://*.b.example"), "https://a.example https://*.b.example");
        assert_eq!(frame_ancestors("'self'"), "'self'");
        assert_eq!(frame_ancestors("https://a.example; script-src *"), "'none'");
        assert_eq!(frame_ancestors("https://a.example, *"), "'none'");
        assert_eq!(frame_ancestors("   "), "'none'");
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere_and_carries_the_nonce_slot() {
        assert_eq!(PAGE.matches("{{NONCE}}").count(), 2);
        for outside in ["http://", "https://", "src=\"", "@import", "url("] {
            assert!(!PAGE.contains(outside), "the page refers to something outside: {outside}");
        }
    }
}
