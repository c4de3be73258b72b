//! `wgate jobs`: look at and replay jobs straight in Redis, for operators (the same as the API's admin call, without
//! a token).

use std::path::PathBuf;

use anyhow::Context;
use wgate_queue::{JobStore, RedisSettings, Replay};
use wgate_service::tenants::Tenants;
use wgate_types::JobId;

/// Where the deployment's Redis is (shared by `wgate jobs` and `wgate hooks`).
#[derive(Debug, Clone, clap::Args)]
pub struct RedisArgs {
    /// Redis of the deployment.
    #[arg(long, env = "WGATE_REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Its key namespace.
    #[arg(long, env = "WGATE_NAMESPACE", default_value = "wgate")]
    pub namespace: String,
    /// PEM CA of a `rediss://` server with a private CA.
    #[arg(long, env = "WGATE_REDIS_CA_FILE")]
    pub redis_ca_file: Option<PathBuf>,
    /// PEM client certificate, for a Redis that requires mutual TLS (with --redis-client-key).
    #[arg(long, env = "WGATE_REDIS_CLIENT_CERT")]
    pub redis_client_cert: Option<PathBuf>,
    #[arg(long, env = "WGATE_REDIS_CLIENT_KEY")]
    pub redis_client_key: Option<PathBuf>,
    /// `standalone`, `sentinel` (the URL lists the sentinels) or `cluster` (the URL lists seed nodes).
    #[arg(long, env = "WGATE_REDIS_MODE", default_value = "standalone")]
    pub redis_mode: String,
    /// The name the sentinels monitor the primary under (sentinel mode).
    #[arg(long, env = "WGATE_REDIS_SENTINEL_SERVICE")]
    pub redis_sentinel_service: Option<String>,
    /// The deployment's key partitions (unset: 1, or 16 in cluster mode), as its processes have them.
    #[arg(long, env = "WGATE_QUEUE_PARTITIONS")]
    pub queue_partitions: Option<u32>,
}

impl RedisArgs {
    /// The store as the deployment's processes see it: the same settings, read and checked the same way.
    pub fn store(&self) -> anyhow::Result<JobStore> {
        let settings = RedisSettings {
            ca_file: self.redis_ca_file.clone(),
            client_cert: self.redis_client_cert.clone(),
            client_key: self.redis_client_key.clone(),
            mode: self.redis_mode.clone(),
            sentinel_service: self.redis_sentinel_service.clone(),
            queue_partitions: self.queue_partitions,
            ..RedisSettings::new(self.redis_url.clone(), self.namespace.clone())
        };
        settings.check()?;
        JobStore::new(settings.queue_config()?).context("WGATE_REDIS_URL / --redis-url")
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct JobsArgs {
    #[command(flatten)]
    pub redis: RedisArgs,
    /// The API's default session quota per tenant: a replay is refused when it is reached.
    #[arg(long, env = "WGATE_MAX_SESSIONS")]
    pub max_sessions: Option<u32>,
    /// The API's tenants file: a tenant's own `max_sessions` there wins over `--max-sessions`.
    #[arg(long, env = "WGATE_TENANTS_FILE")]
    pub tenants_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: JobsCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum JobsCommand {
    /// Print a job's record as JSON.
    Show { id: String },
    /// Put a dead job back on the queue with its attempts reset, within its tenant's session quota.
    Replay { id: String },
}

pub async fn run(args: JobsArgs) -> anyhow::Result<()> {
    let store = args.redis.store()?;
    match args.command {
        JobsCommand::Show { id } => {
            let record = store.find(parse(&id)?).await?.with_context(|| format!("no job {id}"))?;
            println!("{}", serde_json::to_string_pretty(&record)?);
        }
        JobsCommand::Replay { id } => {
            let job = store.find(parse(&id)?).await?.with_context(|| format!("no job {id}"))?;
            let tenants = match &args.tenants_file {
                Some(path) => Tenants::load(path).map_err(|e| anyhow::anyhow!("--tenants-file: {e}"))?,
                None => Tenants::default(),
            };
            let quota = tenants.get(&job.tenant).and_then(|o| o.max_sessions).or(args.max_sessions);
            match store.replay(&job.tenant, job.id, quota).await? {
                Replay::Requeued(record) => {
                    println!("job {} requeued ({} attempts allowed)", record.id, record.max_attempts)
                }
                Replay::NotDead(status) => anyhow::bail!("job {id} is {status}, not dead: only dead jobs are replayed"),
                Replay::NotFound => anyhow::bail!("no job {id}"),
                Replay::QuotaExceeded { limit } => anyhow::bail!(
                    "job {id} not replayed: tenant {} has reached its session quota of {limit} (max_sessions: live \
                     sessions plus unfinished creates); delete one of its sessions or raise its max_sessions",
                    job.tenant.as_str()
                ),
            }
        }
    }
    Ok(())
}

fn parse(id: &str) -> anyhow::Result<JobId> {
    id.parse().with_context(|| format!("{id:?} is not a job id (a 26-character ULID)"))
}
