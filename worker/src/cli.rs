//! Command-line interface of `ballast-worker`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ballast_runtime::parse_duration;
use clap::{Args, Parser, Subcommand, ValueEnum};
use rust_decimal::Decimal;

use crate::api::DEFAULT_BODY_LIMIT;
use crate::api::auth::{ALL_SCOPES, JwtAlgorithm};
use crate::config::TargetConfig;

pub use ballast_runtime::cli::{CompletionsArgs, ManArgs, ValuesArgs};
pub use ballast_runtime::{AwsArgs, LogFormat};

/// The log filter when neither `BALLAST_LOG` nor `RUST_LOG` is set.
pub const DEFAULT_LOG_FILTER: &str = "info";

/// The Ballast transaction worker.
#[derive(Debug, Parser)]
#[command(
    name = "ballast-worker",
    version = ballast_runtime::cli::VERSION,
    about,
    after_help = ballast_runtime::cli::environment_help(DEFAULT_LOG_FILTER)
)]
pub struct Cli {
    /// Log output format.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "BALLAST_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

impl Command {
    /// The runtime the command runs on. `consume` waits on AWS almost all the time: one thread
    /// carries its messages in flight with about a fifth less CPU per transaction and a smaller
    /// resident set than a thread per core, which spend their time waking each other
    /// (docs/benchmarks.md, "The SDK's floor, and a single-threaded consumer"). The other
    /// commands, the API server above all, keep a thread per core.
    pub fn runtime(&self) -> std::io::Result<tokio::runtime::Runtime> {
        match self {
            Command::Consume(_) => tokio::runtime::Builder::new_current_thread(),
            _ => tokio::runtime::Builder::new_multi_thread(),
        }
        .enable_all()
        .build()
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consume transaction messages from SQS and apply them to the ledger.
    Consume(ConsumeArgs),
    /// Create accounts and print their numbers, one per line.
    SeedAccounts(SeedArgs),
    /// Enqueue generated transactions among existing accounts.
    Send(SendArgs),
    /// Summarize the ledger: transactions by result, balances, and whether money was
    /// conserved (exit 1 when it was not).
    Report(ReportArgs),
    /// Serve the ingest and accounts HTTP API.
    Serve(ServeArgs),
    /// Send accepted transactions whose enqueueing never happened (one pass, or `--watch`).
    Sweep(SweepArgs),
    /// Settle processable messages of the dead-letter queue through the ledger (one pass);
    /// poison stays for an operator. `--dry-run` only reports.
    RescueDlq(RescueDlqArgs),
    /// Operate the dead-letter queue by hand: list, show, redrive to the main queue, purge.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Exchange rates for currency conversion: load a rates file, list the stored rates.
    #[command(subcommand)]
    Rates(RatesCommand),
    /// Scheduled bill payments: enqueue the payments that are due.
    #[command(subcommand)]
    Bills(BillsCommand),
    /// Mint a development bearer token (HS256, secret from BALLAST_JWT_HS256_SECRET).
    Token(TokenArgs),
    /// Print the shell completion script (bash, zsh, fish, …).
    Completions(CompletionsArgs),
    /// Print the manual page, or write one per command into a directory (--dir).
    Man(ManArgs),
}

/// Where the queue and tables are: blueprint names, or explicit physical names.
#[derive(Debug, Clone, Default, Args)]
pub struct TargetArgs {
    /// Blueprint file naming the queue and tables.
    #[arg(long, env = "BALLAST_BLUEPRINT")]
    pub blueprint: Option<PathBuf>,
    #[command(flatten)]
    pub values: ValuesArgs,
    /// Blueprint name of the transactions queue.
    #[arg(long, default_value = "transactions")]
    pub queue: String,
    /// Blueprint name of the accounts table.
    #[arg(long, default_value = "accounts")]
    pub accounts_table: String,
    /// Blueprint name of the transactions (results) table.
    #[arg(long, default_value = "transactions")]
    pub transactions_table: String,
    /// Queue URL; overrides the blueprint.
    #[arg(long, env = "BALLAST_QUEUE_URL")]
    pub queue_url: Option<String>,
    /// Dead-letter queue URL for malformed messages; default: the queue's RedrivePolicy.
    #[arg(long, env = "BALLAST_DLQ_URL")]
    pub dlq_url: Option<String>,
    /// Physical accounts table name; overrides the blueprint.
    #[arg(long, env = "BALLAST_ACCOUNTS_TABLE")]
    pub accounts_table_name: Option<String>,
    /// Physical transactions table name; overrides the blueprint.
    #[arg(long, env = "BALLAST_TRANSACTIONS_TABLE")]
    pub transactions_table_name: Option<String>,
    #[command(flatten)]
    pub aws: AwsArgs,
}

impl TargetArgs {
    /// The plain configuration the lower modules take.
    pub fn config(&self) -> TargetConfig {
        TargetConfig {
            blueprint: self.blueprint.clone(),
            values: self.values.files.clone(),
            queue: self.queue.clone(),
            accounts_table: self.accounts_table.clone(),
            transactions_table: self.transactions_table.clone(),
            queue_url: self.queue_url.clone(),
            dlq_url: self.dlq_url.clone(),
            accounts_table_name: self.accounts_table_name.clone(),
            transactions_table_name: self.transactions_table_name.clone(),
            aws: self.aws.options(),
        }
    }
}

/// The risk rules every money movement is scored with (see `docs/risk.md`).
#[derive(Debug, Clone, Default, Args)]
pub struct RiskArgs {
    /// Risk rules file (`kind: RiskRules`): each money movement is approved, held for review
    /// or declined. Without it, movements are applied without scoring.
    #[arg(long, env = "BALLAST_RISK_RULES", value_name = "FILE")]
    pub risk_rules: Option<PathBuf>,
}

/// `consume` arguments.
#[derive(Debug, Clone, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub risk: RiskArgs,
    /// Messages processed concurrently.
    #[arg(long, default_value_t = 32, env = "BALLAST_CONCURRENCY")]
    pub concurrency: usize,
    /// Address of the /metrics and /healthz endpoint.
    #[arg(long, default_value = "127.0.0.1:9464", env = "BALLAST_METRICS_ADDR")]
    pub metrics_addr: SocketAddr,
    /// EC2 instance id for scale-in protection; default: from IMDSv2, else no protection.
    #[arg(long, env = "BALLAST_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Do not use scale-in protection or lifecycle hooks.
    #[arg(long)]
    pub no_fleet: bool,
    /// Auto Scaling group name, the CloudWatch dimension; default: the blueprint's only group.
    #[arg(long, env = "BALLAST_FLEET_NAME")]
    pub fleet_name: Option<String>,
    /// Terminating lifecycle hook to complete on shutdown; default: the blueprint group's.
    #[arg(long, env = "BALLAST_LIFECYCLE_HOOK")]
    pub lifecycle_hook: Option<String>,
    /// Consecutive DynamoDB failures that open the circuit breaker.
    #[arg(long, default_value_t = 5)]
    pub breaker_threshold: u32,
    /// How long the circuit breaker stays open, e.g. `30s`, `500ms`, `2m`.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub breaker_cooldown: Duration,
    /// Long-polling wait (0..=20 seconds).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i32).range(0..=20))]
    pub wait_time_seconds: i32,
    /// Idempotency keys remembered once settled, so a duplicate this worker already settled is
    /// deleted without a DynamoDB write (0 turns it off; the ledger refuses duplicates anyway).
    #[arg(long, default_value_t = crate::consumer::recent::DEFAULT_CAPACITY)]
    pub recent_keys: usize,
    /// Do not publish metrics to CloudWatch.
    #[arg(long)]
    pub no_cloudwatch: bool,
    /// How long the worker must be idle before its scale-in protection is cleared.
    #[arg(long, default_value = "30s", value_parser = parse_duration, env = "BALLAST_IDLE_DEBOUNCE")]
    pub idle_debounce: Duration,
    /// Watchdog: with no ReceiveMessage completed (successfully or not) for this long,
    /// /readyz answers 503. An open circuit breaker pausing receives does not count.
    #[arg(long, default_value = "2m", value_parser = parse_duration, env = "BALLAST_WATCHDOG_NOT_READY_AFTER")]
    pub watchdog_not_ready_after: Duration,
    /// Watchdog: with no ReceiveMessage completed for this long, the worker drains and exits
    /// with status 75 so that its supervisor replaces it. Must exceed
    /// --watchdog-not-ready-after.
    #[arg(long, default_value = "5m", value_parser = parse_duration, env = "BALLAST_WATCHDOG_EXIT_AFTER")]
    pub watchdog_exit_after: Duration,
    /// DLQ rescue: how often the worker passes over the dead-letter queue (--dlq-url or the
    /// queue's RedrivePolicy), applying processable messages through the ledger.
    #[arg(long, default_value = "1m", value_parser = parse_duration, env = "BALLAST_DLQ_RESCUE_EVERY")]
    pub dlq_rescue_every: Duration,
    /// Do not run the DLQ rescue pass in this worker.
    #[arg(long, env = "BALLAST_NO_DLQ_RESCUE")]
    pub no_dlq_rescue: bool,
    /// How long the rescue pass keeps a poison DLQ message invisible before looking at it
    /// again (at most 12h, the SQS maximum).
    #[arg(long, default_value = "12h", value_parser = parse_duration, env = "BALLAST_DLQ_POISON_HOLD")]
    pub dlq_poison_hold: Duration,
}

/// `rescue-dlq` arguments.
#[derive(Debug, Clone, Args)]
pub struct RescueDlqArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub risk: RiskArgs,
    /// Report what would be done; apply, delete and hold nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How long a poison DLQ message is kept invisible before a pass looks at it again (at
    /// most 12h).
    #[arg(long, default_value = "12h", value_parser = parse_duration, env = "BALLAST_DLQ_POISON_HOLD")]
    pub poison_hold: Duration,
    /// At most this many DLQ messages in this pass.
    #[arg(long, default_value_t = crate::consumer::rescue::DEFAULT_MAX_PER_PASS)]
    pub max_messages: usize,
    /// Print one JSON object per message instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `dlq` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum DlqCommand {
    /// List the dead-lettered messages with the reason the worker recorded. Listing is a
    /// receive: it adds one to each message's receive count and hides the messages from other
    /// readers for up to 30 s (they are released at the end).
    List(DlqListArgs),
    /// Show one message in full: body (pretty-printed JSON), attributes, reason.
    Show(DlqShowArgs),
    /// Move messages back to the main queue (receive, send unchanged, then delete the DLQ
    /// copy). Poison is refused unless --include-poison.
    Redrive(DlqRedriveArgs),
    /// Delete every message of the DLQ. Asks for confirmation on a terminal; otherwise needs
    /// --yes.
    Purge(DlqPurgeArgs),
}

