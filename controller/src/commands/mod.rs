//! One module per `ballast` command; each returns the process exit code.

pub mod fleet;
pub mod iam_policy;
pub mod provision;
pub mod run;
pub mod scale;
pub mod schema;
pub mod simulate;
pub mod trace;
pub mod validate;
