use std::process::ExitCode;

use clap::Parser;

use ballast_controller::cli::{Cli, Command};
use ballast_controller::{commands, telemetry};

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    telemetry::init(cli.global.log_format);
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    let code = match &cli.command {
        Command::Validate(args) => commands::validate::run(args, &mut out, &mut err)?,
        Command::Schema => commands::schema::run(&mut out)?,
        Command::Simulate(args) => commands::simulate::run(args, &mut out)?,
    };
    Ok(code)
}
