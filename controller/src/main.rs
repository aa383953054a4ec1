use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use ballast_controller::cli::{Cli, Command, DEFAULT_LOG_FILTER, FleetCommand, TraceCommand};
use ballast_controller::commands;

/// A closed stdout ends the process quietly with 0, and an error is printed once with each
/// cause (`ballast_runtime::exit`).
fn main() -> ExitCode {
    ballast_runtime::exit::exit_code(run(Cli::parse()))
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    ballast_runtime::init_logging(cli.global.log_format, DEFAULT_LOG_FILTER)?;
    // Locked stdout only: logs go to stderr from every runtime thread.
    let mut out = std::io::stdout().lock();
    let code = match &cli.command {
        Command::Validate(args) => commands::validate::run(args, &mut out, &mut std::io::stderr())?,
        Command::Schema => commands::schema::run(&mut out)?,
        Command::Simulate(args) => commands::simulate::run(args, &mut out)?,
        Command::Trace(trace) => match &trace.command {
            TraceCommand::Export(args) => {
                runtime()?.block_on(commands::trace::export(args, &mut out))?
            }
        },
        Command::Scale(args) => runtime()?.block_on(commands::scale::run(args, &mut out))?,
        Command::Plan(args) => runtime()?.block_on(commands::provision::plan(args, &mut out))?,
        Command::Drift(args) => runtime()?.block_on(commands::provision::drift(args, &mut out))?,
        Command::Apply(args) => runtime()?.block_on(commands::provision::apply(args, &mut out))?,
        Command::Destroy(args) => {
            runtime()?.block_on(commands::provision::destroy(args, &mut out))?
        }
        Command::ForceUnlock(args) => {
            runtime()?.block_on(commands::provision::force_unlock(args, &mut out))?
        }
        Command::Suspend(args) => {
            runtime()?.block_on(commands::provision::suspend(args, &mut out))?
        }
        Command::Resume(args) => {
            runtime()?.block_on(commands::provision::resume(args, &mut out))?
        }
        Command::Run(args) => runtime()?.block_on(commands::run::run(args))?,
        Command::IamPolicy(args) => commands::iam_policy::run(args, &mut out)?,
        Command::Fleet(fleet) => match &fleet.command {
            FleetCommand::Local(args) => runtime()?.block_on(commands::fleet::local(
                args,
                cli.global.log_format,
                &mut out,
            ))?,
        },
        Command::Completions(args) => {
            ballast_runtime::cli::write_completions(&mut Cli::command(), args.shell, &mut out)?;
            ExitCode::SUCCESS
        }
        Command::Man(args) => {
            ballast_runtime::cli::run_man(&Cli::command(), args, &mut out)?;
            ExitCode::SUCCESS
        }
    };
    // Flushed here so that a closed pipe is an error of this command, not ignored at exit.
    std::io::Write::flush(&mut out)?;
    Ok(code)
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new()
}
