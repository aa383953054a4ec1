use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use ballast_worker::cli::{Cli, Command};
use ballast_worker::commands;

/// The log filter when neither `BALLAST_LOG` nor `RUST_LOG` is set.
const DEFAULT_LOG_FILTER: &str = "info";

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    ballast_runtime::init_logging(cli.log_format, DEFAULT_LOG_FILTER)?;
    let shutdown = CancellationToken::new();
    ballast_runtime::spawn_signal_handler(shutdown.clone());
    let code = match &cli.command {
        Command::Consume(args) => commands::consume::run(args, shutdown).await?,
        Command::SeedAccounts(args) => commands::seed::run(args).await?,
        Command::Send(args) => commands::send::run(args).await?,
        Command::Report(args) => commands::report::run(args).await?,
        Command::Serve(args) => commands::serve::run(args, shutdown).await?,
        Command::Sweep(args) => commands::sweep::run(args, shutdown).await?,
        Command::RescueDlq(args) => commands::rescue::run(args, shutdown).await?,
        Command::Dlq(command) => commands::dlq::run(command).await?,
        Command::Token(args) => commands::token::run(args)?,
    };
    Ok(code)
}
