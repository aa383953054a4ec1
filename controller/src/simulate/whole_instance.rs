//! The whole-instance bound: the fluid [`super::clairvoyant_bound`] made
//! to pay what every real fleet pays.
//!
//! The clairvoyant bound lets capacity appear the second work needs it, in
//! fractions of an instance. No fleet can do that, so a policy's ratio to it
//! mixes what the policy wastes with what booting and rounding cost anyone.
//! This bound is exact over whole instances and charges each instance its
//! boot, so the ratio to it is what a policy leaves on the table.
//!
//! # Why it is a lower bound
//!
//! Take any run of the simulator with fixed processing times, and let
//! `n(t)` be its in-service count in second `t` (between `min` and `max`,
//! starting from the initial fleet):
//!
//! * It pays for every running instance: the in-service ones, `Σ n(t)`, and
//!   the booting ones. Each instance that ever goes into service was paid for
//!   at least `boot` seconds before its first second in service (the engine
//!   launches at the end of a second, so that is its boot delay less one), and
//!   each rise of `n` by `d` needs `d` such instances: at least
//!   `boot × Σ max(0, n(t) − n(t − 1))` booting seconds.
//! * It completes at most `ceil(n(t) × service rate)` messages in second `t`
//!   (the engine's service credit never carries more than a message's
//!   fraction), oldest first at best, so its queue is at least the queue of a
//!   fleet that completes exactly that many.
//! * Its worst age is at most `age` only if at the end of each second every
//!   message that arrived more than `age` seconds earlier is done.
//! * Each change of `n` is a scaling action of its own: a rise at `t` comes
//!   from the launch at `t − boot` (with no boot spread), a fall from a
//!   termination at `t`.
//! * What is left when the trace ends costs at least `1 ÷ service rate`
//!   instance-seconds per message to finish.
//!
//! The bound is the minimum of that cost over every such `n(t)`, found
//! exactly by dynamic programming over (in-service count, queue length, and,
//! with an action budget, changes so far). So every run whose worst age is
//! at most `age` (and with a budget, whose action count is within it) costs
//! at least the bound. Poisson service can complete more than the rate in
//! a second, so the bound is not defined for it.
//!
//! # Fleets that react
//!
//! An all-knowing fleet launches 90 s before a burst it knows is coming. No
//! policy compared here can: each launches after it has seen load. The
//! reactive bound ([`reactive_bound`]) keeps everything above except the
//! knowledge of when load begins: the in-service count may rise only from a
//! launch made within `within` seconds after a second whose arrivals exceed
//! what the minimum fleet completes in a second (an overload), and it still
//! knows how large and how long each burst is. It bounds every run whose
//! launches all lie in such windows ([`launches_outside`] counts the others),
//! so the gap between it and the whole-instance bound is what knowing when
//! bursts begin is worth, and the gap between a policy and it is what the
//! policy loses by not knowing their size and end, plus its own rules.
//!
//! # Fleets that keep a cooldown
//!
//! Ballast's policies hold every scale-in for the seed's 300 s after any
//! scaling action. With a [`Cooldown`] the reactive bound ranges only over
//! fleets that keep it too: no fall of the in-service count within the
//! cooldown of the last launch (a rise `boot + 1` seconds after it) or
//! termination (a fall). The state gains the hold still to run, in steps of
//! `step_secs`, each rounded down and ended at the next multiple of the step,
//! so every hold the bound allows ends no later than the fleet's own: a
//! relaxation, still a lower bound, and exact at a step of 1 s. It bounds
//! every run that reacted and whose scale-ins all kept the cooldown
//! ([`scale_ins_within_cooldown`] counts the others), so the gap between it
//! and the reactive bound is what the cooldown costs a fleet that knew each
//! burst's size and end.
//!
//! Cost: `O(trace seconds × queue states × fleet sizes × (budget + 1) ×
//! hold steps)`, a few seconds on a release build for a 6-hour trace without
//! a cooldown.

use serde::Serialize;

/// The fleet a bound is computed for: the group's limits, the capacity it
/// starts with (in service), and how long an instance is paid for before its
/// first second in service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FleetShape {
    pub min: u32,
    pub max: u32,
    pub initial: u32,
    pub boot_secs: u64,
}

/// The whole-instance bound of one trace at one age.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WholeInstanceBound {
    /// The fewest instance-seconds (in service, booting, and finishing what
    /// is left when the trace ends).
    pub instance_seconds: u64,
}

impl WholeInstanceBound {
    pub fn instance_hours(&self) -> f64 {
        self.instance_seconds as f64 / 3600.0
    }
}

/// The size of one bound's tables: the cells of each of its two tables
/// (budget × queue length × fleet size), and the cell updates over the trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundSize {
    pub cells: u128,
    pub updates: u128,
}

