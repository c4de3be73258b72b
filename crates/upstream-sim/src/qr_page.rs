//! The simulator's own QR window, `GET /qr/<unique_id>`: one self-contained page that polls
//! `GET /qr/<unique_id>/state` about once a second and speaks WhatsGate's postMessage protocol to its parent.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::session::parse_unique_id;
use crate::state::SimState;

const PAGE: &str = include_str!("qr_page.html");
const PLACEHOLDER: &str = "{{UNIQUE_ID}}";

/// The page; it finds out for itself (through the state endpoint) whether the session exists.
pub async fn page(path: web::Path<String>) -> HttpResponse {
    // Only an id of ours goes into the page; anything else becomes an id that can never exist.
    let id = if parse_unique_id(&path).is_some() { path.as_str() } else { "0" };
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .body(PAGE.replace(PLACEHOLDER, id))
}

#[derive(Serialize)]
struct StateBody {
    status: &'static str,
    qr: Option<String>,
    code: Option<String>,
    attempt: u32,
    /// The QR drawn as an SVG document, when there is a QR.
    svg: Option<String>,
}

/// `{status, qr, code, attempt, svg}`, or 404 for an unknown or deleted session.
pub async fn state(state: web::Data<SimState>, path: web::Path<String>) -> HttpResponse {
    let Some(snapshot) = parse_unique_id(&path).and_then(|id| state.qr_state(id)) else {
        return HttpResponse::NotFound()
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .json(serde_json::json!({ "status": null, "error": "session not found" }));
    };
    let svg = snapshot.qr.as_deref().and_then(|qr| {
        let code = qrcode::QrCode::new(qr.as_bytes()).ok()?;
        let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(256, 256).build();
        // Drop the XML declaration: the page puts the SVG inline into HTML.
        let start = svg.find("<svg").unwrap_or(0);
        Some(svg[start..].to_owned())
    });
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store"))).json(StateBody {
        status: snapshot.status,
        qr: snapshot.qr,
        code: snapshot.code,
        attempt: snapshot.attempt,
        svg,
    })
}
