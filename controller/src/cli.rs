//! Command-line interface of `ballast`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "ballast",
    version,
    about = "Provision and autoscale a queue-driven AWS platform from blueprints"
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

/// Where AWS calls go. Credentials and region come from the standard AWS chain.
#[derive(Debug, Clone, Args, Default)]
pub struct AwsArgs {
    /// AWS region; default: the blueprint's `metadata.region`, then the AWS chain.
    #[arg(long)]
    pub region: Option<String>,
    /// Send every AWS call to this endpoint (e.g. a local emulator). `AWS_ENDPOINT_URL` also works.
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// Named profile from the shared AWS config files.
    #[arg(long)]
    pub profile: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check blueprints without touching AWS. Exit 0 when all are valid, 1 otherwise.
    Validate(ValidateArgs),
    /// Print the JSON Schema of the blueprint language (for yaml-language-server).
    Schema,
    /// Run what-if simulations of scaling policies over an arrival trace.
    Simulate(SimulateArgs),
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Blueprint files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Also list each valid blueprint's resources in dependency order.
    #[arg(long)]
    pub list: bool,
    #[arg(long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Arrival trace: CSV `seconds,arrivals_per_second`.
    #[arg(long)]
    pub trace: PathBuf,
    /// Blueprint whose scaling policy (and fleet bounds) to simulate; default: the seed policy.
    #[arg(long)]
    pub blueprint: Option<PathBuf>,
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
    /// Write queue depth, capacity and oldest-message age per policy to this SVG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub output: OutputFormat,
}
