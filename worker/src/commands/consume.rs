//! `ballast-worker consume`: wires the consumer, metrics, CloudWatch and fleet together.

use std::process::ExitCode;
use std::sync::Arc;

use ballast_aws::{AwsError, load_sdk_config_with_default_region};
use tokio_util::sync::CancellationToken;

use crate::breaker::{Breaker, BreakerConfig};
use crate::cli::ConsumeArgs;
use crate::config::{self, ConfigError, QueueRef};
use crate::consumer::rescue::{RescueConfig, Rescuer};
use crate::consumer::watchdog::{STALL_EXIT_CODE, WatchdogConfig};
use crate::consumer::{Consumer, ConsumerConfig, ConsumerError, discover_queue};
use crate::ledger::Ledger;
use crate::lifecycle::{InstanceLifecycle, LifecycleTiming, instance_id_from_imds};
use crate::observability::{self, AwsCallCounter, CloudWatchPublisher, Metrics};

/// Why `consume` could not run.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No usable AWS configuration.
    #[error(transparent)]
    AwsConfig(#[from] ballast_aws::ConfigError),
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The consumer could not start.
    #[error(transparent)]
    Consumer(#[from] ConsumerError),
    /// The metrics endpoint could not start.
    #[error(transparent)]
    Observability(#[from] observability::ObservabilityError),
    #[error(transparent)]
    RiskRules(#[from] crate::risk::RulesError),
    /// The watchdog bounds contradict each other.
    #[error(
        "--watchdog-exit-after ({exit_after:?}) must be longer than --watchdog-not-ready-after \
         ({not_ready_after:?}); hint: e.g. --watchdog-not-ready-after 2m --watchdog-exit-after 5m"
    )]
    WatchdogBounds {
        /// `--watchdog-not-ready-after`.
        not_ready_after: std::time::Duration,
        /// `--watchdog-exit-after`.
        exit_after: std::time::Duration,
    },
}

/// How `consume` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeExit {
    /// Shut down on request (signal or termination notice) and drained.
    Drained,
    /// The watchdog stopped the worker: its receive loop made no progress for longer than
    /// `--watchdog-exit-after`. The binary exits with [`STALL_EXIT_CODE`].
    Stalled,
}

/// AWS clients sharing one SDK config and the AWS-call counter.
#[derive(Debug, Clone)]
pub struct Clients {
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Auto Scaling.
    pub autoscaling: aws_sdk_autoscaling::Client,
    /// CloudWatch.
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

impl Clients {
    /// Builds every client from `sdk`, counting calls into `metrics`.
    pub fn new(sdk: &aws_types::SdkConfig, metrics: &Arc<Metrics>) -> Self {
        let counter = AwsCallCounter::new(metrics.clone());
        Clients {
            sqs: aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::config::Builder::from(sdk)
                    .interceptor(counter.clone())
                    .build(),
            ),
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(sdk)
                    .interceptor(counter.clone())
                    .build(),
            ),
            autoscaling: aws_sdk_autoscaling::Client::from_conf(
                aws_sdk_autoscaling::config::Builder::from(sdk)
                    .interceptor(counter.clone())
                    .build(),
            ),
            cloudwatch: aws_sdk_cloudwatch::Client::from_conf(
                aws_sdk_cloudwatch::config::Builder::from(sdk)
                    .interceptor(counter)
                    .build(),
            ),
        }
    }
}

impl ConsumeExit {
    /// The process exit code: a distinct status for a stall, so that a supervisor (systemd,
    /// Kubernetes, `ballast fleet local`) sees a stalled worker and replaces it.
    pub fn code(self) -> ExitCode {
        match self {
            ConsumeExit::Drained => ExitCode::SUCCESS,
            ConsumeExit::Stalled => ExitCode::from(STALL_EXIT_CODE),
        }
    }
}

/// `consume`: runs the worker until `shutdown` fires and returns the exit code.
pub async fn run(
    args: &ConsumeArgs,
    shutdown: CancellationToken,
) -> Result<ExitCode, CommandError> {
    Ok(consume(args, shutdown).await?.code())
}

