use super::*;
use crate::autoscale::policy::PolicyConfig;

const SHIPPED: [(&str, &str); 7] = [
    (
        "normal",
        include_str!("../../../blueprints/traces/normal.csv"),
    ),
    ("peak", include_str!("../../../blueprints/traces/peak.csv")),
    (
        "month-end",
        include_str!("../../../blueprints/traces/month-end.csv"),
    ),
    (
        "off-peak",
        include_str!("../../../blueprints/traces/off-peak.csv"),
    ),
    (
        "business-day",
        include_str!("../../../blueprints/traces/business-day.csv"),
    ),
    ("ramp", include_str!("../../../blueprints/traces/ramp.csv")),
    (
        "spiky",
        include_str!("../../../blueprints/traces/spiky.csv"),
    ),
];

fn shipped(name: &str) -> Trace {
    let text = SHIPPED.iter().find(|(n, _)| *n == name).unwrap().1;
    Trace::parse(text).unwrap()
}

fn run_defaults(trace: &Trace, sim: &SimConfig) -> Vec<SimResult> {
    run_simulation(trace, sim, default_policies(&PolicyConfig::default())).unwrap()
}

fn ballast_only(trace: &Trace, sim: &SimConfig) -> SimResult {
    let policy = BallastPolicy::new(PolicyConfig::default(), BallastPolicy::DEFAULT_INTERVAL);
    run_simulation(trace, sim, vec![Box::new(policy)])
        .unwrap()
        .remove(0)
}

fn report<'a>(results: &'a [SimResult], policy: &str) -> &'a SimReport {
    &results
        .iter()
        .find(|r| r.report.policy == policy)
        .unwrap()
        .report
}

/// The traces issue #15's goals are measured on: the shipped ones, then the held-out ones.
fn goal_traces() -> impl Iterator<Item = (&'static str, Trace)> {
    SHIPPED
        .iter()
        .map(|(name, _)| (*name, shipped(name)))
        .chain(held_out().map(|(name, _, trace)| (name, trace)))
}

/// The traces whose spikes the reacting policies cannot meet within the bound.
fn has_spikes(name: &str) -> bool {
    name == "spiky" || name.starts_with("spike-train")
}

/// The peer models of one run (target tracking, HPA, KEDA) and the best worst age and
/// instance-hours among them, which issue #15's age and instance-hour goals compare with.
struct Peers<'a> {
    reports: [&'a SimReport; 3],
    best_age: u64,
    best_hours: f64,
}

impl Peers<'_> {
    /// The goals every trace meets: no minute over 300 s, the worst age within 1.1 × the best
    /// peer's, instance-hours at most the best peer's. `at` names the run in a failure.
    fn assert_age_and_cost_goals(&self, q: &SimReport, at: &str) {
        assert_eq!(q.minutes_over_alarm, 0, "{at}");
        assert!(q.max_oldest_age_secs * 10 <= self.best_age * 11, "{at}");
        assert!(q.instance_hours <= self.best_hours, "{at}");
    }

    /// The depth alarm (not one of the issue's goals, but the pager): no more minutes over it
    /// than any peer.
    fn assert_pages_no_more(&self, q: &SimReport, at: &str) {
        for other in self.reports {
            assert!(
                q.minutes_over_depth_alarm <= other.minutes_over_depth_alarm,
                "{}: {at}",
                other.policy
            );
        }
    }
}

fn peers(results: &[SimResult]) -> Peers<'_> {
    let reports = ["target-tracking", "hpa", "keda"].map(|p| report(results, p));
    Peers {
        best_age: reports.iter().map(|r| r.max_oldest_age_secs).min().unwrap(),
        best_hours: reports
            .iter()
            .map(|r| r.instance_hours)
            .fold(f64::MAX, f64::min),
        reports,
    }
}

#[test]
fn shipped_traces_parse() {
    for (name, text) in SHIPPED {
        let trace = Trace::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(trace.duration_secs() >= 3600, "{name}");
        // No trace asks for more than the fleet maximum can do (10 x 5/s).
        assert!(trace.peak_rate_milli() < 50_000, "{name}");
    }
}

#[test]
fn default_sim_config_is_valid_and_consistent_with_the_seed() {
    let sim = SimConfig::default();
    assert_eq!(sim.validate(), Ok(()));
    let policy = PolicyConfig::default();
    assert_eq!((sim.min, sim.max), (policy.min, policy.max));
    let bad = SimConfig {
        concurrency: 400,
        ..SimConfig::default()
    };
    assert!(matches!(
        bad.validate(),
        Err(SimConfigError::VisibilityTimeout { .. })
    ));
}

#[test]
fn simulation_is_deterministic() {
    let trace = shipped("business-day");
    let sim = SimConfig::default();
    let a = serde_json::to_string(&run_defaults(&trace, &sim)).unwrap();
    let b = serde_json::to_string(&run_defaults(&trace, &sim)).unwrap();
    assert_eq!(a, b);
}

