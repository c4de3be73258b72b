//! A real `wgate-worker` process, for the worker's tests and `wgate chaos`: started with its admin listener on
//! port 0, known by the address it announces, watched through its metrics, and stopped with SIGKILL or SIGTERM.

use std::{
    net::SocketAddr,
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use crate::process::{ChildLog, address_in, announced_with};

/// A running `wgate-worker` binary; dropped, it is SIGKILLed.
pub struct WorkerProcess {
    child: Child,
    admin: SocketAddr,
    log: ChildLog,
}

impl WorkerProcess {
    /// Starts `bin` with `env` (plus JSON logs and its admin listener on port 0), learns the bound address from
    /// the process's own start line, so the answers awaited next come from this process and no other, then waits
    /// for its `/healthz` to answer 200. `echo` prints the child's log lines (as `TEST_LOG` does).
    pub async fn start(bin: &Path, env: &[(String, String)], echo: bool) -> anyhow::Result<Self> {
        let level = std::env::var("TEST_LOG").unwrap_or_else(|_| if echo { "info" } else { "error" }.into());
        let mut child = Command::new(bin)
            .env_remove("WGATE_CONFIG")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("WGATE_WORKER_ADMIN_LISTEN", "127.0.0.1:0")
            .env("WGATE_LOG_FORMAT", "json")
            .env("WGATE_LOG", format!("{level},wgate_worker::startup=info"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("the worker's stdout")?;
        let echo = echo || std::env::var_os("TEST_LOG").is_some();
        let (started, log) = match announced_with(stdout, "wgate-worker started", Duration::from_secs(20), echo).await {
            Ok(announced) => announced,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e.context("the worker did not start"));
            }
        };
        let mut p = Self { child, admin: address_in(&started, "admin")?, log };
        let http = crate::http_client();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = p.child.try_wait()? {
                bail!("the worker exited at start with {status}: {:?}", p.log.lines());
            }
            if let Ok(r) = http.get(format!("http://{}/healthz", p.admin)).send().await
                && r.status() == 200
            {
                return Ok(p);
            }
            if Instant::now() > deadline {
                bail!("the worker's /healthz on {} did not answer 200 within 20 s", p.admin);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Its admin listener, as the process itself announced it.
    pub fn admin(&self) -> SocketAddr {
        self.admin
    }

    /// `wgate_worker_busy`: jobs in flight in this process right now.
    pub async fn busy(&self) -> anyhow::Result<u64> {
        let url = format!("http://{}/metrics", self.admin);
        let text = crate::http_client().get(&url).send().await?.text().await?;
        text.lines()
            .find_map(|l| l.strip_prefix("wgate_worker_busy "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as u64)
            .with_context(|| format!("no wgate_worker_busy in {url}"))
    }

    /// SIGKILL (no shutdown code runs), then reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then its exit status; an error when it has not exited within `within`.
    pub async fn terminate(&mut self, within: Duration) -> anyhow::Result<ExitStatus> {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id())?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("the worker did not exit within {within:?} of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// True once the process has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
