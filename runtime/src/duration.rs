//! One parser for every duration on the command line (and in the environment variables
//! behind the flags): the blueprint's grammar, [`ballast_blueprint::Duration`] — a whole
//! number with a unit, `500ms`, `30s`, `5m`, `12h`, `1d` — so that `ballast run --resync 1d`
//! and `ballast-worker consume --breaker-cooldown 1d` accept the same text. A bare number is
//! seconds, as the worker's flags always accepted.

use std::time::Duration;

/// Examples shown in every duration error.
const HINT: &str = "use a whole number with a unit: ms, s, m, h or d (e.g. 500ms, 30s, 5m, 1d)";

/// A command-line duration that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliDurationError {
    /// Not a duration in the blueprint grammar.
    #[error("`{input}` is not a duration; {HINT}")]
    Invalid {
        /// The text as given.
        input: String,
        /// What the blueprint parser said.
        #[source]
        source: ballast_blueprint::DurationError,
    },
    /// A bare number too large to be seconds.
    #[error("`{input}` is too long a duration; {HINT}")]
    TooLong {
        /// The text as given.
        input: String,
    },
    /// Zero where only a positive duration makes sense (a timeout, a cooldown).
    #[error("`{input}`: the duration must be greater than zero")]
    Zero {
        /// The text as given.
        input: String,
    },
}

/// Parses `500ms`, `30s`, `5m`, `12h`, `1d`, or a bare number of seconds. Use as a clap
/// `value_parser`.
pub fn parse_duration(text: &str) -> Result<Duration, CliDurationError> {
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return trimmed
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| CliDurationError::TooLong {
                input: text.to_owned(),
            });
    }
    trimmed
        .parse::<ballast_blueprint::Duration>()
        .map(|d| d.std())
        .map_err(|source| CliDurationError::Invalid {
            input: text.to_owned(),
            source,
        })
}

/// Like [`parse_duration`], but zero is refused.
pub fn parse_positive_duration(text: &str) -> Result<Duration, CliDurationError> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(CliDurationError::Zero {
            input: text.to_owned(),
        });
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blueprint_grammar_and_bare_seconds() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("12h").unwrap(), Duration::from_secs(43_200));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert_eq!(parse_duration(" 5m ").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn bad_text_is_refused_with_a_hint() {
        for bad in ["", "abc", "s", "-1s", "1.5s", "5w", "1 d"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(
                matches!(err, CliDurationError::Invalid { .. }),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains("e.g. 500ms, 30s, 5m, 1d"), "{err}");
        }
        let too_long = format!("{}", u128::from(u64::MAX) + 1);
        assert!(matches!(
            parse_duration(&too_long),
            Err(CliDurationError::TooLong { .. })
        ));
        assert!(matches!(
            parse_duration(&format!("{}h", u64::MAX)),
            Err(CliDurationError::Invalid { .. })
        ));
    }

    #[test]
    fn positive_durations_refuse_zero() {
        assert_eq!(
            parse_positive_duration("1d").unwrap(),
            Duration::from_secs(86_400)
        );
        assert!(matches!(
            parse_positive_duration("0ms"),
            Err(CliDurationError::Zero { .. })
        ));
        assert!(matches!(
            parse_positive_duration("0"),
            Err(CliDurationError::Zero { .. })
        ));
    }
}
