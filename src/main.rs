//! The `wgate` command line: mint tenant tokens, run the whole stack locally, administer jobs.

use clap::Parser;

// The allocator of wgate-api and wgate-worker, whose code `wgate dev` and `wgate chaos` run in this process.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = wgate::cli::Cli::parse();
    match wgate::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wgate: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