/// The largest tables [`whole_instance_bound`] builds: two of 8 Mi cells,
/// 128 MiB.
pub const MAX_CELLS: u128 = 8 << 20;
/// The most cell updates it performs: 3–5 minutes on a release build, which
/// does 0.7–1.3 × 10⁸ a second (spiky with a 12-action budget is 9.5 × 10⁸
/// per policy, business-day with a 42-action budget 7 × 10⁹).
pub const MAX_UPDATES: u128 = 20_000_000_000;

/// A bound too large to compute here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the whole-instance bound would need {} cells per table and {} updates (at most {MAX_CELLS} \
     and {MAX_UPDATES}) (hint: a shorter trace, a lower --bound-actions, or a policy whose \
     worst age is lower)",
    .0.cells,
    .0.updates
)]
pub struct TooLarge(pub BoundSize);

/// The size of the tables [`whole_instance_bound`] would build.
pub fn bound_size(
    arrivals: &[u64],
    fleet: FleetShape,
    age_secs: u64,
    max_actions: Option<u32>,
) -> BoundSize {
    let levels = u128::from(fleet.max.max(fleet.min) - fleet.min) + 1;
    let budgets = u128::from(max_actions.unwrap_or(0)) + 1;
    let limits = queue_limits(arrivals, age_secs);
    let widest = limits
        .iter()
        .copied()
        .max()
        .map_or(1, |w| u128::from(w) + 1);
    let rows: u128 = limits.iter().map(|&w| u128::from(w) + 1).sum();
    BoundSize {
        cells: widest.saturating_mul(levels).saturating_mul(budgets),
        updates: rows.saturating_mul(levels).saturating_mul(budgets),
    }
}

/// The fewest instance-seconds with which any fleet of whole instances,
/// knowing the whole trace, keeps every message at most `age_secs` old (see
/// the module documentation for why every simulated run costs at least
/// this). With `max_actions`, only fleets that change their in-service count
/// at most that many times count.
///
/// `Ok(None)` when no such fleet exists: even `max` instances, or the action
/// budget, cannot keep the age. Refused when its tables would exceed
/// [`MAX_CELLS`] or [`MAX_UPDATES`].
pub fn whole_instance_bound(
    arrivals: &[u64],
    fleet: FleetShape,
    service_rate_milli: u64,
    age_secs: u64,
    max_actions: Option<u32>,
) -> Result<Option<WholeInstanceBound>, TooLarge> {
    bounded(
        arrivals,
        fleet,
        service_rate_milli,
        age_secs,
        Rules {
            max_actions,
            ..Rules::default()
        },
    )
}

/// [`whole_instance_bound`] over the fleets that react: their in-service
/// count rises only from launches made within `within_secs` after an overload
/// second (see the module documentation). At least the whole-instance bound.
///
/// With a `cooldown`, only the fleets that also keep it count: no instance
/// leaves service within the cooldown of the last launch or termination.
pub fn reactive_bound(
    arrivals: &[u64],
    fleet: FleetShape,
    service_rate_milli: u64,
    age_secs: u64,
    max_actions: Option<u32>,
    within_secs: u64,
    cooldown: Option<Cooldown>,
) -> Result<Option<WholeInstanceBound>, TooLarge> {
    let overloads = LastOverload::new(arrivals, fleet.min, service_rate_milli);
    // A launch at the end of second `l` is in service from `l + boot + 1`.
    let rises: Vec<bool> = (0..arrivals.len())
        .map(|s| {
            s.checked_sub(usize::try_from(fleet.boot_secs).unwrap_or(usize::MAX))
                .and_then(|l| l.checked_sub(1))
                .is_some_and(|launch| overloads.launch_allowed(launch, within_secs))
        })
        .collect();
    bounded(
        arrivals,
        fleet,
        service_rate_milli,
        age_secs,
        Rules {
            max_actions,
            rises: Some(&rises),
            hold: cooldown.map(|c| HoldSteps::new(c.secs, c.step_secs, fleet.boot_secs)),
        },
    )
}

/// The step in which `ballast simulate --bound-cooldown` counts a cooldown:
/// each hold is at most 10 s shorter than the fleet's, and the tables are
/// 31 times larger for a 300 s cooldown.
pub const COOLDOWN_STEP_SECS: u64 = 10;

/// A scale-in cooldown a fleet keeps: no instance leaves service within
/// `secs` of the last launch or termination. The bound counts it in steps of
/// `step_secs`, rounding each hold down (a coarser step is cheaper to compute
/// and lets the bound's fleets leave sooner, so it stays a lower bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Cooldown {
    pub secs: u64,
    pub step_secs: u64,
}

