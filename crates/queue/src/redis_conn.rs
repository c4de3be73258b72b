//! A lazily connected, self-reconnecting Redis handle whose every call is bounded by the command timeout. In
//! Sentinel mode it asks the sentinels for the primary and asks again whenever a call fails for want of Redis, so
//! a promoted replica is found without a restart. In Cluster mode the cluster client routes every command by its
//! key's slot and follows slot moves and failovers by itself.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection},
    cluster::ClusterClient,
    cluster_async::ClusterConnection,
};
use tokio::sync::OnceCell;

use crate::{QueueConfig, QueueError, RedisMode};

/// Connects on first use (so a process can start while Redis is down) and reconnects by itself afterwards.
#[derive(Clone)]
pub(crate) struct Redis {
    target: Arc<Target>,
    timeout: Duration,
    /// Set when writes wait for replicas (`wait_replicas > 0`).
    acknowledged: Option<Arc<Acknowledged>>,
}

/// The connection of the writes that wait for replicas. `WAIT` counts the writes of its own connection, so the
/// write and its `WAIT` must share one, and it must not reconnect between them (a fresh connection has written
/// nothing, and its `WAIT` would answer at once): a plain connection, dropped after any failure and made anew.
/// A blocked `WAIT` holds up only the writes queued behind it on this connection, never reads.
struct Acknowledged {
    conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    replicas: u32,
    wait: Duration,
}

