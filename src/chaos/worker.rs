//! Real `wgate-worker` processes, started, watched and SIGKILLed.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

/// A real `wgate-worker` process.
pub(super) struct WorkerProcess {
    child: Child,
    admin: SocketAddr,
}

impl WorkerProcess {
    pub(super) async fn start(bin: &Path, env: &[(String, String)], verbose: bool) -> anyhow::Result<Self> {
        let admin = SocketAddr::from(([127, 0, 0, 1], wgate_testkit::free_port()));
        let child = Command::new(bin)
            .env_remove("WGATE_CONFIG")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("WGATE_WORKER_ADMIN_LISTEN", admin.to_string())
            .stdin(Stdio::null())
            .stdout(if verbose { Stdio::inherit() } else { Stdio::null() })
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut p = Self { child, admin };
        let http = wgate_testkit::http_client();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = p.child.try_wait()? {
                bail!("the worker exited at start with {status}");
            }
            if http.get(format!("http://{admin}/healthz")).send().await.is_ok() {
                return Ok(p);
            }
            if Instant::now() > deadline {
                bail!("the worker did not answer /healthz on {admin} within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Jobs it has in flight right now, from its metrics (0 when it cannot say).
    pub(super) async fn busy(&self, http: &reqwest::Client) -> u64 {
        let Ok(r) = http.get(format!("http://{}/metrics", self.admin)).send().await else { return 0 };
        let text = r.text().await.unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("wgate_worker_busy "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    }

    pub(super) fn sigkill(&mut self) {
        // `Child::kill` is SIGKILL on Unix: no shutdown code runs.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub(super) fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.sigkill();
    }
}

/// The worker binary: the flag, else the one next to this executable.
pub fn worker_bin(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match flag {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe().context("locating this executable")?.with_file_name("wgate-worker"),
    };
    if !path.is_file() {
        bail!(
            "the worker binary {} is missing: build it with `cargo build --release --workspace --bins` (or pass --worker-bin)",
            path.display()
        );
    }
    Ok(path)
}