#[test]
fn every_message_is_processed_and_the_lower_bound_holds() {
    let sim = SimConfig::default();
    for (name, _) in SHIPPED {
        let trace = shipped(name);
        for result in run_defaults(&trace, &sim) {
            let r = &result.report;
            assert_eq!(r.arrived, trace.total_messages(), "{name} {}", r.policy);
            assert_eq!(r.processed, r.arrived, "{name} {}", r.policy);
            assert_eq!(r.unprocessed, 0, "{name} {}", r.policy);
            assert!(r.simulated_secs >= r.trace_secs);
            assert!(
                r.instance_hours >= r.lower_bound_instance_hours,
                "{name} {}: {} < {}",
                r.policy,
                r.instance_hours,
                r.lower_bound_instance_hours
            );
            let last = result.series.last().unwrap();
            assert_eq!(last.t + 1, r.simulated_secs);
            assert_eq!(last.visible + last.in_flight, 0);
        }
    }
}

#[test]
fn a_policy_that_never_scales_still_drains_eventually() {
    let trace = shipped("peak");
    let r = run_simulation(&trace, &SimConfig::default(), vec![Box::new(Never)])
        .unwrap()
        .remove(0);
    assert_eq!(r.report.processed, trace.total_messages());
    assert!(r.report.simulated_secs > trace.duration_secs());
    assert_eq!(r.report.scaling_actions, 0);
    assert!(r.report.minutes_over_alarm > 0);
    // Two instances all the time: exactly the floor.
    assert!(r.report.instance_hours >= 2.0);
}

/// A fleet that never scales.
struct Never;

impl SimPolicy for Never {
    fn name(&self) -> &str {
        "never"
    }
    fn interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(60)
    }
    fn decide(&mut self, _: crate::autoscale::Timestamp, _: &Observed<'_>) -> Option<u32> {
        None
    }
}

#[test]
fn the_depth_alarm_counts_every_minute_the_backlog_passes_it() {
    // 30 msg/s for 3 minutes against 2 instances (10 msg/s, 20 slots): at the end of second t
    // the queue shows 10 + 20 t visible (20 went in flight at once, 10 a second after), 3,590
    // when arrivals stop at t = 179, then 10 fewer each second.
    let trace = Trace::new(
        vec![Segment {
            start_secs: 0,
            rate_milli: 30_000,
        }],
        180,
    )
    .unwrap();
    let minutes = |depth_alarm| {
        let sim = SimConfig {
            depth_alarm,
            ..SimConfig::default()
        };
        run_simulation(&trace, &sim, vec![Box::new(Never)])
            .unwrap()
            .remove(0)
            .report
            .minutes_over_depth_alarm
    };
    // Above 1,000 from t = 50 (1,010) to t = 437 (1,010 again): minutes 0 to 7.
    assert_eq!(minutes(Some(1000)), 8);
    // Above 3,000 from t = 150 to t = 237: minutes 2 and 3.
    assert_eq!(minutes(Some(3000)), 2);
    // Above 3,580 only at t = 179 (3,590, minute 2; t = 180 shows 3,580); never above 3,590.
    assert_eq!(minutes(Some(3580)), 1);
    assert_eq!(minutes(Some(3590)), 0);
    assert_eq!(minutes(None), 0);
}

#[test]
fn seed_50_messages_with_2_instances_stays_at_2() {
    let sim = SimConfig {
        initial_backlog: 50,
        ..SimConfig::default()
    };
    let r = ballast_only(&shipped("normal"), &sim);
    assert_eq!(r.actions, vec![], "{:?}", r.actions);
    assert!(r.series.iter().all(|p| p.desired == 2));
    // The bursts leave about 50 messages visible.
    let peak_visible = r.series.iter().map(|p| p.visible).max().unwrap();
    assert!((30..=100).contains(&peak_visible), "{peak_visible}");
}

#[test]
fn seed_500_messages_with_2_instances_scales_to_5() {
    let sim = SimConfig {
        initial_backlog: 500,
        ..SimConfig::default()
    };
    let r = ballast_only(&Trace::constant(0, 900), &sim);
    assert_eq!(
        r.actions[0],
        ScalingEvent {
            t: 0,
            from: 2,
            to: 5
        }
    );
}

#[test]
fn seed_2000_messages_with_5_instances_scales_to_10() {
    let sim = SimConfig {
        initial_backlog: 2000,
        initial_capacity: 5,
        ..SimConfig::default()
    };
    let r = ballast_only(&Trace::constant(0, 900), &sim);
    assert_eq!(
        r.actions[0],
        ScalingEvent {
            t: 0,
            from: 5,
            to: 10
        }
    );
    assert_eq!(r.report.max_running, 10);
}

#[test]
fn seed_10_messages_with_5_instances_scales_to_2_after_cooldown() {
    let sim = SimConfig {
        initial_backlog: 10,
        initial_capacity: 5,
        ..SimConfig::default()
    };
    let r = ballast_only(&Trace::constant(0, 1200), &sim);
    assert_eq!(
        r.actions,
        vec![ScalingEvent {
            t: 300,
            from: 5,
            to: 2
        }]
    );
}

