//! `wgate-worker`: runs session-create jobs from the Redis queue against WhatsGate.

use clap::Parser;
use wgate_worker::{Application, Settings};

#[derive(Parser)]
#[command(name = "wgate-worker", version, about = "Runs wgate's session-create jobs against WhatsGate")]
struct Cli {
    /// TOML file with the same settings as the WGATE_* environment variables.
    #[arg(long, env = "WGATE_CONFIG")]
    config: Option<std::path::PathBuf>,
}

// mimalloc, as in wgate-api: the no-op drain spent about 30% of the worker's CPU in glibc's allocator (malloc,
// free, consolidation), and drains faster with it (see docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    wgate_service::init_crypto();
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Err(e) = settings.logging.init() {
        eprintln!("{e}");
        return std::process::ExitCode::FAILURE;
    }
    let result =
        async { Application::build(settings).await?.run_until_stopped(wgate_service::shutdown::signal()).await }.await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "wgate-worker failed");
            eprintln!("wgate-worker: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
