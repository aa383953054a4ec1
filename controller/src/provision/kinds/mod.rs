//! One module per AWS resource kind, each implementing [`ResourceOps`].
//!
//! `desired` is pure; `observe` reads through [`ReadOnlyClients`] only; `create`, `update` and
//! `delete` take the writing [`Clients`]. Every value is canonicalized in `observe` into the
//! same form `desired` produces, so [`super::diff::diff`] compares like with like.
//!
//! Each kind names its fields through one enum ([`ResourceOps::Field`], declared with
//! `field_names!`): `desired` declares them, `observe` fills them, and `update` reads the plan's
//! changes as [`crate::provision::state::Changes`] of that enum, so a misspelt field does not
//! compile. A converted kind (see [`crate::provision::typed`]) also declares one typed state
//! struct that `desired` and `observe` both build, which the diff compares field by field and
//! `update` reads; the others use the named untyped bridge. Shared plumbing (filing observed resources, readiness polling, add/remove set
//! deltas) lives in [`support`].

pub mod alarm;
pub mod asg;
pub mod dashboard;
pub mod ec2;
pub mod endpoint;
pub mod iam;
pub mod iam_role;
pub mod instance_profile;
pub mod kms;
pub mod launch_template;
pub mod managed_policy;
pub mod policy_value;
pub mod queue;
pub mod route_tables;
pub mod scaling_policy;
pub mod security_group;
pub mod subnet;
pub mod support;
pub mod table;
pub mod topic;
pub mod vpc;

use std::future::Future;

use ballast_blueprint::{Blueprint, ResourceKind};

use super::context::{Clients, ReadOnlyClients};
use super::diff::FieldChange;
use super::error::ProvisionError;
use super::state::{DesiredState, FieldName, LiveState, Resolved};
use super::tagged::TagSnapshot;

pub struct ObserveContext<'a> {
    pub clients: &'a ReadOnlyClients,
    pub blueprint: &'a Blueprint,
    /// Live state of the kinds observed before this one (keys before queues, …).
    pub resolved: &'a Resolved,
    /// Reads made once per observe and shared by the kinds.
    pub shared: &'a SharedReads,
}

/// Reads one observe makes once for several kinds.
#[derive(Debug, Default)]
pub struct SharedReads {
    /// Ownership tags of the tagged kinds (keys, queues, tables, alarms), from one
    /// `GetResources`; a resource missing from it falls back to its own tag read.
    pub tagged: TagSnapshot,
    /// Route tables of the VPCs the VPC observe found, for the subnets' associations.
    pub route_tables: std::sync::OnceLock<route_tables::RouteTables>,
}

impl SharedReads {
    pub fn new(tagged: TagSnapshot) -> Self {
        Self {
            tagged,
            route_tables: std::sync::OnceLock::new(),
        }
    }
}

pub struct ApplyContext<'a> {
    pub clients: &'a Clients,
    pub blueprint: &'a Blueprint,
    pub resolved: &'a Resolved,
    pub readiness: Readiness,
}

/// How long and how often to poll for asynchronous AWS work (table ACTIVE, …), and the
/// shutdown token that ends such waits early.
#[derive(Debug, Clone)]
pub struct Readiness {
    pub timeout: std::time::Duration,
    pub poll: std::time::Duration,
    /// The binary's one shutdown token: when it fires, a wait ends at once with
    /// [`ProvisionError::Interrupted`](super::ProvisionError::Interrupted) and the engine starts
    /// no further step (a step in flight finishes its AWS call), so SIGINT/SIGTERM stop an
    /// apply within one call instead of after a ten-minute wait.
    pub cancel: tokio_util::sync::CancellationToken,
}

impl Readiness {
    /// The default waits, ended early by `cancel`.
    pub fn cancelled_by(cancel: tokio_util::sync::CancellationToken) -> Self {
        Self {
            cancel,
            ..Self::default()
        }
    }
}

impl Default for Readiness {
    fn default() -> Self {
        Self {
            timeout: std::time::Duration::from_secs(600),
            poll: std::time::Duration::from_millis(500),
            cancel: tokio_util::sync::CancellationToken::new(),
        }
    }
}

/// What `observe` found: the blueprint's resources that exist, and resources this blueprint
/// owns (by tags) that it no longer declares.
#[derive(Debug, Default)]
pub struct Observed {
    pub live: Vec<LiveState>,
    pub removed: Vec<LiveState>,
}

pub trait ResourceOps {
    const KIND: ResourceKind;

    /// The names of this kind's fields, shown in plan and drift output.
    type Field: FieldName;

    /// The blueprint's resources of this kind; references resolve through `resolved`.
    fn desired(bp: &Blueprint, resolved: &Resolved) -> Vec<DesiredState>;

    fn observe(
        ctx: &ObserveContext<'_>,
    ) -> impl Future<Output = Result<Observed, ProvisionError>> + Send;

    fn create(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
    ) -> impl Future<Output = Result<LiveState, ProvisionError>> + Send;

    /// Brings enforced fields and tags to the desired values (also used to adopt).
    fn update(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
        live: &LiveState,
        changes: &[FieldChange],
    ) -> impl Future<Output = Result<(), ProvisionError>> + Send;

    /// The live state after `update` changed it, for the resources that refer to it later in
    /// the same apply; `None` keeps what `observe` read. A kind whose update creates something
    /// other resources refer to reads it back here (the VPC's private route table, created by
    /// the update that completes a VPC whose create was interrupted), so that one apply
    /// converges instead of failing its dependents for a value only the next observe would see.
    fn updated(
        _ctx: &ApplyContext<'_>,
        _desired: &DesiredState,
        _live: &LiveState,
    ) -> impl Future<Output = Result<Option<LiveState>, ProvisionError>> + Send {
        async { Ok(None) }
    }

    fn delete(
        ctx: &ApplyContext<'_>,
        live: &LiveState,
    ) -> impl Future<Output = Result<(), ProvisionError>> + Send;
}

/// Physical names live with the blueprint (`ballast_blueprint::declared`); re-exported for the
/// kind modules.
pub use ballast_blueprint::declared;