#[test]
fn off_peak_returns_to_min_only_after_the_cooldown() {
    let r = ballast_only(&shipped("off-peak"), &SimConfig::default());
    let last = r.actions.last().unwrap();
    assert_eq!(last.to, 2, "{:?}", r.actions);
    for pair in r.actions.windows(2) {
        if pair[1].to < pair[1].from {
            assert!(pair[1].t - pair[0].t >= 300, "{:?}", r.actions);
        }
    }
    // The drop happens at 1200 s; the return to 2 comes after that.
    assert!(last.t >= 1200 + 300, "{:?}", r.actions);
}

#[test]
fn month_end_benchmark() {
    let results = run_defaults(&shipped("month-end"), &SimConfig::default());
    let ballast = report(&results, "ballast");
    let tt = report(&results, "target-tracking");
    assert_eq!(
        ballast.minutes_over_alarm,
        0,
        "\n{}",
        format_table(&results)
    );
    assert!(
        ballast.instance_hours <= tt.instance_hours,
        "\n{}",
        format_table(&results)
    );
}

#[test]
fn table_is_aligned() {
    let results = run_defaults(&shipped("peak"), &SimConfig::default());
    let table = format_table(&results);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2 + results.len());
    assert!(lines[0].starts_with("policy"));
    assert!(lines[0].contains("min>300s") && lines[0].contains("lower bound"));
    let width = lines[0].chars().count();
    assert!(
        lines.iter().all(|l| l.chars().count() == width),
        "\n{table}"
    );
    for name in ["ballast", "target-tracking", "hpa", "keda"] {
        assert!(table.contains(name));
    }
}

#[test]
fn results_render_to_svg() {
    let sim = SimConfig::default();
    let results = run_defaults(&shipped("month-end"), &sim);
    let svg = render_results_svg(&results, &sim);
    assert!(svg.starts_with("<svg"));
    // Arrivals, three panels per policy, the bound.
    assert_eq!(svg.matches("<polyline").count(), 1 + 3 * results.len() + 1);
    for name in ["keda", "hpa", "target-tracking", "ballast", "bound @"] {
        assert!(svg.contains(name), "{name}");
    }
}

/// `mode: queueing` with a seasonal profile learned from three earlier periods of
/// `trace` (each minute a seeded Poisson draw around the trace).
fn predicting(trace: &Trace) -> BallastPolicy {
    let config = PolicyConfig {
        mode: crate::autoscale::Mode::Queueing,
        ..PolicyConfig::default()
    };
    let period = trace.duration_secs() / 60 * 60;
    let history = synthetic::noisy_history(trace, 3, 1);
    BallastPolicy::new(config, BallastPolicy::DEFAULT_INTERVAL).with_prediction(
        crate::autoscale::seasonal::SeasonalProfile::learn(0, 60, period, &history),
    )
}

/// Synthetic traces written before a round of `mode: queueing` tuning and read once after it:
/// `two-peak-day` (seed 15) before the second round, `spike-train` (seed 21) and
/// `two-peak-day-27` before the third, `spike-train-43` and `two-peak-day-39` before the fourth,
/// `two-peak-day-63` and `spike-train-67` before the sixth, seeds 101 to 127 once the eighth
/// round's rule was chosen (the earlier ones have been seen since, see docs/benchmarks.md).
fn held_out() -> [(&'static str, &'static str, Trace); 11] {
    [
        ("two-peak-day", "seed 15", synthetic::two_peak_day(15)),
        ("two-peak-day-27", "seed 27", synthetic::two_peak_day(27)),
        ("spike-train", "seed 21", synthetic::spike_train(21)),
        ("two-peak-day-39", "seed 39", synthetic::two_peak_day(39)),
        ("spike-train-43", "seed 43", synthetic::spike_train(43)),
        ("two-peak-day-63", "seed 63", synthetic::two_peak_day(63)),
        ("spike-train-67", "seed 67", synthetic::spike_train(67)),
        ("two-peak-day-101", "seed 101", synthetic::two_peak_day(101)),
        ("spike-train-107", "seed 107", synthetic::spike_train(107)),
        ("two-peak-day-113", "seed 113", synthetic::two_peak_day(113)),
        ("spike-train-127", "seed 127", synthetic::spike_train(127)),
    ]
}

