//! What a child process says about itself: a server started on port 0 logs the address it bound, so the test
//! reads the address from that very process instead of guessing a free port and trusting whoever answers there.

use std::{
    io::{BufRead, BufReader},
    process::ChildStdout,
    time::Duration,
};

use anyhow::{Context, bail};

/// Reads the child's JSON log lines (one object per line, on `stdout`) on a thread of their own until the first
/// line whose `message` is `message`, and returns its field `field`. The thread keeps draining the pipe afterwards
/// (so the child never blocks on a full pipe) and echoes every line when `TEST_LOG` is set.
pub async fn announced(stdout: ChildStdout, message: &str, field: &str, within: Duration) -> anyhow::Result<String> {
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    let (wanted, field_name) = (message.to_owned(), field.to_owned());
    let echo = std::env::var_os("TEST_LOG").is_some();
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
                    && let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && v["message"] == wanted.as_str()
                    && let Some(value) = v[field_name.as_str()].as_str()
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(value.to_owned());
                }
            }
        })
        .context("starting the thread that reads the child's output")?;
    match tokio::time::timeout(within, rx).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) => bail!("the process closed its output before logging {message:?} with {field:?}"),
        Err(_) => bail!("no {message:?} log line with {field:?} within {within:?}"),
    }
}