/// A connection a call runs on: the shared one of one server, the cluster's, or a dedicated one (the writes that
/// wait for replicas, the worker's blocking reader).
#[derive(Clone)]
pub(crate) enum Conn {
    Shared(ConnectionManager),
    Cluster(ClusterConnection),
    Dedicated(MultiplexedConnection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Self::Shared(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
            Self::Dedicated(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Self::Shared(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Dedicated(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Shared(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
            Self::Dedicated(c) => c.get_db(),
        }
    }
}

enum Target {
    /// One address: the connection manager reconnects to it by itself.
    Standalone { client: redis::Client, manager: OnceCell<ConnectionManager> },
    /// The primary named by the sentinels; `stale` makes the next call ask them again.
    Sentinel {
        sentinels: Sentinels,
        current: tokio::sync::Mutex<Option<(String, ConnectionManager)>>,
        stale: AtomicBool,
    },
    /// A Redis Cluster: one cluster client for every call, plain clients of the seed nodes for the completion
    /// subscription (a `PUBLISH` reaches every node of a cluster).
    Cluster {
        config: Box<QueueConfig>,
        client: ClusterClient,
        conn: OnceCell<ClusterConnection>,
        seeds: Vec<redis::Client>,
        next_seed: AtomicUsize,
    },
}

impl Redis {
    pub(crate) fn new(config: &QueueConfig) -> Result<Self, QueueError> {
        let target = match &config.mode {
            RedisMode::Standalone => Target::Standalone { client: client(config)?, manager: OnceCell::new() },
            RedisMode::Sentinel { service } => Target::Sentinel {
                sentinels: Sentinels::new(config, service)?,
                current: tokio::sync::Mutex::new(None),
                stale: AtomicBool::new(false),
            },
            RedisMode::Cluster => {
                let seeds = seed_urls(config)?.iter().map(|u| build(u, config)).collect::<Result<Vec<_>, _>>()?;
                Target::Cluster {
                    config: Box::new(config.clone()),
                    client: cluster_client(config, None)?,
                    conn: OnceCell::new(),
                    seeds,
                    next_seed: AtomicUsize::new(0),
                }
            }
        };
        let acknowledged = (config.wait_replicas > 0).then(|| {
            Arc::new(Acknowledged {
                conn: tokio::sync::Mutex::new(None),
                replicas: config.wait_replicas,
                wait: config.wait_timeout,
            })
        });
        Ok(Self { target: Arc::new(target), timeout: config.command_timeout, acknowledged })
    }

    /// A client for a new single-server connection (the completion subscription, the writes that wait for
    /// replicas): the one address, the primary the sentinels name now, or in a cluster the next seed node (each
    /// call another one, so a dead node is passed over).
    pub(crate) async fn client(&self) -> Result<redis::Client, QueueError> {
        match &*self.target {
            Target::Standalone { client, .. } => Ok(client.clone()),
            Target::Sentinel { sentinels, .. } => {
                tokio::time::timeout(self.timeout, sentinels.primary()).await.unwrap_or_else(|_| {
                    Err(QueueError::Unavailable(format!("no sentinel answered within {:?}", self.timeout)))
                })
            }
            Target::Cluster { seeds, next_seed, .. } => {
                let i = next_seed.fetch_add(1, Ordering::Relaxed) % seeds.len().max(1);
                seeds.get(i).cloned().ok_or_else(|| QueueError::Config("WGATE_REDIS_URL lists no node".into()))
            }
        }
    }

    /// A new connection of its own, whose replies may take `response_timeout` (the worker's blocking reader): to
    /// the one server, the primary the sentinels name now, or the cluster.
    pub(crate) async fn dedicated(&self, response_timeout: Duration) -> Result<Conn, QueueError> {
        let connect = async {
            if let Target::Cluster { config, .. } = &*self.target {
                let client = cluster_client(config, Some(response_timeout))?;
                return Ok(Conn::Cluster(client.get_async_connection().await?));
            }
            let config = redis::AsyncConnectionConfig::new()
                .set_connection_timeout(Some(self.timeout))
                .set_response_timeout(Some(response_timeout));
            let client = self.client().await?;
            Ok::<_, QueueError>(Conn::Dedicated(client.get_multiplexed_async_connection_with_config(&config).await?))
        };
        tokio::time::timeout(self.timeout, connect)
            .await
            .map_err(|_| QueueError::Unavailable(format!("connecting to redis timed out after {:?}", self.timeout)))?
    }

    /// True when a dedicated connection made from `client` no longer leads to the primary (Sentinel mode only;
    /// an unreachable sentinel says nothing).
    pub(crate) async fn moved_from(&self, client: &redis::Client) -> bool {
        match &*self.target {
            Target::Standalone { .. } | Target::Cluster { .. } => false,
            Target::Sentinel { sentinels, .. } => {
                match tokio::time::timeout(self.timeout, sentinels.primary_addr()).await {
                    Ok(Ok(addr)) => addr != client.get_connection_info().addr().to_string(),
                    _ => false,
                }
            }
        }
    }

    fn manager_config(&self) -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_response_timeout(Some(self.timeout))
            .set_connection_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(200))
    }

    /// The shared multiplexed connection (created lazily; for one server it connects at its first command).
    pub(crate) async fn conn(&self) -> Result<Conn, QueueError> {
        match &*self.target {
            Target::Standalone { client, manager } => {
                let config = self.manager_config();
                let client = client.clone();
                manager
                    .get_or_try_init(|| async move { ConnectionManager::new_lazy_with_config(client, config) })
                    .await
                    .cloned()
                    .map(Conn::Shared)
                    .map_err(QueueError::from)
            }
            Target::Cluster { client, conn, .. } => conn
                .get_or_try_init(|| client.get_async_connection())
                .await
                .cloned()
                .map(Conn::Cluster)
                .map_err(QueueError::from),
            Target::Sentinel { sentinels, current, stale } => {
                // One caller asks the sentinels while the others wait for its answer.
                let mut current = current.lock().await;
                if let Some((_, manager)) = current.as_ref()
                    && !stale.load(Ordering::Acquire)
                {
                    return Ok(Conn::Shared(manager.clone()));
                }
                let client = sentinels.primary().await?;
                stale.store(false, Ordering::Release);
                let addr = client.get_connection_info().addr().to_string();
                if let Some((known, manager)) = current.as_ref()
                    && *known == addr
                {
                    return Ok(Conn::Shared(manager.clone()));
                }
                tracing::info!(redis.primary = %addr, "using the primary the sentinels name");
                let manager = ConnectionManager::new_lazy_with_config(client, self.manager_config())?;
                *current = Some((addr, manager.clone()));
                Ok(Conn::Shared(manager))
            }
        }
    }

    /// After a call failed for want of Redis: in Sentinel mode the next call asks the sentinels again.
    fn suspect(&self, e: &QueueError) {
        if let Target::Sentinel { stale, .. } = &*self.target
            && e.is_unavailable()
        {
            stale.store(true, Ordering::Release);
        }
    }

    /// Runs one call on the shared connection, bounded by the command timeout.
    pub(crate) async fn call<T, F, Fut>(&self, what: &'static str, f: F) -> Result<T, QueueError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let attempt = async {
            let conn = self.conn().await?;
            f(conn).await.map_err(QueueError::from)
        };
        let r = match tokio::time::timeout(self.timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(QueueError::Unavailable(format!("{what}: no answer from redis within {:?}", self.timeout))),
        };
        if let Err(e) = &r {
            self.suspect(e);
        }
        r
    }

    /// Like [`Redis::call`] for a write whose success a client is told: with `wait_replicas` set, it succeeds
    /// only once `WAIT` says that many replicas have it, within `wait_timeout` (else `Unavailable`; the write
    /// itself may still have happened on the primary, which an idempotent retry finds).
    pub(crate) async fn call_acknowledged<T, F, Fut>(&self, what: &'static str, f: F) -> Result<T, QueueError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let Some(ack) = &self.acknowledged else {
            return self.call(what, f).await;
        };
        // Outer error: the connection failed (it is replaced). Inner error: too few replicas in time.
        let attempt = async {
            // In a cluster `WAIT` goes to every primary on the shared connection's node links (the least count
            // answers), which the write shares.
            let mut conn = if let Target::Cluster { .. } = &*self.target {
                self.conn().await?
            } else {
                let mut slot = ack.conn.lock().await;
                match slot.as_ref() {
                    Some(c) => Conn::Dedicated(c.clone()),
                    None => {
                        let config = redis::AsyncConnectionConfig::new()
                            .set_connection_timeout(Some(self.timeout))
                            .set_response_timeout(Some(self.timeout + ack.wait));
                        let c = self.client().await?.get_multiplexed_async_connection_with_config(&config).await?;
                        *slot = Some(c.clone());
                        Conn::Dedicated(c)
                    }
                }
            };
            let value = f(conn.clone()).await?;
            let wait_ms = u64::try_from(ack.wait.as_millis()).unwrap_or(u64::MAX).max(1);
            let reached: u32 = redis::cmd("WAIT").arg(ack.replicas).arg(wait_ms).query_async(&mut conn).await?;
            if reached < ack.replicas {
                return Ok(Err(QueueError::Unavailable(format!(
                    "{what}: the write reached {reached} of {} replicas within {:?}",
                    ack.replicas, ack.wait
                ))));
            }
            Ok::<_, QueueError>(Ok(value))
        };
        let bound = self.timeout * 2 + ack.wait;
        let r = match tokio::time::timeout(bound, attempt).await {
            // Too few replicas: in Sentinel mode the connection may be on a primary that was just replaced (and
            // has lost its replica), so the next write asks the sentinels again.
            Ok(Ok(Err(e))) if matches!(&*self.target, Target::Sentinel { .. }) => {
                *ack.conn.lock().await = None;
                Err(e)
            }
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                if e.is_unavailable() {
                    *ack.conn.lock().await = None;
                }
                Err(e)
            }
            Err(_) => {
                *ack.conn.lock().await = None;
                Err(QueueError::Unavailable(format!("{what}: no answer from redis within {bound:?}")))
            }
        };
        if let Err(e) = &r {
            self.suspect(e);
        }
        r
    }

    /// [`Redis::call_again`] for one command built beforehand.
    pub(crate) async fn query_again<T: redis::FromRedisValue>(
        &self,
        what: &'static str,
        cmd: &redis::Cmd,
    ) -> Result<T, QueueError> {
        self.call_again(what, |mut c| async move { cmd.query_async(&mut c).await }).await
    }

    /// Like [`Redis::call`] for calls that are safe to repeat (reads): the first call after Redis restarted
    /// fails on the dead connection, so it is tried once more on the new one, within the same time bound.
    pub(crate) async fn call_again<T, F, Fut>(&self, what: &'static str, f: F) -> Result<T, QueueError>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let attempt = async {
            let conn = self.conn().await?;
            match f(conn).await.map_err(QueueError::from) {
                Err(e) if e.is_unavailable() => {
                    self.suspect(&e);
                    let conn = self.conn().await?;
                    f(conn).await.map_err(QueueError::from)
                }
                r => r,
            }
        };
        let r = match tokio::time::timeout(self.timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(QueueError::Unavailable(format!("{what}: no answer from redis within {:?}", self.timeout))),
        };
        if let Err(e) = &r {
            self.suspect(e);
        }
        r
    }
}

