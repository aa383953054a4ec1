//! Command-line interface of `ballast`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// The log filter when neither `BALLAST_LOG` nor `RUST_LOG` is set.
pub const DEFAULT_LOG_FILTER: &str = "warn,aws_config=error,ballast=info,ballast_controller=info";

#[derive(Debug, Parser)]
#[command(
    name = "ballast",
    version = ballast_runtime::cli::VERSION,
    about = "Provision and autoscale a queue-driven AWS platform from blueprints",
    after_help = ballast_runtime::cli::environment_help(DEFAULT_LOG_FILTER)
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "BALLAST_LOG_FORMAT")]
    pub log_format: LogFormat,
}

pub use ballast_runtime::cli::{CompletionsArgs, ManArgs, ValuesArgs};
/// Where AWS calls go (shared with `ballast-worker`). Credentials come from the standard AWS
/// chain.
pub use ballast_runtime::{AwsArgs, LogFormat};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

/// How `validate`, `plan` and `drift` report: for people, for programs, or for a CI system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ReportFormat {
    #[default]
    Text,
    Json,
    /// A Markdown summary, for a pull-request comment or `$GITHUB_STEP_SUMMARY`.
    Markdown,
    /// GitHub Actions workflow commands: one annotation per problem, on its blueprint line.
    Github,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check blueprints without touching AWS. Exit 0 when all are valid, 1 otherwise.
    Validate(ValidateArgs),
    /// Print the JSON Schema of the blueprint language (for yaml-language-server).
    Schema,
    /// Run what-if simulations of scaling policies over an arrival trace.
    Simulate(SimulateArgs),
    /// Arrival traces for `ballast simulate`.
    Trace(TraceArgs),
    /// Run the autoscaler: keep each scaling policy's fleet at its target backlog per instance.
    Scale(ScaleArgs),
    /// Show what apply would change. With --detailed-exitcode: 0 in sync, 2 changes, 1 error.
    Plan(PlanArgs),
    /// CI drift check: a read-only plan that exits 0 in sync, 2 drifted, 1 error.
    Drift(PlanArgs),
    /// Create or update the blueprint's resources in AWS.
    Apply(ApplyCommandArgs),
    /// Delete the blueprint's resources (stateful ones only with `deletionPolicy: delete`).
    Destroy(DestroyArgs),
    /// Remove the blueprint's writer lease left behind by a killed `apply` or `destroy` (asks
    /// first; removes only the lease it showed).
    ForceUnlock(ApplyArgs),
    /// Pause the whole blueprint: `apply` and `destroy` refuse, `ballast run` observes and
    /// reports drift but writes nothing and does not scale (a record in the lease table).
    Suspend(SuspendArgs),
    /// Undo `suspend`: `apply` works again, `ballast run` converges at its next resync.
    Resume(ResumeArgs),
    /// The long-lived controller: reconcile blueprints and autoscale their fleets.
    Run(RunArgs),
    /// Run worker processes for a fleet's instances.
    Fleet(FleetArgs),
    /// Print the shell completion script (bash, zsh, fish, …).
    Completions(CompletionsArgs),
    /// Print the manual page, or write one per command into a directory (--dir).
    Man(ManArgs),
    /// Print the least-privilege IAM policy (JSON) the controller needs to manage the
    /// blueprint, or the worker needs to run against it.
    IamPolicy(IamPolicyArgs),
}

#[derive(Debug, Args)]
pub struct IamPolicyArgs {
    pub file: PathBuf,
    #[command(flatten)]
    pub values: ValuesArgs,
    /// Whose policy: the controller's or the worker's.
    #[arg(long = "for", value_enum)]
    pub for_: crate::iam_policy::PolicyFor,
    /// The AWS account of the ARNs; without it they match any account (`*`).
    #[arg(long)]
    pub account_id: Option<String>,
    /// The region of the ARNs; default: the blueprint's `metadata.region`.
    #[arg(long)]
    pub region: Option<String>,
    #[command(flatten)]
    pub worker: crate::iam_policy::worker::WorkerNames,
    /// DynamoDB table of the writer lease (as `ballast apply --lease-table`).
    #[arg(long, env = "BALLAST_LEASE_TABLE", default_value = crate::lease::DEFAULT_TABLE)]
    pub lease_table: String,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    pub file: PathBuf,
    #[command(flatten)]
    pub values: ValuesArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[arg(long, value_enum, default_value_t)]
    pub output: ReportFormat,
    /// Exit 2 when there are changes (drift always does).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Also save the plan to PLANFILE; `ballast apply PLANFILE` then applies exactly it, or
    /// refuses if the blueprint or AWS changed since (plan only).
    #[arg(long, value_name = "PLANFILE")]
    pub out: Option<PathBuf>,
    /// Plan (drift: check) only this resource and what it depends on, transitively
    /// (repeatable), e.g. `queue/transactions`; a partial plan: orphans and resources removed
    /// from the blueprint are left out. A saved plan records its targets.
    #[arg(long = "target", value_name = "KIND/NAME")]
    pub targets: Vec<String>,
}

