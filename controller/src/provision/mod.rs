//! The provisioning engine: ownership by tags (no state file), observe → canonicalize → diff,
//! and plan/apply/destroy/drift over every resource kind of a blueprint.

pub mod conflict;
pub mod context;
pub mod diff;
pub mod engine;
pub mod error;
pub mod kinds;
pub mod orphan;
pub mod render;
pub mod state;
pub mod tagged;
pub mod typed;

pub use conflict::{Conflict, ConflictReason};
pub use context::{Clients, ReadOnlyClients};
pub use diff::{Action, Plan};
pub use engine::{
    DestroyAction, DestroyStep, EngineError, Observation, Outcome, OutcomeAction, Progress, apply,
    apply_targeted, destroy, destroy_in, destroy_steps, destroy_steps_in, observe, observe_with,
    plan,
};
pub use error::ProvisionError;
