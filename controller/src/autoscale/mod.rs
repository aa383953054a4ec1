//! Autoscaling for the worker fleet.
//!
//! [`policy`] holds the pure, deterministic scaling policy: it turns one
//! [`policy::Observation`] of the queue and the Auto Scaling group into a
//! [`policy::Decision`] without doing any I/O. The clock is injected as a
//! [`policy::Timestamp`], so the same code runs in the controller, in unit
//! tests and in the simulator (`crate::simulate`).

pub mod policy;
pub mod queueing;
pub mod seasonal;

pub use policy::{
    Action, BacklogPerInstance, Decision, Mode, Observation, PolicyConfig, PolicyConfigError,
    PolicyState, Reading, Recommendation, Timestamp, evaluate,
};

pub mod config;

pub mod actuator;
pub mod measured;
pub mod publish;
pub mod reading;
pub mod runner;
