//! `ballast run`: wires the controller service from the command line (fail fast on bad
//! blueprints, clients, leases), then runs it until SIGTERM/SIGINT.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use ballast_aws::CallRecorder;

use crate::autoscale::runner;
use crate::cli::RunArgs;
use crate::lease::{self, DynamoLease, KubeLease, Lease, LeaseSpec};
use crate::provision::kinds::Readiness;
use crate::provision::{Clients, ReadOnlyClients};
use crate::service::metrics::ServiceMetrics;
use crate::service::reconcile::{ProvisionClients, Target};
use crate::service::status::Backoff;
use crate::service::{self, Context, Settings, Stack};
use ballast_runtime::{Clock, SystemClock};

pub async fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let recorder = CallRecorder::default();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
    let cancel = tokio_util::sync::CancellationToken::new();
    let holder = args.holder.clone().unwrap_or_else(lease::default_holder);
    let kube = match &args.lease_namespace {
        Some(_) => Some(
            kube::Client::try_default()
                .await
                .context("connecting to the Kubernetes API server for leader election")?,
        ),
        None => None,
    };

    if !args.values.files.is_empty() && args.files.len() > 1 {
        bail!(
            "--values with {} blueprints: a values file describes one environment of one \
             blueprint (hint: run one controller per blueprint and environment)",
            args.files.len()
        );
    }
    let mut names = BTreeSet::new();
    let mut stacks = Vec::new();
    for file in &args.files {
        let bp = args.values.load(file)?.blueprint;
        if !names.insert(bp.metadata.name.clone()) {
            bail!(
                "{}: metadata.name `{}` is already managed by another file of this controller",
                file.display(),
                bp.metadata.name
            );
        }
        let options = args.aws.options();
        let sdk =
            ballast_aws::load_sdk_config_with_default_region(&options, Some(&bp.metadata.region))
                .await?;
        let (clients, scaling_clients) = if args.dry_run {
            let read_only = ReadOnlyClients::new(&sdk, &recorder);
            let scaling = runner::Clients {
                sqs: read_only.sqs().clone(),
                autoscaling: read_only.autoscaling().clone(),
                cloudwatch: read_only.cloudwatch().clone(),
                kube: None,
            };
            (ProvisionClients::ReadOnly(read_only), scaling)
        } else {
            let clients = Clients::read_write(&sdk, &recorder);
            let scaling = runner::Clients {
                sqs: clients.sqs.clone(),
                autoscaling: clients.autoscaling.clone(),
                cloudwatch: clients.cloudwatch.clone(),
                kube: kube.clone(),
            };
            (ProvisionClients::ReadWrite(clients), scaling)
        };
        let spec = LeaseSpec {
            name: lease::blueprint_lease_name(&bp.metadata.name),
            holder: holder.clone(),
            duration: args.lease_duration.std(),
        };
        let lease = match (&clients, &args.lease_namespace, &kube) {
            (ProvisionClients::ReadOnly(_), _, _) => None,
            (ProvisionClients::ReadWrite(_), Some(namespace), Some(kube)) => Some(Lease::Kube(
                KubeLease::new(kube.clone(), namespace, spec, clock.clone()),
            )),
            (ProvisionClients::ReadWrite(clients), _, _) => {
                lease::ensure_table(&clients.dynamodb, &args.lease_table)
                    .await
                    .with_context(|| format!("preparing the lease table `{}`", args.lease_table))?;
                Some(Lease::Dynamo(DynamoLease::new(
                    clients.dynamodb.clone(),
                    args.lease_table.clone(),
                    spec,
                    clock.clone(),
                )))
            }
        };
        stacks.push(Stack {
            target: Target {
                path: file.clone(),
                values: args.values.files.clone(),
                name: bp.metadata.name.clone(),
                sdk,
                suspensions: crate::lease::Suspensions::new(
                    match &clients {
                        ProvisionClients::ReadOnly(read_only) => read_only.dynamodb().clone(),
                        ProvisionClients::ReadWrite(clients) => clients.dynamodb.clone(),
                    },
                    args.lease_table.clone(),
                ),
                clients,
            },
            blueprint: bp,
            scaling_clients,
            lease,
        });
    }

    let resync = args.resync.std();
    let ctx = Arc::new(Context {
        metrics: Arc::new(ServiceMetrics::new(recorder)),
        clock,
        cancel: cancel.clone(),
        settings: Settings {
            dry_run: args.dry_run,
            resync,
            scale_interval: args.scale_interval.map(|d| d.std()),
            readiness: Readiness::cancelled_by(cancel.clone()),
            backoff: Backoff {
                base: resync.min(Duration::from_secs(30)),
                max: Duration::from_secs(15 * 60),
            },
        },
    });
    let signals = ballast_runtime::spawn_signal_handler(cancel);
    service::run(ctx, stacks, args.metrics_addr).await?;
    signals.abort();
    Ok(ExitCode::SUCCESS)
}
