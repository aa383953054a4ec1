//! Logging: tracing events to stderr (stdout stays the command's output), as text or JSON.
//!
//! The filter comes from `BALLAST_LOG`, then `RUST_LOG` (both use the `EnvFilter` syntax,
//! e.g. `BALLAST_LOG=debug,aws_config=warn`), then the binary's default. Text logs are coloured
//! only when standard error is a terminal and `NO_COLOR` is unset ([`crate::terminal`]).

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// The environment variable both binaries read their log filter from.
pub const LOG_ENV: &str = "BALLAST_LOG";

/// Log output format (`--log-format`, `BALLAST_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// The command-line spelling (`text` / `json`), e.g. to pass the format on to a child
    /// process.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// Logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// Another global subscriber was installed first (a second call in one process).
    #[error("logging is already initialised")]
    AlreadyInitialised(#[source] tracing_subscriber::util::TryInitError),
}

/// The filter: `BALLAST_LOG`, else `RUST_LOG`, else `default` (directives in the `EnvFilter`
/// syntax). An unparsable variable falls through to the next source rather than silencing
/// the process.
pub fn filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_env(LOG_ENV)
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new(default))
}

/// Installs the global subscriber: stderr, `format`, filtered by [`filter`]`(default)`,
/// coloured only where [`crate::terminal::colour_enabled`] allows it.
pub fn init_logging(format: LogFormat, default: &str) -> Result<(), LoggingError> {
    let registry = tracing_subscriber::registry().with(filter(default));
    let ansi = crate::terminal::colour_enabled(&std::io::stderr());
    match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_ansi(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(std::io::stderr)
                    .with_target(false),
            )
            .try_init(),
    }
    .map_err(LoggingError::AlreadyInitialised)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[arg(long, value_enum, default_value_t)]
        log_format: LogFormat,
    }

    #[test]
    fn the_format_is_text_or_json() {
        assert_eq!(Cli::parse_from(["t"]).log_format, LogFormat::Text);
        let cli = Cli::parse_from(["t", "--log-format", "json"]);
        assert_eq!(cli.log_format, LogFormat::Json);
        assert_eq!(cli.log_format.as_str(), "json");
        assert!(Cli::try_parse_from(["t", "--log-format", "xml"]).is_err());
    }

    #[test]
    fn a_second_initialisation_is_a_typed_error() {
        // The first call may race another test of this binary; either way the second fails.
        let _ = init_logging(LogFormat::Text, "info");
        assert!(matches!(
            init_logging(LogFormat::Json, "info"),
            Err(LoggingError::AlreadyInitialised(_))
        ));
    }
}
