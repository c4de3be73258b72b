//! A Sentinel deployment for failover tests: a primary, one replica and three sentinels (quorum 2), all real
//! processes on free ports, killed when dropped.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use futures::StreamExt;

use crate::{RedisServer, RedisTlsOptions, TestCertificates};

/// How long a primary must be silent before the sentinels call it down.
pub const DOWN_AFTER_MS: u64 = 1000;

/// Three sentinels watching `service`: `primary` replicated to `replica`.
pub struct SentinelGroup {
    pub primary: RedisServer,
    pub replica: RedisServer,
    sentinels: Vec<SentinelProcess>,
    service: String,
    /// Every process serves TLS only, and sentinels reach the servers over TLS.
    tls: Option<RedisTlsOptions>,
}

struct SentinelProcess {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for SentinelProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SentinelGroup {
    /// Starts everything and waits until the replica is in sync and every sentinel knows the replica and the
    /// two other sentinels (only then can they agree on a failover).
    pub async fn start(service: &str) -> Self {
        match Self::try_start(service, None).await {
            Ok(g) => g,
            Err(e) => panic!("could not start the sentinel group: {e:#}"),
        }
    }

    /// The same, every process speaking only TLS with these certificates (clients need not show one).
    pub async fn start_tls(service: &str, certs: std::sync::Arc<TestCertificates>) -> Self {
        let tls = RedisTlsOptions { certs, require_client_cert: false };
        match Self::try_start(service, Some(tls)).await {
            Ok(g) => g,
            Err(e) => panic!("could not start the TLS sentinel group: {e:#}"),
        }
    }

    async fn try_start(service: &str, tls: Option<RedisTlsOptions>) -> anyhow::Result<Self> {
        let (primary, replica) = match &tls {
            None => {
                let primary = RedisServer::start().await;
                let replica = RedisServer::start_replica_of(&primary).await;
                (primary, replica)
            }
            Some(tls) => {
                let primary = RedisServer::start_tls(tls.clone()).await;
                let replica = RedisServer::start_tls_replica_of(&primary, tls.clone()).await;
                (primary, replica)
            }
        };
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            sentinels.push(spawn_sentinel(service, primary.port(), tls.as_ref()).await?);
        }
        primary.await_replicas_online(1).await;
        let group = Self { primary, replica, sentinels, service: service.to_owned(), tls };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if group.sentinels_see_each_other().await {
                return Ok(group);
            }
            if Instant::now() > deadline {
                bail!("the sentinels did not find the replica and each other within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn sentinels_see_each_other(&self) -> bool {
        for i in 0..self.sentinels.len() {
            let Ok(mut c) = self.sentinel_connection(i).await else { return false };
            let replicas: Vec<redis::Value> =
                redis::cmd("SENTINEL").arg("replicas").arg(&self.service).query_async(&mut c).await.unwrap_or_default();
            let others: Vec<redis::Value> = redis::cmd("SENTINEL")
                .arg("sentinels")
                .arg(&self.service)
                .query_async(&mut c)
                .await
                .unwrap_or_default();
            if replicas.is_empty() || others.len() < self.sentinels.len() - 1 {
                return false;
            }
        }
        true
    }

    /// The sentinels, comma separated: what `WGATE_REDIS_URL` is in Sentinel mode.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "rediss" } else { "redis" };
        self.sentinels.iter().map(|s| format!("{scheme}://127.0.0.1:{}", s.port)).collect::<Vec<_>>().join(",")
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    pub async fn sentinel_connection(&self, i: usize) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        sentinel_client(self.sentinels[i].port, self.tls.as_ref())?.get_multiplexed_async_connection().await
    }

    /// The port of the primary as sentinel `i` names it.
    pub async fn primary_port(&self, i: usize) -> anyhow::Result<u16> {
        let mut c = self.sentinel_connection(i).await?;
        let (_, port): (String, u16) = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(&self.service)
            .query_async(&mut c)
            .await
            .context("SENTINEL get-master-addr-by-name")?;
        Ok(port)
    }

