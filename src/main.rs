//! The `faro` binary: parse the command line, start logging, run.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = faro::cli::Cli::parse();
    faro::telemetry::init();
    match faro::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faro: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
