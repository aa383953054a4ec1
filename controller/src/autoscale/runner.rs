//! The control loop: every evaluation interval, read the queue and the fleet,
//! run the pure [`evaluate`](super::evaluate), act on the decision and publish
//! the autoscaler's metrics.
//!
//! Time for the policy comes from the injected [`Clock`]; the ticks between
//! evaluations come from tokio's timer. Shutdown goes through the one
//! [`CancellationToken`] in the [`Context`].
//!
//! Dry runs are enforced structurally: [`build_loops`] wraps every actuator in
//! a [`DryRunActuator`] and creates no [`MetricPublisher`], so a dry-run loop
//! holds nothing that can write.

use std::sync::Arc;
use std::time::Duration;

use ballast_aws::AwsError;
use ballast_blueprint::Blueprint;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::actuator::{
    Actuator, ActuatorError, AsgActuator, DeploymentActuator, DryRunActuator, FleetCapacity,
    FleetId, LastActivity, SetOutcome,
};
use super::config::{PolicyLookupError, find_policy, policy_config};
use super::measured::MeasuredRates;
use super::publish::{MetricPublisher, Sample};
use super::reading::{QueueDepth, QueueSource, ReadingError, read_rates};
use super::seasonal::Forecast;
use super::{
    Decision, Observation, PolicyConfig, PolicyConfigError, PolicyState, Reading, Timestamp,
    evaluate,
};
use ballast_runtime::Clock;

/// The clients the control loop talks to.
#[derive(Clone)]
pub struct Clients {
    pub sqs: aws_sdk_sqs::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// Needed only for policies whose fleet is a Kubernetes Deployment.
    pub kube: Option<kube::Client>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients")
            .field("sqs", &self.sqs)
            .field("autoscaling", &self.autoscaling)
            .field("cloudwatch", &self.cloudwatch)
            .field("kube", &self.kube.as_ref().map(|_| "kube::Client"))
            .finish()
    }
}

impl Clients {
    /// AWS clients from one SDK configuration; no Kubernetes client.
    pub fn from_sdk_config(config: &aws_config::SdkConfig) -> Self {
        Clients {
            sqs: aws_sdk_sqs::Client::new(config),
            autoscaling: aws_sdk_autoscaling::Client::new(config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            kube: None,
        }
    }
}

/// Whether the loop may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Set desired capacities and publish metrics.
    #[default]
    Live,
    /// Compute and report decisions; no `SetDesiredCapacity`, no scale patch, no
    /// `PutMetricData`.
    DryRun,
}

/// Everything the control loop needs from outside.
#[derive(Debug, Clone)]
pub struct Context {
    pub clients: Clients,
    pub clock: Arc<dyn Clock>,
    pub cancel: CancellationToken,
    pub mode: Mode,
    /// Also read `ApproximateAgeOfOldestMessage` from CloudWatch.
    pub oldest_message_age: bool,
}

/// Why the loops cannot be built from a blueprint.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Lookup(#[from] PolicyLookupError),
    #[error("scaling policy `{policy}`: no queue named `{queue}`")]
    UnknownQueue { policy: String, queue: String },
    #[error("scaling policy `{policy}`: no Auto Scaling group named `{fleet}`")]
    UnknownFleet { policy: String, fleet: String },
    #[error("scaling policy `{policy}` names neither a fleet nor a deployment")]
    NoFleet { policy: String },
    #[error(
        "scaling policy `{policy}` scales a Kubernetes Deployment but there is no Kubernetes client"
    )]
    NoKubeClient { policy: String },
    #[error("scaling policy `{policy}`: {source}")]
    InvalidConfig {
        policy: String,
        #[source]
        source: PolicyConfigError,
    },
    #[error("the evaluation interval must be longer than zero")]
    ZeroInterval,
}

/// What happened to the decision's target capacity.
#[derive(Debug)]
pub enum Actuation {
    /// The decision was [`Action::NoChange`](super::Action::NoChange).
    NotNeeded,
    Done(SetOutcome),
    Failed(ActuatorError),
}

/// What happened to the autoscaler's metrics.
#[derive(Debug)]
pub enum Publication {
    /// Dry run, or the fleet could not be read.
    Skipped,
    Published,
    Failed(AwsError),
}

