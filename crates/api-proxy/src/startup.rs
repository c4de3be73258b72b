//! Building and running the application: both listeners bound (port 0 allowed), background tasks started
//! (completion subscription, limiter pruning, tenants-file reload) and stopped when the application is dropped.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use actix_web::{App, HttpServer, dev::Server, middleware::from_fn, web};
use anyhow::Context;
use wgate_queue::{Completions, JobStore};
use wgate_service::{
    AdminServer, ReadyCheck,
    tenants::{TenantTable, Tenants},
};
use wgate_upstream::{Upstream, UpstreamMetrics};

use crate::{
    auth::Verifier,
    limits::{Limits, Rate},
    metrics::ApiMetrics,
    middleware::observe,
    routes,
    settings::ApiSettings,
    state::AppState,
    store::BoundedStore,
    upstream::SessionUpstream,
};

/// A Redis setting that cannot work; the queue's message names the setting itself.
fn redis_config_error(e: wgate_queue::QueueError) -> wgate_service::ConfigError {
    wgate_service::ConfigError(format!("configuration error: {e}"))
}

/// The session commands' WhatsGate client: the worker's client code, its calls counted in this process's registry
/// (`wgate_upstream_requests_total`, `wgate_upstream_request_duration_seconds`). Without an upstream key the API
/// still serves everything else and the session commands answer 503.
fn session_upstream(
    settings: &ApiSettings,
    registry: &prometheus::Registry,
) -> anyhow::Result<Option<SessionUpstream>> {
    let metrics = UpstreamMetrics::register(registry).context("registering the upstream metrics")?;
    let Some(config) = settings.upstream.config() else {
        tracing::warn!(
            "WGATE_UPSTREAM_API_KEY is not set: sessions-get, session-delete, set-hook and set-name answer 503, \
             and QR windows cannot show sessions"
        );
        return Ok(None);
    };
    let client = Upstream::new(config).map_err(|e| anyhow::anyhow!(e))?.with_metrics(metrics);
    Ok(Some(SessionUpstream::new(client, settings.upstream.timeout())))
}

/// Pruning idle limiter keys, and following the tenants file when there is one.
fn limiter_tasks(limits: &Arc<Limits>, table: &TenantTable, settings: &ApiSettings) -> Vec<TaskGuard> {
    let mut tasks = Vec::new();
    let pruner = limits.clone();
    tasks.push(TaskGuard(
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PRUNE_EVERY);
            loop {
                tick.tick().await;
                pruner.prune();
            }
        })
        .abort_handle(),
    ));
    if let Some(path) = settings.tenants_file.clone() {
        let l = limits.clone();
        let watcher = wgate_service::tenants::watch(
            path,
            table.clone(),
            Duration::from_millis(settings.tenants_poll_ms.max(10)),
            move |t| l.apply(t),
        );
        tasks.push(TaskGuard(tokio::spawn(watcher).abort_handle()));
    }
    tasks
}

/// The admin listener: metrics, liveness, and readiness (Redis answers).
fn admin_server(
    settings: &ApiSettings,
    registry: &prometheus::Registry,
    store: &BoundedStore,
) -> anyhow::Result<AdminServer> {
    let ready_store = store.clone();
    let ready: ReadyCheck = Arc::new(move || {
        let store = ready_store.clone();
        Box::pin(async move { store.ping().await.map_err(|e| format!("redis unreachable: {e}")) })
    });
    AdminServer::bind(settings.api_admin_listen, registry.clone(), ready)
        .with_context(|| format!("WGATE_API_ADMIN_LISTEN: cannot listen on {}", settings.api_admin_listen))
}

/// The egress guard's client, whose policy checks tenants' callbacks when they are handed over (the worker
/// delivers webhooks through its own); it refuses the gateway's own addresses too.
fn webhook_client(
    settings: &ApiSettings,
    address: SocketAddr,
    admin_address: SocketAddr,
) -> anyhow::Result<wgate_egress::EgressClient> {
    let egress = wgate_egress::EgressPolicy::new(settings.egress_nets()?, vec![address, admin_address])
        .with_public_url(settings.public_base());
    egress
        .client(reqwest::Client::builder().timeout(Duration::from_secs(10)).connect_timeout(Duration::from_secs(5)))
        .context("building the webhook relay client")
}

/// The periodic JWKS refetch, when a JWKS is configured.
fn jwks_refresh(state: &web::Data<AppState>) -> Option<TaskGuard> {
    if !state.verifier.has_jwks() {
        return None;
    }
    let refresher = state.clone();
    Some(TaskGuard(
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(crate::auth::JWKS_REFRESH_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                refresher.verifier.refresh_jwks().await;
            }
        })
        .abort_handle(),
    ))
}

/// The API's HTTP server on its listener (not yet running).
fn serve(
    state: web::Data<AppState>,
    metrics: Arc<ApiMetrics>,
    listener: std::net::TcpListener,
) -> anyhow::Result<Server> {
    let app_metrics = web::Data::new(metrics);
    let http = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(app_metrics.clone())
            .wrap(from_fn(observe))
            .configure(routes::configure)
            .default_service(web::to(crate::fallback::not_found))
    })
    .disable_signals()
    .shutdown_timeout(30)
    .listen(listener)
    .context("serving the API on its listener")?;
    Ok(http.run())
}

