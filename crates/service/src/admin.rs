//! The admin listener: `/metrics` (Prometheus text), `/healthz` (the process is alive) and `/readyz` (503 while a
//! dependency such as Redis is unreachable). Served apart from the tenant API so it can stay private.

use std::{future::Future, net::SocketAddr, pin::Pin, sync::Arc};

use actix_web::{App, HttpResponse, HttpServer, dev::Server, web};
use prometheus::Registry;

/// Answers `Ok` when the process can serve, or why not.
pub type ReadyCheck = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

pub struct AdminServer {
    server: Server,
    addr: SocketAddr,
}

struct AdminState {
    registry: Registry,
    ready: ReadyCheck,
}

impl AdminServer {
    /// Binds `addr` (port 0 allowed); the server runs once `run` is awaited or spawned.
    pub fn bind(addr: SocketAddr, registry: Registry, ready: ReadyCheck) -> std::io::Result<Self> {
        let state = web::Data::new(AdminState { registry, ready });
        let http = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .route("/metrics", web::get().to(metrics))
                .route("/healthz", web::get().to(healthz))
                .route("/readyz", web::get().to(readyz))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .bind(addr)?;
        let addr = http.addrs().first().copied().unwrap_or(addr);
        Ok(Self { server: http.run(), addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The running server: await it, or keep its handle to stop it.
    pub fn into_server(self) -> Server {
        self.server
    }
}

async fn metrics(state: web::Data<AdminState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::metrics::render(&state.registry))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn readyz(state: web::Data<AdminState>) -> HttpResponse {
    match (state.ready)().await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({"status": "ready"})),
        Err(why) => HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": "unready", "reason": why})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn metrics_health_and_readiness_are_served() {
        let up = Arc::new(AtomicBool::new(true));
        let flag = up.clone();
        let ready: ReadyCheck = Arc::new(move || {
            let ok = flag.load(Ordering::SeqCst);
            Box::pin(async move { if ok { Ok(()) } else { Err("redis unreachable".into()) } })
        });
        let admin = AdminServer::bind("127.0.0.1:0".parse().unwrap(), crate::metrics::new_registry(), ready).unwrap();
        let base = format!("http://{}", admin.local_addr());
        let handle = admin.into_server();
        let stop = handle.handle();
        tokio::spawn(handle);
        crate::init_crypto();
        let client = reqwest::Client::new();
        let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains("wgate_build_info{version=\""), "{metrics}");
        assert_eq!(client.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
        assert_eq!(client.get(format!("{base}/readyz")).send().await.unwrap().status(), 200);
        up.store(false, Ordering::SeqCst);
        let r = client.get(format!("{base}/readyz")).send().await.unwrap();
        assert_eq!(r.status(), 503);
        assert!(r.text().await.unwrap().contains("redis unreachable"));
        stop.stop(false).await;
    }
}
