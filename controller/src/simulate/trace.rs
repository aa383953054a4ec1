//! Arrival-rate traces: `seconds,arrivals_per_second` CSV files.
//!
//! ```text
//! seconds,arrivals_per_second
//! # comments and blank lines are ignored
//! 0,8
//! 600,22.5
//! 2400,8
//! 3600,0
//! ```
//!
//! * The first non-blank, non-comment line is the header, exactly
//!   `seconds,arrivals_per_second`.
//! * Each row is `seconds,rate`: from `seconds` (an integer offset from the
//!   start of the trace) messages arrive at `rate` messages per second
//!   (a non-negative decimal with at most three decimal places) until the
//!   next row's time.
//! * The first row's time must be 0 and times must strictly increase.
//! * The last row's time is the end of the trace; its rate is ignored
//!   (write 0). A trace therefore needs at least two rows.
//!
//! Rates are kept exactly as integer milli-messages per second. Arrivals in
//! each one-second step are whole messages: the fractional part carries over
//! to the next second, so a rate of 0.5 delivers one message every two
//! seconds and the total over the trace is `floor(Σ rate × seconds)`.

use std::path::Path;

use serde::Serialize;

/// Header line every trace starts with.
pub const TRACE_HEADER: &str = "seconds,arrivals_per_second";

/// A problem reading or parsing a trace. Parse errors name the 1-based line.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("cannot read trace {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("trace is empty: expected the header `{TRACE_HEADER}` and at least two rows")]
    Empty,
    #[error(
        "trace needs at least two rows (a start and an end time), found {rows}{}",
        last_line.map(|l| format!(" (last row on line {l})")).unwrap_or_default()
    )]
    TooFewRows {
        rows: usize,
        last_line: Option<usize>,
    },
}

/// One constant-rate stretch of a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Segment {
    /// Offset from the start of the trace, in seconds.
    pub start_secs: u64,
    /// Arrival rate in milli-messages per second (1000 = 1 message/s).
    pub rate_milli: u64,
}

/// A parsed arrival trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trace {
    segments: Vec<Segment>,
    end_secs: u64,
}

impl Trace {
    /// Builds a trace from segments (first must start at 0, strictly
    /// increasing starts, all before `end_secs`).
    pub fn new(segments: Vec<Segment>, end_secs: u64) -> Result<Self, TraceError> {
        let bad = |message: String| TraceError::Line { line: 0, message };
        match segments.first() {
            None => {
                return Err(TraceError::TooFewRows {
                    rows: 1,
                    last_line: None,
                });
            }
            Some(first) if first.start_secs != 0 => {
                return Err(bad("the first segment must start at 0".into()));
            }
            Some(_) => {}
        }
        for pair in segments.windows(2) {
            if let [a, b] = pair
                && b.start_secs <= a.start_secs
            {
                return Err(bad("segment starts must strictly increase".into()));
            }
        }
        if segments.last().is_some_and(|s| s.start_secs >= end_secs) {
            return Err(bad("the end must come after the last segment".into()));
        }
        Ok(Trace { segments, end_secs })
    }

    /// A trace with one constant rate (milli-messages/s) for `secs` seconds.
    pub fn constant(rate_milli: u64, secs: u64) -> Self {
        Trace {
            segments: vec![Segment {
                start_secs: 0,
                rate_milli,
            }],
            end_secs: secs.max(1),
        }
    }

