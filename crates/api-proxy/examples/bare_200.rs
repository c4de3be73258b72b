//! The baseline of the API load benchmark: a bare actix-web endpoint answering `200 {"result":"OK"}` to
//! `POST /api/v1/session-create`, with as many workers as `wgate-api` uses.
//!
//! `cargo run --release -p wgate-api-proxy --example bare_200 -- 127.0.0.1:18081`

use actix_web::{App, HttpResponse, HttpServer, web};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18081".to_owned());
    HttpServer::new(|| {
        App::new().route(
            "/api/v1/session-create",
            web::post().to(|| async { HttpResponse::Ok().json(serde_json::json!({"result": "OK"})) }),
        )
    })
    .bind(addr)?
    .run()
    .await
}
