use std::io::Write as _;

use clap::Parser as _;
use wgate_upstream_sim::{Application, SimConfig, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = SimConfig::parse();
    telemetry::init();
    let app = Application::build(config).await?;
    // The first line on stdout tells scripts and tests where to find us (useful with `--listen 127.0.0.1:0`).
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {}", app.base_url())?;
    stdout.flush()?;
    app.run_until_stopped().await?;
    Ok(())
}