/// What every `dlq` subcommand takes.
#[derive(Debug, Clone, Args)]
pub struct DlqCommonArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// At most this many DLQ messages are read.
    #[arg(long, default_value_t = crate::dlq::DEFAULT_MAX_MESSAGES)]
    pub max_messages: usize,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub output: OutputFormat,
}

/// Text for people, JSON (one object per line) for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned text.
    Text,
    /// One JSON object per line.
    Json,
}

/// `dlq list` arguments.
#[derive(Debug, Clone, Args)]
pub struct DlqListArgs {
    #[command(flatten)]
    pub common: DlqCommonArgs,
}

/// `dlq show` arguments.
#[derive(Debug, Clone, Args)]
pub struct DlqShowArgs {
    #[command(flatten)]
    pub common: DlqCommonArgs,
    /// The SQS message id (as `dlq list` prints it).
    pub message_id: String,
}

/// `dlq redrive` arguments.
#[derive(Debug, Clone, Args)]
pub struct DlqRedriveArgs {
    #[command(flatten)]
    pub common: DlqCommonArgs,
    /// The SQS message ids to move back.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub message_ids: Vec<String>,
    /// Move every message back.
    #[arg(long)]
    pub all: bool,
    /// Also move messages the worker recorded as poison (they will come back to the DLQ
    /// unless the consumer has changed).
    #[arg(long)]
    pub include_poison: bool,
}