    /// Subscribes to sentinel 0's `+switch-master` channel; the returned future resolves with the new primary's
    /// port when a failover is announced. Subscribe before causing the failover.
    pub async fn switch_master(&self) -> impl std::future::Future<Output = anyhow::Result<u16>> + use<> {
        let client = sentinel_client(self.sentinels[0].port, self.tls.as_ref());
        let mut pubsub = match client {
            Ok(c) => c.get_async_pubsub().await.ok(),
            Err(_) => None,
        };
        if let Some(p) = pubsub.as_mut()
            && p.subscribe("+switch-master").await.is_err()
        {
            pubsub = None;
        }
        async move {
            let mut pubsub = pubsub.context("subscribing to +switch-master")?;
            let mut messages = pubsub.on_message();
            let msg = messages.next().await.context("the sentinel closed the subscription")?;
            // "<service> <old-ip> <old-port> <new-ip> <new-port>"
            let text: String = msg.get_payload().context("a text message")?;
            let port = text.split(' ').nth(4).and_then(|p| p.parse().ok());
            port.with_context(|| format!("an unexpected +switch-master message: {text}"))
        }
    }
}

fn sentinel_client(port: u16, tls: Option<&RedisTlsOptions>) -> redis::RedisResult<redis::Client> {
    match tls {
        None => redis::Client::open(format!("redis://127.0.0.1:{port}")),
        Some(tls) => redis::Client::build_with_tls(
            format!("rediss://127.0.0.1:{port}"),
            redis::TlsCertificates { client_tls: None, root_cert: Some(TestCertificates::read(&tls.certs.ca_cert())) },
        ),
    }
}

async fn spawn_sentinel(
    service: &str,
    primary_port: u16,
    tls: Option<&RedisTlsOptions>,
) -> anyhow::Result<SentinelProcess> {
    let mut last = None;
    for _ in 0..5 {
        let dir = tempfile::tempdir().context("temporary directory for a sentinel")?;
        let port = crate::free_port();
        let conf = dir.path().join("sentinel.conf");
        let listen = match tls {
            None => format!("port {port}\n"),
            Some(tls) => format!(
                "port 0\ntls-port {port}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\n\
                 tls-auth-clients no\ntls-replication yes\n",
                tls.certs.server_cert().display(),
                tls.certs.server_key().display(),
                tls.certs.ca_cert().display()
            ),
        };
        std::fs::write(
            &conf,
            format!(
                "{listen}bind 127.0.0.1\ndaemonize no\ndir {dir}\n\
                 sentinel monitor {service} 127.0.0.1 {primary_port} 2\n\
                 sentinel down-after-milliseconds {service} {DOWN_AFTER_MS}\n\
                 sentinel failover-timeout {service} 10000\n\
                 sentinel parallel-syncs {service} 1\n",
                dir = dir.path().display()
            ),
        )?;
        // `redis-sentinel` is `redis-server` in sentinel mode; use the package's name when it is installed. The
        // config file comes first.
        let mut cmd = match which("redis-sentinel") {
            Some(bin) => {
                let mut c = Command::new(bin);
                c.arg(&conf);
                c
            }
            None => {
                let mut c = Command::new(crate::redis_server::which_redis_server()?);
                c.arg(&conf).arg("--sentinel");
                c
            }
        };
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawning a sentinel")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let answered = loop {
            if child.try_wait()?.is_some() {
                break false;
            }
            let ping = async {
                let mut c = sentinel_client(port, tls)?.get_multiplexed_async_connection().await?;
                redis::cmd("PING").query_async::<()>(&mut c).await
            };
            if ping.await.is_ok() {
                break true;
            }
            if Instant::now() > deadline {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        if answered {
            return Ok(SentinelProcess { child, port, _dir: dir });
        }
        let _ = child.kill();
        let _ = child.wait();
        last = Some(anyhow::anyhow!("a sentinel on port {port} did not answer PING within 10 s"));
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no sentinel started")))
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).chain(["/usr/bin".into()]).map(|d| d.join(name)).find(|p| p.is_file())
}
