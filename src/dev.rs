//! `wgate dev`: the whole stack in one command, for a developer's machine. A throwaway redis-server (unless
//! `--redis-url` is given), the WhatsGate simulator, the API and a worker run in this process (Redis as a child
//! process), and Ctrl-C stops all of them.

use std::net::SocketAddr;

use anyhow::Context;
use secrecy::SecretString;
use wgate_testkit::{RedisCluster, RedisServer, RedisServerOptions};

use crate::token::{self, TokenRequest};

#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    /// Use this Redis instead of starting a throwaway one (for a cluster, some of its nodes, comma separated).
    #[arg(long)]
    pub redis_url: Option<String>,
    /// `standalone`, or `cluster`: without --redis-url, a throwaway Redis Cluster of three primaries and three
    /// replicas on this machine (redis-server and redis-cli needed).
    #[arg(long, value_enum, default_value_t = DevRedisMode::Standalone)]
    pub redis_mode: DevRedisMode,
    /// Where the tenant API listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub api_listen: SocketAddr,
    /// Where the API's /metrics, /healthz, /readyz listen.
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub api_admin_listen: SocketAddr,
    /// Where the worker's /metrics, /healthz, /readyz listen.
    #[arg(long, default_value = "127.0.0.1:9465")]
    pub worker_admin_listen: SocketAddr,
    /// Where the WhatsGate simulator listens.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub sim_listen: SocketAddr,
    /// The tenant of the printed token.
    #[arg(long, default_value = "demo")]
    pub tenant: String,
    /// HS256 secret for tenant tokens (default: a fresh random one each run).
    #[arg(long, hide_env_values = true)]
    pub secret: Option<String>,
    /// Redis key namespace.
    #[arg(long, default_value = "wgate")]
    pub namespace: String,
}

/// The Redis shapes `wgate dev` can start or use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DevRedisMode {
    Standalone,
    Cluster,
}