/// Prints the table for every shipped trace:
/// `cargo test -p ballast-controller --lib simulate::tests::print_tables -- --nocapture`.
/// Set `BALLAST_SIM_SVG_DIR` to also write one SVG per trace there, and
/// `BALLAST_SIM_WHOLE_INSTANCE=1` to add the whole-instance bound's columns (the synthetic
/// traces have no CSV for `ballast simulate`; 23 minutes on a debug build).
#[test]
fn print_tables() {
    let sim = SimConfig::default();
    let traces = SHIPPED
        .iter()
        .map(|(name, _)| (format!("{name}.csv"), name.to_string(), shipped(name)))
        .chain(held_out().map(|(name, label, trace)| {
            (
                format!("{name} ({label}, held out)"),
                name.to_string(),
                trace,
            )
        }));
    for (label, name, trace) in traces {
        let mut results = run_defaults(&trace, &sim);
        if ["business-day", "two-peak-day"].contains(&name.as_str()) {
            results
                .extend(run_simulation(&trace, &sim, vec![Box::new(predicting(&trace))]).unwrap());
        }
        if std::env::var_os("BALLAST_SIM_WHOLE_INSTANCE").is_some() {
            add_whole_instance_bounds(&mut results, &sim, None, None, None).unwrap();
        }
        println!("== {label} ==\n{}", format_table(&results));
        if let Ok(dir) = std::env::var("BALLAST_SIM_SVG_DIR") {
            let path = std::path::Path::new(&dir).join(format!("{name}.svg"));
            std::fs::write(path, render_results_svg(&results, &sim)).unwrap();
        }
    }
}

#[test]
fn clairvoyant_bound_on_a_constant_overload() {
    // 22 msg/s for an hour, min 2 at 5/s: the base fleet does 10/s, the
    // other 12/s must be extra capacity (2.4 instances) whatever the age.
    let arrivals = vec![22u64; 3600];
    let b = clairvoyant_bound(&arrivals, 2, 5000, 60);
    assert!(
        (b.instance_seconds - (2.0 * 3600.0 + 12.0 * 3600.0 / 5.0)).abs() < 1e-6,
        "{}",
        b.instance_seconds
    );
    // Below the base capacity nothing extra is needed at any age.
    let b = clairvoyant_bound(&[8u64; 600], 2, 5000, 0);
    assert_eq!(b.instance_seconds, 1200.0);
    assert!(b.capacity.iter().all(|c| *c == 2.0));
}

#[test]
fn clairvoyant_bound_lets_a_burst_wait_up_to_the_age() {
    // 100 messages at once, base 10/s: with 10 s of slack the base fleet
    // finishes them all; with 4 s (seconds 0 to 5, the age being 4 at the end
    // of second 4), 60 are done in time and 40 are extra.
    let mut arrivals = vec![0u64; 20];
    arrivals[0] = 100;
    let relaxed = clairvoyant_bound(&arrivals, 2, 5000, 10);
    assert_eq!(relaxed.instance_seconds, 40.0);
    let strict = clairvoyant_bound(&arrivals, 2, 5000, 4);
    assert!((strict.instance_seconds - (40.0 + 40.0 / 5.0)).abs() < 1e-9);
    // A smaller age never lowers the bound.
    let mut last = f64::MAX;
    for age in 0..15 {
        let b = clairvoyant_bound(&arrivals, 2, 5000, age).instance_seconds;
        assert!(b <= last, "{age}");
        last = b;
    }
}

#[test]
fn every_policy_costs_at_least_its_clairvoyant_bound() {
    let sim = SimConfig::default();
    for (name, _) in SHIPPED {
        for result in run_defaults(&shipped(name), &sim) {
            let r = &result.report;
            assert!(
                r.instance_hours + 1e-9 >= r.clairvoyant_instance_hours,
                "{name} {}: {} < {}",
                r.policy,
                r.instance_hours,
                r.clairvoyant_instance_hours
            );
            assert!(
                r.clairvoyant_instance_hours >= f64::from(sim.min) * r.trace_secs as f64 / 3600.0
            );
        }
    }
}

/// On a shipped trace, each policy costs at least its whole-instance bound, which is at least
/// its fluid clairvoyant bound (all twelve traces are checked in docs/benchmarks.md; a debug
/// build takes seconds per policy, so the suite runs one).
#[test]
fn every_policy_costs_at_least_its_whole_instance_bound_on_peak() {
    let sim = SimConfig::default();
    let mut results = run_defaults(&shipped("peak"), &sim);
    add_whole_instance_bounds(&mut results, &sim, None, None, None).unwrap();
    for result in &results {
        let r = &result.report;
        let bound = r.whole_instance.and_then(|w| w.instance_hours).unwrap();
        assert!(
            r.instance_hours + 1e-9 >= bound,
            "{}: {} < {bound}",
            r.policy,
            r.instance_hours
        );
        assert!(bound + 1e-9 >= r.clairvoyant_instance_hours, "{}", r.policy);
    }
    // Queueing's figure as recorded: 3.23 at its 70 s worst age.
    let queueing = report(&results, "queueing");
    assert_eq!(queueing.max_oldest_age_secs, 70);
    let bound = queueing
        .whole_instance
        .and_then(|w| w.instance_hours)
        .unwrap();
    assert!((bound - 3.23).abs() < 0.005, "{bound}");
}

