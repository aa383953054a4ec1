//! `ballast fleet local`: one local `ballast-worker consume` per InService instance of a
//! blueprint's Auto Scaling group (see [`crate::fleet`]). Prints one status line per change.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use ballast_blueprint::{AutoScalingGroup, Blueprint};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cli::{FleetLocalArgs, LogFormat};
use crate::fleet::{
    AsgInstances, DEFAULT_RESTART_BACKOFF, FleetEvent, FleetStatus, Supervisor, SupervisorConfig,
    WorkerCommand,
};

/// The worker's executable name.
pub const WORKER_BIN: &str = "ballast-worker";

/// Added to the queue's visibility timeout: the worker's own shutdown after its drain
/// (pending deletes, CompleteLifecycleAction, metrics flush).
const DRAIN_MARGIN: Duration = Duration::from_secs(20);

pub async fn local(
    args: &FleetLocalArgs,
    log_format: LogFormat,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let bp = args.values.load(&args.blueprint)?.blueprint;
    let group = select_group(&bp, &args.blueprint, args.group.as_deref())?;
    let group_name = bp.group_name(group);
    let options = args.aws.options();
    let sdk = ballast_aws::load_sdk_config_with_default_region(&options, Some(&bp.metadata.region))
        .await?;
    let source = AsgInstances::new(aws_sdk_autoscaling::Client::new(&sdk), &group_name);
    // Fail fast on a missing group or unusable credentials.
    source.read().await.with_context(|| {
        format!("reading Auto Scaling group `{group_name}` (hint: `ballast apply` creates it)")
    })?;

    let worker = WorkerCommand {
        program: worker_program(args.worker_bin.as_deref())?,
        args: worker_args(args, log_format),
        extra: args.worker_args.iter().map(OsString::from).collect(),
    };
    let config = SupervisorConfig {
        poll: args.poll.std().max(Duration::from_millis(10)),
        drain_timeout: args
            .drain_timeout
            .map_or_else(|| default_drain_timeout(&bp, group), |d| d.std()),
        restart: DEFAULT_RESTART_BACKOFF,
    };
    tracing::info!(
        group = %group_name,
        worker = %worker.program.display(),
        poll_ms = config.poll.as_millis() as u64,
        drain_timeout_secs = config.drain_timeout.as_secs(),
        "local fleet started"
    );

    let cancel = CancellationToken::new();
    let signals = ballast_runtime::spawn_signal_handler(cancel.clone());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let printer = async {
        let mut broken = false;
        while let Some(event) = rx.recv().await {
            let FleetEvent::Workers(ids) = event else {
                continue;
            };
            if broken {
                continue;
            }
            if let Err(error) = writeln!(out, "{}", FleetStatus(&ids)).and_then(|()| out.flush()) {
                tracing::warn!(%error, "cannot write the fleet status to stdout");
                broken = true;
            }
        }
    };
    let supervisor = Supervisor::new(source, worker, config);
    tokio::join!(supervisor.run(cancel, tx), printer);
    signals.abort();
    Ok(ExitCode::SUCCESS)
}

/// The named group, or the blueprint's only one.
fn select_group<'a>(
    bp: &'a Blueprint,
    file: &Path,
    name: Option<&str>,
) -> anyhow::Result<&'a AutoScalingGroup> {
    let declared = || {
        bp.spec
            .auto_scaling_groups
            .iter()
            .map(|g| g.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match name {
        Some(name) => bp.auto_scaling_group(name).ok_or_else(|| {
            anyhow!(
                "{}: no Auto Scaling group named `{name}` (declared: {})",
                file.display(),
                declared()
            )
        }),
        None => match bp.spec.auto_scaling_groups.as_slice() {
            [only] => Ok(only),
            [] => bail!(
                "{}: the blueprint declares no Auto Scaling group",
                file.display()
            ),
            _ => bail!(
                "{}: the blueprint declares several Auto Scaling groups; pick one with --group ({})",
                file.display(),
                declared()
            ),
        },
    }
}

/// `--worker-bin`, else `ballast-worker` next to this executable, else on `PATH`.
fn worker_program(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        if path.is_file() {
            return Ok(path.to_path_buf());
        }
        bail!("--worker-bin {}: no such file", path.display());
    }
    let name = format!("{WORKER_BIN}{}", std::env::consts::EXE_SUFFIX);
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(&name)));
    if let Some(path) = &beside
        && path.is_file()
    {
        return Ok(path.clone());
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(&name))
                .find(|p| p.is_file())
        })
        .unwrap_or_default();
    on_path.ok_or_else(|| {
        anyhow!(
            "`{WORKER_BIN}` is neither next to this executable{} nor on PATH; build it with \
             `cargo build --bin {WORKER_BIN}` or pass --worker-bin",
            beside
                .as_ref()
                .map(|p| format!(" ({})", p.display()))
                .unwrap_or_default()
        )
    })
}