const SIM_KEY: &str = "dev-upstream-key";

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    wgate_service::init_crypto();
    let _ = wgate_service::init_tracing("info,actix_server=warn", wgate_service::LogFormat::Pretty);

    // Kept alive (and killed on exit) for as long as the stack runs.
    let mut _redis = None;
    let mut _cluster = None;
    let redis_url = match (&args.redis_url, args.redis_mode) {
        (Some(url), _) => url.clone(),
        (None, DevRedisMode::Standalone) => {
            let server = RedisServer::try_start_with(RedisServerOptions::default()).await.context(
                "starting a throwaway redis-server (install it with `sudo apt-get install -y redis-server`, or pass --redis-url)",
            )?;
            _redis.insert(server).url()
        }
        (None, DevRedisMode::Cluster) => {
            let cluster = RedisCluster::try_start(3, 1).await.context(
                "starting a throwaway Redis Cluster (install redis-server and redis-tools, or pass --redis-url)",
            )?;
            _cluster.insert(cluster).url()
        }
    };

    let sim = wgate_upstream_sim::Application::build(wgate_upstream_sim::SimConfig {
        listen: args.sim_listen,
        api_keys: vec![SIM_KEY.to_owned()],
        ..Default::default()
    })
    .await
    .with_context(|| format!("starting the simulator on {} (--sim-listen)", args.sim_listen))?;
    let sim_url = sim.base_url();

    let secret = args.secret.clone().unwrap_or_else(random_secret);
    // Bound first, so that links name the real address even with port 0.
    let listener = std::net::TcpListener::bind(args.api_listen)
        .with_context(|| format!("starting the API on {} (--api-listen)", args.api_listen))?;
    let api_addr = listener.local_addr().context("the API's address")?;
    let public_url = format!("http://{api_addr}");
    // The session commands (sessions-get, set-name, ...) call WhatsGate from the API itself, as the worker does.
    let upstream = wgate_upstream::UpstreamSettings {
        url: sim_url.clone(),
        api_key: Some(SecretString::from(SIM_KEY)),
        ..Default::default()
    };
    // Callbacks on this machine (a local receiver) are reachable in development (loopback is opened); production
    // opens nothing.
    let mut api_settings = wgate_api_proxy::ApiSettings {
        api_listen: api_addr,
        api_admin_listen: args.api_admin_listen,
        public_url: public_url.clone(),
        upstream: upstream.clone(),
        ..wgate_api_proxy::ApiSettings::on_loopback(&redis_url, &args.namespace, &secret)
    };
    api_settings.redis.mode = match args.redis_mode {
        DevRedisMode::Standalone => "standalone",
        DevRedisMode::Cluster => "cluster",
    }
    .into();
    let api_settings_redis = api_settings.redis.clone();
    let api = wgate_api_proxy::Application::build_on(api_settings, listener)
        .await
        .with_context(|| format!("starting the API on {api_addr} (--api-listen)"))?;

    let worker = wgate_worker::Application::build(wgate_worker::Settings {
        redis: api_settings_redis,
        upstream,
        logging: wgate_service::LogSettings { log: "info".into(), log_format: wgate_service::LogFormat::Pretty },
        worker_admin_listen: args.worker_admin_listen,
        public_url: public_url.clone(),
        // Webhook endpoints on this machine (a local receiver) are reachable in development.
        egress_allow_nets: wgate_api_proxy::settings::LOOPBACK_NETS.to_owned(),
        webhook_retry_schedule: Some("1s,5s,30s,2m,10m".to_owned()),
        ..Default::default()
    })
    .await
    .with_context(|| format!("starting the worker (admin on {}, --worker-admin-listen)", args.worker_admin_listen))?;

    let token = token::mint(secret.as_bytes(), &TokenRequest::day_pass(&args.tenant), token::now_secs())?;
    let admin = TokenRequest { scope: Some("admin".to_owned()), ..TokenRequest::day_pass(&args.tenant) };
    let admin_token = token::mint(secret.as_bytes(), &admin, token::now_secs())?;
    println!(
        "\nwgate dev stack is up (Ctrl-C stops it)\n  redis     {redis_url}\n  simulator {sim_url}  (stats: {sim_url}/sim/stats)\n  api       http://{api_addr}  (metrics: http://{api_admin}/metrics)\n  worker    metrics: http://{worker_admin}/metrics\n  tenant    {tenant}, HS256 secret {secret}\n\nTry:\n  curl -s -X POST http://{api_addr}/api/v1/session-create \\\n    -H 'Authorization: Bearer {token}' \\\n    -H 'Content-Type: application/json' -d '{{\"name\":\"My WhatsApp\"}}'\n{webhooks}",
        webhooks = webhook_help(&api.address().to_string(), &sim_url, &token, &admin_token),
        api_addr = api.address(),
        api_admin = api.admin_address(),
        worker_admin = worker.admin_addr(),
        tenant = args.tenant,
    );

    let sim_task = tokio::spawn(sim.run_until_stopped());
    let worker_task = tokio::spawn(worker.run_until_stopped(wgate_service::shutdown::signal()));
    // Each part stops on Ctrl-C (SIGINT) or SIGTERM by itself; the API's end is ours.
    let api_result = api.run_until_stopped().await;
    let _ = worker_task.await;
    sim_task.abort();
    api_result.context("the API stopped with an error")?;
    Ok(())
}

/// How to receive and verify a webhook delivery on this machine.
fn webhook_help(api: &str, sim: &str, token: &str, admin_token: &str) -> String {
    format!(
        "\nWebhooks (retries here after 1s, 5s, 30s, 2m, 10m):\n  \
         1. your secret:  curl -s http://{api}/api/v1/webhooks/secret -H 'Authorization: Bearer {admin_token}'\n  \
         2. a receiver that prints and verifies each delivery (pip install standardwebhooks to use the official \
         library):\n       scripts/webhook-receiver --port 9000 --secret whsec_...\n  \
         3. a session whose callback is that receiver:\n       curl -s -X POST http://{api}/api/v1/session-create \\\n         \
         -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\\n         \
         -d '{{\"name\":\"Hooked\",\"callback\":\"http://127.0.0.1:9000/hook\"}}'\n  \
         4. the device scanned (a `ready` event), then an incoming message (unique_id from step 3):\n       \
         curl -s -X POST {sim}/sim/sessions/<unique_id>/scan\n       \
         curl -s -X POST {sim}/sim/sessions/<unique_id>/incoming -d '{{\"from\":\"79990001122\",\"body\":\"hi\"}}'\n  \
         5. what was delivered:  curl -s 'http://{api}/api/v1/webhooks/deliveries' -H 'Authorization: Bearer {token}'\n"
    )
}

fn random_secret() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