/// How many of a run's scale-outs (`launches`: the seconds at whose end each
/// one launched) lie outside the windows [`reactive_bound`] allows, so that
/// the bound does not apply to the run.
pub fn launches_outside(
    arrivals: &[u64],
    min: u32,
    service_rate_milli: u64,
    within_secs: u64,
    launches: impl IntoIterator<Item = u64>,
) -> usize {
    let overloads = LastOverload::new(arrivals, min, service_rate_milli);
    launches
        .into_iter()
        .filter(|&t| {
            !usize::try_from(t).is_ok_and(|launch| overloads.launch_allowed(launch, within_secs))
        })
        .count()
}

/// How many of a run's scale-ins come within `cooldown_secs` of the action
/// before them (a launch or a termination), so that a bound with that
/// [`Cooldown`] does not apply to the run. `actions` are the run's actions in
/// order: the second at whose end each was taken, and whether it scaled in.
pub fn scale_ins_within_cooldown(
    cooldown_secs: u64,
    actions: impl IntoIterator<Item = (u64, bool)>,
) -> usize {
    let mut last: Option<u64> = None;
    let mut early = 0;
    for (t, scale_in) in actions {
        if scale_in && last.is_some_and(|l| t.saturating_sub(l) < cooldown_secs) {
            early += 1;
        }
        last = Some(t);
    }
    early
}

/// For each second, the latest second up to it whose arrivals exceed what
/// the minimum fleet completes in a second.
struct LastOverload(Vec<Option<usize>>);

impl LastOverload {
    fn new(arrivals: &[u64], min: u32, service_rate_milli: u64) -> Self {
        let floor = u64::from(min)
            .saturating_mul(service_rate_milli)
            .div_ceil(1000);
        let mut last = None;
        LastOverload(
            arrivals
                .iter()
                .enumerate()
                .map(|(t, &n)| {
                    if n > floor {
                        last = Some(t);
                    }
                    last
                })
                .collect(),
        )
    }

    /// Whether a launch at the end of second `launch` follows an overload by
    /// at most `within_secs` (seconds past the trace see its last overload).
    fn launch_allowed(&self, launch: usize, within_secs: u64) -> bool {
        let seen = self.0.get(launch).or(self.0.last()).copied().flatten();
        seen.is_some_and(|o| {
            u64::try_from(launch.saturating_sub(o)).is_ok_and(|gap| gap <= within_secs)
        })
    }
}

/// A scale-in hold in the bound's steps: after a rise no fall for
/// `after_rise` steps, after a fall none for `after_fall` steps, counted at
/// each second that is a multiple of `step_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HoldSteps {
    step_secs: u64,
    after_rise: usize,
    after_fall: usize,
}

impl HoldSteps {
    /// The steps of a cooldown of `cooldown_secs` after every action, as the
    /// launch or termination that makes it, for instances that boot
    /// `boot_secs`. Each hold is rounded down to whole steps, and a step
    /// ends at the next multiple of `step_secs`: the bound's holds end no
    /// later than the fleet's, so it never asks more of a fleet than the
    /// cooldown does.
    fn new(cooldown_secs: u64, step_secs: u64, boot_secs: u64) -> Self {
        let step_secs = step_secs.max(1);
        // A launch at the end of second l is in service from l + boot + 1; a
        // termination at the end of second e takes the instance out from
        // e + 1. So a fall may follow a rise by cooldown − boot seconds, and
        // a fall by cooldown.
        let after_rise = cooldown_secs.saturating_sub(boot_secs) / step_secs;
        let after_fall = cooldown_secs / step_secs;
        // A hold too long to count makes tables too large to build, which the
        // size check refuses.
        HoldSteps {
            step_secs,
            after_rise: usize::try_from(after_rise).unwrap_or(usize::MAX),
            after_fall: usize::try_from(after_fall).unwrap_or(usize::MAX),
        }
    }

    fn states(&self) -> usize {
        self.after_rise.max(self.after_fall).saturating_add(1)
    }
}

/// What limits the fleets a bound ranges over, beyond the group's size.
#[derive(Debug, Clone, Copy, Default)]
struct Rules<'a> {
    /// At most this many changes of the in-service count.
    max_actions: Option<u32>,
    /// The in-service count rises only in the seconds marked `true`.
    rises: Option<&'a [bool]>,
    /// No fall within a cooldown of the last change.
    hold: Option<HoldSteps>,
}

/// The size check, then the dynamic programme.
fn bounded(
    arrivals: &[u64],
    fleet: FleetShape,
    service_rate_milli: u64,
    age_secs: u64,
    rules: Rules<'_>,
) -> Result<Option<WholeInstanceBound>, TooLarge> {
    let mut size = bound_size(arrivals, fleet, age_secs, rules.max_actions);
    if let Some(hold) = rules.hold {
        let states = u128::try_from(hold.states()).unwrap_or(u128::MAX);
        size.cells = size.cells.saturating_mul(states);
        size.updates = size.updates.saturating_mul(states);
    }
    if size.cells > MAX_CELLS || size.updates > MAX_UPDATES {
        return Err(TooLarge(size));
    }
    Ok(optimum(
        arrivals,
        fleet,
        service_rate_milli,
        age_secs,
        rules,
    ))
}