/// Runs the worker until `shutdown` fires (SIGTERM/Ctrl-C) or a termination lifecycle notice
/// arrives; then drains, completes the lifecycle action and returns.
pub async fn consume(
    args: &ConsumeArgs,
    shutdown: CancellationToken,
) -> Result<ConsumeExit, CommandError> {
    let watchdog = WatchdogConfig {
        not_ready_after: args.watchdog_not_ready_after,
        exit_after: args.watchdog_exit_after,
    };
    if watchdog.exit_after <= watchdog.not_ready_after {
        return Err(CommandError::WatchdogBounds {
            not_ready_after: watchdog.not_ready_after,
            exit_after: watchdog.exit_after,
        });
    }
    // Before anything else: a bad rules file stops the worker with every problem positioned.
    let risk = super::load_risk(&args.risk)?;
    let target = args.target.config();
    let blueprint = config::load_blueprint(&target)?;
    let targets = config::resolve(&target, blueprint.as_ref())?;
    let sdk = load_sdk_config_with_default_region(&targets.aws, targets.default_region.as_deref())
        .await?;
    let metrics = Arc::new(Metrics::new());
    let clients = Clients::new(&sdk, &metrics);

    let queue_url = targets.queue()?.url(&clients.sqs).await?;
    let info = discover_queue(&clients.sqs, &queue_url).await?;
    let dlq_url = match (&targets.dlq, &info.dlq_url) {
        (Some(QueueRef::Url(url)), _) => Some(url.clone()),
        (_, Some(url)) => Some(url.clone()),
        (Some(name @ QueueRef::Name(_)), None) => Some(name.url(&clients.sqs).await?),
        (None, None) => None,
    };
    if dlq_url.is_none() {
        tracing::warn!("no dead-letter queue: malformed messages are left to the redrive policy");
    }
    // The DLQ rescue pass (see `crate::consumer::rescue`): settles processable messages that
    // SQS's redrive moved after receives the worker never saw.
    let rescuer = match (&dlq_url, args.no_dlq_rescue) {
        (Some(url), false) => Some(Rescuer::new(
            clients.sqs.clone(),
            {
                let (accounts, transactions) = targets.tables()?;
                // The same rules as the consumer: a rescued message is scored like any other.
                super::with_risk(
                    Ledger::new(clients.dynamodb.clone(), accounts, transactions),
                    risk.as_ref(),
                )
            },
            RescueConfig {
                poison_hold: args.dlq_poison_hold,
                ..RescueConfig::new(url.clone())
            },
            metrics.clone(),
        )),
        _ => None,
    };
    let breaker_config = BreakerConfig {
        threshold: args.breaker_threshold,
        cooldown: args.breaker_cooldown,
    };
    let config = ConsumerConfig {
        dlq_url,
        concurrency: args.concurrency,
        wait_time_seconds: args.wait_time_seconds,
        visibility_timeout: info.visibility_timeout,
        max_receive_count: info.max_receive_count,
        recent_keys: args.recent_keys,
        breaker: breaker_config,
        timeouts: targets.aws.timeouts,
        watchdog,
        ..ConsumerConfig::new(queue_url)
    };
    let (accounts_table, transactions_table) = targets.tables()?;
    let ledger = super::with_risk(
        Ledger::new(clients.dynamodb.clone(), accounts_table, transactions_table),
        risk.as_ref(),
    );
    let breaker = Arc::new(Breaker::new(breaker_config));
    let holds_ledger = ledger.clone();
    let consumer = Consumer::with_parts(
        clients.sqs.clone(),
        ledger,
        config,
        metrics.clone(),
        breaker,
    );

    // Background services stop on their own token, after the consumer has drained.
    let background = CancellationToken::new();
    let (_, server) = observability::serve(
        args.metrics_addr,
        metrics.clone(),
        Some(consumer.watchdog().clone()),
        background.clone(),
    )
    .await?;
    let watchdog_task = tokio::spawn(consumer.watchdog().clone().run(
        metrics.clone(),
        shutdown.clone(),
        background.clone(),
    ));
    let publisher = (!args.no_cloudwatch).then(|| {
        let fleet_name = args.fleet_name.clone().or(targets.fleet_name.clone());
        tokio::spawn(
            CloudWatchPublisher::new(clients.cloudwatch.clone(), metrics.clone(), fleet_name)
                .run(background.clone()),
        )
    });
    // The age of the oldest bill occurrence due but unpaid (metric and alarm): the runner is in
    // `serve`, the metrics publisher here.
    tokio::spawn(observability::watch_overdue_bills(
        holds_ledger.clone(),
        metrics.clone(),
        std::time::Duration::from_secs(60),
        background.clone(),
    ));
    // With risk rules, the age of the oldest pending hold (metric and alarm).
    if risk.is_some() {
        tokio::spawn(observability::watch_held_reviews(
            holds_ledger,
            metrics.clone(),
            std::time::Duration::from_secs(60),
            background.clone(),
        ));
    }
    let fleet = if args.no_fleet {
        None
    } else {
        start_fleet(args, &targets, &clients, &consumer, &shutdown, &background).await
    };

    let rescue_task = rescuer.map(|rescuer| {
        tracing::info!(
            dlq_url = %rescuer.config().dlq_url,
            every = ?args.dlq_rescue_every,
            "DLQ rescue pass on"
        );
        tokio::spawn(rescuer.run(args.dlq_rescue_every, shutdown.clone()))
    });

    consumer.run(shutdown.clone()).await;
    if let Some(task) = rescue_task {
        // A pass in progress ends at its current message (the shutdown token).
        let _ = task.await;
    }

    let completion = match &fleet {
        Some(fleet) => Some(fleet.finish().await),
        None => None,
    };
    tracing::info!(?completion, "worker drained");
    background.cancel();
    if let Some(publisher) = publisher {
        let _ = publisher.await;
    }
    let _ = server.await;
    let _ = watchdog_task.await;
    if consumer.watchdog().tripped() {
        tracing::error!(
            exit_code = STALL_EXIT_CODE,
            "stopped by the watchdog: the receive loop made no progress"
        );
        return Ok(ConsumeExit::Stalled);
    }
    Ok(ConsumeExit::Drained)
}