/// `ballast apply`: the blueprint (or saved plan) and lease, and the targets.
#[derive(Debug, Args)]
pub struct ApplyCommandArgs {
    #[command(flatten)]
    pub blueprint: ApplyArgs,
    /// Apply only this resource and what it depends on, transitively (repeatable), e.g.
    /// `queue/transactions`; nothing else is created, changed or removed. Not with a saved
    /// plan, which carries its own targets.
    #[arg(long = "target", value_name = "KIND/NAME")]
    pub targets: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A blueprint, or (apply only) a plan saved by `ballast plan FILE --out PLANFILE`.
    pub file: PathBuf,
    #[command(flatten)]
    pub values: ValuesArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// DynamoDB table of the writer lease, shared with controllers running the blueprint
    /// (created if missing).
    #[arg(long, env = "BALLAST_LEASE_TABLE", default_value = crate::lease::DEFAULT_TABLE)]
    pub lease_table: String,
    /// Apply or destroy even though the blueprint is suspended (`ballast suspend`); the
    /// suspension stays, so a running controller still writes nothing.
    #[arg(long)]
    pub ignore_suspension: bool,
}

#[derive(Debug, Args)]
pub struct SuspendArgs {
    pub file: PathBuf,
    #[command(flatten)]
    pub values: ValuesArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Why, recorded with the suspension and shown to whoever runs into it.
    #[arg(long)]
    pub reason: Option<String>,
    /// Who suspends, for the record. Default: `$USER@host`.
    #[arg(long)]
    pub by: Option<String>,
    /// DynamoDB table of the writer lease, where the suspension is recorded (created if
    /// missing).
    #[arg(long, env = "BALLAST_LEASE_TABLE", default_value = crate::lease::DEFAULT_TABLE)]
    pub lease_table: String,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    pub file: PathBuf,
    #[command(flatten)]
    pub values: ValuesArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// DynamoDB table of the writer lease, where the suspension is recorded.
    #[arg(long, env = "BALLAST_LEASE_TABLE", default_value = crate::lease::DEFAULT_TABLE)]
    pub lease_table: String,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub blueprint: ApplyArgs,
    /// Also delete the orphans: resources carrying the blueprint's ownership tag that no
    /// declaration claims (listed before the question; a KMS key is scheduled for deletion).
    #[arg(long)]
    pub include_orphans: bool,
    /// Destroy only this resource and what depends on it, transitively (repeatable), so that
    /// nothing is left referring to a deleted resource; deletion policies still apply.
    #[arg(
        long = "target",
        value_name = "KIND/NAME",
        conflicts_with = "include_orphans"
    )]
    pub targets: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Blueprint files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub values: ValuesArgs,
    /// Also list each valid blueprint's resources in dependency order.
    #[arg(long)]
    pub list: bool,
    #[arg(long, value_enum, default_value_t)]
    pub output: ReportFormat,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Arrival trace: CSV `seconds,arrivals_per_second`.
    #[arg(long)]
    pub trace: PathBuf,
    /// Blueprint whose scaling policy (and fleet bounds) to simulate; default: the seed policy.
    #[arg(long)]
    pub blueprint: Option<PathBuf>,
    #[command(flatten)]
    pub values: ValuesArgs,
    /// Name of the blueprint's scaling policy; default: its first.
    #[arg(long)]
    pub policy: Option<String>,
    /// Override the target backlog per instance.
    #[arg(long)]
    pub target: Option<u32>,
    /// Messages one instance processes per second.
    #[arg(long, default_value = "5")]
    pub service_rate: String,
    /// Time from launch to InService.
    #[arg(long, default_value = "90s")]
    pub boot_delay: ballast_blueprint::Duration,
    /// Delay before a CloudWatch datapoint is visible, after its minute closes.
    #[arg(long, default_value = "60s")]
    pub metric_delay: ballast_blueprint::Duration,
    /// How old the SQS approximate counts are when a policy reads them.
    #[arg(long, default_value = "10s")]
    pub count_lag: ballast_blueprint::Duration,
    /// Seed of the random arrivals, service times and boot times.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Poisson arrivals around the trace's rate (seeded).
    #[arg(long)]
    pub poisson: bool,
    /// Per-message processing time distribution.
    #[arg(long, value_enum, default_value = "fixed")]
    pub processing: crate::simulate::ProcessingTime,
    /// Each launch boots in --boot-delay plus a uniform draw up to this.
    #[arg(long, default_value = "0s")]
    pub boot_spread: ballast_blueprint::Duration,
    /// An earlier period of the queue's traffic, as a trace (e.g. from `ballast trace export`),
    /// starting at the same time of day as --trace (repeatable): adds `queueing+prediction`,
    /// `mode: queueing` with the seasonal profile learned from these periods (the trace's
    /// length is the period).
    #[arg(long, value_name = "TRACE")]
    pub history: Vec<PathBuf>,
    /// Write arrivals, queue depth, capacity and oldest-message age per policy to this SVG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Also simulate the controller down for this window, e.g. `30m..60m`: Ballast's policy
    /// without and with the scaling policy's dead-man's switch (the blueprint's, or its
    /// defaults).
    #[arg(long, value_name = "START..END")]
    pub controller_down: Option<crate::simulate::DownWindow>,
    /// Also compute each policy's whole-instance bound at its own worst age: the fewest
    /// instance-hours of any all-knowing fleet of whole instances that each pay their boot
    /// (exact; about 2 s per policy for a 6-hour trace on a release build, and tens of times
    /// that on a debug build). Needs `--processing fixed`.
    #[arg(long)]
    pub whole_instance_bound: bool,
    /// With --whole-instance-bound: count only fleets that change their in-service count at
    /// most this many times (e.g. a quarter of the HPA model's actions). Needs `--boot-spread 0s`.
    #[arg(long, value_name = "ACTIONS", requires = "whole_instance_bound")]
    pub bound_actions: Option<u32>,
    /// With --whole-instance-bound: count only fleets that react, launching within this long
    /// after a second whose arrivals exceed what the group's minimum processes (e.g. `300s`);
    /// they still know every burst's size and end. Shown only for runs whose own launches all
    /// reacted so (`n/a` otherwise). Needs `--boot-spread 0s`.
    #[arg(long, value_name = "WITHIN", requires = "whole_instance_bound")]
    pub bound_reactive: Option<ballast_blueprint::Duration>,
    /// With --bound-reactive: count only fleets that also keep this scale-in cooldown, no
    /// instance leaving service within it of any launch or termination (e.g. the seed's `300s`),
    /// counted in 10 s steps in the fleets' favour. Shown only for runs that kept it (`n/a`
    /// otherwise). Ten times the reactive bound's time or more.
    #[arg(long, value_name = "COOLDOWN", requires = "bound_reactive")]
    pub bound_cooldown: Option<ballast_blueprint::Duration>,
    #[arg(long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// Blueprint whose scaling policies to run.
    pub file: PathBuf,
    #[command(flatten)]
    pub values: ValuesArgs,
    /// Evaluate every policy once and exit.
    #[arg(long)]
    pub once: bool,
    /// Compute and print decisions without changing any capacity or publishing metrics.
    #[arg(long)]
    pub dry_run: bool,
    /// Time between evaluations; default: each policy's `evaluationInterval`.
    #[arg(long)]
    pub interval: Option<ballast_blueprint::Duration>,
    /// Run only this scaling policy; default: all of them, concurrently.
    #[arg(long)]
    pub policy: Option<String>,
    /// Also read `ApproximateAgeOfOldestMessage` from CloudWatch (one more call per evaluation).
    #[arg(long)]
    pub oldest_message_age: bool,
    #[arg(long, value_enum, default_value_t)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Blueprints to keep converged (re-read every resync).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Values files laid over the blueprint, re-read with it every resync (only with one
    /// blueprint: run one controller per environment).
    #[command(flatten)]
    pub values: ValuesArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Observe only: report drift and the scaling decisions it would take; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Serve /healthz, /readyz and /metrics here.
    #[arg(long, default_value = "127.0.0.1:9090", env = "BALLAST_METRICS_ADDR")]
    pub metrics_addr: std::net::SocketAddr,
    /// Time between reconciles of each blueprint (jittered ±10 %).
    #[arg(long, default_value = "60s")]
    pub resync: ballast_blueprint::Duration,
    /// Time between autoscaler evaluations; default: each policy's `evaluationInterval`.
    #[arg(long)]
    pub scale_interval: Option<ballast_blueprint::Duration>,
    /// Leader election through a `coordination.k8s.io` Lease in this namespace (in a cluster).
    #[arg(long, env = "BALLAST_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Outside a cluster: the DynamoDB table holding leases (shared with apply and destroy).
    #[arg(long, default_value = "ballast-leases", env = "BALLAST_LEASE_TABLE")]
    pub lease_table: String,
    /// How long a lease lasts without renewal; a crashed leader is replaced after this.
    #[arg(long, default_value = "30s")]
    pub lease_duration: ballast_blueprint::Duration,
    /// Identity in the lease; default: pod name or hostname, and pid.
    #[arg(long, env = "POD_NAME")]
    pub holder: Option<String>,
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    #[command(subcommand)]
    pub command: TraceCommand,
}