/// One evaluation of one policy.
#[derive(Debug)]
pub struct Evaluation {
    pub policy: String,
    pub queue: String,
    pub fleet: FleetId,
    pub dry_run: bool,
    pub decision: Decision,
    pub actuation: Actuation,
    pub publication: Publication,
}

/// The JSON line of an [`Evaluation`].
#[derive(Debug, Serialize)]
pub struct EvaluationRecord<'a> {
    pub policy: &'a str,
    pub queue: &'a str,
    pub fleet: &'a FleetId,
    pub dry_run: bool,
    pub at_ms: u64,
    pub visible: Option<u64>,
    pub in_flight: Option<u64>,
    pub delayed: Option<u64>,
    pub in_service: Option<u32>,
    pub oldest_message_age_secs: Option<u64>,
    pub backlog_per_instance: Option<String>,
    pub current: u32,
    pub desired: u32,
    pub action: &'a super::Action,
    pub reason: &'a str,
    pub actuation: ActuationRecord,
    pub metrics_published: bool,
}

/// Serializable form of [`Actuation`].
#[derive(Debug, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ActuationRecord {
    NotNeeded,
    Changed { from: u32, to: u32 },
    Unchanged { desired: u32 },
    DryRun { from: u32, to: u32 },
    Failed { error: String },
}

impl Evaluation {
    /// The reading the decision was made from, when the queue and group could be read.
    pub fn reading(&self) -> Option<&Reading> {
        match &self.decision.inputs {
            Observation::Ok(m) => Some(m),
            Observation::Missing { .. } => None,
        }
    }

    pub fn record(&self) -> EvaluationRecord<'_> {
        let reading = self.reading();
        let in_service = match &self.decision.inputs {
            Observation::Ok(m) => Some(m.in_service),
            Observation::Missing { in_service, .. } => *in_service,
        };
        EvaluationRecord {
            policy: &self.policy,
            queue: &self.queue,
            fleet: &self.fleet,
            dry_run: self.dry_run,
            at_ms: self.decision.at.as_millis(),
            visible: reading.map(|m| m.visible),
            in_flight: reading.map(|m| m.in_flight),
            delayed: reading.map(|m| m.delayed),
            in_service,
            oldest_message_age_secs: reading
                .and_then(|m| m.oldest_message_age)
                .map(|d| d.as_secs()),
            backlog_per_instance: self.decision.backlog_per_instance.map(|b| b.to_string()),
            current: self.decision.current,
            desired: self.decision.desired,
            action: &self.decision.action,
            reason: &self.decision.reason,
            actuation: match &self.actuation {
                Actuation::NotNeeded => ActuationRecord::NotNeeded,
                Actuation::Done(SetOutcome::Changed { from, to }) => ActuationRecord::Changed {
                    from: *from,
                    to: *to,
                },
                Actuation::Done(SetOutcome::Unchanged { desired }) => {
                    ActuationRecord::Unchanged { desired: *desired }
                }
                Actuation::Done(SetOutcome::DryRun { from, to }) => ActuationRecord::DryRun {
                    from: *from,
                    to: *to,
                },
                Actuation::Failed(err) => ActuationRecord::Failed {
                    error: err.to_string(),
                },
            },
            metrics_published: matches!(self.publication, Publication::Published),
        }
    }
}

/// One scaling policy bound to its queue and fleet, with its memory.
#[derive(Debug)]
pub struct PolicyLoop {
    name: String,
    config: PolicyConfig,
    interval: Duration,
    queue: QueueSource,
    actuator: Box<dyn Actuator>,
    publisher: Option<MetricPublisher>,
    dry_run: bool,
    state: Option<PolicyState>,
    /// `mode: queueing` only: where the measured λ and μ are read.
    rate_source: Option<aws_sdk_cloudwatch::Client>,
    /// The smoothed measured λ and μ (this loop's own, never shared).
    measured: MeasuredRates,
    /// `prediction:` (queueing mode): the daily profile of the queue's arrivals.
    forecast: Option<Forecast>,
}

impl PolicyLoop {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// The policy's memory (`None` before the first evaluation).
    pub fn state(&self) -> Option<&PolicyState> {
        self.state.as_ref()
    }

