//! The baseline of the API load benchmark: a bare actix-web endpoint for `POST /api/v1/session-create`, with as
//! many workers as `wgate-api` uses, that does the least any real handler must: it reads the whole body (bounded
//! like the real one), parses it as JSON and answers `200 {"result":"OK"}` (400 when the body is not JSON).
//!
//! A handler that answers without reading the body is no baseline: the unread body stays on the connection, which
//! actix then cannot reuse, so the client pays a new connection per request and the "baseline" measures that.
//!
//! `cargo run --release -p wgate-api-proxy --example bare_200 -- 127.0.0.1:18081`

use actix_web::{App, HttpResponse, HttpServer, web};

/// The same bound as the real endpoint's.
const MAX_BODY_BYTES: usize = 16 * 1024;

async fn create(body: web::Bytes) -> HttpResponse {
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(_) => HttpResponse::Ok().json(serde_json::json!({"result": "OK"})),
        Err(e) => HttpResponse::BadRequest().json(serde_json::json!({"result": "ERROR", "message": e.to_string()})),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18081".to_owned());
    HttpServer::new(|| {
        App::new()
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .route("/api/v1/session-create", web::post().to(create))
    })
    .bind(addr)?
    .run()
    .await
}