/// `dlq purge` arguments.
#[derive(Debug, Clone, Args)]
pub struct DlqPurgeArgs {
    #[command(flatten)]
    pub common: DlqCommonArgs,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(long)]
    pub yes: bool,
}

/// `bills` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum BillsCommand {
    /// One pass of the bill-payment runner: enqueue every occurrence due at or before now, each
    /// exactly once, and advance its schedule (for cron and tests; `serve` runs the same pass
    /// every `--bills-interval`).
    RunDue(BillsRunDueArgs),
}

/// `bills run-due` arguments.
#[derive(Debug, Clone, Args)]
pub struct BillsRunDueArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// As `serve --sweep-after`: when the sweeper re-sends a payment whose enqueueing failed.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub sweep_after: Duration,
}

/// `rates` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum RatesCommand {
    /// Validate a rates file (YAML, or CSV when its name ends in `.csv`) and write all of its
    /// rates in one transaction, or none:
    /// any problem is reported at its file:line:column and nothing is written.
    Load(RatesLoadArgs),
    /// Print the stored rates, by pair and start.
    List(RatesListArgs),
}

/// `rates load` arguments.
#[derive(Debug, Clone, Args)]
pub struct RatesLoadArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The rates file, YAML or `.csv` (see docs/currency.md).
    pub file: PathBuf,
    /// Validate the file only (no AWS call).
    #[arg(long)]
    pub check: bool,
}