async fn start_fleet(
    args: &ConsumeArgs,
    targets: &config::Targets,
    clients: &Clients,
    consumer: &Consumer,
    shutdown: &CancellationToken,
    background: &CancellationToken,
) -> Option<InstanceLifecycle> {
    let instance_id = match &args.instance_id {
        Some(id) => id.clone(),
        None => instance_id_from_imds().await?,
    };
    let hook = args
        .lifecycle_hook
        .clone()
        .or(targets.lifecycle_hook.clone());
    let fleet =
        match InstanceLifecycle::discover(clients.autoscaling.clone(), &instance_id, hook).await {
            Ok(Some(fleet)) => fleet,
            Ok(None) => {
                tracing::info!(%instance_id, "instance is not in an Auto Scaling group");
                return None;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot look the instance up in Auto Scaling");
                return None;
            }
        };
    tracing::info!(%instance_id, group = fleet.group(), "fleet integration on");
    let timing = LifecycleTiming {
        idle_debounce: args.idle_debounce,
        ..LifecycleTiming::default()
    };
    let watcher = fleet.clone();
    let token = shutdown.clone();
    tokio::spawn(async move { watcher.watch_termination(timing.poll_interval, token).await });
    let protector = fleet.clone();
    let activity = consumer.activity();
    let token = background.clone();
    tokio::spawn(async move {
        protector
            .protect_while_busy(activity, timing.idle_debounce, token)
            .await
    });
    Some(fleet)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    #[tokio::test]
    async fn contradictory_watchdog_bounds_are_refused_before_any_aws_call() {
        let cli = Cli::try_parse_from([
            "ballast-worker",
            "consume",
            "--queue-url",
            "http://127.0.0.1:1/000000000000/q",
            "--watchdog-not-ready-after",
            "2m",
            "--watchdog-exit-after",
            "90s",
        ])
        .unwrap();
        let Command::Consume(args) = cli.command else {
            panic!("not consume")
        };
        let err = consume(&args, CancellationToken::new()).await.unwrap_err();
        assert!(
            matches!(err, CommandError::WatchdogBounds { .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("--watchdog-exit-after"), "{text}");
        assert!(text.contains("hint:"), "{text}");
    }
}