/// The dynamic programme of [`whole_instance_bound`], on tables known to fit
/// (so its index conversions cannot fail; `None` means no fleet keeps the age).
fn optimum(
    arrivals: &[u64],
    fleet: FleetShape,
    service_rate_milli: u64,
    age_secs: u64,
    rules: Rules<'_>,
) -> Option<WholeInstanceBound> {
    let min = fleet.min;
    let max = fleet.max.max(min);
    let levels = usize::try_from(max - min).ok()?.checked_add(1)?;
    let budgets = match rules.max_actions {
        Some(k) => usize::try_from(k).ok()?.checked_add(1)?,
        None => 1,
    };
    let holds = rules.hold.map_or(1, |h| h.states());
    // One row of the table: every (level, hold) of one queue length and budget.
    let row_len = levels.checked_mul(holds)?;
    let start = usize::try_from(fleet.initial.clamp(min, max) - min).ok()? * holds;
    // Messages the fleet completes in one second at each size.
    let capacity: Vec<u64> = (min..=max)
        .map(|n| (u64::from(n).saturating_mul(service_rate_milli)).div_ceil(1000))
        .collect();
    // The longest queue allowed at the end of each second: the arrivals of
    // the last `age_secs + 1` seconds.
    let limits = queue_limits(arrivals, age_secs);
    let width = usize::try_from(limits.iter().copied().max().unwrap_or(0))
        .ok()?
        .checked_add(1)?;
    let stride = width.checked_mul(row_len)?;
    let cells = stride.checked_mul(budgets)?;

    // cost[budget_used][queue][level][hold], u64::MAX where unreachable.
    let mut cost = vec![UNREACHABLE; cells];
    let mut next = vec![UNREACHABLE; cells];
    *cost.get_mut(start)? = 0;
    let mut longest = 0usize; // the longest queue reached so far
    // Per (level, hold): best cost arriving at it without a change, and with one.
    let mut stay = vec![UNREACHABLE; row_len];
    let mut change = vec![UNREACHABLE; row_len];

    for (second, (&arrived, &limit)) in arrivals.iter().zip(&limits).enumerate() {
        let may_rise = rules
            .rises
            .is_none_or(|r| r.get(second).copied().unwrap_or(false));
        let step_ends = rules.hold.filter(|h| {
            u64::try_from(second).is_ok_and(|s| s > 0 && s.is_multiple_of(h.step_secs))
        });
        let limit = usize::try_from(limit).ok()?;
        let mut next_longest = 0usize;
        let mut reached = false;
        // Only queues up to `limit` can be written this second, and only those
        // up to the longest one reached are read the next.
        let rows = limit.checked_add(1)?.checked_mul(row_len)?;
        for used in 0..budgets {
            let from = used * stride;
            next.get_mut(from..from + rows)?.fill(UNREACHABLE);
        }
        for used in 0..budgets {
            for queue in 0..=longest {
                let base = used * stride + queue * row_len;
                let row = cost.get_mut(base..base + row_len)?;
                if row.iter().all(|&c| c == UNREACHABLE) {
                    continue;
                }
                if step_ends.is_some() {
                    count_down(row, holds);
                }
                best_arrivals(
                    row,
                    holds,
                    fleet.boot_secs,
                    may_rise,
                    rules.hold,
                    &mut stay,
                    &mut change,
                );
                let waiting = u64::try_from(queue).ok()?.saturating_add(arrived);
                // Without a budget, changes stay in the one layer.
                let after_change = if rules.max_actions.is_some() {
                    used + 1
                } else {
                    used
                };
                for level in 0..levels {
                    let left = waiting.saturating_sub(*capacity.get(level)?);
                    let Ok(left) = usize::try_from(left) else {
                        continue;
                    };
                    if left > limit {
                        continue;
                    }
                    let paid = u64::from(min) + u64::try_from(level).ok()?;
                    for hold in 0..holds {
                        let cell = level * holds + hold;
                        for (layer, best) in
                            [(used, stay.get(cell)?), (after_change, change.get(cell)?)]
                        {
                            if *best == UNREACHABLE || layer >= budgets {
                                continue;
                            }
                            let total = best.saturating_add(paid);
                            let index = layer * stride + left * row_len + cell;
                            let slot = next.get_mut(index)?;
                            if total < *slot {
                                *slot = total;
                                next_longest = next_longest.max(left);
                                reached = true;
                            }
                        }
                    }
                }
            }
        }
        std::mem::swap(&mut cost, &mut next);
        longest = next_longest;
        if !reached {
            return None;
        }
    }

    let mut best = UNREACHABLE;
    for used in 0..budgets {
        for queue in 0..=longest {
            let finish = (u64::try_from(queue).ok()?.saturating_mul(1000))
                .div_ceil(service_rate_milli.max(1));
            let base = used * stride + queue * row_len;
            for &c in cost.get(base..base + row_len)? {
                if c != UNREACHABLE {
                    best = best.min(c.saturating_add(finish));
                }
            }
        }
    }
    (best != UNREACHABLE).then_some(WholeInstanceBound {
        instance_seconds: best,
    })
}

