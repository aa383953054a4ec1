//! `ballast trace export`: a queue's CloudWatch history as an arrival trace
//! ([`super::trace`]'s format), so `ballast simulate` replays last week's
//! traffic against a policy before it is deployed.
//!
//! One row per minute from the queue's one-minute `AWS/SQS
//! NumberOfMessagesSent` sums (read with paginated `GetMetricData`, a day of
//! minutes per page); consecutive minutes with the same rate share a row.
//! A minute without a datapoint is 0 arrivals (CloudWatch publishes nothing
//! for an idle queue), as the file's header comment says.
//!
//! A trace's rate has at most three decimals, and `n / 60` messages per second
//! rarely does: each minute's rate is rounded down and the remainder carried
//! into the next minute (the last minute rounds up), so the simulator's
//! [`Trace::total_messages`](super::trace::Trace::total_messages) equals the
//! number of messages sent.
#![deny(clippy::arithmetic_side_effects)]

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use ballast_aws::AwsError;

use super::trace::TRACE_HEADER;
use crate::autoscale::reading::arrival_history;

/// Why a trace cannot be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("--since must be at least one minute, got {0:?}")]
    TooShort(Duration),
}

/// The whole minutes `[start, end)` that end no later than `now`, `since` back.
pub fn minute_range(now: SystemTime, since: Duration) -> Result<(SystemTime, u64), ExportError> {
    let now_secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let end_secs = now_secs.saturating_sub(now_secs.checked_rem(60).unwrap_or(0));
    let minutes = since.as_secs().checked_div(60).unwrap_or(0);
    if minutes == 0 {
        return Err(ExportError::TooShort(since));
    }
    let start_secs = end_secs.saturating_sub(minutes.saturating_mul(60));
    Ok((
        SystemTime::UNIX_EPOCH
            .checked_add(Duration::from_secs(start_secs))
            .unwrap_or(SystemTime::UNIX_EPOCH),
        end_secs
            .saturating_sub(start_secs)
            .checked_div(60)
            .unwrap_or(0),
    ))
}

/// The trace text for per-minute `counts` (from [`arrival_history`]) starting at `start`.
pub fn trace_csv(queue_name: &str, start: SystemTime, counts: &[u64]) -> String {
    let minutes = u64::try_from(counts.len()).unwrap_or(u64::MAX);
    let sent = counts
        .iter()
        .fold(0u64, |total, count| total.saturating_add(*count));
    let start_secs = start
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(out, "{TRACE_HEADER}");
    let _ = writeln!(
        out,
        "# ballast trace export: AWS/SQS NumberOfMessagesSent of queue {queue_name}, one-minute sums"
    );
    let _ = writeln!(
        out,
        "# from {start_secs} to {} (Unix seconds), {sent} messages; minutes without a datapoint are 0 arrivals",
        start_secs.saturating_add(minutes.saturating_mul(60))
    );
    // Carried remainder in milli-messages (always below 60).
    let mut carry: u64 = 0;
    let mut previous: Option<u64> = None;
    let last = counts.len().saturating_sub(1);
    for (i, count) in counts.iter().enumerate() {
        let owed = count.saturating_mul(1000).saturating_add(carry);
        let mut rate = owed.checked_div(60).unwrap_or(0);
        carry = owed.saturating_sub(rate.saturating_mul(60));
        if i == last && carry > 0 {
            rate = rate.saturating_add(1);
            carry = 0;
        }
        if previous != Some(rate) {
            let t = u64::try_from(i).unwrap_or(u64::MAX).saturating_mul(60);
            let _ = writeln!(out, "{t},{}.{:03}", rate / 1000, rate % 1000);
            previous = Some(rate);
        }
    }
    let _ = writeln!(out, "{},0", minutes.saturating_mul(60));
    out
}

/// Reads `since` of the queue's history ending at the last whole minute
/// before `now` and returns the trace text.
#[tracing::instrument(skip(cw))]
pub async fn export_trace(
    cw: &aws_sdk_cloudwatch::Client,
    queue_name: &str,
    since: Duration,
    now: SystemTime,
) -> Result<String, ExportError> {
    let (start, minutes) = minute_range(now, since)?;
    let counts = arrival_history(cw, queue_name, start, minutes).await?;
    Ok(trace_csv(queue_name, start, &counts))
}

#[cfg(test)]
#[allow(
    clippy::arithmetic_side_effects,
    reason = "tests compute expected values"
)]
mod tests {
    use super::*;
    use crate::autoscale::reading::per_minute;
    use crate::simulate::trace::Trace;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn counts_survive_the_three_decimal_rates_and_gaps_are_zero() {
        let start = at(6_000);
        // Minute 0: 100 messages, minute 1: none (no datapoint), minute 2: 1, minute 3: 7.
        let points = [(at(6_000), 100), (at(6_120), 1), (at(6_180), 7)];
        let text = trace_csv("q", start, &per_minute(start, 4, &points));
        let trace = Trace::parse(&text).unwrap();
        assert_eq!(trace.duration_secs(), 240);
        assert_eq!(trace.total_messages(), 108);
        assert_eq!(trace.rate_milli_at(60), 0, "{text}");
        assert!(text.contains("minutes without a datapoint are 0 arrivals"));
    }

    #[test]
    fn equal_minutes_share_a_row_and_the_range_is_whole_minutes() {
        let points: Vec<_> = (0..10).map(|m| (at(60 * m), 120)).collect();
        let text = trace_csv("q", at(0), &per_minute(at(0), 10, &points));
        assert_eq!(
            text.lines().filter(|l| !l.starts_with('#')).count(),
            3,
            "{text}"
        );
        assert!(text.contains("\n0,2.000\n600,0\n"), "{text}");
        let (start, minutes) =
            minute_range(at(7 * 86_400 + 59), Duration::from_secs(86_400)).unwrap();
        assert_eq!((start, minutes), (at(6 * 86_400), 1440));
        assert!(matches!(
            minute_range(at(100), Duration::from_secs(59)),
            Err(ExportError::TooShort(_))
        ));
    }
}
