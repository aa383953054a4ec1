//! Process plumbing shared by the `ballast` controller and the `ballast-worker` binary, so
//! that both behave the same way:
//!
//! - [`shutdown`]: SIGINT / SIGTERM cancel one [`tokio_util::sync::CancellationToken`];
//! - [`logging`]: tracing to stderr, filtered by `BALLAST_LOG` (then `RUST_LOG`), as text or
//!   JSON (`--log-format`);
//! - [`aws`]: the `--region`, `--endpoint-url`, `--profile` and `--aws-*-timeout` flags and
//!   the [`aws_types::SdkConfig`] they yield;
//! - [`clock`]: one [`Clock`] (wall [`Timestamp`] and monotonic time) with a system and a
//!   manual implementation, so time-dependent code is tested without sleeping;
//! - [`backoff`]: one exponential [`Backoff`] with the shared ±10 % [`jittered`];
//! - [`duration`]: one command-line duration parser, the blueprint's grammar (`500ms`, `30s`,
//!   `5m`, `12h`, `1d`);
//! - [`worker_metrics`]: the CloudWatch names of the worker's metrics, which the controller
//!   reads back;
//! - [`cli`]: `--version` with the git revision, the environment help under `--help`, and the
//!   `completions` / `man` commands;
//! - [`terminal`]: colour only on a terminal and without `NO_COLOR`;
//! - [`exit`]: the exit code, a closed pipe ending quietly, and each error cause printed once.

pub mod aws;
pub mod backoff;
pub mod cli;
pub mod clock;
pub mod duration;
pub mod exit;
pub mod logging;
pub mod shutdown;
pub mod terminal;
pub mod worker_metrics;

pub use aws::{AwsArgs, AwsTimeoutArgs};
pub use backoff::{Backoff, jittered};
pub use clock::{Clock, ManualClock, SystemClock, Timestamp, duration_millis};
pub use duration::{CliDurationError, parse_duration, parse_positive_duration};
pub use logging::{LogFormat, LoggingError, init_logging};
pub use shutdown::{cancel_on_signal, spawn_signal_handler};