/// The sentinels of `WGATE_REDIS_URL` and how to reach the primary they name.
struct Sentinels {
    service: String,
    sentinels: Vec<redis::Client>,
    /// The first sentinel's URL: its scheme, user, password and database are the primary's.
    template: url::Url,
    config: QueueConfig,
    /// The sentinel asked first next time: the last one that answered.
    next: AtomicUsize,
}

impl Sentinels {
    fn new(config: &QueueConfig, service: &str) -> Result<Self, QueueError> {
        let urls: Vec<&str> = config.redis_url.split(',').map(str::trim).filter(|u| !u.is_empty()).collect();
        let mut sentinels = Vec::new();
        for u in &urls {
            let mut url = url::Url::parse(u).map_err(|e| {
                QueueError::Config(format!("WGATE_REDIS_URL: sentinel {:?} is not a Redis URL: {e}", redact_url(u)))
            })?;
            // A sentinel has no databases: the number applies to the primary only.
            url.set_path("");
            sentinels.push(build(url.as_str(), config)?);
        }
        let Some(first) = urls.first() else {
            return Err(QueueError::Config("WGATE_REDIS_URL lists no sentinel".into()));
        };
        let template = url::Url::parse(first).map_err(|e| QueueError::Config(format!("WGATE_REDIS_URL: {e}")))?;
        Ok(Self { service: service.to_owned(), sentinels, template, config: config.clone(), next: AtomicUsize::new(0) })
    }