    /// One evaluation at `now`. The first evaluation starts the policy's memory
    /// from the fleet's own history ([`Self::initial_state`]), so a freshly
    /// started controller honours a cooldown begun before it.
    pub async fn evaluate(&mut self, now: Timestamp) -> Evaluation {
        let span =
            tracing::info_span!("evaluate", policy = %self.name, fleet = %self.actuator.fleet());
        self.evaluate_inner(now).instrument(span).await
    }

    /// The policy's memory for a controller starting at `now`: the fleet's
    /// last scaling activity (an Auto Scaling group's `DescribeScalingActivities`)
    /// is the last action; an empty history means none; when the history cannot
    /// be read (or a Deployment has none), `now` counts as the last action
    /// ([`PolicyState::starting_at`]): no scale-in before one cooldown.
    pub async fn initial_state(&self, now: Timestamp) -> PolicyState {
        match self.actuator.last_activity().await {
            Ok(LastActivity::Never) => PolicyState::new(),
            // An activity "in the future" (clock skew) counts as now.
            Ok(LastActivity::At(at)) => PolicyState::starting_at(at.min(now)),
            Ok(LastActivity::Unknown) => PolicyState::starting_at(now),
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the fleet's scaling history; holding scale-in for one cooldown");
                PolicyState::starting_at(now)
            }
        }
    }

    async fn evaluate_inner(&mut self, now: Timestamp) -> Evaluation {
        let rates = async {
            match &self.rate_source {
                Some(cw) => Some(
                    read_rates(
                        cw,
                        self.queue.queue_name(),
                        self.actuator.fleet(),
                        now.to_system_time(),
                    )
                    .await,
                ),
                None => None,
            }
        };
        let (fleet, queue, rates) =
            futures::join!(self.actuator.current(), self.queue.read(), rates);
        let mut observation = observe(&queue, &fleet);
        if let Observation::Ok(reading) = &mut observation {
            match rates {
                Some(Ok(window)) => {
                    self.measured.update(&window, now);
                }
                Some(Err(err)) => {
                    // The last measurement (or the configured rate) stands in.
                    tracing::warn!(error = %err, "cannot read the measured arrival and service rates");
                }
                None => {}
            }
            reading.measured_arrival_milli = self.measured.arrival_milli();
            reading.measured_sustained_arrival_milli = self.measured.sustained_arrival_milli();
            reading.measured_steady_arrival_milli = self.measured.steady_arrival_milli();
            reading.measured_service_milli = self.measured.service_milli();
            if let (Some(forecast), Some(cw)) = (&mut self.forecast, &self.rate_source) {
                forecast.refresh(cw, self.queue.queue_name(), now).await;
                reading.predicted_arrival_milli = forecast.predict(now, self.config.boot_time);
            }
        }
        // The live group's bounds win over the blueprint's: the loop never asks
        // for a capacity outside what the fleet allows (and never changes it).
        let mut config = self.config.clone();
        if let Ok(f) = &fleet {
            config.min = f.min;
            config.max = f.max;
        }
        if self.state.is_none() {
            self.state = Some(self.initial_state(now).await);
        }
        let state = self
            .state
            .get_or_insert_with(|| PolicyState::starting_at(now));
        let decision = evaluate(&config, state, &observation, now);
        let actuation = match decision.target() {
            None => Actuation::NotNeeded,
            Some(target) => match self.actuator.set_desired(target).await {
                Ok(outcome) => Actuation::Done(outcome),
                Err(err) => {
                    tracing::warn!(error = %err, target, "cannot set desired capacity");
                    Actuation::Failed(err)
                }
            },
        };
        let publication = match (&self.publisher, &fleet) {
            (Some(publisher), Ok(f)) => {
                let desired = match &actuation {
                    Actuation::Done(SetOutcome::Changed { to, .. }) => *to,
                    _ => f.desired,
                };
                let sample = Sample {
                    backlog_per_instance: decision.backlog_per_instance,
                    desired,
                    in_service: f.in_service,
                    // In charge of the fleet: it read both and its capacity call (if any) went
                    // through. Anything less leaves the dead-man's switch armed.
                    heartbeat: matches!(observation, Observation::Ok(_))
                        && !matches!(actuation, Actuation::Failed(_)),
                };
                match publisher.publish(self.actuator.fleet(), &sample).await {
                    Ok(()) => Publication::Published,
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot publish autoscaler metrics");
                        Publication::Failed(err)
                    }
                }
            }
            _ => Publication::Skipped,
        };
        Evaluation {
            policy: self.name.clone(),
            queue: self.queue.queue_name().to_string(),
            fleet: self.actuator.fleet().clone(),
            dry_run: self.dry_run,
            decision,
            actuation,
            publication,
        }
    }

    /// Evaluates every `interval` until `ctx.cancel` fires (or once with
    /// `once`), sending each evaluation to `sink`. The first evaluation runs at
    /// once; a missed tick is delayed, never burst.
    pub async fn run(mut self, ctx: &Context, once: bool, sink: mpsc::UnboundedSender<Evaluation>) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = ctx.cancel.cancelled() => break,
                _ = ticker.tick() => {}
            }
            let now = ctx.clock.now();
            let evaluation = tokio::select! {
                biased;
                () = ctx.cancel.cancelled() => break,
                evaluation = self.evaluate(now) => evaluation,
            };
            if sink.send(evaluation).is_err() || once {
                break;
            }
        }
    }
}