const UNREACHABLE: u64 = u64::MAX;

/// For each second, the arrivals of that second and the `age_secs` before it.
fn queue_limits(arrivals: &[u64], age_secs: u64) -> Vec<u64> {
    let span = usize::try_from(age_secs.saturating_add(1)).unwrap_or(usize::MAX);
    let mut sum: u64 = 0;
    let mut limits = Vec::with_capacity(arrivals.len());
    for (t, &n) in arrivals.iter().enumerate() {
        sum = sum.saturating_add(n);
        if let Some(old) = t.checked_sub(span).and_then(|i| arrivals.get(i)) {
            sum = sum.saturating_sub(*old);
        }
        limits.push(sum);
    }
    limits
}

/// One step of every hold in a row (`holds` per level) ends: each cell
/// moves one hold down, the cheaper kept where two meet at zero.
fn count_down(row: &mut [u64], holds: usize) {
    if holds < 2 {
        return;
    }
    for cells in row.chunks_mut(holds) {
        let Some(first) = cells.first().copied() else {
            continue;
        };
        let second = cells.get(1).copied().unwrap_or(UNREACHABLE);
        if let Some(zero) = cells.first_mut() {
            *zero = first.min(second);
        }
        cells.copy_within(2.., 1);
        if let Some(last) = cells.last_mut() {
            *last = UNREACHABLE;
        }
    }
}