    /// `host:port` of the primary, as the first sentinel that answers names it.
    async fn primary_addr(&self) -> Result<String, QueueError> {
        let n = self.sentinels.len();
        let first = self.next.load(Ordering::Relaxed);
        let mut last = String::from("no sentinel listed");
        for i in 0..n {
            let at = (first + i) % n;
            let asked = async {
                let mut c = self.sentinels[at].get_multiplexed_async_connection().await?;
                redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg(&self.service)
                    .query_async::<Option<(String, u16)>>(&mut c)
                    .await
            };
            match tokio::time::timeout(self.config.command_timeout, asked).await {
                Ok(Ok(Some((host, port)))) => {
                    self.next.store(at, Ordering::Relaxed);
                    return Ok(if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") });
                }
                Ok(Ok(None)) => last = format!("sentinel {at} does not know the service {:?}", self.service),
                Ok(Err(e)) => last = format!("sentinel {at}: {e}"),
                Err(_) => last = format!("sentinel {at} did not answer"),
            }
        }
        Err(QueueError::Unavailable(format!("no sentinel named the primary of {:?}: {last}", self.service)))
    }

    /// A client for the primary, checked to be one (`ROLE`): a sentinel may still name a demoted primary.
    async fn primary(&self) -> Result<redis::Client, QueueError> {
        let addr = self.primary_addr().await?;
        let mut url = self.template.clone();
        let (host, port) = addr.rsplit_once(':').ok_or_else(|| QueueError::Corrupt(format!("address {addr}")))?;
        let port: u16 = port.parse().map_err(|_| QueueError::Corrupt(format!("address {addr}")))?;
        url.set_host(Some(host)).map_err(|e| QueueError::Corrupt(format!("address {addr}: {e}")))?;
        url.set_port(Some(port)).map_err(|()| QueueError::Corrupt(format!("address {addr}")))?;
        let client = build(url.as_str(), &self.config)?;
        let role = tokio::time::timeout(self.config.command_timeout, async {
            let mut c = client.get_multiplexed_async_connection().await?;
            redis::cmd("ROLE").query_async::<redis::Value>(&mut c).await
        })
        .await
        .map_err(|_| QueueError::Unavailable(format!("the primary {addr} did not answer")))??;
        match role {
            redis::Value::Array(parts) if matches!(parts.first(), Some(redis::Value::BulkString(b)) if b.as_slice() == b"master") => {
                Ok(client)
            }
            _ => Err(QueueError::Unavailable(format!("{addr}, named by the sentinels, is not a primary (yet)"))),
        }
    }
}

/// The nodes `WGATE_REDIS_URL` lists (comma separated).
fn seed_urls(config: &QueueConfig) -> Result<Vec<&str>, QueueError> {
    let urls: Vec<&str> = config.redis_url.split(',').map(str::trim).filter(|u| !u.is_empty()).collect();
    if urls.is_empty() {
        return Err(QueueError::Config("WGATE_REDIS_URL lists no cluster node".into()));
    }
    Ok(urls)
}

/// The cluster client for the seed nodes of `WGATE_REDIS_URL`, with the certificates of `config.tls`, and every
/// reply bounded by `response_timeout` (the command timeout when `None`).
fn cluster_client(config: &QueueConfig, response_timeout: Option<Duration>) -> Result<ClusterClient, QueueError> {
    build_cluster(config, response_timeout, |b| b)
}

/// A cluster client speaking RESP3 whose shard-channel messages (`SSUBSCRIBE`) arrive on `pushes`: it subscribes
/// on the node that owns each channel's slot, and subscribes again where the slot went after a failover.
pub(crate) fn cluster_subscriber(
    config: &QueueConfig,
    pushes: tokio::sync::mpsc::UnboundedSender<redis::PushInfo>,
) -> Result<ClusterClient, QueueError> {
    build_cluster(config, None, |b| b.use_protocol(redis::ProtocolVersion::RESP3).push_sender(pushes))
}

fn build_cluster(
    config: &QueueConfig,
    response_timeout: Option<Duration>,
    finish: impl FnOnce(redis::cluster::ClusterClientBuilder) -> redis::cluster::ClusterClientBuilder,
) -> Result<ClusterClient, QueueError> {
    let urls = seed_urls(config)?;
    let mut builder = redis::cluster::ClusterClientBuilder::new(urls.iter().copied())
        .connection_timeout(config.command_timeout)
        .response_timeout(response_timeout.unwrap_or(config.command_timeout))
        .retries(2)
        .min_retry_wait(20)
        .max_retry_wait(200);
    if let Some(certs) = tls_certificates(urls.first().copied().unwrap_or_default(), config)? {
        builder = builder.certs(certs);
    }
    finish(builder).build().map_err(|e| {
        QueueError::Config(format!(
            "WGATE_REDIS_URL {:?} does not name cluster nodes: {e}",
            redact_url(&config.redis_url)
        ))
    })
}

/// The client for `WGATE_REDIS_URL`, with the certificates of `config.tls` for a `rediss://` URL. Every
/// connection the processes make (the shared one, the worker's blocking reader, the completion subscription)
/// comes from here, so all of them use TLS alike.
pub(crate) fn client(config: &QueueConfig) -> Result<redis::Client, QueueError> {
    build(&config.redis_url, config)
}

/// A client for `url` (one server) with the certificates of `config.tls`.
fn build(url: &str, config: &QueueConfig) -> Result<redis::Client, QueueError> {
    let url = url.trim();
    let bad_url = |e: redis::RedisError| {
        QueueError::Config(format!("WGATE_REDIS_URL {:?} is not a Redis URL: {e}", redact_url(url)))
    };
    let Some(certs) = tls_certificates(url, config)? else {
        // No files: a rediss:// URL trusts the system's CA store.
        return redis::Client::open(url).map_err(bad_url);
    };
    let info = redis::IntoConnectionInfo::into_connection_info(url).map_err(bad_url)?;
    redis::Client::build_with_tls(info, certs).map_err(|e| {
        QueueError::Config(format!(
            "the TLS files for WGATE_REDIS_URL {:?} cannot be used (WGATE_REDIS_CA_FILE, \
             WGATE_REDIS_CLIENT_CERT, WGATE_REDIS_CLIENT_KEY must be PEM): {e}",
            redact_url(url)
        ))
    })
}

/// The certificates of `config.tls` for a `rediss://` URL; `None` when no file is set.
fn tls_certificates(url: &str, config: &QueueConfig) -> Result<Option<redis::TlsCertificates>, QueueError> {
    let tls = &config.tls;
    let is_tls = url.starts_with("rediss://");
    if tls.is_set() && !is_tls {
        return Err(QueueError::Config(format!(
            "WGATE_REDIS_CA_FILE, WGATE_REDIS_CLIENT_CERT and WGATE_REDIS_CLIENT_KEY apply to TLS only, but \
             WGATE_REDIS_URL {:?} is not a rediss:// URL",
            redact_url(url)
        )));
    }
    if !tls.is_set() {
        return Ok(None);
    }
    let root_cert = match &tls.ca_file {
        Some(path) => {
            let pem = read_pem("WGATE_REDIS_CA_FILE", path)?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err(QueueError::Config(format!(
                    "WGATE_REDIS_CA_FILE {} holds no PEM certificate",
                    path.display()
                )));
            }
            Some(pem)
        }
        None => None,
    };
    let client_tls = match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: read_pem("WGATE_REDIS_CLIENT_CERT", cert)?,
            client_key: read_pem("WGATE_REDIS_CLIENT_KEY", key)?,
        }),
        (None, None) => None,
        _ => {
            return Err(QueueError::Config(
                "WGATE_REDIS_CLIENT_CERT and WGATE_REDIS_CLIENT_KEY go together: set both (mutual TLS) or neither"
                    .into(),
            ));
        }
    };
    Ok(Some(redis::TlsCertificates { client_tls, root_cert }))
}

