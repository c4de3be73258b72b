//! The `wgate` command line: mint tenant tokens, run the whole stack locally, administer jobs.

use clap::Parser;

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
