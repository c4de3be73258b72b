//! Where the real `wgate-worker` binary is; the processes themselves are `wgate_testkit::WorkerProcess`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

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
