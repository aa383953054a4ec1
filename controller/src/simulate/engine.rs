//! The discrete-time queue + fleet simulator (1-second steps).

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use serde::Serialize;

use super::policies::{Datapoint, Observed, SimPolicy};
use super::rng::Rng;
use super::trace::Trace;
use crate::autoscale::policy::{PolicyConfig, Reading, Timestamp};

/// Simulation parameters. [`SimConfig::default`] matches the seed
/// blueprint: 5 messages/s per instance, 10 messages in flight per
/// instance, 90 s boot, 2–10 instances starting at 2, 60 s CloudWatch
/// period published 60 s after it closes, SQS counts seen 10 s late,
/// alarm on oldest message > 300 s, deterministic arrivals and service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimConfig {
    /// Messages processed per second by one InService instance, in
    /// milli-messages (5000 = 5 messages/s).
    pub service_rate_milli: u64,
    /// Messages one instance holds in flight (received, not yet deleted).
    pub concurrency: u32,
    /// Time from launch to InService.
    pub boot_delay: Duration,
    /// Instances InService at t = 0 (clamped into `[min, max]`).
    pub initial_capacity: u32,
    /// Messages already visible at t = 0 (they count as arrived at t = 0).
    pub initial_backlog: u64,
    /// Group minimum: the simulator clamps every request into `[min, max]`,
    /// as the Auto Scaling group does.
    pub min: u32,
    /// Group maximum.
    pub max: u32,
    /// CloudWatch datapoint period for the published metrics.
    pub metric_period: Duration,
    /// Extra delay before a datapoint becomes visible to alarms, after the
    /// end of its period. CloudWatch publishes SQS metrics a minute or more
    /// after the minute closes; the default is 60 s.
    pub metric_delay: Duration,
    /// Age of the `GetQueueAttributes` counts every policy sees: SQS's
    /// approximate counts are eventually consistent, so a policy sees the
    /// queue as it was this long ago (the group's own counts are current).
    pub count_lag: Duration,
    /// Seed of the random streams (arrivals, service, boot); the same seed
    /// gives the same run.
    pub seed: u64,
    /// Arrivals in each second are a Poisson draw with the trace's rate as
    /// mean, instead of the deterministic rate with carried fractions.
    pub poisson_arrivals: bool,
    /// How long one message takes to process.
    pub processing: ProcessingTime,
    /// Each launched instance boots in `boot_delay` plus a uniform draw in
    /// `[0, boot_spread]`.
    pub boot_spread: Duration,
    /// Oldest-message age above which the alarm fires.
    pub alarm_age: Duration,
    /// Visible messages above which the queue's depth alarm fires (the seed's `QueueDepth`:
    /// more than 1,000); `None` when the queue has no depth alarm.
    pub depth_alarm: Option<u64>,
    /// Queue visibility timeout; [`SimConfig::validate`] checks the
    /// time a message spends in flight stays below it (no redelivery).
    pub visibility_timeout: Duration,
    /// Period of the [`SeriesPoint`] samples.
    pub sample_every: Duration,
    /// How long to keep simulating after the trace ends while messages
    /// remain (arrivals are 0 then).
    pub drain_limit: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            service_rate_milli: 5000,
            concurrency: 10,
            boot_delay: Duration::from_secs(90),
            initial_capacity: 2,
            initial_backlog: 0,
            min: 2,
            max: 10,
            metric_period: Duration::from_secs(60),
            metric_delay: Duration::from_secs(60),
            count_lag: Duration::from_secs(10),
            seed: 1,
            poisson_arrivals: false,
            processing: ProcessingTime::Fixed,
            boot_spread: Duration::ZERO,
            alarm_age: Duration::from_secs(300),
            depth_alarm: Some(PolicyConfig::SEED_QUEUE_DEPTH_ALARM),
            visibility_timeout: Duration::from_secs(60),
            sample_every: Duration::from_secs(10),
            drain_limit: Duration::from_secs(3 * 3600),
        }
    }
}

/// The per-message processing-time distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ProcessingTime {
    /// Every message takes `1 ÷ service rate` instance-seconds: a busy
    /// instance completes exactly its service rate each second.
    #[default]
    Fixed,
    /// Exponentially distributed times with the same mean: a busy fleet's
    /// completions in a second are a Poisson draw (mean: in service ×
    /// service rate), so throughput is noisy.
    Exponential,
}

