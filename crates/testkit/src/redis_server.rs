//! A private `redis-server` process on a free port, killed when dropped; it can be frozen (SIGSTOP), as a hung
//! Redis is, and killed and started again on its port.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use crate::TestCertificates;

#[derive(Debug, Clone, Default)]
pub struct RedisServerOptions {
    /// Turn on the append-only file, so a restart keeps the data (chaos tests).
    pub appendonly: bool,
}

/// How a TLS server is set up: its certificates, and whether it refuses clients without a certificate its CA
/// signed (`--tls-auth-clients yes`).
#[derive(Clone)]
pub struct RedisTlsOptions {
    pub certs: Arc<TestCertificates>,
    pub require_client_cert: bool,
}

impl std::fmt::Debug for RedisTlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTlsOptions").field("require_client_cert", &self.require_client_cert).finish()
    }
}

/// One `redis-server` owned by a test. Its data lives in a temporary directory removed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    options: RedisServerOptions,
    /// Serve TLS only (`--port 0 --tls-port`), with these certificates.
    tls: Option<RedisTlsOptions>,
    /// More `redis-server` arguments (`--replicaof`).
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server with no persistence and waits until it answers PING.
    pub async fn start() -> Self {
        Self::start_with(RedisServerOptions::default()).await
    }

    pub async fn start_with(options: RedisServerOptions) -> Self {
        match Self::try_start_with(options).await {
            Ok(server) => server,
            Err(e) => panic!("could not start redis-server: {e:#}"),
        }
    }

    /// A server that speaks only TLS (its URL is `rediss://`), without persistence.
    pub async fn start_tls(tls: RedisTlsOptions) -> Self {
        match Self::try_start(RedisServerOptions::default(), Some(tls), Vec::new()).await {
            Ok(server) => server,
            Err(e) => panic!("could not start a TLS redis-server: {e:#}"),
        }
    }

    /// Like `start_with`, but says why it could not start instead of panicking (for `wgate dev`).
    pub async fn try_start_with(options: RedisServerOptions) -> anyhow::Result<Self> {
        Self::try_start(options, None, Vec::new()).await
    }

    /// A node for a Redis Cluster (`--cluster-enabled yes`), its cluster bus on another port below the ephemeral
    /// range; it answers PING before it joins a cluster.
    pub(crate) async fn start_cluster_node(dir_config: &str) -> anyhow::Result<Self> {
        let extra = vec![
            "--cluster-enabled".into(),
            "yes".into(),
            "--cluster-config-file".into(),
            dir_config.into(),
            "--cluster-port".into(),
            crate::free_port().to_string(),
            // A dead primary is replaced a second after the others stop hearing from it.
            "--cluster-node-timeout".into(),
            "1000".into(),
            "--cluster-announce-ip".into(),
            "127.0.0.1".into(),
        ];
        Self::try_start(RedisServerOptions::default(), None, extra).await
    }

    /// A replica of `primary` (`--replicaof`); it answers PING at once, before its first sync.
    pub async fn start_replica_of(primary: &RedisServer) -> Self {
        let extra = vec!["--replicaof".into(), "127.0.0.1".into(), primary.port().to_string()];
        match Self::try_start(RedisServerOptions::default(), None, extra).await {
            Ok(server) => server,
            Err(e) => panic!("could not start a replica redis-server: {e:#}"),
        }
    }

    /// A TLS replica of a TLS `primary` (`--tls-replication yes`).
    pub async fn start_tls_replica_of(primary: &RedisServer, tls: RedisTlsOptions) -> Self {
        let extra = vec![
            "--replicaof".into(),
            "127.0.0.1".into(),
            primary.port().to_string(),
            "--tls-replication".into(),
            "yes".into(),
        ];
        match Self::try_start(RedisServerOptions::default(), Some(tls), extra).await {
            Ok(server) => server,
            Err(e) => panic!("could not start a TLS replica redis-server: {e:#}"),
        }
    }

    async fn try_start(
        options: RedisServerOptions,
        tls: Option<RedisTlsOptions>,
        extra: Vec<String>,
    ) -> anyhow::Result<Self> {
        which_redis_server()?;
        // Another test process may bind the port between our check and redis-server's bind: try a few.
        let mut last_err = None;
        for _ in 0..5 {
            let dir = tempfile::tempdir().context("temporary directory for redis-server")?;
            let mut server = Self {
                child: None,
                port: crate::free_port(),
                dir,
                options: options.clone(),
                tls: tls.clone(),
                extra: extra.clone(),
            };
            match server.spawn().await {
                Ok(()) => return Ok(server),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("redis-server did not start")))
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let bin = which_redis_server()?;
        let mut cmd = Command::new(bin);
        match &self.tls {
            None => {
                cmd.arg("--port").arg(self.port.to_string());
            }
            Some(tls) => {
                cmd.arg("--port")
                    .arg("0")
                    .arg("--tls-port")
                    .arg(self.port.to_string())
                    .arg("--tls-cert-file")
                    .arg(tls.certs.server_cert())
                    .arg("--tls-key-file")
                    .arg(tls.certs.server_key())
                    .arg("--tls-ca-cert-file")
                    .arg(tls.certs.ca_cert())
                    .arg("--tls-auth-clients")
                    .arg(if tls.require_client_cert { "yes" } else { "no" });
            }
        }
        cmd.arg("--bind")
            .arg("127.0.0.1")
            .arg("--save")
            .arg("")
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--appendonly")
            .arg(if self.options.appendonly { "yes" } else { "no" })
            .arg("--appendfsync")
            .arg("always")
            .arg("--daemonize")
            .arg("no")
            // A replica's first sync starts at once rather than after the default 5 s.
            .arg("--repl-diskless-sync-delay")
            .arg("0")
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().context("spawning redis-server")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("redis-server exited at start with {status} (port {} taken?)", self.port);
            }
            // Whoever answers on the port must be the process just started, not another test's server; and it
            // must have loaded its data (INFO answers while loading, PING does not).
            match self.process_id().await {
                Ok(pid) if pid == child.id() => {
                    if self.ping().await.is_ok() {
                        self.child = Some(child);
                        return Ok(());
                    }
                }
                Ok(other) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("port {} is served by another redis-server (pid {other})", self.port);
                }
                Err(_) => {}
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("redis-server did not answer on port {} within 10 s", self.port);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The `process_id` of the server answering on this port (`INFO server`), bounded by a second.
    async fn process_id(&self) -> anyhow::Result<u32> {
        let ask = async {
            let client = self.client()?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            redis::cmd("INFO").arg("server").query_async::<String>(&mut conn).await
        };
        let info = tokio::time::timeout(Duration::from_secs(1), ask).await.context("INFO server timed out")??;
        info.lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .and_then(|p| p.trim().parse().ok())
            .context("INFO server without process_id")
    }

    /// PING, bounded by a second.
    async fn ping(&self) -> anyhow::Result<()> {
        let ask = async {
            let client = self.client()?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<()>(&mut conn).await
        };
        Ok(tokio::time::timeout(Duration::from_secs(1), ask).await.context("PING timed out")??)
    }

    /// `redis://127.0.0.1:<port>`, or `rediss://` for a TLS server.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// A client for this server (trusting its CA and showing the client certificate when it serves TLS).
    pub fn client(&self) -> redis::RedisResult<redis::Client> {
        match &self.tls {
            None => redis::Client::open(self.url()),
            Some(tls) => redis::Client::build_with_tls(
                self.url(),
                redis::TlsCertificates {
                    client_tls: Some(redis::ClientTlsConfig {
                        client_cert: TestCertificates::read(&tls.certs.client_cert()),
                        client_key: TestCertificates::read(&tls.certs.client_key()),
                    }),
                    root_cert: Some(TestCertificates::read(&tls.certs.ca_cert())),
                },
            ),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// False once killed (until `start_again`).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server (SIGKILL): clients see connection errors until `start_again`.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the process (SIGSTOP): it keeps its connections but answers nothing, as a stalled replica does.
    pub fn pause(&self) {
        signal(self.pid().expect("pausing a redis-server that is not running"), nix::sys::signal::Signal::SIGSTOP);
    }

    /// Lets a paused process run again (SIGCONT).
    pub fn resume(&self) {
        signal(self.pid().expect("resuming a redis-server that is not running"), nix::sys::signal::Signal::SIGCONT);
    }

    /// Waits until this primary counts `n` replicas as online: synced, and acknowledging (only then does `WAIT`
    /// count them).
    pub async fn await_replicas_online(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut c = self.connection().await;
        loop {
            let info: String = redis::cmd("INFO").arg("replication").query_async(&mut c).await.unwrap_or_default();
            let online = info.lines().filter(|l| l.starts_with("slave") && l.contains("state=online")).count();
            if online >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the primary on port {} had no {n} online replicas within 20 s",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts the server again on the same port and directory (with AOF on, the data comes back). The port lies
    /// outside the range the OS hands out to other sockets, so it is free again at once; should another test have
    /// bound it meanwhile, this retries for ten seconds, then panics saying so.
    pub async fn start_again(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn().await {
                Ok(()) => return,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("restarting redis-server on port {}: {e:#}; trying again", self.port);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("redis-server could not start again on port {} within 10 s: {e:#}", self.port),
            }
        }
    }

    /// Freezes the server (SIGSTOP), as a hung Redis is: connections stay open and every command waits for an
    /// answer that does not come. It thaws (SIGCONT) when the guard is dropped, so a failing test never leaves it
    /// stopped.
    pub fn freeze(&self) -> Frozen<'_> {
        let pid = self.pid().expect("freezing a redis-server that is not running");
        signal(pid, nix::sys::signal::Signal::SIGSTOP);
        Frozen { server: self, pid }
    }

    fn pid(&self) -> Option<nix::unistd::Pid> {
        let id = self.child.as_ref()?.id();
        Some(nix::unistd::Pid::from_raw(i32::try_from(id).ok()?))
    }

    /// A fresh async connection, for tests that inspect keys directly.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        self.client()
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("connecting to the test redis-server")
    }
}