fn observe(
    queue: &Result<QueueDepth, ReadingError>,
    fleet: &Result<FleetCapacity, ActuatorError>,
) -> Observation {
    match (queue, fleet) {
        (Ok(q), Ok(f)) => Observation::Ok(Reading {
            visible: q.visible,
            in_flight: q.in_flight,
            delayed: q.delayed,
            in_service: f.in_service,
            desired: f.desired,
            oldest_message_age: q.oldest_message_age,
            measured_arrival_milli: None,
            measured_sustained_arrival_milli: None,
            measured_steady_arrival_milli: None,
            measured_service_milli: None,
            predicted_arrival_milli: None,
        }),
        (Err(err), Ok(f)) => Observation::Missing {
            reason: err.to_string(),
            current_desired: Some(f.desired),
            in_service: Some(f.in_service),
        },
        (Ok(_), Err(err)) => Observation::Missing {
            reason: err.to_string(),
            current_desired: None,
            in_service: None,
        },
        (Err(queue_err), Err(fleet_err)) => Observation::Missing {
            reason: format!("{queue_err}; {fleet_err}"),
            current_desired: None,
            in_service: None,
        },
    }
}

/// A loop for every scaling policy of `bp` (or only the one named `policy`).
/// `interval` overrides each policy's `evaluationInterval`.
pub fn build_loops(
    ctx: &Context,
    bp: &Blueprint,
    policy: Option<&str>,
    interval: Option<Duration>,
) -> Result<Vec<PolicyLoop>, SetupError> {
    let policies = match policy {
        Some(name) => vec![find_policy(bp, Some(name))?],
        None if bp.spec.scaling_policies.is_empty() => {
            return Err(PolicyLookupError::NotFound(None).into());
        }
        None => bp.spec.scaling_policies.iter().collect(),
    };
    policies
        .into_iter()
        .map(|p| {
            let queue = bp.queue(&p.queue).ok_or_else(|| SetupError::UnknownQueue {
                policy: p.name.clone(),
                queue: p.queue.clone(),
            })?;
            let config = policy_config(bp, p);
            config
                .validate()
                .map_err(|source| SetupError::InvalidConfig {
                    policy: p.name.clone(),
                    source,
                })?;
            let actuator: Box<dyn Actuator> = match (&p.fleet, &p.deployment) {
                (Some(fleet), _) => {
                    let group =
                        bp.auto_scaling_group(fleet)
                            .ok_or_else(|| SetupError::UnknownFleet {
                                policy: p.name.clone(),
                                fleet: fleet.clone(),
                            })?;
                    Box::new(AsgActuator::new(
                        ctx.clients.autoscaling.clone(),
                        bp.group_name(group),
                    ))
                }
                (None, Some(deployment)) => {
                    let client =
                        ctx.clients
                            .kube
                            .clone()
                            .ok_or_else(|| SetupError::NoKubeClient {
                                policy: p.name.clone(),
                            })?;
                    Box::new(DeploymentActuator::new(
                        client,
                        &deployment.namespace,
                        &deployment.name,
                        config.min,
                        config.max,
                    ))
                }
                (None, None) => {
                    return Err(SetupError::NoFleet {
                        policy: p.name.clone(),
                    });
                }
            };
            let interval = interval.unwrap_or_else(|| p.evaluation_interval.std());
            if interval.is_zero() {
                return Err(SetupError::ZeroInterval);
            }
            let cloudwatch = ctx
                .oldest_message_age
                .then(|| ctx.clients.cloudwatch.clone());
            Ok(PolicyLoop::new(
                p.name.clone(),
                config,
                interval,
                QueueSource::new(ctx.clients.sqs.clone(), bp.queue_name(queue), cloudwatch),
                actuator,
                // `management: observe` on the policy: it decides and reports, as a dry run
                // does, and never sets the capacity (an operator is sizing the fleet by hand).
                match p.management {
                    ballast_blueprint::Management::Manage => ctx.mode,
                    ballast_blueprint::Management::Observe => Mode::DryRun,
                },
                ctx.clients.cloudwatch.clone(),
            ))
        })
        .collect()
}