/// `rates list` arguments.
#[derive(Debug, Clone, Args)]
pub struct RatesListArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub output: OutputFormat,
}

/// `seed-accounts` arguments.
#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// How many accounts.
    #[arg(long)]
    pub count: usize,
    /// Opening balance of each account (exact decimal).
    #[arg(long, default_value = "1000.00")]
    pub balance: Decimal,
    /// Currency of the accounts.
    #[arg(long, default_value = "USD")]
    pub currency: String,
    /// Owner of the accounts: the JWT `sub` that may debit and read them through the API. The
    /// default is a service name no person's token carries, so seeded money is reachable only by
    /// trusted producers (the generator), `accounts:admin`, or a token minted for it on purpose.
    #[arg(long, default_value = DEFAULT_SEED_OWNER)]
    pub owner: crate::transaction::Subject,
}

/// Default owner of `seed-accounts` accounts.
pub const DEFAULT_SEED_OWNER: &str = "ballast-seed";

/// `report` arguments.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `send` arguments.
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// How many messages.
    #[arg(long)]
    pub count: usize,
    /// Messages per second.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Fraction of messages that are resent duplicates.
    #[arg(long, default_value_t = 0.0)]
    pub duplicates: f64,
    /// Fraction of messages that are invalid.
    #[arg(long, default_value_t = 0.0)]
    pub invalid: f64,
    /// Fraction of messages that are large transfers (1000.00 to 20000.00), for the risk
    /// rules' amount thresholds (docs/risk.md).
    #[arg(long, default_value_t = 0.0)]
    pub large: f64,
    /// Fraction of messages that start a burst: 6 small transfers from one account back to
    /// back, for the risk rules' velocity limits (docs/risk.md).
    #[arg(long, default_value_t = 0.0)]
    pub bursts: f64,
    /// File with account numbers, one per line; default: standard input.
    #[arg(long)]
    pub accounts_file: Option<PathBuf>,
    /// Currency of the transactions.
    #[arg(long, default_value = "USD")]
    pub currency: String,
    /// Accounts in another currency (one number per line): with --conversions, a fraction of
    /// the messages converts between them and the main accounts, each way.
    #[arg(long, requires = "fx_currency")]
    pub fx_accounts_file: Option<PathBuf>,
    /// Currency of --fx-accounts-file.
    #[arg(long, requires = "fx_accounts_file")]
    pub fx_currency: Option<String>,
    /// Fraction of the messages that are conversions (needs --fx-accounts-file).
    #[arg(long, default_value_t = 0.0, requires = "fx_accounts_file")]
    pub conversions: f64,
    /// Fraction of the messages that are scheduled bill payments as the bill runner enqueues
    /// them (keys `bill:<schedule>:<date>`, monthly occurrences, some sent twice).
    #[arg(long, default_value_t = 0.0)]
    pub bill_payments: f64,
}