/// Why a [`SimConfig`] cannot be simulated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimConfigError {
    #[error("service_rate_milli must be at least 1")]
    ZeroServiceRate,
    #[error("concurrency must be at least 1")]
    ZeroConcurrency,
    #[error("min ({min}) must be at most max ({max}) and max at least 1")]
    Bounds { min: u32, max: u32 },
    #[error("metric_period and sample_every must be at least 1 s")]
    ZeroPeriod,
    #[error(
        "a message waits concurrency/service rate = {in_flight_secs:.1} s in flight, \
         not below the visibility timeout {visibility_secs} s: messages would be redelivered"
    )]
    VisibilityTimeout {
        in_flight_secs: f64,
        visibility_secs: u64,
    },
}

impl SimConfig {
    /// Checks the parameters; [`super::run_simulation`] calls this.
    pub fn validate(&self) -> Result<(), SimConfigError> {
        if self.service_rate_milli == 0 {
            return Err(SimConfigError::ZeroServiceRate);
        }
        if self.concurrency == 0 {
            return Err(SimConfigError::ZeroConcurrency);
        }
        if self.min > self.max || self.max == 0 {
            return Err(SimConfigError::Bounds {
                min: self.min,
                max: self.max,
            });
        }
        if self.metric_period.as_secs() == 0 || self.sample_every.as_secs() == 0 {
            return Err(SimConfigError::ZeroPeriod);
        }
        let in_flight_secs = f64::from(self.concurrency) * 1000.0 / self.service_rate_milli as f64;
        if in_flight_secs >= self.visibility_timeout.as_secs_f64() {
            return Err(SimConfigError::VisibilityTimeout {
                in_flight_secs,
                visibility_secs: self.visibility_timeout.as_secs(),
            });
        }
        Ok(())
    }

    /// Messages per second per instance.
    pub fn service_rate(&self) -> f64 {
        self.service_rate_milli as f64 / 1000.0
    }
}

/// One sample of the simulated system (end of second `t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SeriesPoint {
    pub t: u64,
    /// `ApproximateNumberOfMessages`.
    pub visible: u64,
    /// `ApproximateNumberOfMessagesNotVisible`.
    pub in_flight: u64,
    pub in_service: u32,
    /// Instances running, booting ones included.
    pub running: u32,
    pub desired: u32,
    /// Age of the oldest message in the queue (visible or in flight), s.
    pub oldest_age_secs: u64,
    /// Messages arrived since the start (cumulative; the plot's arrival rate
    /// is its change between samples).
    pub arrived: u64,
}

/// One change of the desired capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ScalingEvent {
    pub t: u64,
    pub from: u32,
    pub to: u32,
}

/// Summary of one policy over one trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimReport {
    pub policy: String,
    pub trace_secs: u64,
    /// Seconds simulated: the trace plus the drain after it.
    pub simulated_secs: u64,
    pub arrived: u64,
    pub processed: u64,
    /// Messages still queued when the simulation stopped (0 unless the
    /// drain limit was hit).
    pub unprocessed: u64,
    pub max_oldest_age_secs: u64,
    /// 99th percentile (nearest rank) of the per-second oldest-message age.
    pub p99_oldest_age_secs: u64,
    /// Simulated minutes in which the oldest message was older than the
    /// alarm age at some second.
    pub minutes_over_alarm: u64,
    /// Simulated minutes in which the visible messages passed the depth alarm's threshold at
    /// some second: the minutes its one-minute `Maximum` would page in, counted from every
    /// second (SQS samples its count less often, so this errs towards paging).
    pub minutes_over_depth_alarm: u64,
    /// Σ running instances (booting included) per second ÷ 3600.
    pub instance_hours: f64,
    /// Throughput lower bound on instance-hours (see the module docs).
    pub lower_bound_instance_hours: f64,
    /// Clairvoyant bound at this policy's own worst age: the fewest
    /// instance-hours with which an all-knowing fleet keeps every message
    /// at most `max_oldest_age_secs` old (see [`clairvoyant_bound`]).
    pub clairvoyant_instance_hours: f64,
    pub scaling_actions: u32,
    pub max_running: u32,
    /// The whole-instance bound at this policy's own worst age, when asked
    /// for ([`super::add_whole_instance_bounds`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whole_instance: Option<WholeInstanceRow>,
}