impl PolicyLoop {
    /// A loop for one policy. In [`Mode::DryRun`] the actuator is wrapped in a
    /// [`DryRunActuator`] and no metric publisher is created.
    pub fn new(
        name: String,
        config: PolicyConfig,
        interval: Duration,
        queue: QueueSource,
        actuator: Box<dyn Actuator>,
        mode: Mode,
        cloudwatch: aws_sdk_cloudwatch::Client,
    ) -> Self {
        let rate_source = (config.mode == super::Mode::Queueing).then(|| cloudwatch.clone());
        let forecast = rate_source
            .as_ref()
            .and(config.prediction_days)
            .map(Forecast::new);
        let (actuator, publisher): (Box<dyn Actuator>, _) = match mode {
            Mode::Live => (actuator, Some(MetricPublisher::new(cloudwatch))),
            Mode::DryRun => (Box::new(DryRunActuator::new(actuator)), None),
        };
        PolicyLoop {
            name,
            config,
            interval,
            queue,
            actuator,
            publisher,
            dry_run: mode == Mode::DryRun,
            state: None,
            forecast,
            rate_source,
            measured: MeasuredRates::new(),
        }
    }
}

/// Evaluates every loop once, concurrently, at the context clock's `now`.
pub async fn evaluate_all(ctx: &Context, loops: &mut [PolicyLoop]) -> Vec<Evaluation> {
    let now = ctx.clock.now();
    futures::future::join_all(loops.iter_mut().map(|l| l.evaluate(now))).await
}