    /// Parses the CSV format described in the module documentation.
    pub fn parse(text: &str) -> Result<Self, TraceError> {
        let mut header_seen = false;
        let mut rows: Vec<(usize, u64, u64)> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let content = raw.trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let err = |message: String| TraceError::Line { line, message };
            let fields: Vec<&str> = content.split(',').map(str::trim).collect();
            if !header_seen {
                if fields.join(",") != TRACE_HEADER {
                    return Err(err(format!(
                        "expected the header `{TRACE_HEADER}`, found `{content}`"
                    )));
                }
                header_seen = true;
                continue;
            }
            let &[secs_field, rate_field] = fields.as_slice() else {
                return Err(err(format!(
                    "expected 2 fields `seconds,arrivals_per_second`, found {} in `{content}`",
                    fields.len()
                )));
            };
            let secs: u64 = secs_field.parse().map_err(|_| {
                err(format!(
                    "seconds must be a non-negative integer, found `{secs_field}`"
                ))
            })?;
            let rate = parse_milli(rate_field)
                .map_err(|why| err(format!("arrivals_per_second {why}, found `{rate_field}`")))?;
            match rows.last() {
                None if secs != 0 => {
                    return Err(err(format!(
                        "the first row must be at 0 seconds, found {secs}"
                    )));
                }
                Some(&(prev_line, prev, _)) if secs <= prev => {
                    return Err(err(format!(
                        "seconds must strictly increase: {secs} is not after {prev} (line {prev_line})"
                    )));
                }
                _ => {}
            }
            rows.push((line, secs, rate));
        }
        if !header_seen {
            return Err(TraceError::Empty);
        }
        // The last row only marks the end; every row before it starts a segment.
        let (&(_, end_secs, _), starts) = match rows.split_last() {
            Some((last, starts)) if !starts.is_empty() => (last, starts),
            _ => {
                return Err(TraceError::TooFewRows {
                    rows: rows.len(),
                    last_line: rows.last().map(|r| r.0),
                });
            }
        };
        let segments = starts
            .iter()
            .map(|&(_, start_secs, rate_milli)| Segment {
                start_secs,
                rate_milli,
            })
            .collect();
        Ok(Trace { segments, end_secs })
    }

    /// Reads and parses a trace file.
    pub fn from_path(path: &Path) -> Result<Self, TraceError> {
        let text = std::fs::read_to_string(path).map_err(|source| TraceError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// The constant-rate stretches, in order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Length of the trace in seconds (the last row's time).
    pub fn duration_secs(&self) -> u64 {
        self.end_secs
    }

    /// Arrival rate (milli-messages/s) at second `t`; 0 at or after the end.
    pub fn rate_milli_at(&self, t: u64) -> u64 {
        if t >= self.end_secs {
            return 0;
        }
        // The first segment starts at 0, so some segment has started at any `t`.
        let started = self.segments.partition_point(|s| s.start_secs <= t);
        started
            .checked_sub(1)
            .and_then(|i| self.segments.get(i))
            .map_or(0, |s| s.rate_milli)
    }

    /// Messages that arrive over the whole trace:
    /// `floor(Σ rate × seconds)`, exactly what the simulator delivers.
    pub fn total_messages(&self) -> u64 {
        let mut milli: u128 = 0;
        for (i, s) in self.segments.iter().enumerate() {
            let end = self
                .segments
                .get(i + 1)
                .map_or(self.end_secs, |n| n.start_secs);
            milli += u128::from(s.rate_milli) * u128::from(end - s.start_secs);
        }
        u64::try_from(milli / 1000).unwrap_or(u64::MAX)
    }

    /// Highest rate in the trace, milli-messages/s.
    pub fn peak_rate_milli(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| s.rate_milli)
            .max()
            .unwrap_or(0)
    }
}