/// Reports every policy's metric without deciding: what `Observed` carries.
struct Spy(Vec<(u64, u64, u64, u64)>);
impl SimPolicy for Spy {
    fn name(&self) -> &str {
        "spy"
    }
    fn interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }
    fn decide(&mut self, now: crate::autoscale::Timestamp, o: &Observed<'_>) -> Option<u32> {
        let m = o.metrics;
        self.0.push((
            now.as_secs(),
            m.visible + m.in_flight,
            o.datapoints.last().map_or(0, |d| d.sent),
            o.datapoints.last().map_or(0, |d| d.available_at_secs),
        ));
        None
    }
}

#[test]
fn policies_see_sqs_counts_late_and_datapoints_after_the_delay() {
    let trace = Trace::constant(3000, 200);
    let sim = SimConfig {
        count_lag: std::time::Duration::from_secs(10),
        metric_delay: std::time::Duration::from_secs(60),
        ..SimConfig::default()
    };
    let mut spy = Spy(Vec::new());
    let r = engine::simulate(&trace, &sim, &mut spy);
    // 3 msg/s, fixed 5/s per instance: the queue's own count at the end of
    // second t is what the spy sees at t + 10.
    let own: Vec<u64> = r.series.iter().map(|p| p.visible + p.in_flight).collect();
    let seen_at = |t: u64| spy.0.iter().find(|s| s.0 == t).unwrap();
    assert_eq!(seen_at(0).1, own[0]);
    assert_eq!(seen_at(20).1, own[1], "sample 1 is t=10");
    // The first minute's datapoint is visible at 120 s, not at 60 s.
    assert_eq!(seen_at(119).3, 0);
    assert_eq!(seen_at(120).3, 120);
    // The rates `ballast run` reads come with the datapoints: 3/s for a minute.
    assert_eq!(seen_at(120).2, 180);
}

#[test]
fn datapoints_carry_what_the_measured_rates_read() {
    // 12/s on 2 instances (10/s): the queue grows, so every minute after the first is
    // saturated at both ends, and the workers' reports are 2 a minute.
    struct Last(Option<Datapoint>);
    impl SimPolicy for Last {
        fn name(&self) -> &str {
            "last"
        }
        fn interval(&self) -> std::time::Duration {
            std::time::Duration::from_secs(60)
        }
        fn decide(&mut self, _: crate::autoscale::Timestamp, o: &Observed<'_>) -> Option<u32> {
            self.0 = o.datapoints.last().copied();
            None
        }
    }
    let trace = Trace::constant(12_000, 600);
    let mut last = Last(None);
    engine::simulate(&trace, &SimConfig::default(), &mut last);
    let d = last.0.unwrap();
    assert_eq!((d.sent, d.processed, d.worker_minutes), (720, 600, 2));
    assert!(d.visible_at_end > 0);
    assert_eq!(d.period_secs, 60);
}

#[test]
fn seeded_noise_is_reproducible_and_changes_with_the_seed() {
    let trace = shipped("peak");
    let noisy = |seed| SimConfig {
        seed,
        poisson_arrivals: true,
        processing: ProcessingTime::Exponential,
        boot_spread: std::time::Duration::from_secs(60),
        ..SimConfig::default()
    };
    let a = serde_json::to_string(&run_defaults(&trace, &noisy(7))).unwrap();
    let b = serde_json::to_string(&run_defaults(&trace, &noisy(7))).unwrap();
    assert_eq!(a, b);
    let c = run_defaults(&trace, &noisy(8));
    assert_ne!(a, serde_json::to_string(&c).unwrap());
    // Poisson arrivals keep the trace's mean (±3 %) and every policy sees
    // the same arrivals.
    let expected = trace.total_messages() as f64;
    let arrived = c[0].report.arrived;
    assert!(
        (arrived as f64 - expected).abs() < 0.03 * expected,
        "{arrived}"
    );
    assert!(
        c.iter()
            .all(|r| r.report.arrived == arrived && r.report.processed == arrived)
    );
}

#[test]
fn keda_counts_in_flight_messages_and_hpa_does_not() {
    let config = PolicyConfig::default();
    let metrics = crate::autoscale::Reading {
        visible: 300,
        in_flight: 200,
        delayed: 0,
        in_service: 2,
        desired: 2,
        oldest_message_age: None,
        measured_arrival_milli: None,
        measured_sustained_arrival_milli: None,
        measured_steady_arrival_milli: None,
        measured_service_milli: None,
        predicted_arrival_milli: None,
    };
    let observed = Observed {
        metrics: &metrics,
        datapoints: &[],
    };
    let now = crate::autoscale::Timestamp::from_secs(0);
    let mut keda = KedaPolicy::new(KedaConfig::from_policy(&config));
    assert_eq!(keda.decide(now, &observed), Some(5));
    let mut hpa = HpaPolicy::new(HpaConfig::from_policy(&config));
    assert_eq!(hpa.decide(now, &observed), Some(3));
    assert_eq!(keda.interval(), std::time::Duration::from_secs(15));
}