/// `serve` arguments.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "BALLAST_LISTEN")]
    pub listen: SocketAddr,
    /// File holding the HS256 secret (else $BALLAST_JWT_HS256_SECRET).
    #[arg(long)]
    pub jwt_hs256_secret_file: Option<PathBuf>,
    /// PEM public key for RS256/ES256 tokens (with --jwt-algorithm).
    #[arg(long, conflicts_with = "jwt_hs256_secret_file")]
    pub jwt_public_key_file: Option<PathBuf>,
    /// Algorithm of --jwt-public-key-file.
    #[arg(long, value_enum, default_value = "RS256")]
    pub jwt_algorithm: JwtAlgorithmArg,
    /// Verify tokens against the JSON Web Key Set at this URL (https, or http on loopback);
    /// re-read periodically and on an unknown `kid`, so key rotation needs no restart.
    #[arg(long, env = "BALLAST_JWKS_URL", conflicts_with_all = ["jwt_hs256_secret_file", "jwt_public_key_file", "jwks_file"])]
    pub jwks_url: Option<String>,
    /// Verify tokens against the JSON Web Key Set in this file (re-read like --jwks-url).
    #[arg(long, conflicts_with_all = ["jwt_hs256_secret_file", "jwt_public_key_file"])]
    pub jwks_file: Option<PathBuf>,
    /// Re-read the key set every this often in the background (and on a token once the set is
    /// older than this), so a revoked key stops verifying within one interval.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub jwks_refresh: Duration,
    /// At most one key-set read per this interval caused by unknown `kid`s or failed reads.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub jwks_min_refetch: Duration,
    /// Required `aud` claim.
    #[arg(long, env = "BALLAST_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Required `iss` claim (the identity provider's issuer URL).
    #[arg(
        long = "issuer",
        visible_alias = "jwt-issuer",
        env = "BALLAST_JWT_ISSUER"
    )]
    pub issuer: Option<String>,
    /// Serve HTTPS with this certificate chain (PEM; with --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Allow plain HTTP on a non-loopback address (e.g. behind a TLS-terminating proxy on the
    /// same host or a service mesh). Without it, such a listen address needs --tls-cert.
    #[arg(long, conflicts_with = "tls_cert")]
    pub insecure_http: bool,
    /// Sustained requests per second per client (JWT `sub`); 0 disables rate limiting.
    #[arg(long, default_value_t = 50.0)]
    pub rate_limit: f64,
    /// Requests a client may burst.
    #[arg(long, default_value_t = 100)]
    pub rate_burst: u32,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,
    /// A reverse proxy whose `X-Forwarded-For` is believed for the audit records' client
    /// address (repeatable). Without it, the TCP peer is recorded.
    #[arg(long = "trusted-proxy")]
    pub trusted_proxies: Vec<IpAddr>,
    /// How long after its record an accepted transaction without a ledger result is sent
    /// again by the sweeper.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub sweep_after: Duration,
    /// Pause between two sweeps; `0s` runs no sweeper in this process.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub sweep_interval: Duration,
    /// Pause between two passes of the bill-payment runner (`bills run-due`); `0s` runs none in
    /// this process. Several processes may run it at once.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub bills_interval: Duration,
}