/// The whole-instance bound of one policy's run (see [`super::whole_instance_bound`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WholeInstanceRow {
    /// The action budget the bound was computed for, if any.
    pub max_actions: Option<u32>,
    /// For the reactive bound ([`super::whole_instance::reactive_bound`]): how long after an
    /// overload second a launch counts as reacting to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reactive_within_secs: Option<u64>,
    /// For the reactive bound: the policy's launches outside those windows. The bound applies
    /// to the run only when there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launches_outside: Option<usize>,
    /// For the reactive bound with a cooldown: how long after any launch or termination no
    /// instance leaves service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cooldown_secs: Option<u64>,
    /// With a cooldown: the policy's scale-ins within it. The bound applies to the run only
    /// when there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_ins_within_cooldown: Option<usize>,
    /// `None` when no fleet keeps this policy's worst age within the budget, or when the run
    /// launched outside the reactive windows or scaled in within the cooldown.
    pub instance_hours: Option<f64>,
}

/// The outcome of simulating one policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimResult {
    pub report: SimReport,
    pub series: Vec<SeriesPoint>,
    pub actions: Vec<ScalingEvent>,
    /// Messages arrived in each second of the trace (the initial backlog
    /// counts at second 0); the same for every policy of one run.
    #[serde(skip)]
    pub arrivals: Vec<u64>,
    /// The oldest message's age at the end of each simulated second.
    #[serde(skip)]
    pub ages: Vec<u64>,
}

/// FIFO of (arrival second, count) buckets.
#[derive(Debug, Default)]
struct Fifo {
    buckets: VecDeque<(u64, u64)>,
    total: u64,
}

impl Fifo {
    fn push_back(&mut self, at: u64, n: u64) {
        if n == 0 {
            return;
        }
        match self.buckets.back_mut() {
            Some(last) if last.0 == at => last.1 += n,
            _ => self.buckets.push_back((at, n)),
        }
        self.total += n;
    }

    fn push_front(&mut self, at: u64, n: u64) {
        if n == 0 {
            return;
        }
        match self.buckets.front_mut() {
            Some(first) if first.0 == at => first.1 += n,
            _ => self.buckets.push_front((at, n)),
        }
        self.total += n;
    }

    /// Removes up to `n` of the oldest messages, calling `sink` per bucket.
    fn pop_front(&mut self, mut n: u64, mut sink: impl FnMut(u64, u64)) {
        while n > 0 {
            let Some(front) = self.buckets.front_mut() else {
                break;
            };
            let take = n.min(front.1);
            sink(front.0, take);
            front.1 -= take;
            self.total -= take;
            n -= take;
            if front.1 == 0 {
                self.buckets.pop_front();
            }
        }
    }

    /// Removes up to `n` of the newest messages, calling `sink` per bucket
    /// (newest first).
    fn pop_back(&mut self, mut n: u64, mut sink: impl FnMut(u64, u64)) {
        while n > 0 {
            let Some(back) = self.buckets.back_mut() else {
                break;
            };
            let take = n.min(back.1);
            sink(back.0, take);
            back.1 -= take;
            self.total -= take;
            n -= take;
            if back.1 == 0 {
                self.buckets.pop_back();
            }
        }
    }

    fn oldest(&self) -> Option<u64> {
        self.buckets.front().map(|b| b.0)
    }
}

/// What the queue looked like at the end of one second (for the lagged view).
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    visible: u64,
    in_flight: u64,
    age: u64,
}

