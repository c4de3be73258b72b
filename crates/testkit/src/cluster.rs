//! A Redis Cluster for tests: real `redis-server` processes with `--cluster-enabled yes`, joined by
//! `redis-cli --cluster create` (so redis-tools must be installed), killed when dropped.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use crate::RedisServer;

/// `primaries` primaries, each with `replicas` replicas; every slot assigned.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts the nodes, joins them, and waits until every node says the cluster is `ok` and every primary has
    /// its replicas online (only then can a replica take over).
    pub async fn start(primaries: usize, replicas: usize) -> Self {
        match Self::try_start(primaries, replicas).await {
            Ok(c) => c,
            Err(e) => panic!("could not start the Redis Cluster: {e:#}"),
        }
    }

    /// Like `start`, but says why it could not start instead of panicking (for `wgate dev`).
    pub async fn try_start(primaries: usize, replicas: usize) -> anyhow::Result<Self> {
        let mut nodes = Vec::new();
        for _ in 0..primaries * (1 + replicas) {
            nodes.push(RedisServer::start_cluster_node("nodes.conf").await?);
        }
        let addresses: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())).collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .arg("--cluster-replicas")
            .arg(replicas.to_string())
            .arg("--cluster-yes")
            .output()
            .context("running redis-cli --cluster create (install redis-tools)")?;
        if !out.status.success() {
            bail!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let cluster = Self { nodes };
        cluster.await_healthy(Duration::from_secs(30)).await?;
        Ok(cluster)
    }

    /// The seed nodes, comma separated, as `WGATE_REDIS_URL` takes them.
    pub fn url(&self) -> String {
        self.nodes.iter().map(RedisServer::url).collect::<Vec<_>>().join(",")
    }

    /// Waits until every running node says `cluster_state:ok` and every primary counts its replicas online.
    pub async fn await_healthy(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            match self.healthy().await {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > deadline => bail!("the cluster was not healthy within {within:?}: {e:#}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    async fn healthy(&self) -> anyhow::Result<()> {
        for node in self.running() {
            let mut c = node.client()?.get_multiplexed_async_connection().await?;
            let info: String = redis::cmd("CLUSTER").arg("INFO").query_async(&mut c).await?;
            if !info.contains("cluster_state:ok") {
                bail!("node {} says {info}", node.port());
            }
            let replication: String = redis::cmd("INFO").arg("replication").query_async(&mut c).await?;
            if replication.contains("role:master") {
                let expected = self.nodes.len() / self.primaries().await?.len().max(1) - 1;
                let online =
                    replication.lines().filter(|l| l.starts_with("slave") && l.contains("state=online")).count();
                if online < expected {
                    bail!("primary {} has {online} of {expected} replicas online", node.port());
                }
            } else if !replication.contains("master_link_status:up") {
                bail!("replica {} is not linked to its primary", node.port());
            }
        }
        Ok(())
    }

    fn running(&self) -> impl Iterator<Item = &RedisServer> {
        self.nodes.iter().filter(|n| n.is_running())
    }

    /// The ports of the primaries, as the first running node sees them (`CLUSTER SLOTS`).
    pub async fn primaries(&self) -> anyhow::Result<Vec<u16>> {
        let node = self.running().next().context("no node is running")?;
        let mut c = node.client()?.get_multiplexed_async_connection().await?;
        let mut ports: Vec<u16> = slot_ranges(&mut c).await?.into_iter().map(|(_, _, port)| port).collect();
        ports.sort_unstable();
        ports.dedup();
        Ok(ports)
    }

    /// The port of the primary that serves `key`'s slot.
    pub async fn primary_of(&self, key: &str) -> anyhow::Result<u16> {
        let node = self.running().next().context("no node is running")?;
        let mut c = node.client()?.get_multiplexed_async_connection().await?;
        let slot: i64 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query_async(&mut c).await?;
        slot_ranges(&mut c)
            .await?
            .into_iter()
            .find(|(from, to, _)| (*from..=*to).contains(&slot))
            .map(|(_, _, port)| port)
            .with_context(|| format!("no node serves slot {slot}"))
    }

    /// The node listening on `port`.
    pub fn node(&mut self, port: u16) -> Option<&mut RedisServer> {
        self.nodes.iter_mut().find(|n| n.port() == port)
    }
}

/// `CLUSTER SLOTS` as `(first slot, last slot, primary's port)`.
async fn slot_ranges(c: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<Vec<(i64, i64, u16)>> {
    use redis::Value;
    let reply: Value = redis::cmd("CLUSTER").arg("SLOTS").query_async(c).await?;
    let Value::Array(ranges) = reply else { bail!("CLUSTER SLOTS answered {reply:?}") };
    let mut out = Vec::new();
    for range in ranges {
        let parsed = match &range {
            Value::Array(parts) => match parts.as_slice() {
                [Value::Int(from), Value::Int(to), Value::Array(primary), ..] => match primary.get(1) {
                    Some(Value::Int(port)) => u16::try_from(*port).ok().map(|port| (*from, *to, port)),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        };
        out.push(parsed.with_context(|| format!("a CLUSTER SLOTS entry {range:?}"))?);
    }
    Ok(out)
}