#[test]
fn keda_wakes_a_fleet_at_zero_only_on_its_polling_interval() {
    let config = PolicyConfig {
        min: 0,
        ..PolicyConfig::default()
    };
    let mut keda = KedaPolicy::new(KedaConfig::from_policy(&config));
    let at = |visible, desired| crate::autoscale::Reading {
        visible,
        in_flight: 0,
        delayed: 0,
        in_service: desired,
        desired,
        oldest_message_age: None,
        measured_arrival_milli: None,
        measured_sustained_arrival_milli: None,
        measured_steady_arrival_milli: None,
        measured_service_milli: None,
        predicted_arrival_milli: None,
    };
    let t = crate::autoscale::Timestamp::from_secs;
    let idle = at(0, 0);
    let o = |m| Observed {
        metrics: m,
        datapoints: &[],
    };
    assert_eq!(keda.decide(t(0), &o(&idle)), None);
    let busy = at(1, 0);
    // The HPA sync at 15 s cannot activate; KEDA's poll at 30 s does.
    assert_eq!(keda.decide(t(15), &o(&busy)), None);
    assert_eq!(keda.decide(t(30), &o(&busy)), Some(1));
    // Back to zero only after cooldownPeriod (300 s) without activity.
    let empty = at(0, 1);
    assert_eq!(keda.decide(t(60), &o(&empty)), None);
    assert_eq!(keda.decide(t(330), &o(&empty)), Some(0));
}

/// Quiet for 10 minutes, then 30 msg/s (6 instances' worth) for 40 minutes, then quiet.
fn surge() -> Trace {
    Trace::parse("seconds,arrivals_per_second\n0,2\n600,30\n3000,2\n3600,0\n").unwrap()
}

fn down_window(text: &str) -> DownWindow {
    text.parse().unwrap()
}

#[test]
fn dead_mans_switch_down_windows_parse() {
    assert_eq!(
        down_window("30m..60m"),
        DownWindow {
            start_secs: 1800,
            end_secs: 3600
        }
    );
    assert!(matches!(
        "30m".parse::<DownWindow>(),
        Err(DownWindowError::Syntax { .. })
    ));
    assert!(matches!(
        "60m..30m".parse::<DownWindow>(),
        Err(DownWindowError::Empty { .. })
    ));
    assert!(matches!(
        "soon..60m".parse::<DownWindow>(),
        Err(DownWindowError::Duration(_))
    ));
}

#[test]
fn dead_mans_switch_never_fires_while_the_controller_is_up() {
    // The lowest threshold there is: any backlog at all breaches but for the heartbeat.
    let switch = SwitchModel {
        backlog_threshold: 0,
        heartbeat_timeout_secs: 120,
        add_instances: 3,
    };
    for trace in [surge(), shipped("business-day"), shipped("spiky")] {
        let sim = SimConfig::default();
        let mut policy = FailoverPolicy::new(
            "up",
            PolicyConfig::default(),
            None,
            Some(switch),
            sim.metric_period,
        );
        let with = engine::simulate(&trace, &sim, &mut policy);
        assert_eq!(policy.activity(), &failover::SwitchActivity::default());
        // And Ballast alone decides exactly as without the switch.
        assert_eq!(with.actions, ballast_only(&trace, &sim).actions);
    }
}

#[test]
fn dead_mans_switch_scales_out_while_the_controller_is_down() {
    let sim = SimConfig::default();
    let window = down_window("5m..45m");
    let switch = SwitchModel::defaults(PolicyConfig::default().target_backlog_per_instance);
    let report =
        simulate_failover(&surge(), &sim, &PolicyConfig::default(), window, switch).unwrap();
    let alone = &report.without_switch;
    let with = &report.with_switch;
    // Ballast alone cannot react: the fleet stays where it was when the controller went down.
    assert_eq!(alone.activity, failover::SwitchActivity::default());
    assert!(
        alone
            .result
            .actions
            .iter()
            .all(|a| !(window.start_secs..window.end_secs).contains(&a.t)),
        "{:?}",
        alone.result.actions
    );
    // The switch fires once, no earlier than a heartbeat timeout plus CloudWatch's delay after
    // the backlog passed its threshold (the surge starts at 600 s, 1000 messages 50 s later),
    // and never while the controller is up.
    let a = &with.activity;
    assert_eq!(a.fired_at_secs.len(), 1, "{a:?}");
    let earliest = 650 + switch.heartbeat_timeout_secs + sim.metric_delay.as_secs();
    assert!(a.fired_at_secs[0] >= earliest, "{a:?}");
    assert!(a.fired_at_secs[0] < window.end_secs, "{a:?}");
    assert_eq!(a.fired_while_up, 0);
    assert!(a.scale_outs >= 3, "{a:?}");
    // It scales out, only out, during the outage, and the oldest message stays far younger.
    let during: Vec<_> = with
        .result
        .actions
        .iter()
        .filter(|e| (window.start_secs..window.end_secs).contains(&e.t))
        .collect();
    assert!(!during.is_empty());
    assert!(during.iter().all(|e| e.to > e.from), "{during:?}");
    assert!(
        with.max_age_in_window_secs * 2 < alone.max_age_in_window_secs,
        "with {} s, alone {} s",
        with.max_age_in_window_secs,
        alone.max_age_in_window_secs
    );
    // The depth alarm pages for fewer minutes with the switch: it shortens the outage's page.
    let (alone_depth, with_depth) = (
        alone.result.report.minutes_over_depth_alarm,
        with.result.report.minutes_over_depth_alarm,
    );
    assert!(
        with_depth < alone_depth,
        "with {with_depth}, alone {alone_depth}"
    );
    let text = format_failover(&report);
    assert!(text.contains("fired while the controller was up: 0"));
    assert!(
        text.contains(&format!("{with_depth:>4} min over the depth alarm")),
        "{text}"
    );
}

