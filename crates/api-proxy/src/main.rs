//! `wgate-api`: see the library for what it does.

use std::path::PathBuf;

use clap::Parser;
use wgate_api_proxy::{ApiSettings, Application};

/// The wgate tenant API. Every setting is also an environment variable (`WGATE_*`).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// TOML file with settings (environment variables override it).
    #[arg(long, env = "WGATE_CONFIG")]
    config: Option<PathBuf>,
}

// mimalloc: a quarter less API CPU per request than glibc's allocator under the session-create load (see
// docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    wgate_service::init_crypto();
    let cli = Cli::parse();
    let settings = match ApiSettings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wgate-api: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Err(e) = settings.logging.init() {
        eprintln!("wgate-api: {e}");
        return std::process::ExitCode::from(2);
    }
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("wgate-api: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    match app.run_until_stopped().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wgate-api: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