/// Simulates one policy over the trace.
pub(crate) fn simulate(trace: &Trace, sim: &SimConfig, policy: &mut dyn SimPolicy) -> SimResult {
    let (min, max) = (sim.min, sim.max.max(sim.min));
    let boot = sim.boot_delay.as_secs();
    let spread = sim.boot_spread.as_secs();
    let interval = policy.interval().as_secs().max(1);
    let period = sim.metric_period.as_secs().max(1);
    let sample_every = sim.sample_every.as_secs().max(1);
    let trace_end = trace.duration_secs();
    let hard_end = trace_end.saturating_add(sim.drain_limit.as_secs());
    let concurrency = u64::from(sim.concurrency.max(1));
    let alarm = sim.alarm_age.as_secs();
    let lag = sim.count_lag.as_secs();
    // Independent streams: the arrivals never depend on the policy.
    let mut arrival_rng = Rng::new(sim.seed, 1);
    let mut service_rng = Rng::new(sim.seed, 2);
    let mut boot_rng = Rng::new(sim.seed, 3);

    // Ready times of running instances, ascending; newest (booting) last.
    let mut fleet: Vec<u64> = vec![0; sim.initial_capacity.clamp(min, max) as usize];
    let mut desired = fleet.len() as u32;
    let mut visible = Fifo::default();
    let mut in_flight = Fifo::default();
    visible.push_back(0, sim.initial_backlog);

    let mut arrival_credit: u64 = 0;
    let mut service_credit: u64 = 0;
    let mut arrived = sim.initial_backlog;
    let mut arrivals: Vec<u64> = Vec::with_capacity(usize::try_from(trace_end).unwrap_or(0));
    let mut processed: u64 = 0;
    let mut ages: Vec<u64> = Vec::new();
    let mut alarm_minutes: BTreeSet<u64> = BTreeSet::new();
    let mut depth_minutes: BTreeSet<u64> = BTreeSet::new();
    let mut instance_seconds: u64 = 0;
    let mut max_running: u32 = desired;
    let mut series = Vec::new();
    let mut actions = Vec::new();
    let mut datapoints: Vec<Datapoint> = Vec::new();
    let mut published = 0usize;
    let (mut period_visible, mut period_in_service) = (0u128, 0u128);
    let (mut period_sent, mut period_processed) = (0u64, 0u64);
    // The view `count_lag` old: before the run's start, the queue as it started (nothing
    // processed, nothing in flight), so the first readings are as old as every other.
    let mut history: VecDeque<Snapshot> = std::iter::repeat_n(
        Snapshot {
            visible: sim.initial_backlog,
            in_flight: 0,
            age: 0,
        },
        usize::try_from(lag).unwrap_or(0),
    )
    .collect();

    let mut t: u64 = 0;
    loop {
        let in_service = fleet.partition_point(|&ready| ready <= t) as u64;

        // Arrivals (whole messages; fractions carry over, or a Poisson draw).
        if t < trace_end {
            let rate = trace.rate_milli_at(t);
            let n = if sim.poisson_arrivals {
                arrival_rng.poisson(rate as f64 / 1000.0)
            } else {
                arrival_credit += rate;
                let n = arrival_credit / 1000;
                arrival_credit %= 1000;
                n
            };
            visible.push_back(t, n);
            arrived += n;
            period_sent += n;
            let initial = if t == 0 { sim.initial_backlog } else { 0 };
            arrivals.push(n + initial);
        }

        // Workers receive into free slots, then process.
        let free = (in_service * concurrency).saturating_sub(in_flight.total);
        visible.pop_front(free, |at, n| in_flight.push_back(at, n));
        let done = match sim.processing {
            ProcessingTime::Fixed => {
                service_credit += in_service * sim.service_rate_milli;
                let done = (service_credit / 1000).min(in_flight.total);
                service_credit -= done * 1000;
                if in_flight.total == done {
                    // Idle capacity is lost, only the fraction of a message carries.
                    service_credit = service_credit.min(999);
                }
                done
            }
            ProcessingTime::Exponential => {
                let mean = (in_service * sim.service_rate_milli) as f64 / 1000.0;
                service_rng.poisson(mean).min(in_flight.total)
            }
        };
        in_flight.pop_front(done, |_, _| {});
        processed += done;
        period_processed += done;

        // Measurements at the end of second t.
        let oldest = in_flight.oldest().or(visible.oldest());
        let age = oldest.map_or(0, |at| t - at);
        ages.push(age);
        if age > alarm {
            alarm_minutes.insert(t / 60);
        }
        if sim
            .depth_alarm
            .is_some_and(|threshold| visible.total > threshold)
        {
            depth_minutes.insert(t / 60);
        }
        let running = fleet.len() as u32;
        instance_seconds += u64::from(running);
        max_running = max_running.max(running);

        period_visible += u128::from(visible.total);
        period_in_service += u128::from(in_service);
        if (t + 1).is_multiple_of(period) {
            let n = period as f64;
            let visible_avg = period_visible as f64 / n;
            let in_service_avg = period_in_service as f64 / n;
            datapoints.push(Datapoint {
                period_start_secs: t + 1 - period,
                period_secs: period,
                available_at_secs: t + 1 + sim.metric_delay.as_secs(),
                visible_avg,
                in_service_avg,
                backlog_per_instance: visible_avg / in_service_avg.max(1.0),
                sent: period_sent,
                processed: period_processed,
                // One report a minute from each worker in service.
                worker_minutes: u64::try_from((period_in_service + 30) / 60).unwrap_or(u64::MAX),
                visible_at_end: visible.total,
            });
            (period_visible, period_in_service) = (0, 0);
            (period_sent, period_processed) = (0, 0);
        }
        while datapoints
            .get(published)
            .is_some_and(|d| d.available_at_secs <= t)
        {
            published += 1;
        }
        history.push_back(Snapshot {
            visible: visible.total,
            in_flight: in_flight.total,
            age,
        });
        while history.len() as u64 > lag + 1 {
            history.pop_front();
        }

        let point = SeriesPoint {
            t,
            visible: visible.total,
            in_flight: in_flight.total,
            in_service: in_service as u32,
            running,
            desired,
            oldest_age_secs: age,
            arrived,
        };

        // The policy decides on the queue as SQS reports it (`count_lag` old)
        // and the group as it is now; launches start booting now.
        if t.is_multiple_of(interval) {
            let seen = history.front().copied().unwrap_or(Snapshot {
                visible: 0,
                in_flight: 0,
                age: 0,
            });
            let metrics = Reading {
                visible: seen.visible,
                in_flight: seen.in_flight,
                delayed: 0,
                in_service: in_service as u32,
                desired,
                oldest_message_age: Some(Duration::from_secs(seen.age)),
                measured_arrival_milli: None,
                measured_sustained_arrival_milli: None,
                measured_steady_arrival_milli: None,
                measured_service_milli: None,
                predicted_arrival_milli: None,
            };
            let observed = Observed {
                metrics: &metrics,
                // `published` only counts datapoints that exist.
                datapoints: datapoints.get(..published).unwrap_or_default(),
            };
            if let Some(wanted) = policy.decide(Timestamp::from_secs(t), &observed) {
                let to = wanted.clamp(min, max);
                if to != desired {
                    actions.push(ScalingEvent {
                        t,
                        from: desired,
                        to,
                    });
                    desired = to;
                    resize(&mut fleet, desired, || t + boot + boot_rng.up_to(spread));
                    // In-flight messages of terminated instances go back to
                    // the head of the queue (drained by a lifecycle hook).
                    let in_service = fleet.partition_point(|&ready| ready <= t) as u64;
                    let excess = in_flight.total.saturating_sub(in_service * concurrency);
                    in_flight.pop_back(excess, |at, n| visible.push_front(at, n));
                }
            }
        }

        let last =
            t + 1 >= trace_end && (visible.total + in_flight.total == 0 || t + 1 >= hard_end);
        if t.is_multiple_of(sample_every) || last {
            series.push(point);
        }
        t += 1;
        if last {
            break;
        }
    }

    let simulated_secs = t;
    let max_age = ages.iter().copied().max().unwrap_or(0);
    let per_second = ages.clone();
    ages.sort_unstable();
    let rank = (ages.len() * 99).div_ceil(100).max(1);
    let p99 = ages.get(rank - 1).copied().unwrap_or(0);
    let work_secs =
        (u128::from(arrived) * 1000).div_ceil(u128::from(sim.service_rate_milli.max(1)));
    let floor_secs = u128::from(min) * u128::from(trace_end);
    let lower_bound_secs = work_secs.max(floor_secs);
    let clairvoyant = clairvoyant_bound(&arrivals, min, sim.service_rate_milli, max_age);

    SimResult {
        report: SimReport {
            policy: policy.name().to_string(),
            trace_secs: trace_end,
            simulated_secs,
            arrived,
            processed,
            unprocessed: visible.total + in_flight.total,
            max_oldest_age_secs: max_age,
            p99_oldest_age_secs: p99,
            minutes_over_alarm: alarm_minutes.len() as u64,
            minutes_over_depth_alarm: depth_minutes.len() as u64,
            instance_hours: instance_seconds as f64 / 3600.0,
            lower_bound_instance_hours: lower_bound_secs as f64 / 3600.0,
            clairvoyant_instance_hours: clairvoyant.instance_seconds / 3600.0,
            scaling_actions: actions.len() as u32,
            max_running,
            whole_instance: None,
        },
        series,
        actions,
        arrivals,
        ages: per_second,
    }
}

