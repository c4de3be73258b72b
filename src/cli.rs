//! Command-line parsing and dispatch.

use clap::{Parser, Subcommand};

use crate::token::{self, TokenRequest};

#[derive(Debug, Parser)]
#[command(name = "wgate", version, about = "wgate: a multi-tenant gateway and job queue in front of WhatsGate")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print an HS256 JWT for a tenant.
    Token {
        /// The HS256 secret (one of WGATE_JWT_SECRET's).
        #[arg(long, env = "WGATE_TOKEN_SECRET", hide_env_values = true)]
        secret: String,
        /// The tenant id (the token's `sub`).
        #[arg(long)]
        tenant: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// Space-separated scopes (default: none in the token, which grants `sessions:write sessions:read`).
        #[arg(long)]
        scope: Option<String>,
        /// Audience (`aud`), as WGATE_JWT_AUDIENCE.
        #[arg(long, default_value = "wgate")]
        aud: String,
        /// Issuer (`iss`), as WGATE_JWT_ISSUER when that is set.
        #[arg(long)]
        iss: Option<String>,
    },
    /// Run the whole stack locally: redis-server, the WhatsGate simulator, the API and a worker.
    Dev(crate::dev::DevArgs),
    /// Accept jobs through the API while the simulator injects faults, workers are SIGKILLed and redis-server
    /// restarts; then check that every job is terminal, none lost, at most one upstream session each.
    Chaos(crate::chaos::ChaosArgs),
    /// Look at or replay jobs in Redis.
    Jobs(crate::jobs::JobsArgs),
    /// List or replay webhook deliveries in Redis.
    Hooks(crate::hooks::HooksArgs),
    /// Copy a namespace from one partition (a standalone Redis, or a release before partitions) into the layout
    /// of WGATE_QUEUE_PARTITIONS, e.g. onto a Redis Cluster; run once, with the old deployment stopped.
    Migrate(crate::migrate::MigrateArgs),
    /// Print the API's OpenAPI 3.1 document (as served at `GET /openapi.json` and kept in docs/openapi.json).
    Openapi,
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Token { secret, tenant, ttl, scope, aud, iss } => {
            let req = TokenRequest { tenant, ttl_secs: ttl, scope, audience: aud, issuer: iss };
            println!("{}", token::mint(secret.as_bytes(), &req, token::now_secs())?);
            Ok(())
        }
        Command::Openapi => {
            print!("{}", wgate_api_proxy::openapi::document_json());
            Ok(())
        }
        Command::Jobs(args) => tokio::runtime::Runtime::new()?.block_on(crate::jobs::run(args)),
        Command::Hooks(args) => tokio::runtime::Runtime::new()?.block_on(crate::hooks::run(args)),
        Command::Migrate(args) => tokio::runtime::Runtime::new()?.block_on(crate::migrate::run(args)),
        Command::Dev(args) => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(crate::dev::run(args))
        }
        Command::Chaos(args) => {
            let filter = if args.verbose { "info,actix_server=warn" } else { "off" };
            let _ = wgate_service::init_tracing(filter, wgate_service::LogFormat::Pretty);
            let runtime = tokio::runtime::Runtime::new()?;
            let report = runtime.block_on(crate::chaos::run(&args))?;
            println!("{}", report.to_markdown(&args));
            println!(
                "Reproduce: cargo build --release --workspace --bins && target/release/{}",
                crate::chaos::command_line()
            );
            let violations = report.violations();
            anyhow::ensure!(violations.is_empty(), "chaos: {}", violations.join("; "));
            println!("verdict: every check held");
            Ok(())
        }
    }
}
