use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use ballast_worker::cli::{Cli, Command, LogFormat};
use ballast_worker::commands;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let code = match &cli.command {
        Command::Consume(args) => commands::consume::run(args, shutdown).await?,
        Command::SeedAccounts(args) => commands::seed::run(args).await?,
        Command::Send(args) => commands::send::run(args).await?,
        Command::Report(args) => commands::report::run(args).await?,
        Command::Serve(args) => commands::serve::run(args, shutdown).await?,
        Command::Sweep(args) => commands::sweep::run(args, shutdown).await?,
        Command::RescueDlq(args) => commands::rescue::run(args, shutdown).await?,
        Command::Token(args) => commands::token::run(args)?,
    };
    Ok(code)
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Cancels `shutdown` on SIGTERM or Ctrl-C.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            shutdown.cancel();
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: draining"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: draining"),
    }
    shutdown.cancel();
}