/// A frozen redis-server (see [`RedisServer::freeze`]); dropping it, or [`Frozen::thaw`], lets it run again.
#[must_use = "the server thaws as soon as the guard is dropped"]
pub struct Frozen<'a> {
    server: &'a RedisServer,
    pid: nix::unistd::Pid,
}

impl Frozen<'_> {
    /// Lets the server run again (SIGCONT).
    pub fn thaw(self) {}
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        if self.server.pid() == Some(self.pid) {
            signal(self.pid, nix::sys::signal::Signal::SIGCONT);
        }
    }
}

fn signal(pid: nix::unistd::Pid, sig: nix::sys::signal::Signal) {
    if let Err(e) = nix::sys::signal::kill(pid, sig) {
        panic!("sending {sig} to redis-server (pid {pid}): {e}");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) fn which_redis_server() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("REDIS_SERVER_BIN") {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/usr/local/bin".into(), "/usr/sbin".into()])
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
        .context("redis-server is not installed: run `sudo apt-get install -y redis-server` (or set REDIS_SERVER_BIN)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_server_starts_answers_and_restarts_with_its_data_when_aof_is_on() {
        let mut server = RedisServer::start_with(RedisServerOptions { appendonly: true }).await;
        let mut conn = server.connection().await;
        redis::cmd("SET").arg("k").arg("v").query_async::<()>(&mut conn).await.unwrap();
        server.kill();
        assert!(server.ping().await.is_err());
        server.start_again().await;
        let mut conn = server.connection().await;
        let v: String = redis::cmd("GET").arg("k").query_async(&mut conn).await.unwrap();
        assert_eq!(v, "v");
    }

    #[tokio::test]
    async fn a_frozen_server_answers_nothing_until_its_guard_is_dropped() {
        let server = RedisServer::start().await;
        let mut conn = server.connection().await;
        let frozen = server.freeze();
        let mut cmd = redis::cmd("GET");
        let mut get = Box::pin(cmd.arg("k").query_async::<Option<String>>(&mut conn));
        assert!(tokio::time::timeout(Duration::from_millis(300), &mut get).await.is_err(), "answered while frozen");
        frozen.thaw();
        let v = tokio::time::timeout(Duration::from_secs(5), get).await.expect("an answer once thawed").unwrap();
        assert_eq!(v, None);
    }

    #[tokio::test]
    async fn a_panic_while_frozen_thaws_the_server() {
        let server = RedisServer::start().await;
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _frozen = server.freeze();
            panic!("a failing assertion while Redis is frozen");
        }));
        assert!(caught.is_err());
        tokio::time::timeout(Duration::from_secs(5), server.ping()).await.expect("thawed").unwrap();
    }

    #[tokio::test]
    async fn a_tls_server_answers_a_client_with_its_certificates_and_refuses_plain_text() {
        let certs = Arc::new(TestCertificates::generate());
        let server = RedisServer::start_tls(RedisTlsOptions { certs, require_client_cert: true }).await;
        assert!(server.url().starts_with("rediss://"), "{}", server.url());
        server.ping().await.expect("PING over TLS with the client certificate");
        let plain = redis::Client::open(format!("redis://127.0.0.1:{}", server.port())).unwrap();
        let r = tokio::time::timeout(Duration::from_secs(5), async {
            let mut c = plain.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<()>(&mut c).await
        })
        .await;
        assert!(!matches!(r, Ok(Ok(()))), "a plain-text PING must not be answered by a TLS-only server");
    }
}
