//! Building the server: bind (port 0 allowed), wire the routes, run.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use tokio::task::JoinHandle;

use crate::config::SimConfig;
use crate::session::Timing;
use crate::state::SimState;
use crate::webhook::Webhooks;
use crate::{api, control, qr_page};

/// A bound, not yet running simulator.
pub struct Application {
    server: Server,
    local_addr: SocketAddr,
    public_url: String,
    seed: u64,
}

impl Application {
    /// Binds `config.listen` and prepares the server; nothing is served until [`Application::run_until_stopped`].
    pub async fn build(config: SimConfig) -> anyhow::Result<Self> {
        // reqwest is built with rustls but without a crypto provider; the webhook client needs one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let faults = config.faults();
        faults.validate().context("invalid fault settings")?;
        let listener =
            TcpListener::bind(config.listen).with_context(|| format!("cannot listen on {}", config.listen))?;
        let local_addr = listener.local_addr().context("cannot read the bound address")?;
        let public_url = config
            .public_url
            .clone()
            .map(|url| url.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("http://{local_addr}"));
        let seed = config.seed.unwrap_or_else(rand::random);
        let timing = Timing {
            init: Duration::from_millis(config.init_ms),
            rotate: Duration::from_millis(config.qr_rotate_ms.max(1)),
        };
        let webhooks = Arc::new(Webhooks::new(Duration::from_millis(config.webhook_retry_ms))?);
        let state = web::Data::new(SimState::new(
            seed,
            faults,
            timing,
            public_url.clone(),
            config.effective_api_keys(),
            webhooks,
        ));
        let workers = config
            .workers
            .filter(|n| *n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get));
        let server = HttpServer::new(move || App::new().app_data(state.clone()).configure(routes))
            .workers(workers)
            .backlog(4096)
            // Requests held open by the timeout fault never finish: drop them as soon as their client hangs up
            // (else every one would keep a connection slot for ever), and do not wait for them at shutdown.
            .h1_allow_half_closed(false)
            .shutdown_timeout(1)
            .listen(listener)
            .context("cannot start the HTTP server")?
            .run();
        tracing::info!(sim.listen = %local_addr, sim.public_url = %public_url, sim.seed = seed, sim.workers = workers, ?faults, "wgate-sim ready");
        Ok(Self { server, local_addr, public_url, seed })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// `http://<bound address>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// The base of the `qr_link`s handed out.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The seed in use (the configured one, or the random one drawn at start).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Stops the server when asked (`handle.stop(true).await`).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped (SIGINT/SIGTERM or through [`Application::handle`]).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Builds and runs the simulator on the current tokio runtime; returns the bound address and the server task.
pub async fn spawn(config: SimConfig) -> anyhow::Result<(SocketAddr, JoinHandle<std::io::Result<()>>)> {
    let app = Application::build(config).await?;
    let addr = app.local_addr();
    Ok((addr, tokio::spawn(app.run_until_stopped())))
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/{command}", web::route().to(api::command))
        .route("/v1/{command}", web::route().to(api::command))
        .route("/sim/stats", web::get().to(control::stats))
        .route("/sim/faults", web::get().to(control::get_faults))
        .route("/sim/faults", web::post().to(control::set_faults))
        .route("/sim/reset", web::post().to(control::reset))
        .route("/sim/sessions/{unique_id}/scan", web::post().to(control::scan))
        .route("/sim/sessions/{unique_id}/fail", web::post().to(control::fail))
        .route("/sim/sessions/{unique_id}/incoming", web::post().to(control::incoming))
        .route("/sim/sessions/{unique_id}/message", web::post().to(control::incoming))
        .route("/sim/sessions/{unique_id}/disconnect", web::post().to(control::disconnect))
        .route("/sim/sessions/{unique_id}/event", web::post().to(control::event))
        .route("/qr/{unique_id}", web::get().to(qr_page::page))
        .route("/qr/{unique_id}/state", web::get().to(qr_page::state))
        .route("/healthz", web::get().to(control::healthz));
}