/// Parses a non-negative decimal with at most three decimals into
/// thousandths.
pub(crate) fn parse_milli(text: &str) -> Result<u64, &'static str> {
    const WHY: &str = "must be a non-negative decimal with at most 3 decimal places";
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (text.contains('.') && frac.is_empty())
    {
        return Err(WHY);
    }
    if frac.len() > 3 {
        return Err("must have at most 3 decimal places");
    }
    let int: u64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| "is too large")?
    };
    let mut milli: u64 = 0;
    for (i, b) in frac.bytes().enumerate() {
        milli += u64::from(b - b'0') * 10u64.pow(2 - i as u32);
    }
    int.checked_mul(1000)
        .and_then(|v| v.checked_add(milli))
        .ok_or("is too large")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_error(text: &str) -> (usize, String) {
        match Trace::parse(text) {
            Err(TraceError::Line { line, message }) => (line, message),
            other => panic!("expected a line error, got {other:?}"),
        }
    }

    #[test]
    fn parses_rows_comments_and_fractions() {
        let t = Trace::parse(
            "# demo\nseconds,arrivals_per_second\r\n0,8\n\n# burst\n600, 22.5\n2400,0.125\n3600,0\n",
        )
        .unwrap();
        assert_eq!(t.duration_secs(), 3600);
        assert_eq!(
            t.segments(),
            &[
                Segment {
                    start_secs: 0,
                    rate_milli: 8000
                },
                Segment {
                    start_secs: 600,
                    rate_milli: 22_500
                },
                Segment {
                    start_secs: 2400,
                    rate_milli: 125
                },
            ]
        );
        assert_eq!(t.rate_milli_at(0), 8000);
        assert_eq!(t.rate_milli_at(599), 8000);
        assert_eq!(t.rate_milli_at(600), 22_500);
        assert_eq!(t.rate_milli_at(3599), 125);
        assert_eq!(t.rate_milli_at(3600), 0);
        assert_eq!(t.total_messages(), 600 * 8 + 1800 * 22 + 900 + 150);
    }

    #[test]
    fn parse_errors_name_the_line() {
        assert_eq!(
            line_error("seconds,rate\n0,1\n"),
            (
                1,
                "expected the header `seconds,arrivals_per_second`, found `seconds,rate`".into()
            )
        );
        let (line, msg) = line_error("seconds,arrivals_per_second\n0,1\n60,x\n120,0\n");
        assert_eq!(line, 3);
        assert!(
            msg.contains("arrivals_per_second must be a non-negative decimal"),
            "{msg}"
        );
        let (line, msg) = line_error("seconds,arrivals_per_second\n0,1\n60,-2\n");
        assert_eq!(line, 3);
        assert!(msg.contains("`-2`"), "{msg}");
        let (line, msg) = line_error("seconds,arrivals_per_second\n0,1\n60,1.2345\n");
        assert_eq!(line, 3);
        assert!(msg.contains("at most 3 decimal places"), "{msg}");
        let (line, msg) = line_error("seconds,arrivals_per_second\n10,1\n60,0\n");
        assert_eq!(line, 2);
        assert!(msg.contains("first row must be at 0"), "{msg}");
        let (line, msg) = line_error("seconds,arrivals_per_second\n0,1\n60,2\n# c\n60,0\n");
        assert_eq!(line, 5);
        assert!(msg.contains("60 is not after 60 (line 3)"), "{msg}");
        let (line, msg) = line_error("seconds,arrivals_per_second\n0,1,2\n");
        assert_eq!(line, 2);
        assert!(msg.contains("expected 2 fields"), "{msg}");
        let (line, msg) = line_error("seconds,arrivals_per_second\n0.5,1\n");
        assert_eq!(line, 2);
        assert!(
            msg.contains("seconds must be a non-negative integer"),
            "{msg}"
        );
    }

    #[test]
    fn structural_errors() {
        assert!(matches!(Trace::parse(""), Err(TraceError::Empty)));
        assert!(matches!(Trace::parse("# only\n\n"), Err(TraceError::Empty)));
        let err = Trace::parse("seconds,arrivals_per_second\n0,5\n").unwrap_err();
        assert!(matches!(
            err,
            TraceError::TooFewRows {
                rows: 1,
                last_line: Some(2)
            }
        ));
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = Trace::from_path(Path::new("/nonexistent/trace.csv")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/trace.csv"));
    }

    #[test]
    fn milli_parsing() {
        assert_eq!(parse_milli("0"), Ok(0));
        assert_eq!(parse_milli("12"), Ok(12_000));
        assert_eq!(parse_milli("2.5"), Ok(2500));
        assert_eq!(parse_milli(".25"), Ok(250));
        assert_eq!(parse_milli("0.001"), Ok(1));
        assert!(parse_milli("").is_err());
        assert!(parse_milli(".").is_err());
        assert!(parse_milli("1.").is_err());
        assert!(parse_milli("1e3").is_err());
        assert!(parse_milli("99999999999999999999").is_err());
    }

    #[test]
    fn constructor_checks() {
        assert!(
            Trace::new(
                vec![Segment {
                    start_secs: 5,
                    rate_milli: 1
                }],
                10
            )
            .is_err()
        );
        assert!(
            Trace::new(
                vec![Segment {
                    start_secs: 0,
                    rate_milli: 1
                }],
                0
            )
            .is_err()
        );
        let t = Trace::new(
            vec![Segment {
                start_secs: 0,
                rate_milli: 1500,
            }],
            10,
        )
        .unwrap();
        assert_eq!(t.total_messages(), 15);
        assert_eq!(Trace::constant(2000, 30).total_messages(), 60);
    }
}
