use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use tokio_util::sync::CancellationToken;

use ballast_worker::cli::{Cli, Command, DEFAULT_LOG_FILTER};
use ballast_worker::commands;

/// A closed stdout ends the process quietly with 0, and an error is printed once with each
/// cause (`ballast_runtime::exit`).
fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = cli
        .command
        .runtime()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(run(cli)));
    ballast_runtime::exit::exit_code(result)
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
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
        Command::Rates(command) => commands::rates::run(command).await?,
        Command::Bills(command) => commands::bills::run(command).await?,
        Command::Token(args) => commands::token::run(args)?,
        Command::Completions(args) => {
            let mut out = std::io::stdout().lock();
            ballast_runtime::cli::write_completions(&mut Cli::command(), args.shell, &mut out)?;
            ExitCode::SUCCESS
        }
        Command::Man(args) => {
            ballast_runtime::cli::run_man(&Cli::command(), args, &mut std::io::stdout().lock())?;
            ExitCode::SUCCESS
        }
    };
    // Flushed here so that a closed pipe is an error of this command, not ignored at exit.
    std::io::Write::flush(&mut std::io::stdout())?;
    Ok(code)
}
