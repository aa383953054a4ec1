use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::autoscale::PolicyConfig;
use crate::autoscale::config::{find_policy, policy_config};
use crate::cli::{OutputFormat, SimulateArgs};
use crate::simulate::{self, SimConfig, SwitchModel, Trace};

/// Runs Ballast's policy in both modes, the target-tracking, HPA and KEDA models over one trace.
pub fn run(args: &SimulateArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let trace = Trace::from_path(&args.trace)
        .with_context(|| format!("reading trace {}", args.trace.display()))?;
    let (mut policy, switch) = match &args.blueprint {
        Some(path) => {
            let loaded = args.values.load(path)?;
            let found = find_policy(&loaded.blueprint, args.policy.as_deref())?;
            let switch = found
                .dead_mans_switch
                .as_ref()
                .map(|s| SwitchModel::of(s, found.target_backlog_in_force()));
            (policy_config(&loaded.blueprint, found), switch)
        }
        None if !args.values.files.is_empty() => anyhow::bail!(
            "--values needs --blueprint (hint: values files are laid over a blueprint)"
        ),
        None => (PolicyConfig::default(), None),
    };
    if let Some(target) = args.target {
        policy.target_backlog_per_instance = target;
    }
    policy.validate()?;
    let sim = SimConfig {
        service_rate_milli: parse_rate_milli(&args.service_rate)?,
        boot_delay: args.boot_delay.std(),
        min: policy.min,
        max: policy.max,
        initial_capacity: policy.min,
        metric_delay: args.metric_delay.std(),
        count_lag: args.count_lag.std(),
        seed: args.seed,
        poisson_arrivals: args.poisson,
        processing: args.processing,
        boot_spread: args.boot_spread.std(),
        // The queue's depth alarm as the blueprint declares it (the seed's without one).
        depth_alarm: policy.backlog_alarm,
        ..SimConfig::default()
    };
    let mut policies = simulate::default_policies(&policy);
    if !args.history.is_empty() {
        policies.push(Box::new(predicting(&policy, &trace, &args.history)?));
    }
    let mut results = simulate::run_simulation(&trace, &sim, policies)?;
    if args.whole_instance_bound {
        simulate::add_whole_instance_bounds(
            &mut results,
            &sim,
            args.bound_actions,
            args.bound_reactive.map(|w| w.std()),
            args.bound_cooldown.map(|c| c.std()),
        )?;
    }
    // Without a declared switch, the blueprint's defaults for this policy.
    let failover = args
        .controller_down
        .map(|window| {
            let switch =
                switch.unwrap_or_else(|| SwitchModel::defaults(policy.target_backlog_per_instance));
            simulate::simulate_failover(&trace, &sim, &policy, window, switch)
        })
        .transpose()?;
    if let Some(plot) = &args.plot {
        write_plot(plot, &simulate::render_results_svg(&results, &sim))?;
    }
    match args.output {
        OutputFormat::Json => {
            let reports: Vec<_> = results.iter().map(|r| &r.report).collect();
            match &failover {
                // The plain report stays an array; an outage adds its own object beside it.
                Some(f) => serde_json::to_writer_pretty(
                    &mut *out,
                    &serde_json::json!({"policies": reports, "controllerDown": failover_json(f)}),
                )?,
                None => serde_json::to_writer_pretty(&mut *out, &reports)?,
            }
            writeln!(out)?;
        }
        OutputFormat::Text => {
            writeln!(
                out,
                "trace {} ({} s, {} messages), {} msg/s per instance, boot {}, target {} per instance",
                args.trace.display(),
                trace.duration_secs(),
                trace.total_messages(),
                args.service_rate,
                args.boot_delay,
                policy.target_backlog_per_instance
            )?;
            write!(out, "{}", simulate::format_table(&results))?;
            if let Some(f) = &failover {
                write!(out, "{}", simulate::format_failover(f))?;
            }
            if let Some(plot) = &args.plot {
                writeln!(out, "plot written to {}", plot.display())?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `mode: queueing` with the seasonal profile learned from the `history` traces, each one
/// period (the length of `trace`, in whole minutes) starting at the same phase as `trace`.
fn predicting(
    policy: &PolicyConfig,
    trace: &Trace,
    history: &[PathBuf],
) -> anyhow::Result<simulate::BallastPolicy> {
    let period = trace.duration_secs() / 60 * 60;
    anyhow::ensure!(
        period > 0,
        "--history needs a trace of at least one minute (it is the period)"
    );
    let mut counts = Vec::new();
    for path in history {
        let earlier = Trace::from_path(path)
            .with_context(|| format!("reading history trace {}", path.display()))?;
        let mut minutes = simulate::synthetic::minute_counts(&earlier);
        let wanted = usize::try_from(period / 60)?;
        anyhow::ensure!(
            minutes.len() >= wanted,
            "{}: {} minutes of history, shorter than the {} minutes of --trace (hint: each history \
             file is one earlier period of the same length, e.g. the same hours of an earlier day)",
            path.display(),
            minutes.len(),
            wanted
        );
        // Each file is one period from phase 0: a longer one is cut, so that the next file
        // starts at phase 0 again.
        minutes.truncate(wanted);
        counts.extend(minutes);
    }
    let config = PolicyConfig {
        mode: crate::autoscale::Mode::Queueing,
        ..policy.clone()
    };
    Ok(
        simulate::BallastPolicy::new(config, simulate::BallastPolicy::DEFAULT_INTERVAL)
            .with_prediction(crate::autoscale::seasonal::SeasonalProfile::learn(
                0, 60, period, &counts,
            )),
    )
}

/// The failover runs without their per-second series.
fn failover_json(f: &simulate::FailoverReport) -> serde_json::Value {
    let run = |r: &simulate::failover::FailoverRun| {
        serde_json::json!({
            "report": r.result.report,
            "maxAgeWhileDownSecs": r.max_age_in_window_secs,
            "switch": r.activity,
        })
    };
    serde_json::json!({
        "window": f.window,
        "switch": f.switch,
        "withoutSwitch": run(&f.without_switch),
        "withSwitch": run(&f.with_switch),
    })
}

fn write_plot(path: &PathBuf, svg: &str) -> anyhow::Result<()> {
    std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))
}

/// "5" or "2.5" messages per second, as integer milli-messages (no floating point).
fn parse_rate_milli(text: &str) -> anyhow::Result<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    anyhow::ensure!(
        !whole.is_empty()
            && whole.chars().all(|c| c.is_ascii_digit())
            && fraction.len() <= 3
            && fraction.chars().all(|c| c.is_ascii_digit()),
        "--service-rate must be a decimal number of messages per second with at most 3 decimals, not `{text}`"
    );
    let whole: u64 = whole.parse()?;
    let fraction: u64 = format!("{fraction:0<3}").parse()?;
    Ok(whole * 1000 + fraction)
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn simulate(argv: &[&str]) -> anyhow::Result<String> {
        let traces = concat!(env!("CARGO_MANIFEST_DIR"), "/../blueprints/traces");
        let mut full = vec!["ballast".to_string(), "simulate".to_string()];
        full.extend(argv.iter().map(|a| a.replace("TRACES", traces)));
        let Command::Simulate(args) = Cli::try_parse_from(full)?.command else {
            panic!("not simulate")
        };
        let mut out = Vec::new();
        super::run(&args, &mut out)?;
        Ok(String::from_utf8(out)?)
    }

    /// Earlier periods given with --history add `queueing+prediction`, which meets a known
    /// peak with capacity already in service; a history shorter than the trace is refused.
    #[test]
    fn history_adds_the_predicting_policy() {
        let json = simulate(&[
            "--trace",
            "TRACES/peak.csv",
            "--history",
            "TRACES/peak.csv",
            "--history",
            "TRACES/peak.csv",
            "--output",
            "json",
        ])
        .unwrap();
        let reports: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
        let by_name = |name: &str| {
            reports
                .iter()
                .find(|r| r["policy"] == name)
                .unwrap_or_else(|| panic!("no {name} in {json}"))
        };
        let predicting = by_name("queueing+prediction");
        let queueing = by_name("queueing");
        assert_eq!(predicting["minutes_over_alarm"], 0);
        assert!(
            predicting["max_oldest_age_secs"].as_u64() <= queueing["max_oldest_age_secs"].as_u64(),
            "{predicting} {queueing}"
        );
        assert_eq!(reports.len(), 6, "five policies and the predicting one");

        let short = simulate(&[
            "--trace",
            "TRACES/business-day.csv",
            "--history",
            "TRACES/peak.csv",
        ])
        .unwrap_err();
        assert!(
            format!("{short:#}").contains("shorter than the"),
            "{short:#}"
        );
    }

    /// The simulated depth alarm is the blueprint's `ApproximateNumberOfMessagesVisible` alarm on
    /// the policy's queue: raised from 1,000 to 3,000, every policy pages in fewer minutes.
    #[test]
    fn the_depth_alarm_is_the_blueprints() {
        let blueprints = concat!(env!("CARGO_MANIFEST_DIR"), "/../blueprints");
        let seed = format!("{blueprints}/banking.yaml");
        let text = std::fs::read_to_string(&seed).unwrap();
        assert_eq!(
            text.matches("threshold: 1000").count(),
            1,
            "the queue-depth alarm"
        );
        let raised =
            std::env::temp_dir().join(format!("ballast-depth-{}.yaml", uuid::Uuid::new_v4()));
        std::fs::write(&raised, text.replace("threshold: 1000", "threshold: 3000")).unwrap();
        let minutes = |blueprint: &str| -> Vec<(String, u64)> {
            let json = simulate(&[
                "--blueprint",
                blueprint,
                "--trace",
                "TRACES/spiky.csv",
                "--output",
                "json",
            ])
            .unwrap();
            let reports: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
            reports
                .iter()
                .map(|r| {
                    let name = r["policy"].as_str().unwrap().to_string();
                    (name, r["minutes_over_depth_alarm"].as_u64().unwrap())
                })
                .collect()
        };
        let at_1000 = minutes(&seed);
        let at_3000 = minutes(raised.to_str().unwrap());
        std::fs::remove_file(&raised).unwrap();
        assert_eq!(at_1000.len(), 5);
        for ((policy, low), (_, high)) in at_1000.iter().zip(&at_3000) {
            // Spiky's bursts pass 3,000 before any capacity lands, and 1,000 for longer.
            assert!(
                *high > 0 && low > high,
                "{policy}: {low} at 1,000, {high} at 3,000"
            );
        }
    }

    /// A 15-minute trace with a 3-minute burst that 2 instances cannot keep young.
    fn burst_trace() -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("ballast-burst-{}.csv", uuid::Uuid::new_v4()));
        std::fs::write(
            &path,
            "seconds,arrivals_per_second\n0,8\n180,30\n360,8\n900,0\n",
        )
        .unwrap();
        path
    }

    /// Every policy costs at least its whole-instance bound, which is at least the fluid
    /// clairvoyant bound; with an action budget, so does every policy within the budget.
    #[test]
    fn whole_instance_bound_is_below_every_run_and_above_the_fluid_bound() {
        let trace = burst_trace();
        let trace_arg = trace.to_str().unwrap();
        let json = simulate(&[
            "--trace",
            trace_arg,
            "--whole-instance-bound",
            "--output",
            "json",
        ])
        .unwrap();
        let reports: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
        assert!(reports.len() >= 5, "{json}");
        for r in &reports {
            let bound = r["whole_instance"]["instance_hours"].as_f64().unwrap();
            let cost = r["instance_hours"].as_f64().unwrap();
            let fluid = r["clairvoyant_instance_hours"].as_f64().unwrap();
            assert!(bound <= cost + 1e-9, "{}: {bound} > {cost}", r["policy"]);
            assert!(bound + 1e-9 >= fluid, "{}: {bound} < {fluid}", r["policy"]);
            assert!(r["whole_instance"]["max_actions"].is_null());
        }
        // The burst needs capacity above 2, so the bound exceeds the minimum fleet's hours.
        let floor = 2.0 * 900.0 / 3600.0;
        assert!(
            reports
                .iter()
                .all(|r| r["whole_instance"]["instance_hours"].as_f64().unwrap() > floor)
        );

        let text = simulate(&[
            "--trace",
            trace_arg,
            "--whole-instance-bound",
            "--bound-actions",
            "2",
        ])
        .unwrap();
        assert!(text.contains("whole@age, ≤2 act"), "{text}");
        let json = simulate(&[
            "--trace",
            trace_arg,
            "--whole-instance-bound",
            "--bound-actions",
            "2",
            "--output",
            "json",
        ])
        .unwrap();
        let budgeted: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
        let mut within = 0;
        for (r, free) in budgeted.iter().zip(&reports) {
            assert_eq!(r["whole_instance"]["max_actions"], 2);
            let Some(bound) = r["whole_instance"]["instance_hours"].as_f64() else {
                // No fleet keeps this age in 2 actions: nor did this policy.
                assert!(r["scaling_actions"].as_u64().unwrap() > 2, "{r}");
                continue;
            };
            // A budget never lowers the bound.
            let unbudgeted = free["whole_instance"]["instance_hours"].as_f64().unwrap();
            assert!(bound + 1e-9 >= unbudgeted, "{}", r["policy"]);
            if r["scaling_actions"].as_u64().unwrap() <= 2 {
                within += 1;
                assert!(bound <= r["instance_hours"].as_f64().unwrap() + 1e-9, "{r}");
            }
        }
        assert!(within > 0, "no policy took at most 2 actions: {json}");
        std::fs::remove_file(trace).unwrap();
    }

    /// A bound over fewer fleets (`bound`) lies between the bound over more (`looser`) and the
    /// cost of the run it applies to (a JSON report); whether it is strictly above `looser`.
    fn tighter_bound_holds(looser: f64, bound: f64, run: &serde_json::Value) -> bool {
        let cost = run["instance_hours"].as_f64().unwrap();
        assert!(bound <= cost + 1e-9, "{}: {bound} > {cost}", run["policy"]);
        assert!(
            bound + 1e-9 >= looser,
            "{}: {bound} < {looser}",
            run["policy"]
        );
        bound > looser + 1e-9
    }

    /// Every policy compared launches only after it has seen load, so each costs at least its
    /// reactive bound, which is at least its whole-instance bound. A policy that launches ahead
    /// of load (the prediction, before the burst it learned from the history) is outside the
    /// bound, and says so.
    #[test]
    fn reactive_bound_is_below_every_run_that_reacts() {
        let trace = burst_trace();
        let trace_arg = trace.to_str().unwrap();
        let reports = |extra: &[&str]| -> Vec<serde_json::Value> {
            let mut argv = vec!["--trace", trace_arg, "--whole-instance-bound"];
            argv.extend_from_slice(extra);
            argv.extend_from_slice(&["--output", "json"]);
            serde_json::from_str(&simulate(&argv).unwrap()).unwrap()
        };
        let whole = reports(&[]);
        let reactive = reports(&["--bound-reactive", "300s"]);
        assert_eq!(whole.len(), reactive.len());
        let mut above = 0;
        for (w, r) in whole.iter().zip(&reactive) {
            let row = &r["whole_instance"];
            assert_eq!(row["reactive_within_secs"], 300);
            assert_eq!(row["launches_outside"], 0, "{r}");
            let bound = row["instance_hours"].as_f64().unwrap();
            let whole_bound = w["whole_instance"]["instance_hours"].as_f64().unwrap();
            above += usize::from(tighter_bound_holds(whole_bound, bound, r));
        }
        // The burst starts at 180 s: knowing it, a fleet launches 90 s ahead; reacting, it cannot.
        assert!(above > 0, "{reactive:?}");

        let text = simulate(&[
            "--trace",
            trace_arg,
            "--history",
            trace_arg,
            "--whole-instance-bound",
            "--bound-reactive",
            "300s",
        ])
        .unwrap();
        assert!(text.contains("reactive≤300s@age"), "{text}");
        let predicting = text
            .lines()
            .find(|l| l.starts_with("queueing+prediction"))
            .unwrap();
        assert!(predicting.contains("n/a"), "{text}");
    }

    /// With a cooldown the reactive bound counts only fleets that also keep it, so it is at
    /// least the reactive bound, and it bounds every run that kept it. A run that scaled in
    /// within the cooldown is outside it, and says so.
    #[test]
    fn cooldown_bound_is_below_every_run_that_keeps_the_cooldown() {
        let trace = burst_trace();
        let trace_arg = trace.to_str().unwrap();
        let reports = |extra: &[&str]| -> Vec<serde_json::Value> {
            let mut argv = vec![
                "--trace",
                trace_arg,
                "--whole-instance-bound",
                "--bound-reactive",
                "300s",
            ];
            argv.extend_from_slice(extra);
            argv.extend_from_slice(&["--output", "json"]);
            serde_json::from_str(&simulate(&argv).unwrap()).unwrap()
        };
        let reactive = reports(&[]);
        // A cooldown longer than the HPA's 300 s window, so that some run breaks it.
        let held = reports(&["--bound-cooldown", "400s"]);
        let (mut kept, mut broke, mut above) = (0, 0, 0);
        for (r, h) in reactive.iter().zip(&held) {
            let row = &h["whole_instance"];
            assert_eq!(row["cooldown_secs"], 400);
            let early = row["scale_ins_within_cooldown"].as_u64().unwrap();
            let Some(bound) = row["instance_hours"].as_f64() else {
                assert!(early > 0, "{h}");
                broke += 1;
                continue;
            };
            kept += 1;
            let free = r["whole_instance"]["instance_hours"].as_f64().unwrap();
            above += usize::from(tighter_bound_holds(free, bound, h));
        }
        assert!(kept > 0 && broke > 0, "{held:?}");
        // After the burst the fleet must keep its instances 400 s after the last launch.
        assert!(above > 0, "{held:?}");
        let text = simulate(&[
            "--trace",
            trace_arg,
            "--whole-instance-bound",
            "--bound-reactive",
            "300s",
            "--bound-cooldown",
            "400s",
        ])
        .unwrap();
        assert!(text.contains("reactive≤300s+cooldown 400s@age"), "{text}");
        assert!(text.contains("n/a"), "{text}");
        std::fs::remove_file(trace).unwrap();
    }

    #[test]
    fn whole_instance_bound_refuses_what_it_cannot_bound() {
        let cases: [(&[&str], &str); 6] = [
            (
                &["--whole-instance-bound", "--bound-cooldown", "300s"],
                "--bound-reactive",
            ),
            (&["--bound-actions", "3"], "--whole-instance-bound"),
            (&["--bound-reactive", "300s"], "--whole-instance-bound"),
            (
                &[
                    "--boot-spread",
                    "30s",
                    "--whole-instance-bound",
                    "--bound-reactive",
                    "300s",
                ],
                "--boot-spread 0s",
            ),
            (
                &["--processing", "exponential", "--whole-instance-bound"],
                "--processing fixed",
            ),
            (
                &[
                    "--boot-spread",
                    "30s",
                    "--whole-instance-bound",
                    "--bound-actions",
                    "3",
                ],
                "--boot-spread 0s",
            ),
        ];
        for (extra, hint) in cases {
            let mut argv = vec!["--trace", "TRACES/peak.csv"];
            argv.extend_from_slice(extra);
            let error = simulate(&argv).unwrap_err();
            assert!(format!("{error:#}").contains(hint), "{extra:?}: {error:#}");
        }
    }

    #[test]
    fn service_rates_are_exact() {
        assert_eq!(super::parse_rate_milli("5").unwrap(), 5000);
        assert_eq!(super::parse_rate_milli("2.5").unwrap(), 2500);
        assert_eq!(super::parse_rate_milli("0.125").unwrap(), 125);
        assert!(super::parse_rate_milli("1e3").is_err());
        assert!(super::parse_rate_milli("0.0001").is_err());
    }
}