/// Launches (each ready at `ready_at()`) or terminates (latest-ready first)
/// instances; the fleet stays sorted by ready time.
fn resize(fleet: &mut Vec<u64>, desired: u32, mut ready_at: impl FnMut() -> u64) {
    let desired = desired as usize;
    if desired > fleet.len() {
        while fleet.len() < desired {
            fleet.push(ready_at());
        }
        fleet.sort_unstable();
    } else {
        fleet.truncate(desired);
    }
}

/// The clairvoyant bound of one trace at one age.
#[derive(Debug, Clone, PartialEq)]
pub struct Clairvoyant {
    /// `min × trace seconds + extra work ÷ service rate`.
    pub instance_seconds: f64,
    /// The capacity the bound uses in each second: `min` plus the extra
    /// instance-seconds spent that second (fractional).
    pub capacity: Vec<f64>,
}

/// The fewest instance-seconds with which an all-knowing fleet keeps every
/// message at most `age_secs` old, as a fluid relaxation: the group's
/// minimum runs for the whole trace, works on the oldest messages at
/// `min × service rate` per second (work-conserving, earliest deadline
/// first, which maximises what it finishes in time), and any message still
/// unfinished when it reaches `age_secs` is done at that instant by extra
/// capacity costing `1 ÷ service rate` instance-seconds per message, with
/// no boot time and no granularity. Work left when the trace ends counts as
/// extra too (the minimum fleet is only counted for the trace).
///
/// It is a lower bound for any policy whose worst age is `age_secs` and
/// that runs at least `min` instances: such a policy's fleet has to finish
/// the same work by the same deadlines, and the minimum fleet already does
/// all it can.
pub fn clairvoyant_bound(
    arrivals: &[u64],
    min: u32,
    service_rate_milli: u64,
    age_secs: u64,
) -> Clairvoyant {
    let rate = service_rate_milli.max(1) as f64 / 1000.0;
    let base = f64::from(min) * rate;
    let mut queue: VecDeque<(u64, f64)> = VecDeque::new();
    let mut capacity = Vec::with_capacity(arrivals.len());
    let mut extra_total = 0.0;
    for (t, &n) in (0u64..).zip(arrivals) {
        if n > 0 {
            queue.push_back((t, n as f64));
        }
        let mut budget = base;
        while budget > 0.0 {
            let Some(front) = queue.front_mut() else {
                break;
            };
            let take = front.1.min(budget);
            front.1 -= take;
            budget -= take;
            if front.1 <= 1e-9 {
                queue.pop_front();
            }
        }
        let mut extra = 0.0;
        // Ages are whole seconds measured at the end of each second, so a
        // message that arrived in second `at` still has age `age_secs` at the
        // end of second `at + age_secs` and may be finished in the next one.
        while queue
            .front()
            .is_some_and(|&(at, _)| at.saturating_add(age_secs).saturating_add(1) <= t)
        {
            extra += queue.pop_front().map_or(0.0, |(_, n)| n);
        }
        extra_total += extra;
        capacity.push(f64::from(min) + extra / rate);
    }
    let leftover: f64 = queue.iter().map(|(_, n)| n).sum();
    extra_total += leftover;
    if let Some(last) = capacity.last_mut() {
        *last += leftover / rate;
    }
    Clairvoyant {
        instance_seconds: f64::from(min) * arrivals.len() as f64 + extra_total / rate,
        capacity,
    }
}
