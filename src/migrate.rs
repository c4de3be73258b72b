//! `wgate migrate`: copies a deployment's namespace from the layout with one partition (a standalone Redis, and
//! every release before partitions) into the layout the deployment's settings give (`WGATE_QUEUE_PARTITIONS`,
//! e.g. onto a Redis Cluster). Run it once, with the old deployment's API and workers stopped.

use std::path::PathBuf;

use anyhow::Context;
use wgate_queue::{JobStore, RedisSettings};

use crate::jobs::RedisArgs;

#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    /// Where the keys go: the deployment's Redis and its partitions (`WGATE_REDIS_*`, `WGATE_QUEUE_PARTITIONS`).
    #[command(flatten)]
    pub to: RedisArgs,
    /// The Redis the keys come from (one server, or the sentinels with --from-mode sentinel).
    #[arg(long)]
    pub from_url: String,
    /// Its namespace (default: the same as the target's).
    #[arg(long)]
    pub from_namespace: Option<String>,
    /// `standalone` or `sentinel`.
    #[arg(long, default_value = "standalone")]
    pub from_mode: String,
    /// The primary's name with --from-mode sentinel.
    #[arg(long)]
    pub from_sentinel_service: Option<String>,
    /// PEM CA of a `rediss://` source with a private CA.
    #[arg(long)]
    pub from_ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for a source that requires mutual TLS.
    #[arg(long)]
    pub from_client_cert: Option<PathBuf>,
    #[arg(long)]
    pub from_client_key: Option<PathBuf>,
}

impl MigrateArgs {
    fn source(&self) -> anyhow::Result<JobStore> {
        anyhow::ensure!(self.from_mode != "cluster", "--from-mode: the source is one Redis or a Sentinel primary");
        let settings = RedisSettings {
            ca_file: self.from_ca_file.clone(),
            client_cert: self.from_client_cert.clone(),
            client_key: self.from_client_key.clone(),
            mode: self.from_mode.clone(),
            sentinel_service: self.from_sentinel_service.clone(),
            queue_partitions: Some(1),
            ..RedisSettings::new(
                self.from_url.clone(),
                self.from_namespace.clone().unwrap_or_else(|| self.to.namespace.clone()),
            )
        };
        settings.check().map_err(|e| anyhow::anyhow!("{e}"))?;
        JobStore::new(settings.queue_config().map_err(|e| anyhow::anyhow!("{e}"))?).context("--from-url")
    }
}

pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let source = args.source()?;
    let target = args.to.store()?;
    let report = target.migrate_from(&source).await.context("migrating")?;
    println!(
        "{} keys read: {} records copied, {} queue entries queued again, {} scheduled or dead members placed, {} \
         tokens mapped to their tenant's partition",
        report.keys, report.copied, report.queued, report.placed, report.tokens_mapped
    );
    for why in &report.skipped {
        println!("skipped: {why}");
    }
    Ok(())
}