/// Callback hosts whose egress verdict one API process remembers.
const CALLBACK_HOSTS: usize = 10_000;

/// How often idle limiter keys are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(10);

/// The QR windows ask upstream about a session at most this often (per API process).
const QR_MAX_AGE: Duration = Duration::from_secs(1);
/// Sessions whose QR windows one API process follows at once.
const QR_CACHE_SESSIONS: usize = 10_000;

/// Aborts a background task when dropped.
struct TaskGuard(tokio::task::AbortHandle);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub struct Application {
    address: SocketAddr,
    admin_address: SocketAddr,
    server: Server,
    admin: Server,
    /// Kept with the application, whatever the server does with its own copies.
    _state: web::Data<AppState>,
    _tasks: Vec<TaskGuard>,
}

impl Application {
    /// Parses the keys and the tenants file, connects lazily to Redis (the API starts while Redis is down and
    /// answers 503 until it is back), and binds both listeners.
    pub async fn build(settings: ApiSettings) -> anyhow::Result<Self> {
        Self::build_with(settings, None).await
    }

    /// Like [`Application::build`], serving the API on a listener the caller already bound (`api_listen` is then
    /// not used): for a caller that must know the address before the application exists, such as a test whose
    /// `public_url` names it.
    pub async fn build_on(settings: ApiSettings, listener: std::net::TcpListener) -> anyhow::Result<Self> {
        Self::build_with(settings, Some(listener)).await
    }

    async fn build_with(settings: ApiSettings, listener: Option<std::net::TcpListener>) -> anyhow::Result<Self> {
        settings.check()?;
        let verifier = Verifier::new(&crate::auth::AuthConfig::from_settings(&settings))?;
        verifier.warm_up().await;
        let tenants = match &settings.tenants_file {
            Some(path) => Tenants::load(path).map_err(|e| wgate_service::ConfigError::setting("tenants_file", e))?,
            None => Tenants::default(),
        };
        let registry = wgate_service::metrics::new_registry();
        let metrics = Arc::new(ApiMetrics::register(&registry).context("registering the API metrics")?);

        let queue = settings.queue_config()?;
        let job_store = JobStore::new(queue.clone()).map_err(redis_config_error)?;
        let limits = Limits::new(Rate { per_second: settings.rate_per_second, burst: settings.rate_burst });
        let limits = Arc::new(if settings.shared_rate_limits()? { limits.shared(job_store.clone()) } else { limits });
        let store = BoundedStore::new(job_store, settings.redis.timeout(), metrics.clone());
        let completions = Completions::start(&queue);

        limits.apply(&tenants);
        let table = TenantTable::new(tenants);

        let mut tasks = Vec::new();
        tasks.extend(limiter_tasks(&limits, &table, &settings));

        // Both listeners are bound before anything calls out, so the egress guard knows the gateway's own addresses.
        let listener = match listener {
            Some(listener) => listener,
            None => std::net::TcpListener::bind(settings.api_listen)
                .with_context(|| format!("WGATE_API_LISTEN: cannot listen on {}", settings.api_listen))?,
        };
        let address = listener.local_addr().context("reading the API listener's address")?;
        let admin = admin_server(&settings, &registry, &store)?;
        let admin_address = admin.local_addr();
        let hooks = webhook_client(&settings, address, admin_address)?;
        let session_upstream = session_upstream(&settings, &registry)?;
        // The QR windows ask WhatsGate through the same client; without a key they answer "unavailable".
        let qr_upstream = session_upstream.as_ref().map(|u| u.client().clone());
        let qr_cache = crate::qr_cache::SessionCache::new(qr_upstream, QR_MAX_AGE, QR_CACHE_SESSIONS);
        let state = web::Data::new(AppState {
            verifier,
            limits,
            tenants: table,
            store: store.clone(),
            completions,
            metrics: metrics.clone(),
            sync_wait: settings.sync_wait(),
            max_attempts: settings.max_attempts,
            max_sessions: settings.max_sessions,
            public_base: settings.public_base().to_owned(),
            hooks,
            callback_checks: crate::callback_check::CallbackChecks::new(CALLBACK_HOSTS),
            body_read_timeout: settings.body_read_timeout(),
            qr_cache,
            upstream: session_upstream,
            messaging: settings.messaging(),
            signing_key: wgate_webhooks::SigningKey::new(settings.webhook_signing_key.clone()),
        });

        tasks.extend(jwks_refresh(&state));
        let server = serve(state.clone(), metrics, listener)?;
        tracing::info!(%address, %admin_address, "wgate-api listening");
        Ok(Self { address, admin_address, server, admin: admin.into_server(), _state: state, _tasks: tasks })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn admin_address(&self) -> SocketAddr {
        self.admin_address
    }

    /// Serves until SIGTERM/SIGINT (then stops gracefully: in-flight requests finish, bounded) or until a
    /// listener fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let api = self.server.handle();
        let admin = self.admin.handle();
        let mut server = tokio::spawn(self.server);
        let mut admin_server = tokio::spawn(self.admin);
        let outcome = tokio::select! {
            r = &mut server => r.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            r = &mut admin_server => r.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            () = wgate_service::shutdown::signal() => Ok(()),
        };
        api.stop(true).await;
        admin.stop(false).await;
        drop(self._tasks);
        outcome
    }
}