/// `sweep` arguments.
#[derive(Debug, Clone, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Records older than this without a ledger result are sent again.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub sweep_after: Duration,
    /// Keep sweeping every `--sweep-interval` until SIGTERM (default: one pass).
    #[arg(long)]
    pub watch: bool,
    /// Pause between two sweeps with `--watch`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub sweep_interval: Duration,
}

/// `token` arguments.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// The client id (`sub`).
    #[arg(long)]
    pub sub: String,
    /// Space-separated scopes.
    #[arg(long, default_value = ALL_SCOPES)]
    pub scope: String,
    /// Lifetime, e.g. `1h`, `30m`.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub ttl: Duration,
    /// `aud` claim.
    #[arg(long, env = "BALLAST_JWT_AUDIENCE")]
    pub audience: Option<String>,
    /// File holding the HS256 secret (else $BALLAST_JWT_HS256_SECRET).
    #[arg(long)]
    pub jwt_hs256_secret_file: Option<PathBuf>,
}

/// Signature algorithm of `--jwt-public-key-file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JwtAlgorithmArg {
    /// HMAC SHA-256 with a shared secret.
    #[value(name = "HS256")]
    Hs256,
    /// RSA PKCS#1 v1.5 SHA-256, public key PEM.
    #[value(name = "RS256")]
    Rs256,
    /// ECDSA P-256 SHA-256, public key PEM.
    #[value(name = "ES256")]
    Es256,
}

