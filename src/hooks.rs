//! `wgate hooks`: list and replay webhook deliveries straight in Redis, for operators (the same as the API's
//! deliveries listing and replay, for any tenant, without a token).

use anyhow::Context;
use serde_json::json;
use wgate_queue::{DELIVERY_STATUSES, DeliveryFilter, DeliveryReplay};
use wgate_types::{JobId, TenantId};

use crate::jobs::RedisArgs;

#[derive(Debug, Clone, clap::Args)]
pub struct HooksArgs {
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(subcommand)]
    pub command: HooksCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum HooksCommand {
    /// Print a tenant's deliveries, newest first, one JSON object per line.
    List {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// Only deliveries in this status (queued, delivering, retrying, delivered, dead, stored).
        #[arg(long)]
        status: Option<String>,
        /// Only this session's (its WhatsappID).
        #[arg(long)]
        session: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Send a finished delivery again, with a fresh set of attempts and the same webhook-id.
    Replay { id: String },
}

pub async fn run(args: HooksArgs) -> anyhow::Result<()> {
    let store = args.redis.store()?;
    match args.command {
        HooksCommand::List { tenant, status, session, limit } => {
            let tenant = TenantId::parse(&tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
            if let Some(s) = &status
                && !DELIVERY_STATUSES.contains(&s.as_str())
            {
                anyhow::bail!("--status must be one of {}", DELIVERY_STATUSES.join(", "));
            }
            let filter = DeliveryFilter { status, session, ..DeliveryFilter::default() };
            let page = store.tenant_deliveries(&tenant, &filter, 0, limit).await?;
            for d in &page.items {
                let line = json!({
                    "id": d.id.to_string(), "status": d.status, "attempts": d.attempts, "session": d.session,
                    "event": d.event, "event_id": d.event_id, "received_ms": d.received_ms,
                    "next_ms": d.next_ms, "last_status": d.last_status, "last_error": d.last_error,
                });
                println!("{line}");
            }
            eprintln!("{} of {} deliveries", page.items.len(), page.total);
        }
        HooksCommand::Replay { id } => {
            let parsed: JobId =
                id.parse().with_context(|| format!("{id:?} is not a delivery id (a 26-character ULID)"))?;
            match store.replay_delivery(parsed, None).await? {
                DeliveryReplay::Requeued => println!("delivery {id} queued again"),
                DeliveryReplay::NotFound => anyhow::bail!("no delivery {id} (unknown, or expired after 7 days)"),
                DeliveryReplay::Busy(status) => {
                    anyhow::bail!("delivery {id} is {status}: only a finished one is sent again")
                }
            }
        }
    }
    Ok(())
}