#[test]
fn dead_mans_switch_stays_quiet_when_the_backlog_is_low() {
    // Down for the whole quiet start: no backlog to speak of, so no scale-out.
    let sim = SimConfig::default();
    let report = simulate_failover(
        &surge(),
        &sim,
        &PolicyConfig::default(),
        down_window("1m..9m"),
        SwitchModel::defaults(100),
    )
    .unwrap();
    assert_eq!(
        report.with_switch.activity,
        failover::SwitchActivity::default()
    );
    assert_eq!(
        report.with_switch.result.actions,
        report.without_switch.result.actions
    );
}

#[test]
fn dead_mans_switch_defaults_are_the_blueprints() {
    let written: ballast_blueprint::DeadMansSwitch = serde_json::from_str("{}").unwrap();
    assert_eq!(written, ballast_blueprint::DeadMansSwitch::default());
    assert_eq!(
        SwitchModel::defaults(100),
        SwitchModel {
            backlog_threshold: 1000,
            heartbeat_timeout_secs: 180,
            add_instances: 1
        }
    );
}

/// Issue #15's measured goals for `mode: queueing` (docs/benchmarks.md, "Autoscaler v2, eighth
/// round"): on every shipped and held-out trace 0 minutes over 300 s, a worst age at most 1.1 ×
/// the best peer's and instance-hours at most the best peer's; on every trace without spikes
/// also instance-hours at most 1.15 × the clairvoyant bound at its own worst age, actions at
/// most ¼ of the HPA model's and no more minutes over the depth alarm than any peer. The spike
/// traces miss the bound and the actions goals; that page records by how much.
#[test]
fn queueing_meets_issue_15s_goals_except_the_recorded_misses() {
    let sim = SimConfig::default();
    for (name, trace) in goal_traces() {
        let results = run_defaults(&trace, &sim);
        let q = report(&results, "queueing");
        let peers = peers(&results);
        let hpa = report(&results, "hpa");
        let table = format_table(&results);
        peers.assert_age_and_cost_goals(q, &format!("{name}\n{table}"));
        // mode: backlog (the seed's formula) is never cheaper, and never faster by more than the
        // age goal allows a peer (queueing's objective of one boot time lets a message wait up
        // to 5 s longer than backlog mode's on four traces).
        let backlog = report(&results, "ballast");
        assert!(
            q.instance_hours <= backlog.instance_hours,
            "{name}\n{table}"
        );
        assert!(
            q.max_oldest_age_secs * 10 <= backlog.max_oldest_age_secs * 11,
            "{name}\n{table}"
        );
        // Every goal holds on every trace without spikes; on the spike trains the bound and the
        // actions are missed (the first is out of reach on spiky for any policy that reacts:
        // `on_spiky_no_fleet_that_reacts_meets_the_clairvoyant_goal`).
        if !has_spikes(name) {
            assert!(
                q.instance_hours <= 1.15 * q.clairvoyant_instance_hours,
                "{name}\n{table}"
            );
            assert!(
                q.scaling_actions * 4 <= hpa.scaling_actions,
                "{name}\n{table}"
            );
            // mode: backlog pages less on two-peak-day (26 minutes against 37): its 100
            // messages per instance keep the queue short with 25 % more instance-hours.
            peers.assert_pages_no_more(q, &format!("{name}\n{table}"));
        }
    }
}

