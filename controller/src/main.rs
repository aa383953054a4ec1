use std::process::ExitCode;

use clap::Parser;

use ballast_controller::cli::{Cli, Command, FleetCommand, TraceCommand};
use ballast_controller::commands;

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    ballast_runtime::init_logging(
        cli.global.log_format,
        "warn,aws_config=error,ballast=info,ballast_controller=info",
    )?;
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
        Command::Run(args) => runtime()?.block_on(commands::run::run(args))?,
        Command::Fleet(fleet) => match &fleet.command {
            FleetCommand::Local(args) => runtime()?.block_on(commands::fleet::local(
                args,
                cli.global.log_format,
                &mut out,
            ))?,
        },
    };
    Ok(code)
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new()
}