#[derive(Debug, Subcommand)]
pub enum TraceCommand {
    /// Print a queue's CloudWatch history (one-minute `NumberOfMessagesSent`) as a trace CSV,
    /// for `ballast simulate --trace`.
    Export(TraceExportArgs),
}

#[derive(Debug, Args)]
pub struct TraceExportArgs {
    /// Blueprint declaring the queue.
    #[arg(long)]
    pub blueprint: PathBuf,
    #[command(flatten)]
    pub values: ValuesArgs,
    /// The queue's `name` in the blueprint.
    #[arg(long)]
    pub queue: String,
    /// How much history, ending at the last whole minute (`90m`, `12h`, `7d`).
    #[arg(long, default_value = "7d", value_parser = ballast_runtime::parse_positive_duration)]
    pub since: std::time::Duration,
    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, Args)]
pub struct FleetArgs {
    #[command(subcommand)]
    pub command: FleetCommand,
}

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Keep one local `ballast-worker consume` per InService instance of the blueprint's Auto
    /// Scaling group (e.g. on moto); a worker whose instance leaves InService gets SIGTERM.
    Local(FleetLocalArgs),
}

#[derive(Debug, Args)]
pub struct FleetLocalArgs {
    /// Blueprint naming the Auto Scaling group, its queue and tables (passed to each worker).
    #[arg(long)]
    pub blueprint: PathBuf,
    /// Values files laid over the blueprint (passed to each worker with it).
    #[command(flatten)]
    pub values: ValuesArgs,
    /// Blueprint name of the Auto Scaling group; default: the blueprint's only one.
    #[arg(long)]
    pub group: Option<String>,
    /// Region and endpoint, also passed to each worker.
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Time between reads of the group.
    #[arg(long, default_value = "1s")]
    pub poll: ballast_blueprint::Duration,
    /// The worker executable; default: `ballast-worker` next to this executable, then on PATH.
    #[arg(long)]
    pub worker_bin: Option<PathBuf>,
    /// How long a stopping worker may drain before SIGKILL; default: the queue's visibility
    /// timeout + 20s.
    #[arg(long)]
    pub drain_timeout: Option<ballast_blueprint::Duration>,
    /// Extra arguments for `ballast-worker consume` (after `--`).
    #[arg(last = true)]
    pub worker_args: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// clap checks the definition only when a command line is parsed: unique argument ids,
    /// valid defaults and conflicts, for every subcommand.
    #[test]
    fn the_command_line_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn values_files_are_taken_beside_positional_files() {
        let cli = Cli::try_parse_from([
            "ballast",
            "validate",
            "a.yaml",
            "b.yaml",
            "--values",
            "prod.yaml",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let Command::Validate(args) = cli.command else {
            panic!("not validate")
        };
        assert_eq!(args.files.len(), 2);
        assert_eq!(args.values.files, [PathBuf::from("prod.yaml")]);
    }
}