/// From the costs of one queue length at each previous (level, hold), the
/// best cost of arriving at each: `stay` at the same level (no action), and
/// `change` from any other (one action; a rise pays `boot` per instance, and
/// is possible only if `may_rise`; with a `hold`, a fall only from hold 0,
/// and each change starts its hold).
fn best_arrivals(
    previous: &[u64],
    holds: usize,
    boot: u64,
    may_rise: bool,
    hold: Option<HoldSteps>,
    stay: &mut [u64],
    change: &mut [u64],
) {
    let levels = previous.len() / holds.max(1);
    let at = |level: usize, h: usize| {
        previous
            .get(level * holds + h)
            .copied()
            .unwrap_or(UNREACHABLE)
    };
    stay.copy_from_slice(previous);
    change.fill(UNREACHABLE);
    let (after_rise, after_fall) = hold.map_or((0, 0), |h| (h.after_rise, h.after_fall));
    if may_rise {
        // Rising from below: min over lower p of cost(p) + boot × (level − p),
        // for each hold it rises from; the hold becomes at least `after_rise`.
        for h in 0..holds {
            let into = h.max(after_rise);
            let mut rising = UNREACHABLE;
            for level in 0..levels {
                if let Some(slot) = change.get_mut(level * holds + into) {
                    *slot = (*slot).min(rising);
                }
                // One more instance to boot for every candidate; UNREACHABLE saturates.
                rising = rising.min(at(level, h)).saturating_add(boot);
            }
        }
    }
    // Falling from above, free, only once the hold is over: min over higher p
    // of cost(p) at hold 0; the hold becomes `after_fall`.
    let mut falling = UNREACHABLE;
    for level in (0..levels).rev() {
        if let Some(slot) = change.get_mut(level * holds + after_fall) {
            *slot = (*slot).min(falling);
        }
        falling = falling.min(at(level, 0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE_PER_SECOND: u64 = 1000;

    fn shape(min: u32, max: u32, boot_secs: u64) -> FleetShape {
        FleetShape {
            min,
            max,
            initial: min,
            boot_secs,
        }
    }

    /// Every in-service sequence, costed by the rules the module states.
    fn brute_force(
        arrivals: &[u64],
        fleet: FleetShape,
        rate_milli: u64,
        age: u64,
        max_actions: Option<u32>,
    ) -> Option<u64> {
        brute_force_rising(
            arrivals,
            fleet,
            rate_milli,
            age,
            max_actions,
            |_| true,
            None,
        )
    }

    /// [`brute_force`] over the sequences that rise only in the seconds `may_rise` allows.
    fn brute_force_rising(
        arrivals: &[u64],
        fleet: FleetShape,
        rate_milli: u64,
        age: u64,
        max_actions: Option<u32>,
        may_rise: impl Fn(usize) -> bool,
        cooldown_secs: Option<u64>,
    ) -> Option<u64> {
        let limits = queue_limits(arrivals, age);
        let sizes: Vec<u32> = (fleet.min..=fleet.max).collect();
        let mut best: Option<u64> = None;
        let count = sizes.len().pow(arrivals.len() as u32);
        'sequence: for code in 0..count {
            let (mut rest, mut previous, mut queue) = (code, fleet.initial, 0u64);
            let (mut paid, mut actions) = (0u64, 0u32);
            // The first second in which an instance may leave service.
            let mut held_until = 0u64;
            for (second, (&arrived, &limit)) in arrivals.iter().zip(&limits).enumerate() {
                let n = sizes[rest % sizes.len()];
                rest /= sizes.len();
                if n > previous && !may_rise(second) {
                    continue 'sequence;
                }
                if let Some(cooldown) = cooldown_secs {
                    let now = second as u64;
                    if n < previous {
                        if now < held_until {
                            continue 'sequence;
                        }
                        held_until = now + cooldown;
                    } else if n > previous {
                        // Launched boot + 1 seconds ago.
                        held_until = held_until.max(now + cooldown.saturating_sub(fleet.boot_secs));
                    }
                }
                if n != previous {
                    actions += 1;
                }
                paid += u64::from(n) + fleet.boot_secs * u64::from(n.saturating_sub(previous));
                queue =
                    (queue + arrived).saturating_sub((u64::from(n) * rate_milli).div_ceil(1000));
                if queue > limit {
                    continue 'sequence;
                }
                previous = n;
            }
            if max_actions.is_some_and(|k| actions > k) {
                continue;
            }
            let total = paid + (queue * 1000).div_ceil(rate_milli);
            best = Some(best.map_or(total, |b| b.min(total)));
        }
        best
    }

    #[test]
    fn a_burst_pays_the_boot_of_each_extra_instance() {
        // Age 0 lets a message wait until the end of the second it arrived in.
        // The cheapest fleet is 1, 1, 2, 2, 2, 1: queues 0, 0, 1, 2, 1, 1 fit
        // each second's arrivals; 9 instance-seconds in service, one boot of 5 s,
        // and 1 message left to finish: 15.
        let arrivals = [1, 1, 3, 3, 1, 1];
        let fleet = shape(1, 3, 5);
        let bound = |age, budget| {
            whole_instance_bound(&arrivals, fleet, ONE_PER_SECOND, age, budget)
                .unwrap()
                .map(|b| b.instance_seconds)
        };
        assert_eq!(bound(0, None), Some(15));
        // One action: 1, 1, 2, 2, 2, 2 costs as much (10 + 5, nothing left).
        assert_eq!(bound(0, Some(1)), Some(15));
        // No action: the queue reaches 4 in second 3, above its 3 arrivals.
        assert_eq!(bound(0, Some(0)), None);
        // With 2 s of slack the minimum fleet keeps the age (queues 0, 0, 2,
        // 4, 4, 4 within 5, 7, 7, 5): 6 instance-seconds and 4 messages left.
        assert_eq!(bound(2, Some(0)), Some(10));
        // Without boot time the burst costs only the instance-seconds.
        let free_boot =
            whole_instance_bound(&arrivals, shape(1, 3, 0), ONE_PER_SECOND, 0, None).unwrap();
        assert_eq!(free_boot.map(|b| b.instance_seconds), Some(10));
        // A burst above what the maximum fleet can keep: no bound.
        assert_eq!(
            whole_instance_bound(&[9, 9, 9], fleet, ONE_PER_SECOND, 0, None),
            Ok(None)
        );
    }

    /// 60 small random cases: 7 seconds of arrivals below `top` (xorshift from `seed`), and a
    /// fleet of 1–3 starting at 1–3 with a boot below `boots`, so that every in-service sequence
    /// can be tried.
    fn small_cases(
        mut seed: u64,
        top: u64,
        boots: u32,
    ) -> impl Iterator<Item = (u32, Vec<u64>, FleetShape)> {
        (0..60u32).map(move |case| {
            let arrivals = (0..7)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed % top
                })
                .collect();
            let fleet = FleetShape {
                min: 1,
                max: 3,
                initial: 1 + (case % 3),
                boot_secs: u64::from(case % boots),
            };
            (case, arrivals, fleet)
        })
    }

    #[test]
    fn the_dynamic_programme_matches_every_sequence_tried() {
        // All sequences of 3 fleet sizes over 7 seconds.
        for (case, arrivals, fleet) in small_cases(0x2545_F491_4F6C_DD1D, 9, 4) {
            let rate = [1000, 1500, 2000][case as usize % 3];
            let age = u64::from(case % 4);
            for budget in [None, Some(0), Some(1), Some(3)] {
                assert_eq!(
                    whole_instance_bound(&arrivals, fleet, rate, age, budget)
                        .unwrap()
                        .map(|b| b.instance_seconds),
                    brute_force(&arrivals, fleet, rate, age, budget),
                    "case {case}: {arrivals:?} {fleet:?} rate {rate} age {age} budget {budget:?}"
                );
            }
        }
    }

    /// Whether a fleet that reacts within `within` may rise in second `s`: the rise comes from
    /// the launch at the end of `s − boot − 1`, which must follow an overload second (more
    /// arrivals than `floor`, what the minimum fleet completes) by at most `within`.
    fn reacting(
        arrivals: &[u64],
        boot_secs: u64,
        floor: u64,
        within: u64,
    ) -> impl Fn(usize) -> bool + Copy + '_ {
        move |s| {
            let Some(launch) = s.checked_sub(boot_secs as usize + 1) else {
                return false;
            };
            (0..=launch)
                .rev()
                .find(|&o| arrivals[o] > floor)
                .is_some_and(|o| (launch - o) as u64 <= within)
        }
    }

    #[test]
    fn the_reactive_bound_matches_every_sequence_that_rises_after_an_overload() {
        // As above, with the rises a launch after an overload allows.
        for (case, arrivals, fleet) in small_cases(0x9E37_79B9_7F4A_7C15, 7, 3) {
            let rate = [1000, 2000][case as usize % 2];
            let age = u64::from(case % 4);
            let within = u64::from(case % 3);
            let may_rise = reacting(&arrivals, fleet.boot_secs, rate / 1000, within);
            for budget in [None, Some(1)] {
                let reactive = reactive_bound(&arrivals, fleet, rate, age, budget, within, None)
                    .unwrap()
                    .map(|b| b.instance_seconds);
                assert_eq!(
                    reactive,
                    brute_force_rising(&arrivals, fleet, rate, age, budget, may_rise, None),
                    "case {case}: {arrivals:?} {fleet:?} rate {rate} age {age} within {within}"
                );
                // Fewer fleets to choose from: never below the whole-instance bound.
                let whole = whole_instance_bound(&arrivals, fleet, rate, age, budget)
                    .unwrap()
                    .map(|b| b.instance_seconds);
                match (reactive, whole) {
                    (Some(r), Some(w)) => assert!(r >= w, "case {case}"),
                    (Some(_), None) => panic!("case {case}: reactive without whole"),
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn the_cooldown_bound_matches_every_sequence_that_keeps_the_cooldown() {
        // As above, with a scale-in cooldown after every launch and termination: counted to the
        // second it is exact; counted in coarser steps it lets fleets leave sooner, so it is
        // between the bound without a cooldown and the exact one.
        let (mut binding, mut coarser) = (0, 0);
        for (case, arrivals, fleet) in small_cases(0xD1B5_4A32_D192_ED03, 7, 3) {
            let rate = [1000, 2000][case as usize % 2];
            let age = u64::from(case % 3);
            let within = 6;
            let may_rise = reacting(&arrivals, fleet.boot_secs, rate / 1000, within);
            let secs = u64::from(case % 5);
            let bound = |step_secs, budget| {
                reactive_bound(
                    &arrivals,
                    fleet,
                    rate,
                    age,
                    budget,
                    within,
                    Some(Cooldown { secs, step_secs }),
                )
                .unwrap()
                .map(|b| b.instance_seconds)
            };
            for budget in [None, Some(1)] {
                let exact =
                    brute_force_rising(&arrivals, fleet, rate, age, budget, may_rise, Some(secs));
                // None (no fleet keeps the age) is above every cost.
                assert_eq!(
                    bound(1, budget),
                    exact,
                    "case {case}: {arrivals:?} {fleet:?} rate {rate} age {age} cooldown {secs}"
                );
                let rank = |c: Option<u64>| c.unwrap_or(u64::MAX);
                let free = reactive_bound(&arrivals, fleet, rate, age, budget, within, None)
                    .unwrap()
                    .map(|b| b.instance_seconds);
                for step in [2, 3] {
                    let coarse = bound(step, budget);
                    assert!(rank(free) <= rank(coarse), "case {case} step {step}");
                    assert!(rank(coarse) <= rank(exact), "case {case} step {step}");
                    coarser += usize::from(rank(coarse) < rank(exact));
                }
                binding += usize::from(rank(free) < rank(exact));
            }
        }
        // The cooldown costs some fleets, and the coarse steps give some of it back.
        assert!(binding >= 5, "{binding} {coarser}");
        assert!(coarser >= 3, "{coarser}");
    }

    #[test]
    fn a_fleet_that_reacts_meets_a_burst_late() {
        // Three quiet seconds, then 3 a second against a minimum fleet of 1 (1 a second), boot 1
        // (in service two seconds after the end of the launch's second), age 0. Knowing the
        // burst, a fleet launches at the end of second 1 and runs 1, 1, 1, 2, 2, 2: queues 0, 0,
        // 0, 1, 2, 3 (each within its second's arrivals), 9 in service, 1 boot and 3 left: 13.
        let arrivals = [1, 1, 1, 3, 3, 3];
        let fleet = shape(1, 3, 1);
        let whole = whole_instance_bound(&arrivals, fleet, ONE_PER_SECOND, 0, None).unwrap();
        assert_eq!(whole.map(|b| b.instance_seconds), Some(13));
        // A fleet that reacts launches at the end of second 3 at the earliest (the first
        // overload), in service from second 5: the queue reaches 4 in second 4, past age 0.
        assert_eq!(
            reactive_bound(&arrivals, fleet, ONE_PER_SECOND, 0, None, 10, None).unwrap(),
            None
        );
        // Within 3 s: launches at the ends of seconds 3 and 4 follow an overload; one at the end
        // of second 1 comes before any, and one at second 9 (past the trace) is 4 s after the
        // last (second 5).
        assert_eq!(
            launches_outside(&arrivals, 1, ONE_PER_SECOND, 3, [3, 4, 1, 9]),
            2
        );
        assert_eq!(launches_outside(&arrivals, 1, ONE_PER_SECOND, 4, [9]), 0);
    }

    #[test]
    fn a_scale_in_within_the_cooldown_of_any_action_is_counted() {
        // Out at 0, in at 100 (100 s after), in at 450 (350 s), out at 500, in at 799 (299 s).
        let actions = [
            (0, false),
            (100, true),
            (450, true),
            (500, false),
            (799, true),
        ];
        assert_eq!(scale_ins_within_cooldown(300, actions), 2);
        assert_eq!(scale_ins_within_cooldown(299, actions), 1);
        assert_eq!(scale_ins_within_cooldown(0, actions), 0);
        // Launches are never held, and the first action has nothing before it.
        assert_eq!(scale_ins_within_cooldown(300, [(5, true), (6, false)]), 0);
    }

    #[test]
    fn work_left_at_the_end_is_paid_at_the_service_rate() {
        // 30 messages in the last second at age 10: the fleet of 1 pays that
        // second and 30 more instance-seconds to finish them.
        let bound = whole_instance_bound(&[0, 0, 30], shape(1, 1, 90), 1000, 10, None)
            .unwrap()
            .unwrap();
        assert_eq!(bound.instance_seconds, 3 + 29);
    }

    #[test]
    fn hostile_inputs_do_not_panic_and_oversized_tables_are_refused() {
        let huge = [u64::MAX, u64::MAX, 3];
        let fleet = FleetShape {
            min: 5,
            max: 2,
            initial: 0,
            boot_secs: u64::MAX,
        };
        // A queue the size of u64::MAX cannot be tabulated: refused, with its size.
        let refused = whole_instance_bound(&huge, fleet, 0, u64::MAX, Some(u32::MAX)).unwrap_err();
        assert!(refused.0.cells > MAX_CELLS);
        assert!(
            refused.to_string().contains("hint: a shorter trace"),
            "{refused}"
        );
        // A week at 1,000 msg/s and a 5-minute age: 301,001 queue lengths (the age's 301
        // seconds of arrivals, and none) × 9 sizes fit one table, but 10¹² updates do not.
        let week = vec![1000u64; 7 * 24 * 3600];
        let size = bound_size(&week, shape(2, 10, 90), 300, None);
        assert_eq!(size.cells, 301_001 * 9);
        assert!(size.updates > MAX_UPDATES);
        assert_eq!(
            whole_instance_bound(&week, shape(2, 10, 90), 5000, 300, None),
            Err(TooLarge(size))
        );
        // A cooldown of u64::MAX seconds counted every second (a step of 0 counts as 1) would
        // need a hold state per second of it: refused, not computed without the cooldown.
        let endless = Cooldown {
            secs: u64::MAX,
            step_secs: 0,
        };
        let refused = reactive_bound(&[3, 3], shape(1, 2, 1), 1000, 5, None, 10, Some(endless));
        assert!(refused.unwrap_err().0.cells > MAX_CELLS);
        // Nothing arrives: the empty trace costs nothing.
        assert_eq!(
            whole_instance_bound(&[], shape(2, 10, 90), 5000, 60, None)
                .unwrap()
                .map(|b| b.instance_seconds),
            Some(0)
        );
        // A boot that costs u64::MAX saturates: no rise is affordable, and the minimum
        // fleet keeps age 0 (queues 1, 2) and finishes the 2 left.
        let bound = whole_instance_bound(&[2, 2], shape(1, 2, u64::MAX), 1000, 0, None);
        assert_eq!(bound.unwrap().map(|b| b.instance_seconds), Some(4));
    }
}