/// On spiky, no fleet that reacts (launching within 300 s after a second whose arrivals exceed
/// what the minimum fleet completes), even one that knows every spike's size and end, meets issue
/// #15's 1.15 × the clairvoyant bound at any worst age within 1.1 × the best peer's. Both bounds
/// fall as the age grows, so three exact optima cover every age: below 68 s no such fleet keeps
/// the age, and the reactive bound at 93 s (at the age limit) is above 1.15 × the fluid bound at
/// 68 s (at 94 s).
#[test]
fn on_spiky_no_fleet_that_reacts_meets_the_clairvoyant_goal() {
    let sim = SimConfig::default();
    let results = run_defaults(&shipped("spiky"), &sim);
    let arrivals = &results[0].arrivals;
    let best_peer_age = peers(&results).best_age;
    // Ages are whole seconds: 1.1 × 96 s allows 105 s.
    let limit = best_peer_age * 11 / 10;
    assert!((94..=105).contains(&limit), "{limit}");
    let fleet = FleetShape {
        min: sim.min,
        max: sim.max,
        initial: sim.initial_capacity,
        boot_secs: sim.boot_delay.as_secs() - 1,
    };
    let reactive = |age| {
        whole_instance::reactive_bound(
            arrivals,
            fleet,
            sim.service_rate_milli,
            age,
            None,
            300,
            None,
        )
        .unwrap()
        .map(|b| b.instance_seconds as f64)
    };
    let fluid =
        |age| clairvoyant_bound(arrivals, sim.min, sim.service_rate_milli, age).instance_seconds;
    assert_eq!(reactive(67), None);
    for (from, to) in [(68, 93), (94, limit)] {
        let bound = reactive(to).unwrap();
        assert!(
            bound > 1.15 * fluid(from),
            "ages {from}..={to}: {bound} <= 1.15 × {}",
            fluid(from)
        );
    }
    // A fleet that knows when each spike begins does meet it, at queueing's own 89 s: the miss
    // is the cost of reacting, not of boots and whole instances.
    let whole = whole_instance_bound(arrivals, fleet, sim.service_rate_milli, 89, None)
        .unwrap()
        .unwrap();
    assert!((whole.instance_seconds as f64) <= 1.15 * fluid(89));
    // Both of Ballast's modes are such fleets: each of their launches comes within 60 s after
    // an overload second, so the proof covers them.
    for mode in ["ballast", "queueing"] {
        let result = results.iter().find(|r| r.report.policy == mode).unwrap();
        let launches = result.actions.iter().filter(|a| a.to > a.from).map(|a| a.t);
        let late = whole_instance::launches_outside(
            arrivals,
            sim.min,
            sim.service_rate_milli,
            60,
            launches,
        );
        assert_eq!(late, 0, "{mode}");
    }
}

#[test]
fn prediction_meets_the_business_day_with_capacity_already_in_service() {
    let trace = shipped("business-day");
    let sim = SimConfig::default();
    let config = PolicyConfig {
        mode: crate::autoscale::Mode::Queueing,
        ..PolicyConfig::default()
    };
    let plain = BallastPolicy::new(config, BallastPolicy::DEFAULT_INTERVAL);
    let results = run_simulation(
        &trace,
        &sim,
        vec![Box::new(plain), Box::new(predicting(&trace))],
    )
    .unwrap();
    let (without, with) = (&results[0].report, &results[1].report);
    assert_eq!(with.policy, "queueing+prediction");
    assert_eq!(with.minutes_over_alarm, 0);
    // The morning ramp, the lunch peak and the month-end surge find their capacity in service:
    // with the prediction messages wait less (57 s against 78 s) and the depth alarm never
    // fires (19 minutes without), for 2.3 % more instance-hours (the plateaus still spend the
    // latency budget in both).
    let table = format_table(&results);
    assert!(
        with.max_oldest_age_secs + 15 <= without.max_oldest_age_secs,
        "{table}"
    );
    assert!(
        with.minutes_over_depth_alarm == 0 && without.minutes_over_depth_alarm > 10,
        "{table}"
    );
    assert!(
        with.instance_hours <= 1.03 * without.instance_hours,
        "{table}"
    );
}

/// The goals with noise (docs/benchmarks.md, "Autoscaler v2, ninth round"): Poisson arrivals and
/// exponential service, six seeds, the twelve traces without spikes. What the deterministic test
/// asserts of them still holds in every run (no minute over 300 s, the age and instance-hours of
/// the best peer, the pager), and noise costs at most 3 % of the bound and one action: 8 of the
/// 72 runs miss the 1.15 bound (the worst 1.178, two-peak-day-113 with seed 10) or ¼ of the
/// HPA's actions (two-peak-day with seed 7, 21 against 20.75).
#[test]
fn queueing_keeps_its_goals_with_noise_within_a_small_margin() {
    let mut misses = Vec::new();
    for seed in 7..=12u64 {
        let sim = SimConfig {
            seed,
            poisson_arrivals: true,
            processing: ProcessingTime::Exponential,
            ..SimConfig::default()
        };
        for (name, trace) in goal_traces().filter(|(name, _)| !has_spikes(name)) {
            let results = run_defaults(&trace, &sim);
            let q = report(&results, "queueing");
            let peers = peers(&results);
            let hpa_actions = report(&results, "hpa").scaling_actions;
            let at = format!("{name}, seed {seed}\n{}", format_table(&results));
            peers.assert_age_and_cost_goals(q, &at);
            peers.assert_pages_no_more(q, &at);
            let ratio = q.instance_hours / q.clairvoyant_instance_hours;
            assert!(ratio <= 1.18, "{at}");
            assert!(q.scaling_actions * 4 <= hpa_actions + 4, "{at}");
            if ratio > 1.15 || q.scaling_actions * 4 > hpa_actions {
                misses.push(format!("{name} (seed {seed})"));
            }
        }
    }
    assert!(misses.len() <= 8, "{misses:?}");
}