impl From<JwtAlgorithmArg> for JwtAlgorithm {
    fn from(arg: JwtAlgorithmArg) -> Self {
        match arg {
            JwtAlgorithmArg::Hs256 => JwtAlgorithm::Hs256,
            JwtAlgorithmArg::Rs256 => JwtAlgorithm::Rs256,
            JwtAlgorithmArg::Es256 => JwtAlgorithm::Es256,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn seed_accounts_owner_defaults_to_the_service_name() {
        use clap::Parser;
        let seed = |extra: &[&str]| {
            let mut argv = vec!["ballast-worker", "seed-accounts", "--count", "2"];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv).map(|cli| match cli.command {
                Command::SeedAccounts(args) => args.owner.as_str().to_owned(),
                _ => String::new(),
            })
        };
        assert_eq!(seed(&[]).unwrap(), DEFAULT_SEED_OWNER);
        assert_eq!(seed(&["--owner", "alice"]).unwrap(), "alice");
        assert!(seed(&["--owner", ""]).is_err());
    }

    #[test]
    fn dlq_redrive_needs_a_selection_and_purge_defaults_to_asking() {
        use clap::Parser;
        let parse = |args: &[&str]| {
            let mut argv = vec!["ballast-worker", "dlq"];
            argv.extend_from_slice(args);
            Cli::try_parse_from(argv).map(|cli| cli.command)
        };
        assert!(parse(&["redrive"]).is_err(), "neither ids nor --all");
        assert!(parse(&["redrive", "m-1", "--all"]).is_err(), "both");
        let Ok(Command::Dlq(DlqCommand::Redrive(args))) = parse(&["redrive", "m-1", "m-2"]) else {
            panic!("not redrive")
        };
        assert_eq!(args.message_ids, ["m-1", "m-2"]);
        assert!(!args.all && !args.include_poison);
        let Ok(Command::Dlq(DlqCommand::Purge(args))) = parse(&["purge"]) else {
            panic!("not purge")
        };
        assert!(!args.yes);
        assert_eq!(args.common.output, OutputFormat::Text);
        assert_eq!(args.common.max_messages, crate::dlq::DEFAULT_MAX_MESSAGES);
        assert!(parse(&["list", "--output", "yaml"]).is_err());
    }

    #[test]
    fn consume_runs_on_one_thread_and_serve_on_a_thread_per_core() {
        use tokio::runtime::RuntimeFlavor;
        let flavor = |argv: &[&str]| {
            Cli::try_parse_from(argv)
                .unwrap()
                .command
                .runtime()
                .unwrap()
                .handle()
                .runtime_flavor()
        };
        assert_eq!(
            flavor(&["ballast-worker", "consume", "--blueprint", "b.yaml"]),
            RuntimeFlavor::CurrentThread
        );
        assert_eq!(
            flavor(&["ballast-worker", "serve", "--blueprint", "b.yaml"]),
            RuntimeFlavor::MultiThread
        );
    }

    #[test]
    fn consume_defaults() {
        let cli =
            Cli::try_parse_from(["ballast-worker", "consume", "--blueprint", "b.yaml"]).unwrap();
        let Command::Consume(args) = cli.command else {
            panic!("not consume")
        };
        assert_eq!(args.concurrency, 32);
        assert_eq!(args.metrics_addr.to_string(), "127.0.0.1:9464");
        assert_eq!(args.target.queue, "transactions");
        assert_eq!(args.target.accounts_table, "accounts");
        assert_eq!(args.target.transactions_table, "transactions");
        assert_eq!(args.breaker_cooldown, Duration::from_secs(30));
        assert_eq!(args.wait_time_seconds, 20);
        assert_eq!(args.recent_keys, 10_000);
        assert_eq!(args.idle_debounce, Duration::from_secs(30));
        assert_eq!(args.watchdog_not_ready_after, Duration::from_secs(120));
        assert_eq!(args.watchdog_exit_after, Duration::from_secs(300));
        assert_eq!(args.dlq_rescue_every, Duration::from_secs(60));
        assert!(!args.no_dlq_rescue);
        assert_eq!(args.dlq_poison_hold, Duration::from_secs(43_200));
        assert_eq!(
            args.target.config().aws.timeouts,
            ballast_aws::AwsTimeouts::default()
        );
    }

    #[test]
    fn durations_use_the_controllers_grammar() {
        use clap::Parser;
        let consume = |extra: &[&str]| {
            let mut argv = vec!["ballast-worker", "consume", "--blueprint", "b.yaml"];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv).map(|cli| match cli.command {
                Command::Consume(args) => (args.breaker_cooldown, args.idle_debounce),
                _ => (Duration::ZERO, Duration::ZERO),
            })
        };
        // `ballast run --resync 1d` and this flag accept the same text.
        assert_eq!(
            consume(&["--breaker-cooldown", "1d"]).unwrap().0,
            Duration::from_secs(86_400)
        );
        assert_eq!(
            consume(&["--breaker-cooldown", "500ms", "--idle-debounce", "7"]).unwrap(),
            (Duration::from_millis(500), Duration::from_secs(7))
        );
        let err = consume(&["--breaker-cooldown", "5w"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--breaker-cooldown"), "{err}");
        assert!(err.contains("e.g. 500ms, 30s, 5m, 1d"), "{err}");
        // Overflow is an error, not a panic.
        assert!(consume(&["--breaker-cooldown", &format!("{}h", u64::MAX)]).is_err());
        // The AWS timeouts take the same grammar (and refuse zero).
        let cli =
            Cli::try_parse_from(["ballast-worker", "report", "--aws-operation-timeout", "1d"])
                .unwrap();
        let Command::Report(args) = cli.command else {
            panic!("not report")
        };
        assert_eq!(
            args.target.aws.timeouts.operation,
            Duration::from_secs(86_400)
        );
        assert!(
            Cli::try_parse_from(["ballast-worker", "report", "--aws-read-timeout", "0s"]).is_err()
        );
    }
}
