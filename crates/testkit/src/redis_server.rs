//! A private `redis-server` process on a free port, killed when dropped; it can be frozen (SIGSTOP), as a hung
//! Redis is, and killed and started again on its port.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

#[derive(Debug, Clone, Default)]
pub struct RedisServerOptions {
    /// Turn on the append-only file, so a restart keeps the data (chaos tests).
    pub appendonly: bool,
}

/// One `redis-server` owned by a test. Its data lives in a temporary directory removed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    options: RedisServerOptions,
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

    /// Like `start_with`, but says why it could not start instead of panicking (for `wgate dev`).
    pub async fn try_start_with(options: RedisServerOptions) -> anyhow::Result<Self> {
        which_redis_server()?;
        // Another test process may bind the port between our check and redis-server's bind: try a few.
        let mut last_err = None;
        for _ in 0..5 {
            let dir = tempfile::tempdir().context("temporary directory for redis-server")?;
            let mut server = Self { child: None, port: crate::free_port(), dir, options: options.clone() };
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
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
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
            let client = redis::Client::open(self.url())?;
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
            let client = redis::Client::open(self.url())?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<()>(&mut conn).await
        };
        Ok(tokio::time::timeout(Duration::from_secs(1), ask).await.context("PING timed out")??)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL): clients see connection errors until `start_again`.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
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
        redis::Client::open(self.url())
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

fn which_redis_server() -> anyhow::Result<PathBuf> {
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
}
