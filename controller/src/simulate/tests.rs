use super::*;
use crate::autoscale::policy::PolicyConfig;

const SHIPPED: [(&str, &str); 5] = [
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
    let width = lines[0].len();
    assert!(lines.iter().all(|l| l.len() == width), "\n{table}");
    for name in ["ballast", "target-tracking", "hpa"] {
        assert!(table.contains(name));
    }
}

#[test]
fn results_render_to_svg() {
    let results = run_defaults(&shipped("month-end"), &SimConfig::default());
    let svg = render_results_svg(&results);
    assert!(svg.starts_with("<svg"));
    assert_eq!(svg.matches("<polyline").count(), 3 * results.len());
}

/// Prints the table for every shipped trace:
/// `cargo test -p ballast-controller --lib simulate::tests::print_tables -- --nocapture`.
/// Set `BALLAST_SIM_SVG_DIR` to also write one SVG per trace there.
#[test]
fn print_tables() {
    let sim = SimConfig::default();
    for (name, _) in SHIPPED {
        let results = run_defaults(&shipped(name), &sim);
        println!("== {name}.csv ==\n{}", format_table(&results));
        if let Ok(dir) = std::env::var("BALLAST_SIM_SVG_DIR") {
            let path = std::path::Path::new(&dir).join(format!("{name}.svg"));
            std::fs::write(path, render_results_svg(&results)).unwrap();
        }
    }
}