fn read_pem(setting: &str, path: &std::path::Path) -> Result<Vec<u8>, QueueError> {
    std::fs::read(path).map_err(|e| QueueError::Config(format!("{setting} {}: cannot be read: {e}", path.display())))
}

/// A Redis URL (or a comma-separated list of them) with every password replaced by `***`, for messages and `Debug`.
/// The `url` crate's parser finds the user info as Redis does, up to the last `@` before the host, so a password
/// holding `@` or `:` is hidden whole; a URL it cannot parse keeps only what follows its last `@`.
pub fn redact_url(urls: &str) -> String {
    urls.split(',').map(|one| redact_one(one.trim())).collect::<Vec<_>>().join(",")
}

fn redact_one(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => match url.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => url.to_owned(),
        },
    }
}

#[cfg(test)]
mod redact_tests {
    use super::redact_url;

    #[test]
    fn a_password_holding_at_signs_and_colons_is_hidden_whole() {
        assert_eq!(redact_url("redis://:p@ss:w@rd@host:6379/0"), "redis://:***@host:6379/0");
        assert_eq!(redact_url("rediss://user:s3cr@t@h:6380"), "rediss://user:***@h:6380");
        assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
        assert_eq!(redact_url("redis://:a@b@h1:1, redis://:c@d@h2:2"), "redis://:***@h1:1,redis://:***@h2:2");
        assert!(!redact_url("not a url with:secret@stuff@host").contains("secret"));
    }
}