/// `consume --blueprint FILE [--values V]… --metrics-addr 127.0.0.1:0 --log-format F [--endpoint-url U]
/// [--region R] [--profile P]`, leaving out any option the pass-through arguments set.
fn worker_args(args: &FleetLocalArgs, log_format: LogFormat) -> Vec<OsString> {
    let overridden = |flag: &str| {
        args.worker_args
            .iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    let mut out: Vec<OsString> = vec![
        "consume".into(),
        "--blueprint".into(),
        args.blueprint.clone().into_os_string(),
    ];
    for values in &args.values.files {
        out.push("--values".into());
        out.push(values.clone().into_os_string());
    }
    let log_format = log_format.as_str();
    let optional = [
        ("--metrics-addr", Some("127.0.0.1:0")),
        ("--log-format", Some(log_format)),
        ("--endpoint-url", args.aws.endpoint_url.as_deref()),
        ("--region", args.aws.region.as_deref()),
        ("--profile", args.aws.profile.as_deref()),
    ];
    for (flag, value) in optional {
        if let Some(value) = value
            && !overridden(flag)
        {
            out.push(flag.into());
            out.push(value.into());
        }
    }
    out
}

/// The visibility timeout of the queue the workers consume (the group's scaling policy's
/// queue, else the worker's default `transactions`, else the longest one) + 20 s.
fn default_drain_timeout(bp: &Blueprint, group: &AutoScalingGroup) -> Duration {
    let queue = bp
        .spec
        .scaling_policies
        .iter()
        .find(|p| p.fleet.as_deref() == Some(group.name.as_str()))
        .and_then(|p| bp.queue(&p.queue))
        .or_else(|| bp.queue("transactions"))
        .or_else(|| {
            bp.spec
                .queues
                .iter()
                .max_by_key(|q| q.visibility_timeout.std())
        });
    queue.map_or(Duration::from_secs(30), |q| q.visibility_timeout.std()) + DRAIN_MARGIN
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command, FleetCommand};
    use clap::Parser;

    fn parse(argv: &[&str]) -> FleetLocalArgs {
        let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{e}"));
        let Command::Fleet(fleet) = cli.command else {
            panic!("not fleet")
        };
        let FleetCommand::Local(args) = fleet.command;
        args
    }

    #[test]
    fn command_line_and_worker_arguments() {
        let args = parse(&[
            "ballast",
            "fleet",
            "local",
            "--blueprint",
            "b.yaml",
            "--values",
            "prod.yaml",
            "--values",
            "eu.yaml",
            "--endpoint-url",
            "http://127.0.0.1:5000",
            "--",
            "--concurrency",
            "4",
        ]);
        assert_eq!(args.poll.std(), Duration::from_secs(1));
        assert_eq!(args.worker_args, ["--concurrency", "4"]);
        let words: Vec<String> = worker_args(&args, LogFormat::Json)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            words.join(" "),
            "consume --blueprint b.yaml --values prod.yaml --values eu.yaml \
             --metrics-addr 127.0.0.1:0 --log-format json --endpoint-url http://127.0.0.1:5000"
        );
    }

    #[test]
    fn pass_through_arguments_win() {
        let args = parse(&[
            "ballast",
            "fleet",
            "local",
            "--blueprint",
            "b.yaml",
            "--region",
            "eu-west-1",
            "--",
            "--metrics-addr=127.0.0.1:9999",
        ]);
        let words: Vec<String> = worker_args(&args, LogFormat::Text)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            words.join(" "),
            "consume --blueprint b.yaml --log-format text --region eu-west-1"
        );
    }

    #[test]
    fn the_worker_parses_the_command_line() {
        let args = parse(&[
            "ballast",
            "fleet",
            "local",
            "--blueprint",
            "b.yaml",
            "--values",
            "prod.yaml",
            "--endpoint-url",
            "http://127.0.0.1:5000",
            "--region",
            "us-east-1",
            "--",
            "--concurrency",
            "4",
        ]);
        let worker = WorkerCommand {
            program: WORKER_BIN.into(),
            args: worker_args(&args, LogFormat::Text),
            extra: args.worker_args.iter().map(OsString::from).collect(),
        };
        let line = worker.display("i-0123456789abcdef0");
        let cli = ballast_worker::cli::Cli::try_parse_from(line.split(' '))
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        let ballast_worker::cli::Command::Consume(consume) = cli.command else {
            panic!("not consume")
        };
        assert_eq!(consume.instance_id.as_deref(), Some("i-0123456789abcdef0"));
        assert_eq!(consume.metrics_addr.port(), 0);
        assert_eq!(consume.target.values.files, [Path::new("prod.yaml")]);
        assert_eq!(consume.concurrency, 4);
        assert_eq!(
            consume.target.aws.endpoint_url.as_deref(),
            Some("http://127.0.0.1:5000")
        );
    }

    fn banking() -> Blueprint {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../blueprints/banking.yaml");
        ballast_blueprint::load(&path).unwrap().blueprint
    }

    #[test]
    fn group_selection_and_drain_timeout() {
        let bp = banking();
        let file = Path::new("banking.yaml");
        let group = select_group(&bp, file, None).unwrap();
        assert_eq!(group.name, "workers");
        assert_eq!(bp.group_name(group), "banking-workers");
        assert!(select_group(&bp, file, Some("workers")).is_ok());
        let err = select_group(&bp, file, Some("nope")).unwrap_err();
        assert!(err.to_string().contains("declared: workers"), "{err}");
        // transactions: visibilityTimeout 60s.
        assert_eq!(default_drain_timeout(&bp, group), Duration::from_secs(80));
    }

    #[test]
    fn a_missing_worker_binary_is_reported() {
        let err = worker_program(Some(Path::new("/nonexistent/ballast-worker"))).unwrap_err();
        assert!(err.to_string().contains("no such file"), "{err}");
    }
}
