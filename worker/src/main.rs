use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use ballast_worker::cli::{Cli, Command, LogFormat};
use ballast_worker::{consumer, generate};

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    match &cli.command {
        Command::Consume(args) => match consumer::command::consume(args, shutdown).await? {
            consumer::command::ConsumeExit::Drained => {}
            // A distinct status so that a supervisor (systemd, Kubernetes, `ballast fleet
            // local`) sees a stalled worker and replaces it.
            consumer::command::ConsumeExit::Stalled => {
                return Ok(ExitCode::from(consumer::watchdog::STALL_EXIT_CODE));
            }
        },
        Command::SeedAccounts(args) => {
            generate::seed_command(args, &mut std::io::stdout().lock()).await?
        }
        Command::Send(args) => {
            let sent = generate::send_command(args, std::io::stdin().lock()).await?;
            tracing::info!(sent, "messages enqueued");
        }
        Command::Report(args) => {
            if !ballast_worker::report::report_command(args, &mut std::io::stdout().lock()).await? {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Serve(args) => ballast_worker::api::serve_command(args, shutdown).await?,
        Command::Sweep(args) => {
            let report = ballast_worker::api::sweep_command(args, shutdown).await?;
            println!(
                "sweep: {} sent again, {} settled, {} claimed elsewhere, {} failed",
                report.resent, report.settled, report.skipped, report.failed
            );
        }
        Command::RescueDlq(args) => {
            let report =
                consumer::rescue_command::rescue_dlq(args, shutdown, &mut std::io::stdout().lock())
                    .await?;
            // Messages left for the next pass (transient failures) make the run fail, so a
            // script knows to run it again.
            if report.count(consumer::rescue::Verdict::Transient) > 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Token(args) => println!("{}", ballast_worker::api::token_command(args)?),
    }
    Ok(ExitCode::SUCCESS)
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
