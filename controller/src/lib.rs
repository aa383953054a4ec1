//! The Ballast controller: blueprints in, AWS infrastructure and fleet capacity out.

pub mod autoscale;
pub mod ci;
pub mod cli;
pub mod commands;
pub mod fleet;
pub mod iam_policy;
pub mod lease;
pub mod provision;
pub mod saved_plan;
pub mod service;
pub mod simulate;