/// Runs every loop concurrently until `ctx.cancel` fires (or once each with
/// `once`), sending evaluations to `sink`.
pub async fn run_loops(
    ctx: &Context,
    loops: Vec<PolicyLoop>,
    once: bool,
    sink: mpsc::UnboundedSender<Evaluation>,
) {
    futures::future::join_all(loops.into_iter().map(|l| l.run(ctx, once, sink.clone()))).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballast_aws::AwsErrorKind;

    fn fleet() -> FleetCapacity {
        FleetCapacity {
            desired: 5,
            in_service: 4,
            min: 2,
            max: 10,
        }
    }

    #[test]
    fn failed_queue_read_is_missing_with_the_known_fleet() {
        let err = ReadingError::Aws(AwsError::new(
            AwsErrorKind::Throttled,
            "sqs:GetQueueAttributes",
            Some("Throttling".into()),
            Some("slow down".into()),
            std::io::Error::other("x"),
        ));
        let obs = observe(&Err(err), &Ok(fleet()));
        match obs {
            Observation::Missing {
                reason,
                current_desired,
                in_service,
            } => {
                assert!(reason.contains("sqs:GetQueueAttributes failed: Throttling"));
                assert_eq!((current_desired, in_service), (Some(5), Some(4)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn failed_fleet_read_is_missing_without_a_capacity() {
        let q = QueueDepth {
            visible: 10,
            in_flight: 1,
            delayed: 0,
            oldest_message_age: None,
        };
        let obs = observe(
            &Ok(q),
            &Err(ActuatorError::Read(ReadingError::GroupNotFound("g".into()))),
        );
        assert!(matches!(
            obs,
            Observation::Missing {
                current_desired: None,
                ..
            }
        ));
        let obs = observe(&Ok(q), &Ok(fleet()));
        assert!(matches!(
            obs,
            Observation::Ok(Reading {
                visible: 10,
                in_flight: 1,
                in_service: 4,
                desired: 5,
                ..
            })
        ));
    }

    /// An actuator whose history is fixed; it is never asked to write here.
    #[derive(Debug)]
    struct History(Result<LastActivity, ()>, FleetId);

    impl Actuator for History {
        fn fleet(&self) -> &FleetId {
            &self.1
        }
        fn current(&self) -> futures::future::BoxFuture<'_, Result<FleetCapacity, ActuatorError>> {
            Box::pin(async { Ok(fleet()) })
        }
        fn set_desired(
            &self,
            desired: u32,
        ) -> futures::future::BoxFuture<'_, Result<SetOutcome, ActuatorError>> {
            Box::pin(async move { Ok(SetOutcome::Unchanged { desired }) })
        }
        fn last_activity(
            &self,
        ) -> futures::future::BoxFuture<'_, Result<LastActivity, ActuatorError>> {
            let answer = self.0;
            Box::pin(async move {
                answer.map_err(|()| ActuatorError::Read(ReadingError::GroupNotFound("g".into())))
            })
        }
    }

    fn policy_loop(history: Result<LastActivity, ()>) -> PolicyLoop {
        let conf = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .build();
        let cw = aws_sdk_cloudwatch::Config::builder()
            .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
            .build();
        PolicyLoop::new(
            "p".into(),
            PolicyConfig::default(),
            Duration::from_secs(10),
            QueueSource::new(aws_sdk_sqs::Client::from_conf(conf), "q", None),
            Box::new(History(
                history,
                FleetId::AutoScalingGroup { name: "g".into() },
            )),
            Mode::DryRun,
            aws_sdk_cloudwatch::Client::from_conf(cw),
        )
    }

    #[tokio::test]
    async fn the_first_state_comes_from_the_fleets_history() {
        let now = Timestamp::from_secs(10_000);
        // Seed scenario 4 with `--once`: no activity in the group's history, so
        // the scale-in is not held by a cooldown that never started.
        let state = policy_loop(Ok(LastActivity::Never))
            .initial_state(now)
            .await;
        assert_eq!(state.last_action, None);
        // An action 100 s ago: the cooldown runs from then, not from the start.
        let at = Timestamp::from_secs(9_900);
        let state = policy_loop(Ok(LastActivity::At(at)))
            .initial_state(now)
            .await;
        assert_eq!(state.last_action, Some(at));
        // A clock-skewed activity "in the future" counts as now.
        let later = Timestamp::from_secs(20_000);
        let state = policy_loop(Ok(LastActivity::At(later)))
            .initial_state(now)
            .await;
        assert_eq!(state.last_action, Some(now));
        // Unknown or unreadable history: conservative, now is the last action.
        for history in [Ok(LastActivity::Unknown), Err(())] {
            let state = policy_loop(history).initial_state(now).await;
            assert_eq!(state.last_action, Some(now));
        }
    }

    #[tokio::test]
    async fn scenario_4_holds_the_scale_in_only_for_the_rest_of_a_recent_cooldown() {
        let now = Timestamp::from_secs(10_000);
        let mut l = policy_loop(Ok(LastActivity::At(Timestamp::from_secs(9_800))));
        let state = l.initial_state(now).await;
        l.state = Some(state);
        let config = PolicyConfig::default();
        let ten = Observation::Ok(Reading {
            visible: 10,
            in_flight: 0,
            delayed: 0,
            in_service: 5,
            desired: 5,
            oldest_message_age: None,
            measured_arrival_milli: None,
            measured_sustained_arrival_milli: None,
            measured_steady_arrival_milli: None,
            measured_service_milli: None,
            predicted_arrival_milli: None,
        });
        let state = l.state.as_mut().unwrap();
        let d = evaluate(&config, state, &ten, now);
        assert!(
            d.reason.contains("cooldown 300s, 200s since last action"),
            "{}",
            d.reason
        );
        let d = evaluate(&config, state, &ten, now + Duration::from_secs(100));
        assert_eq!(
            d.action,
            crate::autoscale::Action::ScaleIn { from: 5, to: 2 },
            "{}",
            d.reason
        );
    }
}
