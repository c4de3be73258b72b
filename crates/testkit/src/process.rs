//! What a child process says about itself: a server started on port 0 logs the address it bound, so the test
//! reads the address from that very process instead of guessing a free port and trusting whoever answers there.

use std::{
    io::{BufRead, BufReader},
    process::ChildStdout,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, bail};
use serde_json::Value;

/// Every line a child wrote on its stdout so far (its JSON log), kept by the thread that reads them.
#[derive(Clone, Default)]
pub struct ChildLog {
    lines: Arc<Mutex<Vec<String>>>,
    closed: Arc<AtomicBool>,
}

impl ChildLog {
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    /// The child closed its stdout (it exited): [`ChildLog::lines`] holds everything it wrote.
    pub fn closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

/// Reads the child's JSON log lines (one object per line, on `stdout`) on a thread of their own and returns the
/// first one whose `message` is `message`, with the log that keeps collecting every line. The thread drains the
/// pipe until the child closes it (so the child never blocks on a full pipe) and echoes every line when
/// `TEST_LOG` is set.
pub async fn announced(stdout: ChildStdout, message: &str, within: Duration) -> anyhow::Result<(Value, ChildLog)> {
    announced_with(stdout, message, within, std::env::var_os("TEST_LOG").is_some()).await
}

/// [`announced`], echoing every line when `echo` is set.
pub async fn announced_with(
    stdout: ChildStdout,
    message: &str,
    within: Duration,
    echo: bool,
) -> anyhow::Result<(Value, ChildLog)> {
    let (tx, rx) = tokio::sync::oneshot::channel::<Value>();
    let log = ChildLog::default();
    let kept = log.clone();
    let wanted = message.to_owned();
    std::thread::Builder::new()
        .name("child-stdout".into())
        .spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if echo {
                    println!("{line}");
                }
                if tx.is_some()
                    && let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["message"] == wanted.as_str()
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(v);
                }
                if let Ok(mut l) = kept.lines.lock() {
                    l.push(line);
                }
            }
            kept.closed.store(true, Ordering::SeqCst);
        })
        .context("starting the thread that reads the child's output")?;
    match tokio::time::timeout(within, rx).await {
        Ok(Ok(line)) => Ok((line, log)),
        Ok(Err(_)) => bail!("the process closed its output before logging {message:?}: {:?}", log.lines()),
        Err(_) => bail!("no {message:?} log line within {within:?}: {:?}", log.lines()),
    }
}

/// The string field `field` of an announcement line, as a socket address.
pub fn address_in(line: &Value, field: &str) -> anyhow::Result<std::net::SocketAddr> {
    line[field]
        .as_str()
        .with_context(|| format!("no {field:?} in {line}"))?
        .parse()
        .with_context(|| format!("{field:?} in {line}"))
}
